"""Check a conversion by running both models: the torch model the checkpoint was made for, and
ours loaded from the converted file, on the same random batch; logits compared under the policy."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from paddle_vit.convert.core import Route, to_numpy
from paddle_vit.convert.layouts import POS_EMBED
from paddle_vit.parity import ErrorStats, Tolerance, error_stats, tolerance

VERIFY_BATCH = 2
VERIFY_SEED = 0


@dataclass(frozen=True)
class Verification:
    stats: ErrorStats
    tol: Tolerance
    reference: str                  # which torch model produced the reference logits
    input_shape: tuple[int, ...]

    @property
    def passed(self) -> bool:
        return self.stats.passes(self.tol)

    def table(self) -> str:
        s = self.stats
        verdict = "PASS" if self.passed else "FAIL"
        return "\n".join([
            f"verification: {self.reference} vs paddle_vit, random batch {list(self.input_shape)}",
            f"  {'output':<8} {'shape':<12} {'max abs':>10} {'max rel':>10} {'max abs/scale':>14} {'bound':>8}  result",
            f"  {'logits':<8} {str(list(s.shape)):<12} {s.max_abs:>10.2e} {s.max_rel:>10.2e} {s.scaled:>14.2e} "
            f"{self.tol.bound:>8.0e}  {verdict} ({self.tol.name})"])


def verification_input(kwargs: Mapping[str, Any]) -> np.ndarray:
    """A fixed random batch ``[B, in_chans, H, W]`` at the model's image size (224 if it has none)."""
    size = kwargs.get("img_size", 224)
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    shape = (VERIFY_BATCH, kwargs.get("in_chans", 3), h, w)
    return np.random.default_rng(VERIFY_SEED).standard_normal(shape).astype(np.float32)


def paddle_logits(model: Any, x: np.ndarray) -> np.ndarray:
    import paddle
    model.eval()
    with paddle.no_grad():
        return model(paddle.to_tensor(x)).numpy()


def torch_logits(model: Any, x: np.ndarray) -> np.ndarray:
    import torch
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def source_state_for(torch_model: Any, state: Mapping[str, Any], routes: list[Route], grid: Any) -> dict[str, Any]:
    """``state`` as ``torch_model`` loads it: a position embedding the converter resampled to
    another grid is resampled the same way with the torch reference's own resampler."""
    import torch
    from torch_ref.layers.pos_embed import resample_pos_embed
    out = {k: state[k] for k in state}
    wanted = torch_model.state_dict()
    for route in routes:
        if route.transform == POS_EMBED and tuple(out[route.src].shape) != tuple(wanted[route.src].shape):
            tensor = torch.from_numpy(np.array(to_numpy(out[route.src], route.src), dtype=np.float32))
            prefix = wanted[route.src].shape[1] - grid[0] * grid[1]
            out[route.src] = resample_pos_embed(tensor, grid, num_prefix_tokens=prefix)
    return out


def compare_logits(ref: np.ndarray, got: np.ndarray, reference: str, x: np.ndarray) -> Verification:
    return Verification(error_stats(ref, got, "logits"), tolerance("model", "float32", "cpu"), reference,
                        tuple(x.shape))
