"""Spatial Transformer Network (torch mirror of ``paddle_vit.layers.stn``)."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from paddle_vit.checks import STN_IDENTITY, check_image, check_stn_args, to_2tuple
from torch_ref.layers.linear import Linear


class SpatialTransformer(nn.Module):
    """``x [B, C, H, W]`` -> ``x`` resampled by a learned affine map, ``[B, C, *out_size]``."""

    def __init__(self, in_chans: int, out_size: int | Sequence[int] | None = None, loc_chans: Sequence[int] = (8, 10),
                 loc_hidden: int = 32, pool_size: int = 3, align_corners: bool = False,
                 padding_mode: str = "zeros") -> None:
        super().__init__()
        check_stn_args(in_chans, loc_chans, loc_hidden, pool_size, padding_mode)
        self.in_chans, self.align_corners, self.padding_mode = in_chans, align_corners, padding_mode
        self.out_size = None if out_size is None else to_2tuple(out_size, "out_size")
        c1, c2 = loc_chans
        self.localization = nn.Sequential(
            nn.Conv2d(in_chans, c1, 7, padding=3), nn.MaxPool2d(2), nn.ReLU(),
            nn.Conv2d(c1, c2, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(), nn.AdaptiveAvgPool2d(pool_size))
        self.fc_loc = nn.Sequential(Linear(c2 * pool_size * pool_size, loc_hidden), nn.ReLU(), Linear(loc_hidden, 6))
        with torch.no_grad():
            self.fc_loc[2].weight.zero_()
            self.fc_loc[2].bias.copy_(torch.tensor(STN_IDENTITY))

    def localise(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_loc(self.localization(x).flatten(1)).reshape(-1, 2, 3)

    def transform(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        size = self.out_size or tuple(x.shape[2:])
        grid = F.affine_grid(theta, [x.shape[0], x.shape[1], *size], align_corners=self.align_corners)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode=self.padding_mode, align_corners=self.align_corners)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image(x, self.in_chans, None, "SpatialTransformer")
        if min(x.shape[2:]) < 4:
            raise ValueError(f"SpatialTransformer: the localisation net needs H, W >= 4, got {tuple(x.shape[2:])}")
        return self.transform(x, self.localise(x))
