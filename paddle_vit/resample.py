"""Framework-free resampling weights, shared by both trees.

timm's ``resample_abs_pos_embed`` resizes with torch's ``interpolate(mode='bicubic',
antialias=True)``: the separable Keys cubic kernel with a = -0.5 (PIL's), widened by the scale
factor when shrinking, each output's weights normalised to sum 1. Paddle's ``interpolate`` has no
antialias option, so the same weights are built here and applied as two small matmuls
(``W_h @ grid @ W_w^T``), which is also differentiable.
"""
from __future__ import annotations

import numpy as np


def _cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return np.where(x < 1, near, np.where(x < 2, far, 0.0))


def antialias_bicubic_weights(in_size: int, out_size: int) -> np.ndarray:
    """``[out_size, in_size]`` matrix ``W`` with ``resized = W @ signal`` (align_corners=False)."""
    if in_size < 1 or out_size < 1:
        raise ValueError(f"sizes must be >= 1, got {in_size} -> {out_size}")
    scale = in_size / out_size
    support = 2.0 * max(scale, 1.0)
    inv = 1.0 / scale if scale > 1.0 else 1.0
    weights = np.zeros((out_size, in_size), dtype=np.float64)
    for i in range(out_size):
        center = (i + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), in_size)
        w = _cubic((np.arange(lo, hi) - center + 0.5) * inv)
        weights[i, lo:hi] = w / w.sum()
    return weights


# --- relative position bias tables (Swin V1) -----------------------------------------------------
def _geometric_positions(src: int, dst: int) -> np.ndarray:
    """Where the ``src`` rows of one axis of a bias table sit on the ``dst`` grid (offsets
    ``-(dst//2) .. dst//2``): 0 in the middle, then steps 1, q, q^2, ... outwards, with ``q`` found by
    bisection on [1.01, 1.5] so that the ``src//2`` steps reach about ``dst//2`` (the BEiT / Microsoft
    unilm rule timm's ``resize_rel_pos_bias_table`` follows). float32, as timm's tensors are."""
    lo, hi = 1.01, 1.5
    half = src // 2
    while hi - lo > 1e-6:
        q = (lo + hi) / 2.0
        if (1.0 - q ** half) / (1.0 - q) > dst // 2:
            hi = q
        else:
            lo = q
    steps, cur = [], 1.0
    for i in range(half):
        steps.append(cur)
        cur += q ** (i + 1)
    return np.array([-s for s in reversed(steps)] + [0.0] + steps, dtype=np.float32)


def linear_weights(points: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``[len(targets), len(points)]`` piecewise-linear interpolation weights on the increasing,
    unevenly spaced ``points``; a target outside ``[points[0], points[-1]]`` takes the end value
    (the behaviour of timm's ``RegularGridInterpolator``, which timm's table resize uses)."""
    points, targets = np.asarray(points, np.float64), np.asarray(targets, np.float64)
    n = len(points)
    weights = np.zeros((len(targets), n), dtype=np.float64)
    for i, t in enumerate(targets):
        right = min(int(np.searchsorted(points, t, side="left")), n - 1)
        left = min(max(right - 1, 0), n - 1)
        d_left, d_right = max(t - points[left], 0.0), max(points[right] - t, 0.0)
        if d_left == 0.0 and d_right == 0.0:
            d_left = d_right = 1.0
        weights[i, left] += d_right / (d_left + d_right)
        weights[i, right] += d_left / (d_left + d_right)
    return weights


def table_side(rows: int) -> int | None:
    """``2M - 1`` if a flat table of ``rows`` rows is a square window's ``(2M-1)^2``, else ``None``."""
    side = int(np.sqrt(rows) + 0.5) if rows > 0 else 0
    return side if side * side == rows and side % 2 == 1 else None


def resize_rel_pos_bias_table(table: np.ndarray, window: tuple[int, int]) -> np.ndarray:
    """A Swin V1 bias table ``[(2S-1)^2, heads]`` of a square ``S x S`` window, resized for the window
    ``(Mh, Mw)`` -> ``[(2Mh-1)(2Mw-1), heads]`` as timm's checkpoint filter resizes it: per head, on
    the ``(2S-1) x (2S-1)`` grid of offsets, each axis placed at geometrically spaced positions
    (``_geometric_positions``) and read bilinearly at the integer offsets of the new grid. A table
    of the target's size is returned as it is (the checkpoint cannot say which window it was
    made for, so one of the same size is taken to be for this window)."""
    rows, heads = table.shape
    dst = (2 * window[0] - 1, 2 * window[1] - 1)
    if rows == dst[0] * dst[1]:
        return table
    side = table_side(rows)
    if side is None:
        raise ValueError(f"a relative position bias table of {rows} rows is not a square window's "
                         f"(2M-1)^2, and not the {dst[0]}x{dst[1]} = {dst[0] * dst[1]} rows of window {tuple(window)}")
    w_y, w_x = (linear_weights(_geometric_positions(side, d), np.arange(-(d // 2), d // 2 + 1, dtype=np.float32))
                for d in dst)
    grid = table.astype(np.float64).reshape(side, side, heads)
    out = np.einsum("ih,hwc,jw->ijc", w_y, grid, w_x)
    return out.reshape(dst[0] * dst[1], heads).astype(table.dtype, copy=False)
