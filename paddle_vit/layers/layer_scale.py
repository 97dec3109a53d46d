"""LayerScale (Touvron et al., 2021): a learned per-channel scale of a residual branch."""
from __future__ import annotations

import paddle
import paddle.nn as nn


class LayerScale(nn.Layer):
    """``[..., dim]`` -> ``x * gamma`` (timm's name ``gamma``, initialised to ``init_values``)."""

    def __init__(self, dim: int, init_values: float = 1e-5) -> None:
        super().__init__()
        self.gamma = self.create_parameter([dim], default_initializer=nn.initializer.Constant(init_values))

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return x * self.gamma
