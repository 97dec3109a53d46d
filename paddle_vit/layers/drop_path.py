"""Stochastic depth: drop whole residual branches per sample."""
from __future__ import annotations

import paddle
import paddle.nn as nn


def drop_path(x: paddle.Tensor, drop_prob: float = 0.0, training: bool = False) -> paddle.Tensor:
    """Zero each sample's ``x`` with probability ``drop_prob`` and scale the kept ones by
    ``1 / (1 - drop_prob)``; identity in eval or when ``drop_prob == 0``. ``x [B, ...]``."""
    if drop_prob == 0.0 or not training:
        return x
    keep_prob = 1.0 - drop_prob
    shape = [x.shape[0]] + [1] * (x.ndim - 1)
    mask = paddle.floor(keep_prob + paddle.rand(shape, dtype=x.dtype))
    return x / keep_prob * mask


class DropPath(nn.Layer):
    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= drop_prob < 1.0:
            raise ValueError(f"drop_prob must be in [0, 1), got {drop_prob}")
        self.drop_prob = drop_prob

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return drop_path(x, self.drop_prob, self.training)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"
