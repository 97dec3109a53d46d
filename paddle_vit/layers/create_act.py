"""Activations by timm's names (``act_layer='gelu' | 'gelu_tanh' | 'quick_gelu' | 'silu' | 'relu' | 'sigmoid'``)."""
from __future__ import annotations

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from paddle_vit.layers.activations import SiLU
from paddle_vit.vit_arch import ACT_LAYERS, choice


class QuickGELU(nn.Layer):
    """CLIP's GELU approximation ``x * sigmoid(1.702 x)``, elementwise."""

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return x * F.sigmoid(1.702 * x)


_ACTS = {
    "gelu": lambda: nn.GELU(),                    # exact (erf), as torch.nn.GELU()
    "gelu_tanh": lambda: nn.GELU(approximate=True),
    "quick_gelu": QuickGELU,
    "silu": SiLU,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
}
assert tuple(_ACTS) == ACT_LAYERS


def create_act(name: str) -> nn.Layer:
    """A fresh activation layer for timm's name ``name``."""
    return _ACTS[choice("act_layer", name, ACT_LAYERS)]()
