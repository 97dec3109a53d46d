"""Framework-free arithmetic of convolutional networks, shared by both trees: TF "SAME" padding,
channel rounding, depth scaling, channel splits and ECA's kernel size. One copy, so the trees cannot disagree."""
from __future__ import annotations

import math


def same_padding(size: int, kernel_size: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow "SAME" padding of one spatial axis: ``(before, after)`` such that the output has
    ``ceil(size / stride)`` positions. When the total is odd the extra pixel goes *after*
    (bottom/right), which is why TF-trained weights need it rather than symmetric padding."""
    if size < 1 or kernel_size < 1 or stride < 1 or dilation < 1:
        raise ValueError(f"same_padding needs positive size, kernel, stride and dilation; got "
                         f"size={size}, kernel_size={kernel_size}, stride={stride}, dilation={dilation}")
    total = max((math.ceil(size / stride) - 1) * stride + (kernel_size - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def is_static_same(kernel_size: int, stride: int, dilation: int = 1) -> bool:
    """Whether "SAME" padding is symmetric for every input size (then a fixed pad does it)."""
    return stride == 1 and (dilation * (kernel_size - 1)) % 2 == 0


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.9) -> int:
    """Nearest multiple of ``divisor`` (at least ``min_value``), never more than 10% below ``value``
    (timm's and TF's rule for scaled channel counts)."""
    min_value = min_value or divisor
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < round_limit * value else new


def round_channels(channels: int, multiplier: float = 1.0, divisor: int = 8) -> int:
    """``channels`` scaled by a width multiplier and rounded with ``make_divisible`` (as timm)."""
    return make_divisible(channels * multiplier, divisor)


def scale_depth(repeats: int, multiplier: float = 1.0) -> int:
    """Blocks in a stage after a depth multiplier: ``ceil(repeats * multiplier)`` (EfficientNet's rule)."""
    return int(math.ceil(repeats * multiplier))


def eca_kernel_size(channels: int, gamma: float = 2.0, beta: float = 1.0) -> int:
    """ECA-Net's adaptive kernel size: the odd integer nearest ``|log2(C) + beta| / gamma`` from
    above, ``k = t if t is odd else t + 1`` with ``t = int(|log2(C) + beta| / gamma)``."""
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    t = int(abs(math.log2(channels) + beta) / gamma)
    return t if t % 2 else t + 1


def symmetric_padding(kernel_size: int, stride: int = 1, dilation: int = 1) -> int:
    """PyTorch-style padding on every side, timm's ``get_padding``: ``((s - 1) + d (k - 1)) // 2``
    (``(k - 1) // 2`` for an odd kernel)."""
    return ((stride - 1) + dilation * (kernel_size - 1)) // 2


def split_channels(channels: int, groups: int) -> list[int]:
    """``channels`` in ``groups`` near-equal parts, the remainder to the first (MixNet's rule)."""
    if groups < 1 or channels < groups:
        raise ValueError(f"cannot split {channels} channels into {groups} groups")
    split = [channels // groups] * groups
    split[0] += channels - sum(split)
    return split
