"""Position embeddings: fixed sin-cos tables and resizing of a learned embedding to a new grid."""
from __future__ import annotations

from typing import Sequence

import paddle

from paddle_vit.checks import pos_embed_grids
from paddle_vit.resample import antialias_bicubic_weights


def sincos_1d(num_positions: int, dim: int) -> paddle.Tensor:
    """The Transformer's table ``[num_positions, dim]``:
    ``PE[i, 2j] = sin(i / 10000^(2j/dim))``, ``PE[i, 2j+1] = cos(i / 10000^(2j/dim))``."""
    if num_positions < 1 or dim < 1:
        raise ValueError(f"sincos_1d needs num_positions >= 1 and dim >= 1, got {num_positions}, {dim}")
    pos = paddle.arange(num_positions, dtype="float64").unsqueeze(1)          # [N, 1]
    two_j = paddle.arange(0, dim, 2, dtype="float64")                          # [ceil(dim/2)]
    angle = pos / paddle.pow(paddle.to_tensor(10000.0, dtype="float64"), two_j / dim)
    table = paddle.stack([paddle.sin(angle), paddle.cos(angle)], axis=-1).reshape([num_positions, -1])
    return table[:, :dim].astype("float32")


def sincos_2d(grid_size: int | Sequence[int], dim: int) -> paddle.Tensor:
    """``[gh * gw, dim]`` table, row-major over the grid: the first ``dim/2`` channels are the 1-D
    table of the row index, the last ``dim/2`` that of the column index (``dim % 4 == 0``)."""
    gh, gw = (grid_size, grid_size) if isinstance(grid_size, int) else tuple(grid_size)
    if dim % 4:
        raise ValueError(f"sincos_2d needs dim divisible by 4, got {dim}")
    rows = sincos_1d(gh, dim // 2).unsqueeze(1).expand([gh, gw, dim // 2])
    cols = sincos_1d(gw, dim // 2).unsqueeze(0).expand([gh, gw, dim // 2])
    return paddle.concat([rows, cols], axis=-1).reshape([gh * gw, dim])


def resample_pos_embed(pos_embed: paddle.Tensor, new_size: Sequence[int],
                       old_size: Sequence[int] | None = None, num_prefix_tokens: int = 1
                       ) -> paddle.Tensor:
    """Resize a learned ``[1, prefix + gh*gw, C]`` embedding to ``new_size`` with timm's rule
    (``resample_abs_pos_embed``: antialiased bicubic, see ``paddle_vit.resample``); the prefix
    (class) tokens are kept aside unchanged.
    ``old_size`` defaults to a square grid."""
    old_size, new_size = pos_embed_grids(pos_embed.shape, new_size, old_size, num_prefix_tokens)
    if old_size == new_size:
        return pos_embed
    prefix, grid = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    dim = pos_embed.shape[-1]
    w_h = paddle.to_tensor(antialias_bicubic_weights(old_size[0], new_size[0]), dtype=grid.dtype)
    w_w = paddle.to_tensor(antialias_bicubic_weights(old_size[1], new_size[1]), dtype=grid.dtype)
    grid = grid.reshape([old_size[0], old_size[1], dim])
    grid = paddle.einsum("ih,hwc,jw->ijc", w_h, grid, w_w).reshape([1, new_size[0] * new_size[1], dim])
    return paddle.concat([prefix, grid], axis=1)
