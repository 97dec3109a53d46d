"""Token norms by timm's names (``norm_layer='layernorm' | 'rmsnorm'``), over the last axis."""
from __future__ import annotations

import paddle
import paddle.nn as nn

from paddle_vit.vit_arch import NORM_LAYERS, choice


class RmsNorm(nn.Layer):
    """``[..., dim]`` -> ``x / sqrt(mean(x^2) + eps) * weight`` over the last axis (timm's
    ``RmsNorm``; Paddle 3.3's fused ``rms_norm`` has no CPU kernel)."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.dim, self.eps = dim, eps
        self.weight = self.create_parameter([dim], default_initializer=nn.initializer.Constant(1.0))

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return x * paddle.rsqrt((x * x).mean(axis=-1, keepdim=True) + self.eps) * self.weight

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}"


def create_norm(name: str, dim: int, eps: float = 1e-6) -> nn.Layer:
    """A norm over the last axis of ``[..., dim]``: timm's ``LayerNorm`` or ``RmsNorm``."""
    if choice("norm_layer", name, NORM_LAYERS) == "rmsnorm":
        return RmsNorm(dim, eps)
    return nn.LayerNorm(dim, epsilon=eps)
