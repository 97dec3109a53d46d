"""Framework-free input checks, shared by both trees: a wrong shape fails with a message naming what was expected."""
from __future__ import annotations

import math
from typing import Any, Sequence


def check_tokens(x: Any, dim: int, where: str) -> None:
    """Require a ``[B, N, dim]`` token tensor."""
    shape = list(x.shape)
    if len(shape) != 3:
        raise ValueError(f"{where}: expected tokens of shape [B, N, {dim}], got rank {len(shape)} shape {shape}")
    if shape[-1] != dim:
        raise ValueError(f"{where}: expected last dimension {dim} (embed_dim), got shape {shape}")


def check_image(x: Any, channels: int, size: Sequence[int] | None, where: str) -> None:
    """Require a ``[B, channels, H, W]`` image, of spatial size ``size`` when given."""
    shape = list(x.shape)
    if len(shape) != 4:
        raise ValueError(f"{where}: expected an image batch of shape [B, {channels}, H, W], "
                         f"got rank {len(shape)} shape {shape}")
    if shape[1] != channels:
        raise ValueError(f"{where}: expected {channels} input channels, got shape {shape}")
    if size is not None and tuple(shape[2:]) != tuple(size):
        raise ValueError(f"{where}: expected image size {tuple(size)} (H, W), got {tuple(shape[2:])}")


def to_2tuple(v: int | Sequence[int], name: str) -> tuple[int, int]:
    """``224 -> (224, 224)``; ``(h, w)`` kept; anything else is an error."""
    if isinstance(v, int):
        out = (v, v)
    else:
        out = tuple(int(a) for a in v)
    if len(out) != 2 or min(out) < 1:
        raise ValueError(f"{name} must be a positive int or (height, width), got {v!r}")
    return out  # type: ignore[return-value]


def check_map(x: Any, resolution: Sequence[int] | None, dim: int, where: str) -> None:
    """Require a channels-last map ``[B, H, W, dim]`` (of spatial size ``resolution`` when given)."""
    shape = list(x.shape)
    if len(shape) != 4 or shape[-1] != dim:
        raise ValueError(f"{where}: expected a channels-last map [B, H, W, {dim}], got shape {shape}")
    if resolution is not None and tuple(shape[1:3]) != tuple(resolution):
        raise ValueError(f"{where}: expected resolution {tuple(resolution)} (H, W), got {tuple(shape[1:3])}")


def patch_grid(img_size: int | Sequence[int], patch_size: int | Sequence[int]
               ) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """``(img_size, patch_size, grid_size)`` as (height, width) pairs; the image must be divisible."""
    img, patch = to_2tuple(img_size, "img_size"), to_2tuple(patch_size, "patch_size")
    for size, p, axis in zip(img, patch, ("height", "width")):
        if size % p:
            raise ValueError(f"image {axis} {size} is not divisible by patch size {p}")
    return img, patch, (img[0] // patch[0], img[1] // patch[1])


def pos_embed_grids(shape: Sequence[int], new_size: Sequence[int], old_size: Sequence[int] | None,
                    num_prefix_tokens: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """``(old_size, new_size)`` of a ``[1, prefix + gh*gw, C]`` position embedding; ``old_size``
    defaults to a square grid."""
    shape = list(shape)
    if len(shape) != 3 or shape[0] != 1:
        raise ValueError(f"pos_embed must be [1, N, C], got {shape}")
    n_grid = shape[1] - num_prefix_tokens
    if old_size is None:
        side = int(math.isqrt(max(n_grid, 0)))
        if side * side != n_grid:
            raise ValueError(f"pos_embed has {n_grid} grid tokens, not a square: pass old_size")
        old_size = (side, side)
    old, new = tuple(old_size), tuple(new_size)
    if old[0] * old[1] != n_grid:
        raise ValueError(f"old_size {old} does not hold {n_grid} grid tokens")
    return old, new  # type: ignore[return-value]


# --- SpatialTransformer (layers/stn.py) ---
STN_PADDING_MODES = ("zeros", "border", "reflection")
STN_IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def check_stn_args(in_chans: int, loc_chans: Sequence[int], loc_hidden: int, pool_size: int, padding_mode: str) -> None:
    """``SpatialTransformer``'s arguments (both trees): one message naming every bad one."""
    problems = []
    if in_chans < 1 or loc_hidden < 1 or pool_size < 1 or len(loc_chans) != 2 or min(loc_chans) < 1:
        problems.append(f"need in_chans, loc_hidden, pool_size >= 1 and two loc_chans >= 1, got in_chans={in_chans}, "
                        f"loc_chans={tuple(loc_chans)}, loc_hidden={loc_hidden}, pool_size={pool_size}")
    if padding_mode not in STN_PADDING_MODES:
        problems.append(f"padding_mode must be one of {STN_PADDING_MODES}, got {padding_mode!r}")
    if problems:
        raise ValueError("SpatialTransformer: " + "; ".join(problems))
