"""BatchNorm (torch mirror of ``paddle_vit.layers.norm``): torch's own, with the same signature."""
from __future__ import annotations

import torch.nn as nn


class BatchNorm2d(nn.BatchNorm2d):
    """``[B, C, H, W]`` -> ``[B, C, H, W]``; torch's BatchNorm2d (momentum = weight of the new statistic)."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum (torch convention: weight of the new statistic) must be in [0, 1], got {momentum}")
        if eps <= 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        super().__init__(num_features, eps=eps, momentum=momentum)
