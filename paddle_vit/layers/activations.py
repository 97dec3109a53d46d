"""Activations by timm's names (``create_act``), and the one whose Paddle kernel needs a guard.

``SiLU``: Paddle 3.3 has two fused kernels for ``x * sigmoid(x)``. ``silu``'s backward (CPU)
returns -inf/NaN for inputs below about -88 (where ``exp(-x)`` overflows float32), while its
forward is a correct -0.0; torch returns the correct ~0 gradient, and deep convnets with
BatchNorm do reach such inputs (one NaN gradient poisons every parameter before it).
``swish`` (``beta = 1``) computes the same function with an overflow-free backward, in one pass
instead of the two of ``x * sigmoid(x)`` (eager: 16.5 -> 9.4 ms on ``[8, 96, 75, 75]``), and
Paddle Inference's oneDNN passes fuse it into the preceding convolution, which they do not do
for ``silu`` (EfficientNetV2-S, batch 8: 381 -> 260 ms).
"""
from __future__ import annotations

import paddle
import paddle.nn as nn
import paddle.nn.functional as F


def silu(x: paddle.Tensor) -> paddle.Tensor:
    """``x * sigmoid(x)``, elementwise, any shape (Paddle's ``swish`` kernel, see module doc)."""
    return F.swish(x)


class SiLU(nn.Layer):
    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return silu(x)


class QuickGELU(nn.Layer):
    """CLIP's GELU approximation ``x * sigmoid(1.702 x)``, elementwise."""

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return x * F.sigmoid(1.702 * x)


# Every activation of the families, by timm's names (each family's arch module says which of them
# it allows: paddle_vit.vit_arch.ACT_LAYERS, paddle_vit.efficientnet_arch.ACT_LAYERS).
_ACTS = {
    "gelu": lambda: nn.GELU(),                    # exact (erf), as torch.nn.GELU()
    "gelu_tanh": lambda: nn.GELU(approximate=True),
    "quick_gelu": QuickGELU,
    "silu": SiLU,
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "sigmoid": nn.Sigmoid,
    "hard_swish": nn.Hardswish,
    "mish": nn.Mish,
}
ACTIVATIONS = tuple(_ACTS)


def create_act(name: str | None) -> nn.Layer:
    """A fresh activation layer by timm's name (``None``: identity); an unknown name lists the known ones."""
    if name is None:
        return nn.Identity()
    if name not in _ACTS:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(_ACTS)}")
    return _ACTS[name]()
