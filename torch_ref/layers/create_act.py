"""Activations by timm's names (torch mirror of ``paddle_vit.layers.create_act``)."""
from __future__ import annotations

import torch
import torch.nn as nn

from paddle_vit.vit_arch import ACT_LAYERS, choice


class QuickGELU(nn.Module):
    """CLIP's GELU approximation ``x * sigmoid(1.702 x)``, elementwise."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


_ACTS = {
    "gelu": lambda: nn.GELU(),
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
    "quick_gelu": QuickGELU,
    "silu": nn.SiLU,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
}
assert tuple(_ACTS) == ACT_LAYERS


def create_act(name: str) -> nn.Module:
    """A fresh activation layer for timm's name ``name``."""
    return _ACTS[choice("act_layer", name, ACT_LAYERS)]()
