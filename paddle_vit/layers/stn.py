"""Spatial Transformer Network (Jaderberg et al., 2015; seed 004, "5.2 STN"), with torch's semantics.

Three parts, as the seed lists them: a localisation network regressing the 6 parameters of an
affine map ``theta [B, 2, 3]``, the parameterised sampling grid (``affine_grid``) and the
differentiable bilinear sampler (``grid_sample``). The last layer of the localisation network
starts at zero weight and identity bias, as in the paper, so an untrained transformer returns its
input. ``align_corners`` defaults to False, torch's default (Paddle's functions default to True
and are always called with it explicitly here).
"""
from __future__ import annotations

from typing import Sequence

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from paddle_vit.checks import STN_IDENTITY, check_image, check_stn_args, to_2tuple
from paddle_vit.layers.linear import Linear

class SpatialTransformer(nn.Layer):
    """``x [B, C, H, W]`` -> ``x`` resampled by a learned affine map, ``[B, C, *out_size]``
    (``out_size`` defaults to the input's ``H, W``).

    Localisation network: conv 7x7 -> max-pool 2 -> ReLU -> conv 5x5 -> max-pool 2 -> ReLU ->
    adaptive average pool to ``pool_size`` -> Linear -> ReLU -> Linear to 6 (the classic STN
    localisation net; the adaptive pool lets it take any input of at least 4x4).
    """

    def __init__(self, in_chans: int, out_size: int | Sequence[int] | None = None, loc_chans: Sequence[int] = (8, 10),
                 loc_hidden: int = 32, pool_size: int = 3, align_corners: bool = False,
                 padding_mode: str = "zeros") -> None:
        super().__init__()
        check_stn_args(in_chans, loc_chans, loc_hidden, pool_size, padding_mode)
        self.in_chans, self.align_corners, self.padding_mode = in_chans, align_corners, padding_mode
        self.out_size = None if out_size is None else to_2tuple(out_size, "out_size")
        c1, c2 = loc_chans
        self.localization = nn.Sequential(
            nn.Conv2D(in_chans, c1, 7, padding=3), nn.MaxPool2D(2), nn.ReLU(),
            nn.Conv2D(c1, c2, 5, padding=2), nn.MaxPool2D(2), nn.ReLU(), nn.AdaptiveAvgPool2D(pool_size))
        self.fc_loc = nn.Sequential(Linear(c2 * pool_size * pool_size, loc_hidden), nn.ReLU(), Linear(loc_hidden, 6))
        nn.initializer.Constant(0.0)(self.fc_loc[2].weight)
        self.fc_loc[2].bias.set_value(paddle.to_tensor(STN_IDENTITY, dtype=self.fc_loc[2].bias.dtype))

    def localise(self, x: paddle.Tensor) -> paddle.Tensor:
        """``[B, C, H, W]`` -> ``theta [B, 2, 3]``, mapping output coordinates in [-1, 1] to input ones."""
        return self.fc_loc(self.localization(x).flatten(1)).reshape([-1, 2, 3])

    def transform(self, x: paddle.Tensor, theta: paddle.Tensor) -> paddle.Tensor:
        """Sample ``x [B, C, H, W]`` bilinearly on the grid of ``theta [B, 2, 3]``."""
        size = self.out_size or tuple(x.shape[2:])
        grid = F.affine_grid(theta, [x.shape[0], x.shape[1], *size], align_corners=self.align_corners)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode=self.padding_mode, align_corners=self.align_corners)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        check_image(x, self.in_chans, None, "SpatialTransformer")
        if min(x.shape[2:]) < 4:
            raise ValueError(f"SpatialTransformer: the localisation net needs H, W >= 4, got {tuple(x.shape[2:])}")
        return self.transform(x, self.localise(x))

    def extra_repr(self) -> str:
        return f"out_size={self.out_size}, align_corners={self.align_corners}, padding_mode={self.padding_mode!r}"
