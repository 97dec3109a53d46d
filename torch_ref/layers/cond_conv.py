"""CondConv (torch mirror of ``paddle_vit.layers.cond_conv``)."""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from paddle_vit.conv_arith import is_static_same, symmetric_padding


class CondConv2d(nn.Module):
    """``(x [B, in, H, W], routing [B, E])`` -> ``[B, out, H/s, W/s]``; ``weight`` ``[E, out * in/groups * k * k]``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, groups: int = 1,
                 bias: bool = False, pad_type: str = "", num_experts: int = 4) -> None:
        super().__init__()
        if num_experts < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"CondConv2d needs num_experts >= 1 and channels divisible by groups, got "
                             f"{num_experts}, {in_channels} -> {out_channels}, groups={groups}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride, self.num_experts = kernel_size, stride, num_experts
        self.dynamic_same = pad_type == "same" and not is_static_same(kernel_size, stride)
        self.padding = 0 if self.dynamic_same else symmetric_padding(kernel_size, stride)
        self.weight_shape = (out_channels, in_channels // groups, kernel_size, kernel_size)
        bound = 1.0 / math.sqrt(math.prod(self.weight_shape[1:]))
        self.weight = nn.Parameter(torch.empty(num_experts, math.prod(self.weight_shape)).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(num_experts, out_channels).uniform_(-bound, bound)) if bias else None

    def forward(self, x: torch.Tensor, routing_weights: torch.Tensor) -> torch.Tensor:
        from torch_ref.layers.conv2d_same import pad_same
        if self.dynamic_same:
            x = pad_same(x, self.kernel_size, self.stride)
        if torch.jit.is_tracing():  # a trace would bake the batch size into ``groups``: no per-sample groups
            return self._expert_sum(x, routing_weights)
        B, C, H, W = x.shape
        weight = (routing_weights @ self.weight).reshape(B * self.out_channels, *self.weight_shape[1:])
        bias = (routing_weights @ self.bias).reshape(-1) if self.bias is not None else None
        out = F.conv2d(x.reshape(1, B * C, H, W), weight, bias, stride=self.stride, padding=self.padding,
                       groups=self.groups * B)
        return out.reshape(B, self.out_channels, out.shape[-2], out.shape[-1])

    def _expert_sum(self, x: torch.Tensor, routing_weights: torch.Tensor) -> torch.Tensor:
        """The same function for any batch size, as ``sum_e routing[:, e] * conv(x, expert_e)`` (a conv
        is linear in its kernel): one conv with every expert's kernel, grouped as the layer's groups."""
        E, g, out = self.num_experts, self.groups, self.out_channels
        w = self.weight.reshape(E, g, out // g, *self.weight_shape[1:]).transpose(0, 1)
        y = F.conv2d(x, w.reshape(g * E * (out // g), *self.weight_shape[1:]), stride=self.stride,
                     padding=self.padding, groups=g)
        h, w_ = y.shape[-2], y.shape[-1]
        y = (y.reshape(-1, g, E, out // g, h, w_) * routing_weights.reshape(-1, 1, E, 1, 1, 1)).sum(dim=2)
        y = y.reshape(-1, out, h, w_)
        if self.bias is not None:
            y = y + (routing_weights @ self.bias).reshape(-1, out, 1, 1)
        return y
