"""Vision Transformer variants: timm's names and constructor arguments."""
from __future__ import annotations

from typing import Any

FAMILY = "vit"


def _vit(patch: int, dim: int, depth: int, heads: int, img: int = 224) -> dict[str, Any]:
    return dict(img_size=img, patch_size=patch, embed_dim=dim, depth=depth, num_heads=heads)


VARIANTS: dict[str, dict[str, Any]] = {
    "vit_tiny_patch16_224": _vit(16, 192, 12, 3),
    "vit_tiny_patch16_384": _vit(16, 192, 12, 3, img=384),
    "vit_small_patch16_224": _vit(16, 384, 12, 6),
    "vit_small_patch16_384": _vit(16, 384, 12, 6, img=384),
    "vit_small_patch32_224": _vit(32, 384, 12, 6),
    "vit_base_patch16_224": _vit(16, 768, 12, 12),
    "vit_base_patch16_384": _vit(16, 768, 12, 12, img=384),
    "vit_base_patch32_224": _vit(32, 768, 12, 12),
    "vit_base_patch32_384": _vit(32, 768, 12, 12, img=384),
    "vit_large_patch16_224": _vit(16, 1024, 24, 16),
    "vit_large_patch16_384": _vit(16, 1024, 24, 16, img=384),
}
