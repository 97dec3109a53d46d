"""Normalisation + activation layers (torch mirror of ``paddle_vit.layers.norm_act``)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from paddle_vit.efficientnet_arch import NORM_LAYERS
from torch_ref.layers.activations import create_act
from torch_ref.layers.norm import BatchNorm2d


class BatchNormAct2d(BatchNorm2d):
    """``BatchNorm2d`` followed by ``act`` (None: none)."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, act: str | None = None) -> None:
        super().__init__(num_features, eps, momentum)
        self.act = create_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(super().forward(x))


class GroupNormAct(nn.GroupNorm):
    """GroupNorm over groups of ``group_size`` channels, then ``act``."""

    def __init__(self, num_features: int, eps: float = 1e-5, group_size: int = 8, act: str | None = None) -> None:
        if not group_size or num_features % group_size:
            raise ValueError(f"GroupNormAct: {num_features} channels are not divisible by group size {group_size}")
        super().__init__(num_features // group_size, num_features, eps=eps)
        self.act = create_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(super().forward(x))


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of each position of ``[B, C, H, W]``."""

    def __init__(self, num_features: int, eps: float = 1e-6) -> None:
        super().__init__(num_features, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class LayerNormAct2d(LayerNorm2d):
    """``LayerNorm2d`` (eps 1e-5), then ``act``."""

    def __init__(self, num_features: int, eps: float = 1e-5, act: str | None = None) -> None:
        super().__init__(num_features, eps)
        self.act = create_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(super().forward(x))


class EvoNorm2dS0(nn.Module):
    """EvoNorm-S0: ``x * sigmoid(v x) / group_std(x) * weight + bias`` (``x * weight + bias`` without ``apply_act``)."""

    def __init__(self, num_features: int, eps: float = 1e-5, group_size: int = 8, apply_act: bool = True) -> None:
        super().__init__()
        if not group_size or num_features % group_size:
            raise ValueError(f"EvoNorm2dS0: {num_features} channels are not divisible by group size {group_size}")
        self.groups, self.eps, self.apply_act = num_features // group_size, eps, apply_act
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.v = nn.Parameter(torch.ones(num_features)) if apply_act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1, 1, 1)
        if self.v is not None:
            B, C, H, W = x.shape
            g = x.reshape(B, self.groups, C // self.groups, H, W)
            std = (g.var(dim=(2, 3, 4), unbiased=False, keepdim=True) + self.eps).sqrt()
            x = x * torch.sigmoid(x * self.v.view(shape)) / std.expand(g.shape).reshape(B, C, H, W)
        return x * self.weight.view(shape) + self.bias.view(shape)


def create_norm_act(kind: str, num_features: int, act: str | None, eps: float = 1e-5, momentum: float = 0.1,
                    group_size: int | None = None) -> nn.Module:
    """The norm layer ``kind`` (one of ``NORM_LAYERS``) with activation ``act`` (None: no activation)."""
    if kind == "batchnorm":
        return BatchNormAct2d(num_features, eps, momentum, act)
    if kind == "groupnorm":
        return GroupNormAct(num_features, eps, group_size or 8, act)
    if kind == "layernorm":
        return LayerNormAct2d(num_features, eps, act)
    if kind == "evonorm_s0":
        return EvoNorm2dS0(num_features, eps, group_size or 8, apply_act=act is not None)
    raise ValueError(f"norm_layer must be one of {NORM_LAYERS}, got {kind!r}")
