"""MixConv (torch mirror of ``paddle_vit.layers.mixed_conv``)."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from paddle_vit.conv_arith import split_channels


class MixedConv2d(nn.Module):
    """``[B, in, H, W]`` -> ``[B, out, H/s, W/s]``: channel group ``i`` through conv ``i`` (keys ``0.weight``, ...)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_sizes: Sequence[int], stride: int = 1,
                 pad_type: str = "", dilation: int = 1, depthwise: bool = False, bias: bool = False) -> None:
        super().__init__()
        from torch_ref.layers.conv2d_same import create_conv2d_pad
        in_splits = split_channels(in_channels, len(kernel_sizes))
        out_splits = split_channels(out_channels, len(kernel_sizes))
        if depthwise and in_splits != out_splits:
            raise ValueError(f"a depthwise mixed conv keeps its width, got {in_channels} -> {out_channels}")
        self.in_channels, self.out_channels, self.splits = in_channels, out_channels, in_splits
        for i, (k, cin, cout) in enumerate(zip(kernel_sizes, in_splits, out_splits)):
            self.add_module(str(i), create_conv2d_pad(cin, cout, k, stride, cin if depthwise else 1, bias,
                                                      pad_type, dilation))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = torch.split(x, self.splits, dim=1)
        return torch.cat([conv(p) for conv, p in zip(self.children(), parts)], dim=1)
