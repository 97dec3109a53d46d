"""The transformers' initialisation (timm's): truncated-normal Linear weights, zero biases, unit norms."""
from __future__ import annotations

import paddle.nn as nn


def init_linear_and_norm(model: nn.Layer, std: float = 0.02) -> None:
    """Every ``Linear`` of ``model``: weight ~ TruncNormal(0, std), bias 0; every ``LayerNorm``: 1, 0."""
    tn, zeros, ones = nn.initializer.TruncatedNormal(std=std), nn.initializer.Constant(0.0), nn.initializer.Constant(1.0)
    for layer in model.sublayers():
        if isinstance(layer, nn.Linear):
            tn(layer.weight)
            if layer.bias is not None:
                zeros(layer.bias)
        elif isinstance(layer, nn.LayerNorm):
            ones(layer.weight)
            zeros(layer.bias)
