"""Patch dropout (torch mirror of ``paddle_vit.layers.patch_dropout``)."""
from __future__ import annotations

import torch
import torch.nn as nn


class PatchDropout(nn.Module):
    """``[B, prefix + L, C]`` -> ``[B, prefix + max(1, int(L * (1 - prob))), C]`` in training; identity in eval."""

    def __init__(self, prob: float = 0.5, num_prefix_tokens: int = 1) -> None:
        super().__init__()
        if not 0.0 <= prob < 1.0:
            raise ValueError(f"patch dropout prob must be in [0, 1), got {prob}")
        self.prob, self.num_prefix_tokens = prob, num_prefix_tokens

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.prob == 0.0:
            return x
        prefix, patches = x[:, :self.num_prefix_tokens], x[:, self.num_prefix_tokens:]
        B, L = patches.shape[:2]
        keep = torch.argsort(torch.randn(B, L, device=x.device), dim=-1)[:, :max(1, int(L * (1.0 - self.prob)))]
        patches = patches.gather(1, keep.unsqueeze(-1).expand(-1, -1, patches.shape[2]))
        return torch.cat([prefix, patches], dim=1)
