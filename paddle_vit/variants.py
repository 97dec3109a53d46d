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


# --- EfficientNetV2 (Tan & Le, 2021) -----------------------------------------------
# One row per stage: (block, repeats, kernel, stride, expand_ratio, out_chs, se_ratio);
# block 'fused' is Fused-MBConv (expansion 1: a single k x k conv), 'mbconv' is MBConv.
# The source's S/M/L tables (its in_c column is the previous row's out_c), which are
# timm's efficientnetv2_* / tf_efficientnetv2_* arch defs and torchvision's efficientnet_v2_*.
EFFNETV2_S = (("fused", 2, 3, 1, 1, 24, 0.0), ("fused", 4, 3, 2, 4, 48, 0.0), ("fused", 4, 3, 2, 4, 64, 0.0),
              ("mbconv", 6, 3, 2, 4, 128, 0.25), ("mbconv", 9, 3, 1, 6, 160, 0.25),
              ("mbconv", 15, 3, 2, 6, 256, 0.25))
EFFNETV2_M = (("fused", 3, 3, 1, 1, 24, 0.0), ("fused", 5, 3, 2, 4, 48, 0.0), ("fused", 5, 3, 2, 4, 80, 0.0),
              ("mbconv", 7, 3, 2, 4, 160, 0.25), ("mbconv", 14, 3, 1, 6, 176, 0.25),
              ("mbconv", 18, 3, 2, 6, 304, 0.25), ("mbconv", 5, 3, 1, 6, 512, 0.25))
EFFNETV2_L = (("fused", 4, 3, 1, 1, 32, 0.0), ("fused", 7, 3, 2, 4, 64, 0.0), ("fused", 7, 3, 2, 4, 96, 0.0),
              ("mbconv", 10, 3, 2, 4, 192, 0.25), ("mbconv", 19, 3, 1, 6, 224, 0.25),
              ("mbconv", 25, 3, 2, 6, 384, 0.25), ("mbconv", 7, 3, 1, 6, 640, 0.25))


def _effnetv2(name: str, stages: tuple, stem: int, img: int, drop: float) -> None:
    # BN eps 1e-3 (the source, torchvision and timm's tf_ weights); head dropout and the drop path
    # rate 0.2 as in the source (drop path is only active in training).
    for prefix, pad in (("", ""), ("tf_", "same")):
        register_variant(prefix + name, "efficientnetv2", stages=stages, stem_size=stem, img_size=img,
                         drop_rate=drop, drop_path_rate=0.2, bn_eps=1e-3, pad_type=pad)


_effnetv2("efficientnetv2_s", EFFNETV2_S, 24, 384, 0.2)
_effnetv2("efficientnetv2_m", EFFNETV2_M, 24, 480, 0.3)
_effnetv2("efficientnetv2_l", EFFNETV2_L, 32, 480, 0.4)
