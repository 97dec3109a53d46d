"""Convolutions with TensorFlow "SAME" padding (torch mirror of ``paddle_vit.layers.conv2d_same``)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from paddle_vit.conv_arith import is_static_same, same_padding

PAD_TYPES = ("", "same")


class Conv2dSame(nn.Conv2d):
    """``[B, C, H, W]`` -> ``[B, out, ceil(H/s), ceil(W/s)]``: pads each input by its own size
    (extra pixel bottom/right), then convolves without padding."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1, bias: bool = False) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, groups=groups, bias=bias)
        self.same_kernel, self.same_stride = kernel_size, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = same_padding(x.shape[2], self.same_kernel, self.same_stride)
        left, right = same_padding(x.shape[3], self.same_kernel, self.same_stride)
        if top or bottom or left or right:
            x = F.pad(x, [left, right, top, bottom])
        return super().forward(x)


def create_conv2d(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1,
                  bias: bool = False, pad_type: str = "") -> nn.Conv2d:
    """A ``kernel_size`` conv: ``pad_type=''`` pads ``(k - 1) // 2`` on every side (PyTorch style);
    ``'same'`` is TF's SAME, static where it is symmetric for every size, else ``Conv2dSame``."""
    if pad_type not in PAD_TYPES:
        raise ValueError(f"pad_type must be one of {PAD_TYPES}, got {pad_type!r}")
    if stride < 1 or kernel_size < 1:
        raise ValueError(f"kernel_size and stride must be >= 1, got {kernel_size} and {stride}")
    if pad_type == "same" and not is_static_same(kernel_size, stride):
        return Conv2dSame(in_channels, out_channels, kernel_size, stride, groups, bias)
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=(kernel_size - 1) // 2,
                     groups=groups, bias=bias)
