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
