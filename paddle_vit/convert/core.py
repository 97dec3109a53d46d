"""torch state_dict -> Paddle state_dict for our models: plan every tensor, check all, then convert.

Nothing is loaded until the whole plan is valid: a wrong checkpoint fails with one error that
lists every missing, unexpected, unmapped or mis-shaped key, and the model is left untouched.
"""
from __future__ import annotations

import math
import sys
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import paddle
import paddle.nn as nn

from paddle_vit.convert.layouts import LAYOUTS, NONE, POS_EMBED, Q_OF_QKV, REL_POS_BIAS, V_OF_QKV, Layout, get_layout
from paddle_vit.resample import resize_rel_pos_bias_table, table_side

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
    if kind in (Q_OF_QKV, V_OF_QKV):  # one third of a packed q|k|v bias
        return (3 * target_shape[0],)
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
    grid = getattr(getattr(model, "patch_embed", None), "grid_size", None)
    grid_tokens = grid[0] * grid[1] if grid is not None else None  # the grid a position embedding resamples to
    problems: list[str] = []
    routes: list[Route] = []
    claimed: dict[str, str] = {}
    mapped: list[tuple[str, tuple[int, ...], str, str]] = []  # (src, shape, dst, transform)
    targets = layout.key_mapper(source_shapes, model)
    for src, shape in source_shapes.items():
        try:  # [] if ignored; several targets where a packed tensor is split
            mapped += [(src, shape, dst, transform) for dst, transform in targets(src)]
        except KeyError:
            problems.append(f"unmapped key {src!r} {list(shape)}: no rule of the {layout.source!r} layout maps it")
    for src, shape, dst, transform in mapped:
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
        if not _shape_fits(tuple(shape), target_shape, transform, grid_tokens):
            want = expected_source_shape(target_shape, transform)
            problems.append(f"shape mismatch {src!r}: checkpoint {list(shape)}, model {dst!r} needs {list(want)}"
                            + _SHAPE_NOTES.get(transform, "")
                            + (f" (or {target_shape[1] - grid_tokens} prefix token(s) + any square grid, resampled)"
                               if transform == POS_EMBED and grid_tokens is not None else ""))
            continue
        routes.append(Route(src, dst, transform))
    conflicts = getattr(model, "window_rule_conflicts", None)  # Swin: windows computed as the source does?
    if layout.window_rule is not None and conflicts is not None:
        problems += conflicts(layout.window_rule)
    for dst, (shape, kind) in spec.items():
        if dst not in claimed:  # named and shaped as the torch checkpoint would hold it
            problems.append(f"missing key {dst!r} {list(expected_source_shape(shape, kind))}: not in the checkpoint")
    if problems:
        raise ConversionError(f"checkpoint ({layout.source} layout) does not fit model {model_name(model)!r}", problems)
    return routes


_SHAPE_NOTES = {
    LINEAR: " (a Linear weight, stored [out, in] in torch)",
    REL_POS_BIAS: " (a bias table [(2M-1)^2, heads]: the same heads, and a square window's rows to be resized)",
    Q_OF_QKV: " (a packed q|k|v bias)", V_OF_QKV: " (a packed q|k|v bias)",
}


def _shape_fits(shape: tuple[int, ...], target: tuple[int, ...], transform: str, grid_tokens: int | None = None) -> bool:
    if transform == POS_EMBED and shape != target:
        # another grid can be resampled: same width, the model's prefix tokens, a square grid
        # (a checkpoint of another variant, e.g. with its class token outside the embedding, is not)
        if len(shape) != 3 or shape[0] != 1 or shape[2] != target[2]:
            return False
        if grid_tokens is None:
            return shape[1] > 1
        src_grid = shape[1] - (target[1] - grid_tokens)
        return src_grid >= 1 and math.isqrt(src_grid) ** 2 == src_grid
    if transform == REL_POS_BIAS:  # the same heads; a table of another square window can be resized
        return (len(shape) == 2 and shape[1] == target[1]
                and (shape[0] == target[0] or table_side(shape[0]) is not None))
    return shape == expected_source_shape(target, transform)


# Source dtypes a weight may have: widened or narrowed to the target's float type, exactly where it fits.
FLOAT_SOURCES = ("float16", "bfloat16", "float32", "float64")


def tensor_problem(value: Any, values: bool = True) -> str | None:
    """Why ``value`` is not a dense tensor or array of numbers (told from its metadata, no data is
    read); ``None`` if it is one. Torch can save nested, sparse, quantized and meta tensors.
    ``values=False``: only what leaves it without a shape to plan with (not a tensor, nested); the
    other kinds have one, and are named when their values are read."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        if value.is_nested:
            return "is a nested tensor (a list of tensors of different shapes), not a weight"
        if not values:
            return None
        if value.layout != torch.strided:
            return f"is a sparse tensor ({value.layout}); a checkpoint's weights are dense"
        if value.is_quantized:
            return f"is a quantized tensor ({value.dtype}); dequantize it before converting"
        if value.is_meta:
            return "is a meta tensor: it has a shape but no values"
        return None
    if isinstance(value, (np.ndarray, paddle.Tensor)):
        return None
    return f"holds a {type(value).__name__}, not a tensor"


def dtype_name(value: Any) -> str:
    """``'float32'``, ``'bfloat16'``, ``'float8_e4m3fn'``...: the dtype of a torch/Paddle tensor or array."""
    dtype = value.dtype
    if isinstance(dtype, np.dtype):
        return dtype.name
    return str(dtype).rpartition(".")[2]


def to_numpy(tensor: Any, key: str) -> np.ndarray:
    """A torch or Paddle tensor, or an array, as a numpy array; bfloat16 is widened to float32."""
    problem = tensor_problem(tensor)
    if problem is not None:
        raise ConversionError("not a checkpoint", [f"{key!r} {problem}"])
    if isinstance(tensor, np.ndarray):
        return tensor
    if isinstance(tensor, paddle.Tensor):
        return (tensor.astype("float32") if dtype_name(tensor) == "bfloat16" else tensor).numpy()
    tensor = tensor.detach().cpu()
    if dtype_name(tensor) == "bfloat16":
        tensor = tensor.float()
    return tensor.numpy()


def usable_array(value: Any, key: str, problems: list[str], floating: bool = True) -> np.ndarray | None:
    """``value`` as a numpy array if it is a dense tensor of a float dtype (``floating``) or of any
    real dtype; else ``None`` and a problem naming ``key``, the tensor kind and the reason."""
    problem = tensor_problem(value)
    if problem is None:
        name = dtype_name(value)
        if floating and name not in FLOAT_SOURCES:
            problem = f"has dtype {name}, expected a floating-point tensor ({', '.join(FLOAT_SOURCES)})"
    if problem is None:
        try:
            return to_numpy(value, key)
        except Exception as exc:  # a tensor type that torch loads but cannot hand to numpy
            problem = f"cannot be read as numbers ({type(exc).__name__}: {str(exc)[:120]})"
    problems.append(f"{key!r} {problem}")
    return None


def finite_cast(array: np.ndarray, key: str, dtype: np.dtype, problems: list[str]) -> np.ndarray | None:
    """``array`` as ``dtype`` (no copy if it is already), checked on the values that will be written:
    a float64 1e300 is finite but becomes Inf in float32, so the check runs after the cast."""
    out = array.astype(dtype, copy=False)
    if not np.issubdtype(out.dtype, np.floating) or np.isfinite(out).all():
        return out
    if np.isfinite(array).all():
        problems.append(f"{key!r} holds values too large for {out.dtype} (up to {float(np.abs(array).max()):.3g}): "
                        "they would be written as Inf")
    else:
        problems.append(f"{key!r} holds NaN or Inf values")
    return None


def transpose(array: np.ndarray) -> np.ndarray:
    """A 2-D array transposed into fresh C-contiguous memory. torch's copy kernel (blocked and
    threaded) does this about 3x faster than numpy's, so it is used when torch is loaded anyway
    (it is whenever a torch checkpoint is read); the result is the same bits either way. A
    read-only array (a memory-mapped file) is only read; torch takes native byte order only."""
    torch = sys.modules.get("torch")
    if torch is not None and array.dtype.kind == "f" and array.dtype.isnative:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            source = torch.from_numpy(array)
        out = source.t().contiguous()
        if out.data_ptr() != source.data_ptr():  # a [1, n] array needs no copy: keep numpy's (read-only) view
            return out.numpy()
    return np.ascontiguousarray(array.T)


def apply_transform(array: np.ndarray, transform: str, model: nn.Layer, target_shape: tuple[int, ...],
                    key: str = "") -> np.ndarray:
    """``array`` as target tensor ``key`` of ``model`` (of ``target_shape``) takes it."""
    if transform == LINEAR:
        return transpose(array)
    if transform in (Q_OF_QKV, V_OF_QKV):
        n = target_shape[0]
        return array[:n] if transform == Q_OF_QKV else array[2 * n:]
    if transform == REL_POS_BIAS and tuple(array.shape) != target_shape:
        owner = dict(model.named_sublayers())[key.rpartition(".")[0]]  # the attention layer: its window
        return resize_rel_pos_bias_table(array, owner.window_size)
    if transform == POS_EMBED and tuple(array.shape) != target_shape:
        from paddle_vit.layers.pos_embed import resample_pos_embed
        grid = model.patch_embed.grid_size
        prefix = target_shape[1] - grid[0] * grid[1]
        return resample_pos_embed(paddle.to_tensor(array), grid, num_prefix_tokens=prefix).numpy()
    return array


def gradient_view(grad: np.ndarray, transform: str) -> np.ndarray:
    """A source tensor's gradient in the layout of the target a route carries it to (transposed for
    a Linear, the q or v third of a packed bias); a resampled tensor is returned as it is, and its
    shape then differs from the target's (no element-wise twin)."""
    if transform == LINEAR:
        return grad.T
    if transform in (Q_OF_QKV, V_OF_QKV):
        n = grad.shape[0] // 3
        return grad[:n] if transform == Q_OF_QKV else grad[2 * n:]
    return grad


def tensor_shapes(state: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape, without reading the tensors where ``state`` knows them (``.shapes``,
    see ``io.SafetensorsState``). A value that is not a tensor is an error naming its key."""
    known = getattr(state, "shapes", None)
    if known is not None:
        return {k: tuple(v) for k, v in known.items()}
    problems = {k: tensor_problem(v, values=False) for k, v in state.items()}
    bad = [f"{k!r} {problem}" for k, problem in problems.items() if problem]
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


def checked_array(value: Any, key: str, problems: list[str], dtype: Any = np.float32) -> np.ndarray | None:
    """``value`` as a ``dtype`` numpy array if it is a dense floating-point tensor whose values are
    finite in ``dtype``; else ``None`` and a problem naming ``key``."""
    array = usable_array(value, key, problems)
    return None if array is None else finite_cast(array, key, np.dtype(dtype), problems)


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
        array = usable_array(state[route.src], route.src, problems)
        if array is not None:
            array = apply_transform(array, route.transform, model, spec[route.dst][0], route.dst)
            array = finite_cast(array, route.src, np.dtype(np.float32), problems)  # checked as it will be written
        if array is not None:
            out[route.dst] = array
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
    """Load a Paddle-layout state_dict only if everything fits: every key and shape, every tensor a
    dense float tensor (for a float target) whose values are finite in the target's dtype. All of it
    is checked, and every problem listed in one ``ConversionError``, before the model is touched."""
    check_paddle_state(model, state)
    current = model.state_dict()
    problems: list[str] = []
    ready: dict[str, np.ndarray] = {}
    for key in state:
        want = _np_dtype(current[key])
        floating = np.issubdtype(want, np.floating)
        array = usable_array(state[key], key, problems, floating=floating)
        if array is not None and not floating and array.dtype != want:
            problems.append(f"{key!r} has dtype {array.dtype}, the model's tensor is {want}")
            continue
        if array is not None:
            array = finite_cast(array, key, want, problems)
        if array is not None:
            ready[key] = array
    if problems:
        raise ConversionError(f"weights do not fit model {model_name(model)!r}", problems)
    for key, array in ready.items():
        current[key].set_value(array)


def _np_dtype(tensor: paddle.Tensor) -> np.dtype:
    name = dtype_name(tensor)
    return np.dtype(np.float32 if name == "bfloat16" else name)  # a bfloat16 model is given float32 values
