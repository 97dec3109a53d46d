"""Swin Transformer variants: timm's names and constructor arguments."""
from __future__ import annotations

from typing import Any

FAMILY = "swin"


def _swin(window: int, dim: int, depths: tuple[int, ...], heads: tuple[int, ...], img: int = 224) -> dict[str, Any]:
    return dict(img_size=img, patch_size=4, window_size=window, embed_dim=dim, depths=depths, num_heads=heads)


VARIANTS: dict[str, dict[str, Any]] = {
    "swin_tiny_patch4_window7_224": _swin(7, 96, (2, 2, 6, 2), (3, 6, 12, 24)),
    "swin_small_patch4_window7_224": _swin(7, 96, (2, 2, 18, 2), (3, 6, 12, 24)),
    "swin_base_patch4_window7_224": _swin(7, 128, (2, 2, 18, 2), (4, 8, 16, 32)),
    "swin_base_patch4_window12_384": _swin(12, 128, (2, 2, 18, 2), (4, 8, 16, 32), img=384),
    "swin_large_patch4_window7_224": _swin(7, 192, (2, 2, 18, 2), (6, 12, 24, 48)),
    "swin_large_patch4_window12_384": _swin(12, 192, (2, 2, 18, 2), (6, 12, 24, 48), img=384),
}
