"""Framework-free input checks, shared by both trees: a wrong shape fails with a message naming what was expected."""
from __future__ import annotations

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
