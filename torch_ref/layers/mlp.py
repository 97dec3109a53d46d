"""The transformer MLP (torch mirror of ``paddle_vit.layers.mlp``)."""
from __future__ import annotations

import torch
import torch.nn as nn

from torch_ref.layers.linear import Linear


class Mlp(nn.Module):
    """``[..., in_features]`` -> ``[..., out_features]``: fc1 -> GELU -> drop -> fc2 -> drop."""

    def __init__(self, in_features: int, hidden_features: int | None = None,
                 out_features: int | None = None, drop: float = 0.0) -> None:
        super().__init__()
        hidden_features = hidden_features or in_features
        out_features = out_features or in_features
        self.fc1 = Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = Linear(hidden_features, out_features)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))
