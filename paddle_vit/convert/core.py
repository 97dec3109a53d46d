"""torch state_dict -> Paddle state_dict for our models: plan every tensor, check all, then convert.

Nothing is loaded until the whole plan is valid: a wrong checkpoint fails with one error that
lists every missing, unexpected, unmapped or mis-shaped key, and the model is left untouched.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import paddle
import paddle.nn as nn

from paddle_vit.convert.layouts import LAYOUTS, NONE, POS_EMBED, Layout, get_layout

LINEAR = "linear"  # derived from the target layer's type, see layouts/base.py


class ConversionError(ValueError):
    """A checkpoint does not fit a model; ``problems`` lists every reason, one per line."""

    def __init__(self, what: str, problems: list[str]) -> None:
        self.what = what
        self.problems = problems
        shown = problems[:60] + ([f"... and {len(problems) - 60} more"] if len(problems) > 60 else [])
        super().__init__(f"{what}: {len(problems)} problem(s)\n  " + "\n  ".join(shown))


@dataclass(frozen=True)
class Route:
    """One tensor's route: source key -> target key, with the transform applied on the way."""
    src: str
    dst: str
    transform: str


def model_name(model: nn.Layer) -> str:
    return getattr(model, "variant", None) or type(model).__name__


def target_spec(model: nn.Layer) -> dict[str, tuple[tuple[int, ...], str]]:
    """Every persistable tensor of ``model``: key -> (shape, transform kind its layer needs)."""
    layers = dict(model.named_sublayers(include_self=True))
    spec = {}
    for key, value in model.state_dict().items():
        owner, _, leaf = key.rpartition(".")
        kind = LINEAR if isinstance(layers.get(owner), nn.Linear) and leaf == "weight" else NONE
        spec[key] = (tuple(value.shape), kind)
    return spec


def expected_source_shape(target_shape: tuple[int, ...], kind: str) -> tuple[int, ...]:
    return tuple(reversed(target_shape)) if kind == LINEAR else target_shape


def detect_source(keys: Iterable[str], family: str) -> str:
    """The source layout whose signature keys are all present; an error if none or several fit."""
    keys = set(keys)
    fits = [s for (f, s), layout in LAYOUTS.items() if f == family and layout.matches(keys)]
    if len(fits) != 1:
        known = sorted(s for f, s in LAYOUTS if f == family)
        found = "none" if not fits else " and ".join(fits)
        raise ConversionError(f"cannot tell the source layout of this {family!r} checkpoint",
                              [f"layouts that fit: {found}; known: {known}; pass the source explicitly",
                               f"first keys: {sorted(keys)[:8]}"])
    return fits[0]


def plan(source_shapes: Mapping[str, tuple[int, ...]], model: nn.Layer, layout: Layout) -> list[Route]:
    """Route every source tensor to a target tensor and check names and shapes, all at once."""
    spec = target_spec(model)
    problems: list[str] = []
    routes: list[Route] = []
    claimed: dict[str, str] = {}
    map_key = layout.key_mapper(source_shapes, model)
    for src, shape in source_shapes.items():
        try:
            mapped = map_key(src)
        except KeyError:
            problems.append(f"unmapped key {src!r} {list(shape)}: no rule of the {layout.source!r} layout maps it")
            continue
        if mapped is None:
            continue
        dst, transform = mapped
        if dst not in spec:
            problems.append(f"unexpected key {src!r} {list(shape)} (-> {dst!r}): the model has no such tensor")
            continue
        if dst in claimed:
            problems.append(f"keys {claimed[dst]!r} and {src!r} both map to {dst!r}")
            continue
        claimed[dst] = src
        target_shape, kind = spec[dst]
        if transform == NONE:
            transform = kind
        if not _shape_fits(tuple(shape), target_shape, transform):
            want = expected_source_shape(target_shape, transform)
            problems.append(f"shape mismatch {src!r}: checkpoint {list(shape)}, model {dst!r} needs {list(want)}"
                            + (" (a Linear weight, stored [out, in] in torch)" if transform == LINEAR else ""))
            continue
        routes.append(Route(src, dst, transform))
    for dst, (shape, kind) in spec.items():
        if dst not in claimed:  # named and shaped as the torch checkpoint would hold it
            problems.append(f"missing key {dst!r} {list(expected_source_shape(shape, kind))}: not in the checkpoint")
    if problems:
        raise ConversionError(f"checkpoint ({layout.source} layout) does not fit model {model_name(model)!r}", problems)
    return routes


def _shape_fits(shape: tuple[int, ...], target: tuple[int, ...], transform: str) -> bool:
    if transform == POS_EMBED:  # any grid with the same width and prefix tokens can be resampled
        return len(shape) == 3 and shape[0] == 1 and shape[2] == target[2] and shape[1] > 1
    return shape == expected_source_shape(target, transform)


def to_numpy(tensor: Any, key: str) -> np.ndarray:
    """A torch tensor or array as a numpy array; bfloat16 is widened to float32."""
    if hasattr(tensor, "detach"):
        import torch
        tensor = tensor.detach().cpu()
        if tensor.dtype == torch.bfloat16:
            tensor = tensor.float()
        return tensor.numpy()
    if isinstance(tensor, np.ndarray):
        return tensor
    raise ConversionError("not a checkpoint", [f"{key!r} holds a {type(tensor).__name__}, not a tensor"])


def transpose(array: np.ndarray) -> np.ndarray:
    """A 2-D array transposed into fresh C-contiguous memory. torch's copy kernel (blocked and
    threaded) does this about 3x faster than numpy's, so it is used when torch is loaded anyway
    (it is whenever a torch checkpoint is read); the result is the same bits either way."""
    torch = sys.modules.get("torch")
    if torch is not None and array.flags.writeable and array.dtype != np.dtype("O"):
        return torch.from_numpy(array).t().contiguous().numpy()
    return np.ascontiguousarray(array.T)


def apply_transform(array: np.ndarray, transform: str, model: nn.Layer, target_shape: tuple[int, ...]) -> np.ndarray:
    if transform == LINEAR:
        return transpose(array)
    if transform == POS_EMBED and tuple(array.shape) != target_shape:
        from paddle_vit.layers.pos_embed import resample_pos_embed
        grid = model.patch_embed.grid_size
        prefix = target_shape[1] - grid[0] * grid[1]
        return resample_pos_embed(paddle.to_tensor(array), grid, num_prefix_tokens=prefix).numpy()
    return array


def tensor_shapes(state: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape, without reading the tensors where ``state`` knows them (``.shapes``,
    see ``io.SafetensorsState``). A value that is not a tensor is an error naming its key."""
    known = getattr(state, "shapes", None)
    if known is not None:
        return {k: tuple(v) for k, v in known.items()}
    bad = [f"{k!r} holds a {type(v).__name__}, not a tensor" for k, v in state.items() if not hasattr(v, "shape")]
    if bad:
        raise ConversionError("not a checkpoint (a state_dict maps names to tensors)", bad)
    return {k: tuple(v.shape) for k, v in state.items()}


def plan_for(state: Mapping[str, Any], model: nn.Layer, source: str = "auto") -> list[Route]:
    """The checked route of every tensor of ``state`` into ``model`` (see ``convert_state_dict``)."""
    family = getattr(model, "family", None)
    shapes = tensor_shapes(state)
    if family is not None and source == "auto":
        source = detect_source(shapes, family)
    layout = get_layout(family, source)
    try:
        return plan(shapes, model, layout)
    except ConversionError as exc:
        hint = _other_layout_hint(shapes, family, layout.source)
        if hint:
            raise ConversionError(exc.what, [hint] + exc.problems) from None
        raise


def _other_layout_hint(keys: Iterable[str], family: str | None, source: str) -> str | None:
    keys = set(keys)
    fits = [s for (f, s), layout in LAYOUTS.items() if f == family and s != source and layout.matches(keys)]
    return f"this looks like a {' or '.join(fits)} checkpoint, not {source}: pass --source {fits[0]}" if fits else None


def checked_array(value: Any, key: str, problems: list[str]) -> np.ndarray | None:
    """``value`` as a numpy array if it is a finite floating-point tensor; else a problem naming ``key``."""
    array = to_numpy(value, key)
    if not np.issubdtype(array.dtype, np.floating):
        problems.append(f"{key!r} has dtype {array.dtype}, expected a floating-point tensor")
        return None
    if not np.isfinite(array).all():
        problems.append(f"{key!r} holds NaN or Inf values")
        return None
    return array


Progress = Callable[[list], Iterable]


def convert_state_dict(state: Mapping[str, Any], model: nn.Layer, source: str = "auto",
                       progress: Progress | None = None) -> dict[str, np.ndarray]:
    """A torch-layout ``state`` (tensors or arrays) as a Paddle state_dict of ``model`` (float32
    numpy arrays). ``source``: ``'auto'`` (detected from the keys), ``'timm'``, ``'torchvision'`` or
    ``'torch_ref'``. Tensor by tensor: a tensor that needs no transform stays a view of its source
    (a memory-mapped file), so the result costs about one extra copy of the transposed weights.
    ``progress`` wraps the list of routes (a progress bar)."""
    routes = plan_for(state, model, source)
    spec = target_spec(model)
    problems, out = [], {}
    for route in (progress or list)(routes):
        array = checked_array(state[route.src], route.src, problems)
        if array is not None:
            out[route.dst] = apply_transform(array, route.transform, model, spec[route.dst][0]).astype(np.float32, copy=False)
    if problems:
        raise ConversionError(f"checkpoint does not fit model {model_name(model)!r}", problems)
    return out


def export_state_dict(state: Mapping[str, Any], model: nn.Layer, reference: Mapping[str, Any],
                      source: str = "timm", progress: Progress | None = None) -> dict[str, np.ndarray]:
    """The reverse of ``convert_state_dict``: a Paddle state_dict of ``model`` as the ``source``
    layout whose keys and shapes ``reference`` (a freshly built torch model's state_dict) gives.

    Each routed tensor is its Paddle value with the inverse transform (a Linear weight transposed
    back), so torch -> Paddle -> torch returns the same bits. Source keys the forward direction
    ignores on purpose (rebuilt buffers, BatchNorm's ``num_batches_tracked``) take the reference's values.
    """
    check_paddle_state(model, state)
    routes = {r.src: r for r in plan(tensor_shapes(reference), model, get_layout(getattr(model, "family", None), source))}
    problems, out = [], {}
    for key in (progress or list)(list(reference)):
        route = routes.get(key)
        if route is None:
            out[key] = to_numpy(reference[key], key)
            continue
        array = checked_array(state[route.dst], route.dst, problems)
        if array is None:
            continue
        if route.transform == LINEAR:
            array = transpose(array)
        elif tuple(array.shape) != tuple(reference[key].shape):  # a resampled pos_embed has no inverse
            problems.append(f"{route.dst!r} {list(array.shape)} cannot be written as {key!r} {list(reference[key].shape)}")
            continue
        out[key] = array
    if problems:
        raise ConversionError(f"weights of {model_name(model)!r} cannot be exported to the {source} layout", problems)
    return out


def check_paddle_state(model: nn.Layer, state: Mapping[str, Any]) -> None:
    """Raise one ``ConversionError`` listing every missing, unexpected and mis-shaped key of a
    Paddle-layout ``state`` for ``model``."""
    current = model.state_dict()
    shapes = tensor_shapes(state)
    problems = [f"missing key {k!r} {list(v.shape)}" for k, v in current.items() if k not in shapes]
    problems += [f"unexpected key {k!r} {list(s)}" for k, s in shapes.items() if k not in current]
    problems += [f"shape mismatch {k!r}: file {list(s)}, model needs {list(current[k].shape)}"
                 for k, s in shapes.items() if k in current and s != tuple(current[k].shape)]
    if problems:
        raise ConversionError(f"weights do not fit model {model_name(model)!r}", problems)


def load_state_dict_strict(model: nn.Layer, state: Mapping[str, Any]) -> None:
    """Load a Paddle-layout state_dict only if every key and shape matches; else nothing is loaded."""
    check_paddle_state(model, state)
    current = model.state_dict()
    for key in state:
        target = current[key]
        target.set_value(np.asarray(to_numpy(state[key], key)).astype(_np_dtype(target), copy=False))


def _np_dtype(tensor: paddle.Tensor) -> np.dtype:
    return np.dtype(str(tensor.dtype).replace("paddle.", ""))
