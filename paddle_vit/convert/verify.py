"""Check a conversion by running both models: the torch model the checkpoint was made for, and
ours loaded from the converted file, on the same random batch; logits compared under the policy."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from paddle_vit.convert.core import ConversionError, Route, to_numpy
from paddle_vit.convert.layouts import POS_EMBED, REL_POS_BIAS
from paddle_vit.parity import ErrorStats, Tolerance, error_stats, tolerance
from paddle_vit.parity.compare import SCALE_FLOOR

VERIFY_BATCH = 1
VERIFY_SEED = 0


@dataclass(frozen=True)
class Verification:
    """The logits of the source model and ours on one random batch, judged by the tolerance policy."""
    stats: ErrorStats
    tol: Tolerance
    reference: str                  # which torch model produced the reference logits
    input_shape: tuple[int, ...]
    notes: tuple[str, ...] = ()     # a likely reason for a failure (e.g. BatchNorm eps differs)

    @property
    def reference_finite(self) -> bool:
        """NaN or Inf reference logits (a source model that cannot run on its own weights) prove nothing."""
        return bool(np.isfinite(self.stats.scale))

    @property
    def conclusive(self) -> bool:
        """All-zero reference logits (an untrained, zero-initialised head) would match any weights."""
        return self.reference_finite and self.stats.scale > SCALE_FLOOR

    @property
    def passed(self) -> bool:
        return self.conclusive and self.stats.passes(self.tol)

    def table(self) -> str:
        s = self.stats
        verdict = ("PASS" if self.passed else "FAIL" if self.conclusive else "FAIL: the reference logits are all zero"
                   if self.reference_finite else "FAIL: the reference logits hold NaN or Inf")
        return "\n".join([
            f"verification: {self.reference} vs paddle_vit, random batch {list(self.input_shape)}",
            f"  {'output':<8} {'shape':<12} {'max abs':>10} {'max rel':>10} {'max abs/scale':>14} {'bound':>8}  result",
            f"  {'logits':<8} {str(list(s.shape)):<12} {s.max_abs:>10.2e} {s.max_rel:>10.2e} {s.scaled:>14.2e} "
            f"{self.tol.bound:>8.0e}  {verdict} ({self.tol.name})", *(f"  {n}" for n in self.notes)])


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


def source_state_for(state: Mapping[str, Any], routes: list[Route], target_shapes: Mapping[str, tuple[int, ...]],
                     grid: Any, windows: Mapping[str, tuple[int, int]] | None = None) -> dict[str, Any]:
    """``state`` as the source model at the converted size loads it: a position embedding that the
    converter resampled to another grid (``target_shapes``: our model's, by Paddle key) is resampled
    the same way with the torch reference's own resampler; a Swin bias table resized for another
    window (``windows``: the window of each such table, by Paddle key) is resized as timm's
    checkpoint filter resizes it (the shared ``resample.resize_rel_pos_bias_table``, tested
    against timm's own)."""
    import torch
    from paddle_vit.resample import resize_rel_pos_bias_table
    from torch_ref.layers.pos_embed import resample_pos_embed
    out = {k: state[k] for k in state}
    for route in routes:
        want = tuple(target_shapes[route.dst])
        if tuple(out[route.src].shape) == want:
            continue
        if route.transform == POS_EMBED:
            tensor = torch.from_numpy(np.array(to_numpy(out[route.src], route.src), dtype=np.float32))
            out[route.src] = resample_pos_embed(tensor, grid, num_prefix_tokens=want[1] - grid[0] * grid[1])
        elif route.transform == REL_POS_BIAS:
            table = np.array(to_numpy(out[route.src], route.src), dtype=np.float32)
            out[route.src] = torch.from_numpy(resize_rel_pos_bias_table(table, (windows or {})[route.dst]))
    return out


def table_windows(model: Any, routes: list[Route]) -> dict[str, tuple[int, int]]:
    """The window of the layer each resized bias table (``REL_POS_BIAS`` route) lands in, by Paddle key."""
    layers = dict(model.named_sublayers())
    return {r.dst: tuple(layers[r.dst.rpartition(".")[0]].window_size) for r in routes if r.transform == REL_POS_BIAS}


def load_without_copy(build: Callable[[], Any], state: Mapping[str, Any], what: str) -> Any:
    """``build()`` with ``state`` loaded strictly. The model is made on the meta device and takes the
    tensors of ``state`` as its own (``assign=True``): a memory-mapped checkpoint is not copied. If the
    model has tensors that no checkpoint holds (non-persistent buffers), it is built for real instead.
    ``what`` names the model in the error raised when it does not take ``state``."""
    import torch
    state = {k: v.float() if v.is_floating_point() and v.dtype != torch.float32 else v for k, v in state.items()}
    try:
        with torch.device("meta"):
            model = build()
        model.load_state_dict(state, strict=True, assign=True)
        if any(t.is_meta for t in [*model.parameters(), *model.buffers()]):
            model = build()
            model.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # torch's "Error(s) in loading state_dict", listing the keys
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise ConversionError(f"cannot verify: the {what} model does not take this checkpoint as it is",
                              lines[:20] + ["the conversion itself succeeded; pass --no-verify to write it unchecked"]) from None
    return model.eval()


def compare_logits(ref: np.ndarray, got: np.ndarray, reference: str, x: np.ndarray) -> Verification:
    return Verification(error_stats(ref, got, "logits"), tolerance("model", "float32", "cpu"), reference,
                        tuple(x.shape))


def norm_config(model: Any) -> dict[str, tuple[float, float]]:
    """``{layer name: (eps, torch-convention momentum)}`` of every BatchNorm of a Paddle model."""
    from paddle_vit.layers.norm import BatchNorm2d
    return {name: (layer.eps, layer.momentum) for name, layer in model.named_sublayers()
            if isinstance(layer, BatchNorm2d)}


def with_config_notes(result: Verification, torch_model: Any, norms: Mapping[str, tuple[float, float]],
                      routes: list[Route]) -> Verification:
    """``result`` with notes on BatchNorm eps that differ between the source model and ours: the
    checkpoint was made by a network built with other arguments than the variant's (a source layout
    that does not declare them, or an --override that contradicts them)."""
    import dataclasses

    import torch
    modules = dict(torch_model.named_modules())
    diffs: dict[tuple[float, float], list[str]] = {}
    for route in routes:
        owner, _, leaf = route.src.rpartition(".")
        ours = norms.get(route.dst.rpartition(".")[0])
        theirs = modules.get(owner)
        if leaf == "weight" and ours and isinstance(theirs, torch.nn.modules.batchnorm._BatchNorm) \
                and abs(theirs.eps - ours[0]) > 1e-12:
            diffs.setdefault((theirs.eps, ours[0]), []).append(owner)
    notes = [f"BatchNorm eps differs in {len(layers)} layer(s) (e.g. {layers[0]}): the {result.reference} model "
             f"uses {theirs:g}, ours {ours:g}; its checkpoint needs bn_eps={theirs:g} (--override bn_eps={theirs:g}), "
             "or the variant whose arguments are its library's" for (theirs, ours), layers in diffs.items()]
    return dataclasses.replace(result, notes=tuple(notes)) if notes else result
