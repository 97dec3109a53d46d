"""Normalisation + activation layers of the MBConv family (timm's ``norm_act`` layers): the
activation lives inside the norm layer, so a block's ``bn1`` is "BN, then SiLU" as in timm and the
parameter names stay the norm's own (``bn1.weight``, ``bn1._mean``, ...; the activation has none).
All map ``[B, C, H, W]`` -> ``[B, C, H, W]``.
"""
from __future__ import annotations

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from paddle_vit.efficientnet_arch import NORM_LAYERS
from paddle_vit.layers.activations import create_act
from paddle_vit.layers.norm import BatchNorm2d


class BatchNormAct2d(BatchNorm2d):
    """``BatchNorm2d`` (torch's momentum and variance rule) followed by ``act`` (None: none)."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, act: str | None = None) -> None:
        super().__init__(num_features, eps, momentum)
        self.act = create_act(act)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        # parents named explicitly throughout: paddle.jit.to_static resolves super() wrongly in subclasses
        return self.act(BatchNorm2d.forward(self, x))


class GroupNormAct(nn.GroupNorm):
    """GroupNorm over groups of ``group_size`` channels, then ``act``."""

    def __init__(self, num_features: int, eps: float = 1e-5, group_size: int = 8, act: str | None = None) -> None:
        if not group_size or num_features % group_size:
            raise ValueError(f"GroupNormAct: {num_features} channels are not divisible by group size {group_size}")
        super().__init__(num_features // group_size, num_features, epsilon=eps)
        self.act = create_act(act)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.act(nn.GroupNorm.forward(self, x))


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of each position of ``[B, C, H, W]``."""

    def __init__(self, num_features: int, eps: float = 1e-6) -> None:
        super().__init__(num_features, epsilon=eps)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return nn.LayerNorm.forward(self, x.transpose([0, 2, 3, 1])).transpose([0, 3, 1, 2])


class LayerNormAct2d(LayerNorm2d):
    """``LayerNorm2d`` (eps 1e-5 as timm's ``LayerNormAct2d``), then ``act``."""

    def __init__(self, num_features: int, eps: float = 1e-5, act: str | None = None) -> None:
        super().__init__(num_features, eps)
        self.act = create_act(act)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.act(LayerNorm2d.forward(self, x))


class EvoNorm2dS0(nn.Layer):
    """EvoNorm-S0 (Liu et al., 2020): ``x * sigmoid(v x) / group_std(x) * weight + bias``, its own
    non-linearity (the block's activation is not used); without ``apply_act`` only ``x * weight + bias``
    (timm's behaviour: no normalisation at all then)."""

    def __init__(self, num_features: int, eps: float = 1e-5, group_size: int = 8, apply_act: bool = True) -> None:
        super().__init__()
        if not group_size or num_features % group_size:
            raise ValueError(f"EvoNorm2dS0: {num_features} channels are not divisible by group size {group_size}")
        self.groups, self.eps, self.apply_act = num_features // group_size, eps, apply_act
        ones, zeros = nn.initializer.Constant(1.0), nn.initializer.Constant(0.0)
        self.weight = self.create_parameter([num_features], default_initializer=ones)
        self.bias = self.create_parameter([num_features], default_initializer=zeros, is_bias=True)
        self.v = self.create_parameter([num_features], default_initializer=ones) if apply_act else None

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        shape = [1, -1, 1, 1]
        if self.v is not None:
            B, C, H, W = x.shape
            g = x.reshape([B, self.groups, C // self.groups, H, W])
            # (x - mean)^2 by hand: Paddle's var() promotes types internally and warns on every call
            var = (g - g.mean(axis=[2, 3, 4], keepdim=True)).square().mean(axis=[2, 3, 4], keepdim=True)
            std = paddle.sqrt(var + self.eps)
            x = x * F.sigmoid(x * self.v.reshape(shape)) / std.expand(g.shape).reshape([B, C, H, W])
        return x * self.weight.reshape(shape) + self.bias.reshape(shape)


def create_norm_act(kind: str, num_features: int, act: str | None, eps: float = 1e-5, momentum: float = 0.1,
                    group_size: int | None = None) -> nn.Layer:
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
