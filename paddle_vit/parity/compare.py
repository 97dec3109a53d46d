"""Element-by-element comparison of two arrays under the tolerance policy."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from paddle_vit.parity.tolerances import Tolerance

SCALE_FLOOR = 1e-6


@dataclass(frozen=True)
class ErrorStats:
    """How far ``got`` is from ``ref``; every figure is over all elements."""
    where: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float      # max |d| / |ref| over elements with |ref| > 1e-3 * scale (for reading, not deciding)
    scale: float        # max |ref|
    cosine: float

    @property
    def scaled(self) -> float:
        return self.max_abs / max(self.scale, SCALE_FLOOR)

    def passes(self, tol: Tolerance) -> bool:
        return bool(np.isfinite(self.max_abs)) and self.scaled <= tol.bound

    def describe(self, tol: Tolerance | None = None) -> str:
        verdict = "" if tol is None else (" ok" if self.passes(tol) else f" FAIL (bound {tol.bound:.0e}, {tol.name})")
        return (f"{self.where} {list(self.shape)}: max abs {self.max_abs:.3e} (scale {self.scale:.3e}, "
                f"scaled {self.scaled:.3e}), max rel {self.max_rel:.3e}, cos {self.cosine:.8f}{verdict}")


def as_numpy(x: Any) -> np.ndarray:
    """A paddle or torch tensor, or anything array-like, as a float64 numpy array."""
    if hasattr(x, "detach"):  # torch
        x = x.detach().cpu().float().numpy() if str(x.dtype) == "torch.bfloat16" else x.detach().cpu().numpy()
    elif hasattr(x, "numpy") and not isinstance(x, np.ndarray):  # paddle
        x = x.astype("float32").numpy() if "bfloat16" in str(x.dtype) else x.numpy()
    # a copy: a torch float64 tensor's .numpy() shares its memory, and an in-place op after the
    # hook (timm's SiLU(inplace=True) in squeeze-excitation) would rewrite what was recorded
    return np.array(x, dtype=np.float64)


def error_stats(ref: Any, got: Any, where: str = "output") -> ErrorStats:
    """Compare ``got`` to the reference ``ref``; shapes must be equal."""
    r, g = as_numpy(ref), as_numpy(got)
    if r.shape != g.shape:
        raise AssertionError(f"{where}: shape differs: reference {list(r.shape)}, got {list(g.shape)}")
    d = np.abs(g - r)
    scale = float(np.abs(r).max()) if r.size else 0.0
    big = np.abs(r) > 1e-3 * max(scale, SCALE_FLOOR)
    max_rel = float((d[big] / np.abs(r[big])).max()) if big.any() else 0.0
    denom = float(np.linalg.norm(r) * np.linalg.norm(g))
    cosine = float((r * g).sum() / denom) if denom > 0 else float(np.array_equal(r, g))
    return ErrorStats(where, r.shape, float(d.max()) if d.size else 0.0, max_rel, scale, cosine)


def assert_close(ref: Any, got: Any, tol: Tolerance, where: str = "output") -> ErrorStats:
    """Raise ``AssertionError`` naming ``where``, max abs and max rel error if ``got`` misses ``tol``."""
    stats = error_stats(ref, got, where)
    if not stats.passes(tol):
        raise AssertionError(stats.describe(tol))
    return stats
