"""Activations (torch mirror of ``paddle_vit.layers.activations``): torch's own SiLU needs no guard."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def silu(x: torch.Tensor) -> torch.Tensor:
    """``x * sigmoid(x)``, elementwise, any shape."""
    return F.silu(x)


class SiLU(nn.SiLU):
    pass


class QuickGELU(nn.Module):
    """CLIP's GELU approximation ``x * sigmoid(1.702 x)``, elementwise."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


_ACTS = {
    "gelu": lambda: nn.GELU(),
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
    "quick_gelu": QuickGELU,
    "silu": SiLU,
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "sigmoid": nn.Sigmoid,
    "hard_swish": nn.Hardswish,
    "mish": nn.Mish,
}
ACTIVATIONS = tuple(_ACTS)


def create_act(name: str | None) -> nn.Module:
    """A fresh activation layer by timm's name (``None``: identity); an unknown name lists the known ones."""
    if name is None:
        return nn.Identity()
    if name not in _ACTS:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(_ACTS)}")
    return _ACTS[name]()
