"""Feeding real images to a model the way timm does, without torch (PIL + numpy).

    from paddle_vit.data import load_image, resolve_data_config, create_transform
    config = resolve_data_config(model)          # or a tag: 'vit_base_patch16_224.augreg2_in21k_ft_in1k'
    transform = create_transform(**config)
    x = transform(load_image("cat.jpg")[0])      # float32 [3, H, W]; transform.batch([...]) -> [B, 3, H, W]
"""
from __future__ import annotations

import os
from typing import Any

from paddle_vit.data.config import resolve_data_config
from paddle_vit.data.transforms import CROP_MODES, INTERPOLATIONS, EvalTransform, as_pil_rgb, create_transform


def load_image(path: str | os.PathLike) -> tuple[Any, str | None]:
    """``(PIL RGB image, note)``: the note says what was converted (grayscale, alpha channel,
    palette, ...) and is ``None`` for an RGB file. An unreadable file is a ``ValueError`` naming it."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            rgb = img if mode == "RGB" else img.convert("RGB")
            rgb.load()
    except FileNotFoundError:
        raise ValueError(f"cannot read image {path}: no such file") from None
    except IsADirectoryError:
        raise ValueError(f"cannot read image {path}: it is a directory") from None
    except UnidentifiedImageError:
        raise ValueError(f"cannot read image {path}: not an image format Pillow can read") from None
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt data
        raise ValueError(f"cannot read image {path}: {type(exc).__name__}: {exc} (truncated or corrupt?)") from None
    if mode == "RGB":
        return rgb, None
    what = {"L": "grayscale", "LA": "grayscale with an alpha channel (alpha dropped)", "1": "black and white",
            "RGBA": "RGBA (alpha channel dropped)", "P": "a palette image", "CMYK": "CMYK",
            "I;16": "16-bit grayscale", "I": "32-bit integer grayscale", "F": "floating-point grayscale"}
    return rgb, f"{path} is {what.get(mode, f'mode {mode!r}')}; converted to RGB"


def imagenet_class_name(index: int) -> str:
    """The short ImageNet-1k name of class ``index`` (torchvision's list)."""
    from paddle_vit.data.imagenet_classes import IMAGENET1K_CLASSES
    return IMAGENET1K_CLASSES[index][1]


__all__ = ["CROP_MODES", "INTERPOLATIONS", "EvalTransform", "as_pil_rgb", "create_transform", "imagenet_class_name",
           "load_image", "resolve_data_config"]
