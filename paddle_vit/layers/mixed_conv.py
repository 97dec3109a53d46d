"""MixConv (Tan & Le, 2019): channel groups convolved with different kernel sizes, concatenated."""
from __future__ import annotations

from typing import Sequence

import paddle
import paddle.nn as nn

from paddle_vit.conv_arith import split_channels


class MixedConv2d(nn.Layer):
    """``[B, in, H, W]`` -> ``[B, out, H/s, W/s]``. Input and output channels are split into
    ``len(kernel_sizes)`` groups (``split_channels``); group ``i`` is convolved by conv ``i`` (keys
    ``0.weight``, ``1.weight``, ... as timm's), depthwise if ``depthwise``. A 1x1 "mixed" conv
    (``kernel_sizes=(1, 1)``) is a grouped pointwise conv."""

    def __init__(self, in_channels: int, out_channels: int, kernel_sizes: Sequence[int], stride: int = 1,
                 pad_type: str = "", dilation: int = 1, depthwise: bool = False, bias: bool = False) -> None:
        super().__init__()
        from paddle_vit.layers.conv2d_same import create_conv2d_pad
        in_splits = split_channels(in_channels, len(kernel_sizes))
        out_splits = split_channels(out_channels, len(kernel_sizes))
        if depthwise and in_splits != out_splits:
            raise ValueError(f"a depthwise mixed conv keeps its width, got {in_channels} -> {out_channels}")
        self.in_channels, self.out_channels, self.splits = in_channels, out_channels, in_splits
        for i, (k, cin, cout) in enumerate(zip(kernel_sizes, in_splits, out_splits)):
            self.add_sublayer(str(i), create_conv2d_pad(cin, cout, k, stride, cin if depthwise else 1, bias,
                                                        pad_type, dilation))

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        parts = paddle.split(x, self.splits, axis=1)
        return paddle.concat([conv(p) for conv, p in zip(self.children(), parts)], axis=1)
