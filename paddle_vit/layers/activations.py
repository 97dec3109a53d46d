"""Activations whose Paddle kernels need a guard.

``SiLU``: Paddle 3.3's fused ``silu`` backward (CPU) returns -inf/NaN for inputs below about -88
(where ``exp(-x)`` overflows float32), while the forward is a correct -0.0; torch returns the
correct ~0 gradient. Deep convnets with BatchNorm do reach such inputs, and one NaN gradient
poisons every parameter before it. ``x * sigmoid(x)`` has the same value and an overflow-free
gradient (``sigmoid``'s backward is ``s * (1 - s)``).
"""
from __future__ import annotations

import paddle
import paddle.nn as nn
import paddle.nn.functional as F


def silu(x: paddle.Tensor) -> paddle.Tensor:
    """``x * sigmoid(x)``, elementwise, any shape."""
    return x * F.sigmoid(x)


class SiLU(nn.Layer):
    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return silu(x)
