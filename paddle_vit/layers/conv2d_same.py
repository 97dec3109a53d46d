"""Convolutions for the MBConv family: PyTorch-style or TensorFlow "SAME" padding (timm's ``tf_*``
weights), mixed kernels and CondConv, chosen by ``create_conv2d`` as timm's factory chooses."""
from __future__ import annotations

from typing import Sequence, Union

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from paddle_vit.conv_arith import is_static_same, same_padding, symmetric_padding

PAD_TYPES = ("", "same")


def pad_same(x: paddle.Tensor, kernel_size: int, stride: int, dilation: int = 1) -> paddle.Tensor:
    """``[B, C, H, W]`` zero-padded for a SAME conv of this input's size (extra pixel bottom/right)."""
    top, bottom = same_padding(x.shape[2], kernel_size, stride, dilation)
    left, right = same_padding(x.shape[3], kernel_size, stride, dilation)
    return F.pad(x, [left, right, top, bottom]) if top or bottom or left or right else x


class Conv2dSame(nn.Conv2D):
    """``[B, C, H, W]`` -> ``[B, out, ceil(H/s), ceil(W/s)]``: pads each input by its own size
    (extra pixel bottom/right), then convolves without padding. Keys as ``nn.Conv2D``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1, bias: bool = False, dilation: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, dilation=dilation,
                         groups=groups, bias_attr=None if bias else False)
        self.same_kernel, self.same_stride, self.same_dilation = kernel_size, stride, dilation

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return nn.Conv2D.forward(self, pad_same(x, self.same_kernel, self.same_stride, self.same_dilation))


def create_conv2d_pad(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1,
                      bias: bool = False, pad_type: str = "", dilation: int = 1) -> nn.Conv2D:
    """One conv: ``pad_type=''`` pads ``((s - 1) + d (k - 1)) // 2`` on every side (PyTorch style);
    ``'same'`` is TF's SAME, static where it is symmetric for every size, else ``Conv2dSame``."""
    if pad_type not in PAD_TYPES:
        raise ValueError(f"pad_type must be one of {PAD_TYPES}, got {pad_type!r}")
    if stride < 1 or kernel_size < 1 or dilation < 1:
        raise ValueError(f"kernel_size, stride and dilation must be >= 1, got {kernel_size}, {stride}, {dilation}")
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"{in_channels} -> {out_channels} channels do not split into {groups} groups")
    if pad_type == "same" and not is_static_same(kernel_size, stride, dilation):
        return Conv2dSame(in_channels, out_channels, kernel_size, stride, groups, bias, dilation)
    return nn.Conv2D(in_channels, out_channels, kernel_size, stride=stride, dilation=dilation, groups=groups,
                     padding=symmetric_padding(kernel_size, stride, dilation), bias_attr=None if bias else False)


def create_conv2d(in_channels: int, out_channels: int, kernel_size: Union[int, Sequence[int]], stride: int = 1,
                  groups: int = 1, bias: bool = False, pad_type: str = "", dilation: int = 1,
                  num_experts: int = 0) -> nn.Layer:
    """A conv as timm's ``create_conv2d`` picks it: several kernel sizes -> ``MixedConv2d`` (one
    group of channels each; depthwise when ``groups == in_channels``), ``num_experts > 0`` ->
    ``CondConv2d``, else ``create_conv2d_pad``."""
    if not isinstance(kernel_size, int):
        from paddle_vit.layers.mixed_conv import MixedConv2d
        if num_experts:
            raise ValueError("mixed kernels and CondConv do not combine")
        if groups not in (1, in_channels):
            raise ValueError(f"a mixed-kernel conv is dense or depthwise, got groups={groups} for {in_channels} channels")
        return MixedConv2d(in_channels, out_channels, tuple(kernel_size), stride, pad_type, dilation,
                           depthwise=groups == in_channels and groups > 1, bias=bias)
    if num_experts:
        from paddle_vit.layers.cond_conv import CondConv2d
        return CondConv2d(in_channels, out_channels, kernel_size, stride, groups, bias, pad_type, num_experts)
    return create_conv2d_pad(in_channels, out_channels, kernel_size, stride, groups, bias, pad_type, dilation)
