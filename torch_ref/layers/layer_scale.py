"""LayerScale (torch mirror of ``paddle_vit.layers.layer_scale``)."""
from __future__ import annotations

import torch
import torch.nn as nn


class LayerScale(nn.Module):
    """``[..., dim]`` -> ``x * gamma`` (timm's name ``gamma``, initialised to ``init_values``)."""

    def __init__(self, dim: int, init_values: float = 1e-5) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_values)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma
