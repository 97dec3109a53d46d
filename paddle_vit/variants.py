"""Model variants as data, shared by both trees.

A variant is a family name plus the constructor arguments of that family's class,
exactly as timm names them. This module imports no framework, so ``torch_ref``
reads the same table as ``paddle_vit`` and the two can never drift apart.
"""
from __future__ import annotations

import difflib
import fnmatch
from typing import Any

VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {}


def register_variant(name: str, family: str, **kwargs: Any) -> None:
    """Declare ``name`` as ``family(**kwargs)``; names are unique across families."""
    if name in VARIANTS:
        raise ValueError(f"model variant {name!r} is registered twice")
    VARIANTS[name] = (family, dict(kwargs))


def list_models(pattern: str = "*") -> list[str]:
    """Sorted variant names matching a shell-style ``pattern`` (e.g. ``'vit_*'``)."""
    return sorted(n for n in VARIANTS if fnmatch.fnmatch(n, pattern))


def get_variant(name: str) -> tuple[str, dict[str, Any]]:
    """``(family, kwargs)`` of a variant; an unknown name lists the close matches."""
    try:
        family, kwargs = VARIANTS[name]
    except KeyError:
        close = difflib.get_close_matches(name, VARIANTS, n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see list_models()"
        raise ValueError(f"unknown model {name!r}{hint}") from None
    return family, dict(kwargs)


def model_kwargs(name: str, num_classes: int | None = None, img_size: Any = None,
                 **overrides: Any) -> tuple[str, dict[str, Any]]:
    """Family and final constructor arguments: the variant's, then the caller's overrides."""
    family, kwargs = get_variant(name)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if img_size is not None:
        kwargs["img_size"] = img_size
    kwargs.update(overrides)
    return family, kwargs


# --- Vision Transformer (timm's names and arguments) -------------------------
def _vit(name: str, patch: int, dim: int, depth: int, heads: int, img: int = 224) -> None:
    register_variant(name, "vit", img_size=img, patch_size=patch, embed_dim=dim,
                     depth=depth, num_heads=heads)


_vit("vit_tiny_patch16_224", 16, 192, 12, 3)
_vit("vit_tiny_patch16_384", 16, 192, 12, 3, img=384)
_vit("vit_small_patch16_224", 16, 384, 12, 6)
_vit("vit_small_patch16_384", 16, 384, 12, 6, img=384)
_vit("vit_small_patch32_224", 32, 384, 12, 6)
_vit("vit_base_patch16_224", 16, 768, 12, 12)
_vit("vit_base_patch16_384", 16, 768, 12, 12, img=384)
_vit("vit_base_patch32_224", 32, 768, 12, 12)
_vit("vit_base_patch32_384", 32, 768, 12, 12, img=384)
_vit("vit_large_patch16_224", 16, 1024, 24, 16)
_vit("vit_large_patch16_384", 16, 1024, 24, 16, img=384)


# --- Swin Transformer (timm's names and arguments) ---------------------------
def _swin(name: str, window: int, dim: int, depths: tuple[int, ...], heads: tuple[int, ...],
          img: int = 224) -> None:
    register_variant(name, "swin", img_size=img, patch_size=4, window_size=window, embed_dim=dim,
                     depths=depths, num_heads=heads)


_swin("swin_tiny_patch4_window7_224", 7, 96, (2, 2, 6, 2), (3, 6, 12, 24))
_swin("swin_small_patch4_window7_224", 7, 96, (2, 2, 18, 2), (3, 6, 12, 24))
_swin("swin_base_patch4_window7_224", 7, 128, (2, 2, 18, 2), (4, 8, 16, 32))
_swin("swin_base_patch4_window12_384", 12, 128, (2, 2, 18, 2), (4, 8, 16, 32), img=384)
_swin("swin_large_patch4_window7_224", 7, 192, (2, 2, 18, 2), (6, 12, 24, 48))
_swin("swin_large_patch4_window12_384", 12, 192, (2, 2, 18, 2), (6, 12, 24, 48), img=384)
