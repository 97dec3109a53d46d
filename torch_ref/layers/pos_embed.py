"""Position embeddings (torch mirror of ``paddle_vit.layers.pos_embed``)."""
from __future__ import annotations

from typing import Sequence

import torch

from paddle_vit.checks import pos_embed_grids
from paddle_vit.resample import antialias_bicubic_weights


def sincos_1d(num_positions: int, dim: int) -> torch.Tensor:
    """``PE[i, 2j] = sin(i / 10000^(2j/dim))``, ``PE[i, 2j+1] = cos(...)``: ``[num_positions, dim]``."""
    if num_positions < 1 or dim < 1:
        raise ValueError(f"sincos_1d needs num_positions >= 1 and dim >= 1, got {num_positions}, {dim}")
    pos = torch.arange(num_positions, dtype=torch.float64).unsqueeze(1)
    two_j = torch.arange(0, dim, 2, dtype=torch.float64)
    angle = pos / torch.pow(torch.tensor(10000.0, dtype=torch.float64), two_j / dim)
    table = torch.stack([angle.sin(), angle.cos()], dim=-1).reshape(num_positions, -1)
    return table[:, :dim].float()


def sincos_2d(grid_size: int | Sequence[int], dim: int) -> torch.Tensor:
    """``[gh * gw, dim]``: row index in the first ``dim/2`` channels, column index in the rest."""
    gh, gw = (grid_size, grid_size) if isinstance(grid_size, int) else tuple(grid_size)
    if dim % 4:
        raise ValueError(f"sincos_2d needs dim divisible by 4, got {dim}")
    rows = sincos_1d(gh, dim // 2).unsqueeze(1).expand(gh, gw, dim // 2)
    cols = sincos_1d(gw, dim // 2).unsqueeze(0).expand(gh, gw, dim // 2)
    return torch.cat([rows, cols], dim=-1).reshape(gh * gw, dim)


def resample_pos_embed(pos_embed: torch.Tensor, new_size: Sequence[int],
                       old_size: Sequence[int] | None = None, num_prefix_tokens: int = 1
                       ) -> torch.Tensor:
    """Resize ``[1, prefix + gh*gw, C]`` to ``new_size`` (timm's antialiased bicubic); prefix kept aside."""
    old_size, new_size = pos_embed_grids(pos_embed.shape, new_size, old_size, num_prefix_tokens)
    if old_size == new_size:
        return pos_embed
    prefix, grid = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    dim = pos_embed.shape[-1]
    w_h = torch.tensor(antialias_bicubic_weights(old_size[0], new_size[0]), dtype=grid.dtype, device=grid.device)
    w_w = torch.tensor(antialias_bicubic_weights(old_size[1], new_size[1]), dtype=grid.dtype, device=grid.device)
    grid = grid.reshape(old_size[0], old_size[1], dim)
    grid = torch.einsum("ih,hwc,jw->ijc", w_h, grid, w_w).reshape(1, new_size[0] * new_size[1], dim)
    return torch.cat([prefix, grid], dim=1)
