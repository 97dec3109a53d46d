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

Pairs also compute the same thing. A reference module may end in a computation that our layer
leaves to the next one: timm's ``BatchNormAct2d`` is norm + activation in one module (its
``act`` child), ours is the norm alone, followed by our activation layer. Such a module (its
output is the output of a tensor-free child, not a no-op, whose kind -- class name -- none of
the Paddle layer's children has) is compared with the output of the Paddle layer of that kind
that consumed our layer's output, and shown as a fused pair (``bn1+act``); if no such layer
consumed it, the two are compared as they are and a note says why they differ.

Verdict. A hooked output of layer k carries the accumulated error of everything computed
before it, so every row is held to the policy's *model* row (``tolerance('model', ...)``):
each hooked output is the end of a prefix of the network. A correct model then passes at
every layer, and a real bug (errors of 1e-1..1, see ``tolerances``) fails at the first layer
it touches; the rows after it fail too, which is why the *first* failure is what matters.
"""
from __future__ import annotations

import os
import re
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
    targets = layout.key_mapper(t_keys, paddle_model)

    def mapped(key: str) -> list[str]:
        try:
            return [dst for dst, _ in targets(key)]  # several where a packed tensor is split
        except KeyError:
            return ["<unmapped>" + key]  # never equals a Paddle key, so its module stays unpaired

    import paddle
    import torch
    skip = [n for n, _ in torch_model.named_modules() if any(re.fullmatch(p, n) for p in layout.layerwise_skip)]
    # lists of layers are never called (no forward): they cannot be the twin of a layer that is
    t_names = [n for n, m in torch_model.named_modules() if n not in skip and not isinstance(m, torch.nn.ModuleList)]
    p_names = [n for n, m in paddle_model.named_sublayers(include_self=True) if not isinstance(m, paddle.nn.LayerList)]
    t_sets = {n: frozenset(k for key in _keys_under(t_keys, n) for k in mapped(key)) for n in t_names}
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
    unpaired = {"torch": [n for n in t_names if n not in pairs] + skip,
                "paddle": [n for n in p_names if n not in paired_p]}
    return ordered, unpaired


# --- fused modules (a reference module that also applies the next layer's computation) ----
# Kinds (lower-cased class names) that compute nothing in eval mode: never a fused computation.
NO_OP_KINDS = frozenset({"identity", "dropout", "dropout1d", "dropout2d", "dropout3d", "alphadropout", "droppath"})


def _kind(module: Any) -> str:
    return type(module).__name__.lower()


def _module(torch_model: Any, name: str) -> Any:
    return torch_model.get_submodule(name) if name else torch_model


def _owns_tensors(module: Any) -> bool:
    return any(True for _ in module.parameters()) or any(True for _ in module.buffers())


def _computing_children(module: Any) -> list[tuple[str, Any]]:
    """Direct children that own no tensor and compute something (activations, pools), in order."""
    return [(n, c) for n, c in module.named_children() if not _owns_tensors(c) and _kind(c) not in NO_OP_KINDS]


def fusion_candidates(torch_model: Any, paddle_model: Any, pairs: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """Per paired reference module, its computing children whose kind none of the Paddle layer's
    children has (full names): what it may compute beyond our layer. Whether it does (its output
    is such a child's output) is seen while the model runs."""
    modules, layers = dict(torch_model.named_modules()), dict(paddle_model.named_sublayers(include_self=True))
    out: dict[str, list[str]] = {}
    for t, p in pairs:
        ours = {_kind(c) for _, c in _computing_children(layers[p])}
        extra = [f"{t}.{n}" if t else n for n, c in _computing_children(modules[t]) if _kind(c) not in ours]
        if extra:
            out[t] = extra
    return out


def _fused_children(t_rec: _Recorder, candidates: dict[str, list[str]]) -> dict[tuple[str, int], str]:
    """``(torch module, call) -> child`` where the module's output *is* that child's output."""
    found: dict[tuple[str, int], str] = {}
    for (name, call), (_, outs) in t_rec.objects.items():
        if name not in candidates or not outs:
            continue
        for child in candidates[name]:
            if any(o and o[0] is outs[0] for (n, _), (_, o) in t_rec.objects.items() if n == child):
                found[(name, call)] = child
    return found


def _consumer(p_rec: _Recorder, producer: tuple[str, int], kind: str, kinds: dict[str, str]) -> tuple[str, int] | None:
    """The Paddle call of a layer of ``kind`` whose first input is ``producer``'s first output."""
    outs = p_rec.objects.get(producer, ([], []))[1]
    if not outs:
        return None
    for (name, call), (ins, _) in p_rec.objects.items():
        if kinds.get(name) == kind and ins and ins[0] is outs[0]:
            return name, call
    return None


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
    """Outputs (and their gradients) of hooked modules, per module name, in call order. For the
    modules in ``keep`` it also holds the tensor objects in and out of each call (alive, so that
    identity says which call consumed which output), for pairing fused modules."""

    def __init__(self, want_grads: bool, keep: frozenset[str] = frozenset()) -> None:
        self.want_grads = want_grads
        self.keep = keep
        self.outputs: dict[str, list[list[np.ndarray]]] = {}
        self.objects: dict[tuple[str, int], tuple[list[Any], list[Any]]] = {}  # (name, call) -> (inputs, outputs)
        self.grads: dict[tuple[str, int, int], np.ndarray] = {}
        self.order: list[tuple[str, int]] = []          # (name, call) in execution order
        self.grad_order: list[tuple[str, int, int]] = []  # (name, call, output) in backward order

    def record(self, name: str, tensors: list[Any], requires_grad: Callable[[Any], bool],
               inputs: Sequence[Any] = ()) -> None:
        calls = self.outputs.setdefault(name, [])
        call = len(calls)
        calls.append([as_numpy(t) for t in tensors])
        self.order.append((name, call))
        if name in self.keep:
            self.objects[(name, call)] = (list(inputs), list(tensors))
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
        lambda m, a, out, n=n: rec.record(n, _tensors(out, _is_torch_tensor), lambda t: t.requires_grad, a))
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
        lambda m, a, out, n=n: rec.record(n, _tensors(out, _is_paddle_tensor), lambda t: not t.stop_gradient, a))
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
    to_paddle = dict(pairs)
    candidates = fusion_candidates(torch_model, paddle_model, pairs)
    t_children = sorted({c for cs in candidates.values() for c in cs})
    kinds = _fusable_layers(paddle_model, torch_model, t_children)
    t_rec = _Recorder(backward, keep=frozenset(candidates) | frozenset(t_children))
    p_rec = _Recorder(backward, keep=frozenset(to_paddle[t] for t in candidates) | frozenset(kinds))
    t_out, weights = _run_torch(torch_model, [t for t, _ in pairs] + t_children, xs, call, dtype, backward, seed, t_rec)
    p_out = _run_paddle(paddle_model, list(dict.fromkeys([p for _, p in pairs] + sorted(kinds))), xs, call, dtype,
                        weights, p_rec)
    if len(t_out) != len(p_out):
        raise ValueError(f"the models return different numbers of tensors: torch {len(t_out)}, paddle {len(p_out)}")

    report = LayerwiseReport(tol, dtype, device, forward=[], unpaired=unpaired)
    targets, labels = _targets(t_rec, p_rec, to_paddle, candidates, kinds, torch_model, report)
    t_rec.objects.clear(), p_rec.objects.clear()  # the tensors themselves are no longer needed
    for t_name, call_no in t_rec.order:
        if t_name not in to_paddle:
            continue  # a child hooked only to see what its parent's output is
        p_name, p_call = targets.get((t_name, call_no), (to_paddle[t_name], call_no))
        shown = labels.get((t_name, call_no), p_name)
        p_calls = p_rec.outputs.get(p_name, [])
        if p_call >= len(p_calls):
            if not p_calls and _kind(_module(torch_model, t_name)) in NO_OP_KINDS:
                continue  # an Identity standing in for an option that is off: ours need not call it
            report.notes.append(f"{_show(p_name)}: called {len(t_rec.outputs[t_name])}x in torch, "
                                f"{len(p_calls)}x in paddle (only calls made by both are compared)")
            continue
        t_outs, p_outs = t_rec.outputs[t_name][call_no], p_calls[p_call]
        if len(t_outs) != len(p_outs) and call_no == 0:
            report.notes.append(f"{_show(p_name)}: {len(t_outs)} output tensor(s) in torch, {len(p_outs)} in "
                                f"paddle (the first {min(len(t_outs), len(p_outs))} compared)")
        for i, (t, p) in enumerate(zip(t_outs, p_outs)):
            _add_row(report.forward, _label(shown, call_no, i), _label(t_name, call_no, i), t, p, tol)

    if backward:
        for key in t_rec.grad_order:
            t_name, call_no, i = key
            if t_name not in to_paddle:
                continue
            p_name, p_call = targets.get((t_name, call_no), (to_paddle[t_name], call_no))
            shown = labels.get((t_name, call_no), p_name)
            if (p_name, p_call, i) in p_rec.grads:
                _add_row(report.backward, "grad of " + _label(shown, call_no, i), "grad of " + _label(*key),
                         t_rec.grads[key], p_rec.grads[(p_name, p_call, i)], tol)
        report.params = _param_grads(torch_model, paddle_model, source, tol)
    return report


def _fusable_layers(paddle_model: Any, torch_model: Any, t_children: Sequence[str]) -> dict[str, str]:
    """``{Paddle layer name: kind}`` of the tensor-free layers whose kind a candidate child has."""
    modules = dict(torch_model.named_modules())
    wanted = {_kind(modules[c]) for c in t_children}
    return {n: _kind(layer) for n, layer in paddle_model.named_sublayers()
            if _kind(layer) in wanted and not _owns_tensors(layer)}


def _targets(t_rec: _Recorder, p_rec: _Recorder, to_paddle: dict[str, str], candidates: dict[str, list[str]],
             kinds: dict[str, str], torch_model: Any, report: LayerwiseReport
             ) -> tuple[dict[tuple[str, int], tuple[str, int]], dict[tuple[str, int], str]]:
    """For each call of a fused reference module: the Paddle call that computes the same (the layer
    of the child's kind that consumed our layer's output) and the row's label; notes where none did."""
    modules = dict(torch_model.named_modules())
    targets: dict[tuple[str, int], tuple[str, int]] = {}
    labels: dict[tuple[str, int], str] = {}
    covered_t, covered_p = set(), set()
    for (t_name, call_no), child in sorted(_fused_children(t_rec, candidates).items()):
        p_name, kind = to_paddle[t_name], _kind(modules[child])
        found = _consumer(p_rec, (p_name, call_no), kind, kinds)
        if found is None:
            if call_no == 0:
                report.notes.append(f"{_show(p_name)}: the reference's {t_name} also applies its {child} ({kind}), "
                                    f"and no Paddle {kind} layer takes {_show(p_name)}'s output: compared as they are")
            continue
        targets[(t_name, call_no)] = found
        labels[(t_name, call_no)] = f"{_show(p_name)}+{found[0]}"
        covered_t.add(child), covered_p.add(found[0])
    report.unpaired = {"torch": [n for n in report.unpaired["torch"] if n not in covered_t],
                       "paddle": [n for n in report.unpaired["paddle"] if n not in covered_p]}
    if covered_t:
        report.notes.append(f"{len(targets)} fused pair(s): a reference module that also applies its activation is "
                            "compared with our layer followed by our activation (shown as layer+activation)")
    return targets, labels


def _param_grads(torch_model: Any, paddle_model: Any, source: str, tol: Tolerance) -> list[LayerDiff]:
    from paddle_vit.convert import plan_for
    from paddle_vit.convert.core import gradient_view
    rows: list[LayerDiff] = []
    t_params, p_params = dict(torch_model.named_parameters()), dict(paddle_model.named_parameters())
    for route in plan_for(torch_model.state_dict(), paddle_model, source):
        t, p = t_params.get(route.src), p_params.get(route.dst)
        if t is None or p is None or t.grad is None or p.grad is None:
            continue  # buffers, frozen parameters
        tg = gradient_view(as_numpy(t.grad), route.transform)
        if tg.shape != tuple(p.grad.shape):
            continue  # a resampled table (pos_embed, bias table of another size): no element-wise twin
        _add_row(rows, "grad of " + route.dst, "grad of " + route.src, tg, p.grad, tol)
    return rows


def _show(name: str) -> str:
    return name or ROOT


def _label(name: str, call_no: int, i: int) -> str:
    return _show(name) + (f"#{call_no + 1}" if call_no else "") + (f"[{i}]" if i else "")


def _add_row(rows: list[LayerDiff], name: str, ref_name: str, ref: Any, got: Any, tol: Tolerance) -> None:
    r, g = as_numpy(ref), as_numpy(got)
    if r.shape != g.shape and r.size == g.size and r.shape[:1] == g.shape[:1] and r.shape[-1:] == g.shape[-1:]:
        r = r.reshape(g.shape)  # the same rows, with the middle axes merged or split ([B, H, W, C] vs [B, H*W, C])
    if r.shape != g.shape:
        stats = ErrorStats(name, g.shape, float("inf"), float("inf"), float(np.abs(r).max(initial=0.0)), float("nan"))
    else:
        stats = error_stats(r, g, name)
    rows.append(LayerDiff(len(rows), name, ref_name, stats, stats.passes(tol)))


def prepare(torch_model: Any, paddle_model: Any, device: str = "cpu", dtype: str = "float32") -> None:
    """Put both models on ``device`` ('cpu' or 'gpu') in ``dtype``, in eval mode.

    Half precision casts every floating-point parameter and buffer of both models to the half
    type: autocast is not used because torch's and Paddle's autocast lists differ (which ops stay
    in float32), so an autocast run would compare the lists, not the port. ``float64`` is for
    weights whose fp32 outputs are decided by rounding (see ``tolerances``, ill-conditioned
    weights); the reference's norm epsilons are then rounded to float32, as Paddle stores them
    (``match_float32_eps``; the torch model keeps them). Integer buffers (Swin's index tables)
    keep their type. GPU fp32 runs with TF32 off in both frameworks (the policy's GPU rows
    assume it).
    """
    import paddle
    import torch
    check_settings(device, dtype)
    if device == "gpu":
        disable_tf32()
    torch_model.to(device="cuda" if device == "gpu" else "cpu", dtype=getattr(torch, dtype)).eval()
    place = paddle.CUDAPlace(0) if device == "gpu" else paddle.CPUPlace()
    paddle_model.to(device=place)
    # Not Layer.to(dtype=...): it casts integer buffers too (Swin's gather indices became floats
    # that hold no memory, and `paddle-vit diff` of any Swin crashed). floating_only is what
    # Paddle's own Layer.float16() passes.
    paddle_model.apply(lambda layer: layer._to_impl(dtype=dtype, floating_only=True, include_sublayers=False))
    paddle_model.eval()
    if dtype == "float64":
        match_float32_eps(torch_model)


def match_float32_eps(torch_model: Any) -> int:
    """Round every ``eps`` of the reference's modules (norms) to float32, in place; returns how many.

    Paddle keeps a norm's epsilon as a float32 op attribute (BatchNorm's 1e-3 becomes
    1.0000000475e-3), torch as a Python float. In float32 both add the same float32 number; in
    float64 torch would add the exact one, and the two differ by that rounding from the first
    norm on (4.4e-11 after an EfficientNet's stem, amplified to 5e-2 at an SE gate of
    ill-conditioned weights) instead of by float64 rounding (2.9e-16 there, 8e-8 at the gate).
    """
    changed = 0
    for module in torch_model.modules():
        eps = getattr(module, "eps", None)
        if isinstance(eps, float) and float(np.float32(eps)) != eps:
            module.eps = float(np.float32(eps))
            changed += 1
    return changed


DTYPES = ("float32", "float64", "float16", "bfloat16")


def check_settings(device: str, dtype: str) -> None:
    """Raise ``ValueError`` unless ``device``/``dtype`` is a combination both frameworks can run here."""
    if device not in ("cpu", "gpu"):
        raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if dtype in ("float16", "bfloat16") and device == "cpu":
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
