"""The transformers' initialisation (torch mirror of ``paddle_vit.layers.weight_init``)."""
from __future__ import annotations

import torch.nn as nn


def init_linear_and_norm(model: nn.Module, std: float = 0.02) -> None:
    """Every ``Linear`` of ``model``: weight ~ TruncNormal(0, std), bias 0; every ``LayerNorm``: 1, 0."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
