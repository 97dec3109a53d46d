"""The transformer MLP: Linear -> GELU -> Dropout -> Linear -> Dropout."""
from __future__ import annotations

import paddle
import paddle.nn as nn

from paddle_vit.layers.linear import Linear


class Mlp(nn.Layer):
    """``[..., in_features]`` -> ``[..., out_features]`` (timm's names: ``fc1``, ``act``, ``fc2``)."""

    def __init__(self, in_features: int, hidden_features: int | None = None,
                 out_features: int | None = None, drop: float = 0.0) -> None:
        super().__init__()
        hidden_features = hidden_features or in_features
        out_features = out_features or in_features
        self.fc1 = Linear(in_features, hidden_features)
        self.act = nn.GELU()  # exact (erf) GELU, as torch.nn.GELU()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = Linear(hidden_features, out_features)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))
