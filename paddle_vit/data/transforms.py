"""timm's evaluation transform with PIL and numpy only (no torch): resize, crop, scale, normalize.

``create_transform(**resolve_data_config(model))`` gives the array timm's ``create_transform``
gives for the same image (``parity_tests/test_transforms.py`` checks it on real photos for every
interpolation and crop mode). The steps and their integer arithmetic are timm's
(``transforms_imagenet_eval``) and torchvision's (``Resize``, ``CenterCrop``), on PIL images:

- ``crop_mode='center'``: the shorter side is resized to ``floor(size / crop_pct)`` (aspect kept),
  then the centre ``size`` is cropped;
- ``'squash'``: both sides resized to ``floor(size / crop_pct)`` (aspect not kept), centre crop;
- ``'border'``: the longer side resized to ``floor(size / crop_pct)``, then padded to ``size``
  with the mean colour (``round(255 * mean)``) and centre-cropped.

Then ``float32(pixel) / 255`` to ``[3, H, W]`` and ``(x - mean) / std`` per channel.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from paddle_vit.pretrained import DEFAULT_CROP_MODE, DEFAULT_CROP_PCT, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

CROP_MODES = ("center", "squash", "border")
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "box", "hamming", "lanczos")


def _pil_filter(name: str) -> int:
    from PIL import Image
    return {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
            "bicubic": Image.Resampling.BICUBIC, "box": Image.Resampling.BOX,
            "hamming": Image.Resampling.HAMMING, "lanczos": Image.Resampling.LANCZOS}[name]


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    size = tuple(int(s) for s in size)
    if len(size) == 3:       # timm's input_size (C, H, W)
        size = size[1:]
    if len(size) != 2:
        raise ValueError(f"input_size must be an int, (H, W) or (C, H, W), got {size}")
    return size


def as_pil_rgb(image: Any) -> Any:
    """A PIL RGB image from a PIL RGB image or a ``uint8`` array ``[H, W, 3]``; anything else is an
    error saying how to convert it (timm's transform would fail on it too, less clearly)."""
    from PIL import Image
    if isinstance(image, Image.Image):
        if image.mode != "RGB":
            raise ValueError(f"expected an RGB image, got PIL mode {image.mode!r}; convert it first: "
                             "image.convert('RGB') (paddle_vit.data.load_image does, with a note)")
        return image
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected a uint8 array [H, W, 3] (RGB, channels last), got {image.dtype} "
                             f"{list(image.shape)}; e.g. np.asarray(PIL.Image.open(path).convert('RGB'))")
        return Image.fromarray(np.ascontiguousarray(image))
    raise ValueError(f"expected a PIL image or a numpy uint8 array [H, W, 3], got {type(image).__name__}")


def _center_crop_or_pad(image: np.ndarray, size: tuple[int, int], fill: Sequence[int]) -> np.ndarray:
    """``[H, W, 3]`` -> ``[h, w, 3]``: torchvision's ``center_crop`` arithmetic (pad with ``fill``
    first where the crop is larger: left/top get the floor half)."""
    ch, cw = size
    h, w = image.shape[:2]
    if ch > h or cw > w:
        top, left = max(ch - h, 0) // 2, max(cw - w, 0) // 2
        bottom, right = (max(ch - h, 0) + 1) // 2, (max(cw - w, 0) + 1) // 2
        padded = np.empty((h + top + bottom, w + left + right, 3), dtype=image.dtype)
        padded[...] = np.asarray(fill, dtype=image.dtype)
        padded[top:top + h, left:left + w] = image
        image, (h, w) = padded, padded.shape[:2]
        if (h, w) == (ch, cw):
            return image
    top, left = int(round((h - ch) / 2.0)), int(round((w - cw) / 2.0))
    return image[top:top + ch, left:left + cw]


@dataclass(frozen=True)
class EvalTransform:
    """An image (PIL RGB or uint8 ``[H, W, 3]``) -> float32 ``[3, H, W]`` (uint8 without ``normalize``)."""
    img_size: tuple[int, int]
    scale_size: tuple[int, int]
    crop_mode: str
    interpolation: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_border_pixels: int = 0
    normalize: bool = True

    def resized_size(self, width: int, height: int) -> tuple[int, int]:
        """``(new_w, new_h)`` of the resize step for an image of ``width x height``."""
        th, tw = self.scale_size
        if self.crop_mode == "squash":
            return tw, th
        if self.crop_mode == "center" and th == tw:  # torchvision Resize(int): the shorter side
            short, long = sorted((width, height))
            new_long = int(th * long / short)
            return (th, new_long) if width <= height else (new_long, th)
        # timm's ResizeKeepRatio: longest=1 for 'border', 0 for a non-square 'center'
        ratio_h, ratio_w = height / th, width / tw
        ratio = max(ratio_h, ratio_w) if self.crop_mode == "border" else min(ratio_h, ratio_w)
        return round(width / ratio), round(height / ratio)

    def __call__(self, image: Any) -> np.ndarray:
        img = as_pil_rgb(image)
        if self.crop_border_pixels:  # timm's TrimBorder (its left offset is clipped by the height, as there)
            w, h = img.size
            b = self.crop_border_pixels
            top, left = min(b, h), min(b, h)
            img = img.crop((left, top, left + max(0, w - 2 * b), top + max(0, h - 2 * b)))
        size = self.resized_size(*img.size)
        if size != img.size:
            img = img.resize(size, _pil_filter(self.interpolation))
        fill = [round(255 * v) for v in self.mean] if self.crop_mode == "border" else [0, 0, 0]
        pixels = _center_crop_or_pad(np.asarray(img), self.img_size, fill).transpose(2, 0, 1)
        if not self.normalize:
            return np.ascontiguousarray(pixels)
        x = pixels.astype(np.float32) / np.float32(255)
        mean = np.asarray(self.mean, dtype=np.float32)[:, None, None]
        std = np.asarray(self.std, dtype=np.float32)[:, None, None]
        return (x - mean) / std

    def batch(self, images: Sequence[Any]) -> np.ndarray:
        """Several images -> float32 ``[B, 3, H, W]``."""
        return np.stack([self(im) for im in images])


def create_transform(input_size: int | Sequence[int] = 224, is_training: bool = False,
                     interpolation: str = "bilinear", mean: Sequence[float] = IMAGENET_DEFAULT_MEAN,
                     std: Sequence[float] = IMAGENET_DEFAULT_STD, crop_pct: float | None = None,
                     crop_mode: str | None = None, crop_border_pixels: int | None = None,
                     normalize: bool = True) -> EvalTransform:
    """timm's ``create_transform`` for evaluation (same arguments and defaults); pass it
    ``**resolve_data_config(...)``. Training augmentation is not implemented."""
    if is_training:
        raise ValueError("paddle_vit.data implements timm's evaluation transform only (is_training=False)")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    crop_mode = crop_mode or DEFAULT_CROP_MODE
    if crop_mode not in CROP_MODES:
        raise ValueError(f"crop_mode must be one of {CROP_MODES}, got {crop_mode!r}")
    crop_pct = crop_pct or DEFAULT_CROP_PCT
    if not crop_pct > 0:
        raise ValueError(f"crop_pct must be > 0, got {crop_pct}")
    mean, std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ValueError(f"mean and std need 3 values (RGB), std > 0; got mean={mean}, std={std}")
    img_size = _pair(input_size)
    scale_size = (math.floor(img_size[0] / crop_pct), math.floor(img_size[1] / crop_pct))
    return EvalTransform(img_size, scale_size, crop_mode, interpolation, mean, std, int(crop_border_pixels or 0),
                         normalize)
