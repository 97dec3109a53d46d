"""Token norms by timm's names (torch mirror of ``paddle_vit.layers.create_norm``)."""
from __future__ import annotations

import torch.nn as nn

from paddle_vit.vit_arch import NORM_LAYERS, choice


class RmsNorm(nn.RMSNorm):
    """``[..., dim]`` -> ``x / sqrt(mean(x^2) + eps) * weight`` (torch's own ``RMSNorm``, timm's function)."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__(dim, eps=eps)


def create_norm(name: str, dim: int, eps: float = 1e-6) -> nn.Module:
    """A norm over the last axis of ``[..., dim]``: timm's ``LayerNorm`` or ``RmsNorm``."""
    if choice("norm_layer", name, NORM_LAYERS) == "rmsnorm":
        return RmsNorm(dim, eps)
    return nn.LayerNorm(dim, eps=eps)
