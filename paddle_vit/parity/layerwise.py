"""Layer-by-layer parity: where do a torch model and its Paddle twin start to differ?

``compare(torch_model, paddle_model, inputs)`` hooks every paired submodule of both models,
runs the same input through each and compares every hooked output, in the order the
reference (torch) computed them. Optionally (``backward=True``) it does the same for the
gradient of a fixed random loss with respect to every hooked output, in the order backward
reaches them, and for every parameter gradient.

Pairing. Two modules are the same layer when they own the same tensors: the reference
module's state_dict keys, renamed by the converter's layout (``Layout.map_key``), must equal
the Paddle layer's keys. For a mirror (``torch_ref``) or timm model the names agree as well;
for torchvision the rename rules do the pairing (``encoder.layers.encoder_layer_0.self_attention``
-> ``blocks.0.attn``); wrappers owning the same tensors pair innermost first. A module that owns no tensor (activation, dropout, identity) is paired
by name, and only when the layout keeps names (``passthrough``): otherwise nothing ties it to
a Paddle layer and it is left out (listed in ``LayerwiseReport.unpaired``).

Verdict. A hooked output of layer k carries the accumulated error of everything computed
before it, so every row is held to the policy's *model* row (``tolerance('model', ...)``):
each hooked output is the end of a prefix of the network. A correct model then passes at
every layer, and a real bug (errors of 1e-1..1, see ``tolerances``) fails at the first layer
it touches; the rows after it fail too, which is why the *first* failure is what matters.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from paddle_vit.parity.compare import ErrorStats, as_numpy, error_stats
from paddle_vit.parity.tolerances import Tolerance, tolerance

ROOT = "(model)"  # how the whole model (module name '') is shown


@dataclass(frozen=True)
class LayerDiff:
    """One compared tensor: a layer's output (or its gradient, or a parameter gradient)."""
    index: int
    name: str          # our (Paddle) name; ROOT for the whole model; '[i]' suffix for output i > 0
    ref_name: str      # the reference (torch) module or parameter name
    stats: ErrorStats
    passed: bool

    @property
    def shape(self) -> tuple[int, ...]:
        return self.stats.shape


@dataclass
class LayerwiseReport:
    """Everything ``compare`` found; ``forward`` in execution order, ``backward`` in backward order."""
    tol: Tolerance
    dtype: str
    device: str
    forward: list[LayerDiff]
    backward: list[LayerDiff] = field(default_factory=list)
    params: list[LayerDiff] = field(default_factory=list)
    unpaired: dict[str, list[str]] = field(default_factory=dict)   # side -> module names left out
    notes: list[str] = field(default_factory=list)                 # call-count or output-count mismatches
    title: str = ""

    @property
    def passed(self) -> bool:
        return self.first_failure is None

    @property
    def first_failure(self) -> LayerDiff | None:
        """The first failing forward row; else the first failing gradient row (output, then parameter)."""
        for rows in (self.forward, self.backward, self.params):
            for row in rows:
                if not row.passed:
                    return row
        return None

    def summary(self) -> str:
        """One line: all passing, or the first diverging layer with its error."""
        n = len(self.forward) + len(self.backward) + len(self.params)
        bad = self.first_failure
        if bad is None:
            return f"all {n} compared tensors pass ({self.tol.name}, bound {self.tol.bound:.0e})"
        section = "forward" if bad in self.forward else "backward"
        ref = "" if bad.ref_name == bad.name else f" ({bad.ref_name} in the reference)"
        return f"first diverging layer ({section}): {bad.name}{ref}: " + bad.stats.describe(self.tol)


# --- pairing ---------------------------------------------------------------------------
def _keys_under(keys: Sequence[str], prefix: str) -> frozenset[str]:
    if not prefix:
        return frozenset(keys)
    return frozenset(k for k in keys if k.startswith(prefix + "."))


def _depth(name: str) -> int:
    return name.count(".") + bool(name)


def _layout_for(torch_model: Any, paddle_model: Any, source: str) -> Any:
    from paddle_vit.convert import detect_source, get_layout
    family = getattr(paddle_model, "family", None)
    if family is not None and source == "auto":
        source = detect_source(torch_model.state_dict().keys(), family)
    return get_layout(family, source)


def pair_modules(torch_model: Any, paddle_model: Any, source: str = "auto") -> tuple[list[tuple[str, str]],
                                                                                     dict[str, list[str]]]:
    """``[(torch name, paddle name), ...]`` of the modules that are the same layer, and the
    names left out on each side (see the module docstring for the rule)."""
    layout = _layout_for(torch_model, paddle_model, source)
    t_keys = list(torch_model.state_dict().keys())
    p_keys = list(paddle_model.state_dict().keys())
    map_key = layout.key_mapper(t_keys, paddle_model)

    def mapped(key: str) -> str | None:
        try:
            out = map_key(key)
        except KeyError:
            return "<unmapped>" + key  # never equals a Paddle key, so its module stays unpaired
        return None if out is None else out[0]

    t_names = [n for n, _ in torch_model.named_modules()]
    p_names = [n for n, _ in paddle_model.named_sublayers(include_self=True)]
    t_sets = {n: frozenset(k for k in map(mapped, _keys_under(t_keys, n)) if k is not None) for n in t_names}
    p_sets = {n: _keys_under(p_keys, n) for n in p_names}

    pairs: dict[str, str] = {}
    p_set_names = set(p_names)
    for n in t_names:  # same name and same tensors (no tensors: only where the layout keeps names)
        if n in p_set_names and t_sets[n] == p_sets[n] and (t_sets[n] or layout.passthrough):
            pairs[n] = n
    taken = set(pairs.values())
    by_set_t: dict[frozenset, list[str]] = {}
    by_set_p: dict[frozenset, list[str]] = {}
    for n in t_names:
        if n not in pairs and t_sets[n]:
            by_set_t.setdefault(t_sets[n], []).append(n)
    for n in p_names:
        if n not in taken and p_sets[n]:
            by_set_p.setdefault(p_sets[n], []).append(n)
    for owned, ts in by_set_t.items():  # same tensors, different names
        # Modules owning the same tensors are nested wrappers (torchvision's ``heads`` around
        # ``heads.head``): pair them innermost first, the innermost being the one that computes.
        ps = by_set_p.get(owned, [])
        for t, p in zip(sorted(ts, key=_depth, reverse=True), sorted(ps, key=_depth, reverse=True)):
            pairs[t] = p
    ordered = [(t, pairs[t]) for t in t_names if t in pairs]
    paired_p = set(pairs.values())
    unpaired = {"torch": [n for n in t_names if n not in pairs],
                "paddle": [n for n in p_names if n not in paired_p]}
    return ordered, unpaired


# --- running both models with hooks ------------------------------------------------------
def _tensors(out: Any, is_tensor: Callable[[Any], bool]) -> list[Any]:
    """The floating-point tensors of a module output (a tensor, or a tuple/list/dict of them)."""
    if isinstance(out, dict):
        out = list(out.values())
    if not isinstance(out, (tuple, list)):
        out = [out]
    return [o for o in out if is_tensor(o)]


def _is_torch_tensor(x: Any) -> bool:
    import torch
    return isinstance(x, torch.Tensor) and x.is_floating_point()


def _is_paddle_tensor(x: Any) -> bool:
    import paddle
    return isinstance(x, paddle.Tensor) and x.is_floating_point()


class _Recorder:
    """Outputs (and their gradients) of hooked modules, per module name, in call order."""

    def __init__(self, want_grads: bool) -> None:
        self.want_grads = want_grads
        self.outputs: dict[str, list[list[np.ndarray]]] = {}
        self.grads: dict[tuple[str, int, int], np.ndarray] = {}
        self.order: list[tuple[str, int]] = []          # (name, call) in execution order
        self.grad_order: list[tuple[str, int, int]] = []  # (name, call, output) in backward order

    def record(self, name: str, tensors: list[Any], requires_grad: Callable[[Any], bool]) -> None:
        calls = self.outputs.setdefault(name, [])
        call = len(calls)
        calls.append([as_numpy(t) for t in tensors])
        self.order.append((name, call))
        if not self.want_grads:
            return
        for i, t in enumerate(tensors):
            if requires_grad(t):
                t.register_hook(self._grad_hook((name, call, i)))

    def _grad_hook(self, key: tuple[str, int, int]) -> Callable[[Any], None]:
        def hook(grad: Any) -> None:
            if key not in self.grads:  # a tensor seen twice (identity layers) reports once
                self.grad_order.append(key)
            self.grads[key] = as_numpy(grad)
        return hook


def loss_weights(shapes: Sequence[Sequence[int]], seed: int = 0) -> list[np.ndarray]:
    """Fixed random ``w`` per output for the loss ``sum(out * w)`` (a plain sum would hide a permutation)."""
    rng = np.random.default_rng(seed + 100)
    return [rng.standard_normal(tuple(s)).astype(np.float32) for s in shapes]


def _run_torch(model: Any, names: list[str], xs: list[np.ndarray], call: Callable, dtype: str,
               backward: bool, seed: int, rec: _Recorder) -> tuple[list[Any], list[np.ndarray] | None]:
    """Forward (and backward of ``sum(out * w)``) with hooks; returns the outputs and ``w``."""
    import torch
    modules = dict(model.named_modules())
    first = next(model.parameters(), None)
    dev = first.device if first is not None else torch.device("cpu")
    handles = [modules[n].register_forward_hook(
        lambda m, a, out, n=n: rec.record(n, _tensors(out, _is_torch_tensor), lambda t: t.requires_grad))
        for n in names]
    weights = None
    try:
        inputs = [torch.tensor(x, device=dev, dtype=getattr(torch, dtype), requires_grad=backward) for x in xs]
        if backward:
            model.zero_grad(set_to_none=True)
        with torch.set_grad_enabled(backward):
            outs = _tensors(call(model, inputs), _is_torch_tensor)
            if backward:
                weights = loss_weights([o.shape for o in outs], seed)
                sum((o.float() * torch.tensor(w, device=dev)).sum() for o, w in zip(outs, weights)).backward()
    finally:
        for h in handles:
            h.remove()
    return outs, weights


def _run_paddle(model: Any, names: list[str], xs: list[np.ndarray], call: Callable, dtype: str,
                weights: list[np.ndarray] | None, rec: _Recorder) -> Any:
    import paddle
    layers = dict(model.named_sublayers(include_self=True))
    first = next(iter(model.parameters()), None)
    place = first.place if first is not None else None
    handles = [layers[n].register_forward_post_hook(
        lambda m, a, out, n=n: rec.record(n, _tensors(out, _is_paddle_tensor), lambda t: not t.stop_gradient))
        for n in names]
    try:
        inputs = [paddle.to_tensor(x, dtype=dtype, place=place, stop_gradient=weights is None) for x in xs]
        if weights is None:
            with paddle.no_grad():
                outs = _tensors(call(model, inputs), _is_paddle_tensor)
        else:
            model.clear_gradients()
            outs = _tensors(call(model, inputs), _is_paddle_tensor)
            paddle.add_n([(o.astype("float32") * paddle.to_tensor(w, place=place)).sum()
                          for o, w in zip(outs, weights)]).backward()
    finally:
        for h in handles:
            h.remove()
    return outs


def model_dtype_device(paddle_model: Any) -> tuple[str, str]:
    """``(dtype, 'cpu' | 'gpu')`` of a Paddle model's first floating parameter."""
    for p in paddle_model.parameters():
        if p.is_floating_point():
            dtype = str(p.dtype).replace("paddle.", "")
            return dtype, "gpu" if p.place.is_gpu_place() else "cpu"
    return "float32", "cpu"


def compare(torch_model: Any, paddle_model: Any, inputs: np.ndarray | Sequence[np.ndarray], *,
            call: Callable[[Any, list], Any] = lambda m, xs: m(*xs), backward: bool = False,
            source: str = "auto", tol: Tolerance | None = None, seed: int = 0) -> LayerwiseReport:
    """Compare every paired layer's output of ``torch_model`` (the reference) and ``paddle_model``.

    Both models must already hold the same weights, be in eval mode and sit on the same
    device in the same dtype (see ``prepare``). ``inputs``: numpy arrays (``[B, C, H, W]`` for a
    model), cast to the models' dtype. ``backward``: also compare the gradient of
    ``sum(out * w)`` (``w`` fixed, random) with respect to every hooked output and every
    parameter (mapped through the converter's routes; earlier gradients are cleared). ``tol``: defaults to the policy's
    model row for the models' dtype and device.
    """
    xs = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
    if not xs or not all(isinstance(x, np.ndarray) for x in xs):
        raise ValueError("inputs must be a numpy array or a non-empty sequence of numpy arrays")
    dtype, device = model_dtype_device(paddle_model)
    tol = tol or tolerance("model", dtype, device)
    pairs, unpaired = pair_modules(torch_model, paddle_model, source)
    t_rec, p_rec = _Recorder(backward), _Recorder(backward)
    t_out, weights = _run_torch(torch_model, [t for t, _ in pairs], xs, call, dtype, backward, seed, t_rec)
    p_out = _run_paddle(paddle_model, [p for _, p in pairs], xs, call, dtype, weights, p_rec)
    if len(t_out) != len(p_out):
        raise ValueError(f"the models return different numbers of tensors: torch {len(t_out)}, paddle {len(p_out)}")

    to_paddle = dict(pairs)
    report = LayerwiseReport(tol, dtype, device, forward=[], unpaired=unpaired)
    for t_name, call_no in t_rec.order:
        p_name = to_paddle[t_name]
        p_calls = p_rec.outputs.get(p_name, [])
        if call_no >= len(p_calls):
            report.notes.append(f"{_show(p_name)}: called {len(t_rec.outputs[t_name])}x in torch, "
                                f"{len(p_calls)}x in paddle (only calls made by both are compared)")
            continue
        t_outs, p_outs = t_rec.outputs[t_name][call_no], p_calls[call_no]
        if len(t_outs) != len(p_outs) and call_no == 0:
            report.notes.append(f"{_show(p_name)}: {len(t_outs)} output tensor(s) in torch, {len(p_outs)} in "
                                f"paddle (the first {min(len(t_outs), len(p_outs))} compared)")
        for i, (t, p) in enumerate(zip(t_outs, p_outs)):
            _add_row(report.forward, _label(p_name, call_no, i), _label(t_name, call_no, i), t, p, tol)

    if backward:
        for key in t_rec.grad_order:
            t_name, call_no, i = key
            p_key = (to_paddle[t_name], call_no, i)
            if p_key in p_rec.grads:
                _add_row(report.backward, "grad of " + _label(*p_key), "grad of " + _label(*key),
                         t_rec.grads[key], p_rec.grads[p_key], tol)
        report.params = _param_grads(torch_model, paddle_model, source, tol)
    return report


def _param_grads(torch_model: Any, paddle_model: Any, source: str, tol: Tolerance) -> list[LayerDiff]:
    from paddle_vit.convert import plan_for
    from paddle_vit.convert.core import LINEAR
    rows: list[LayerDiff] = []
    t_params, p_params = dict(torch_model.named_parameters()), dict(paddle_model.named_parameters())
    for route in plan_for(torch_model.state_dict(), paddle_model, source):
        t, p = t_params.get(route.src), p_params.get(route.dst)
        if t is None or p is None or t.grad is None or p.grad is None:
            continue  # buffers, frozen parameters
        tg = as_numpy(t.grad)
        tg = tg.T if route.transform == LINEAR else tg
        if tg.shape != tuple(p.grad.shape):
            continue  # a resampled table (pos_embed of another grid): no element-wise twin
        _add_row(rows, "grad of " + route.dst, "grad of " + route.src, tg, p.grad, tol)
    return rows


def _show(name: str) -> str:
    return name or ROOT


def _label(name: str, call_no: int, i: int) -> str:
    return _show(name) + (f"#{call_no + 1}" if call_no else "") + (f"[{i}]" if i else "")


def _add_row(rows: list[LayerDiff], name: str, ref_name: str, ref: Any, got: Any, tol: Tolerance) -> None:
    r, g = as_numpy(ref), as_numpy(got)
    if r.shape != g.shape:
        stats = ErrorStats(name, g.shape, float("inf"), float("inf"), float(np.abs(r).max(initial=0.0)), float("nan"))
    else:
        stats = error_stats(r, g, name)
    rows.append(LayerDiff(len(rows), name, ref_name, stats, stats.passes(tol)))


def prepare(torch_model: Any, paddle_model: Any, device: str = "cpu", dtype: str = "float32") -> None:
    """Put both models on ``device`` ('cpu' or 'gpu') in ``dtype``, in eval mode.

    Half precision casts every parameter and every op of both models to the half type
    (``model.to(dtype)`` in both): autocast is not used because torch's and Paddle's autocast
    lists differ (which ops stay in float32), so an autocast run would compare the lists, not
    the port. GPU fp32 runs with TF32 off in both frameworks (the policy's GPU rows assume it).
    """
    import paddle
    import torch
    check_settings(device, dtype)
    if device == "gpu":
        disable_tf32()
    torch_model.to(device="cuda" if device == "gpu" else "cpu", dtype=getattr(torch, dtype)).eval()
    place = paddle.CUDAPlace(0) if device == "gpu" else paddle.CPUPlace()
    paddle_model.to(device=place, dtype=dtype)
    paddle_model.eval()


def check_settings(device: str, dtype: str) -> None:
    """Raise ``ValueError`` unless ``device``/``dtype`` is a combination both frameworks can run here."""
    if device not in ("cpu", "gpu"):
        raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
    if dtype not in ("float32", "float16", "bfloat16"):
        raise ValueError(f"dtype must be float32, float16 or bfloat16, got {dtype!r}")
    if dtype != "float32" and device == "cpu":
        raise ValueError(f"{dtype} needs device 'gpu': Paddle's CPU kernels (e.g. layer_norm) "
                         "are float32/float64 only")
    if device == "gpu":
        import paddle
        import torch
        if not torch.cuda.is_available() or not paddle.device.is_compiled_with_cuda():
            raise ValueError("device 'gpu' needs a GPU visible to both torch and Paddle "
                             "(the GPU build of Paddle, see README)")


def disable_tf32() -> None:
    """Full fp32 matmuls and convolutions on GPU in both frameworks (TF32 keeps a 10-bit mantissa)."""
    import torch
    from paddle.base import core
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    core.set_cublas_switch(False)  # Paddle's TF32 switches for cuBLAS and cuDNN
    core.set_cudnn_switch(False)
    # Read by cuBLAS/cuDNN when a handle is created: covers kernels that ignore the switches
    # (Paddle's L-BFGS recommends it), effective if set before the first GPU op.
    os.environ["NVIDIA_TF32_OVERRIDE"] = "0"
