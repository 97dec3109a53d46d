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
