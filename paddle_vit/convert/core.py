"""torch state_dict -> Paddle state_dict for our models: plan every tensor, check all, then convert.

Nothing is loaded until the whole plan is valid: a wrong checkpoint fails with one error that
lists every missing, unexpected, unmapped or mis-shaped key, and the model is left untouched.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np
import paddle
import paddle.nn as nn

from paddle_vit.convert.layouts import LAYOUTS, NONE, POS_EMBED, Layout, get_layout

LINEAR = "linear"  # derived from the target layer's type, see layouts.py


class ConversionError(ValueError):
    """A checkpoint does not fit a model; ``problems`` lists every reason, one per line."""

    def __init__(self, what: str, problems: list[str]) -> None:
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
    for src, shape in source_shapes.items():
        try:
            mapped = layout.map_key(src)
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


def apply_transform(array: np.ndarray, transform: str, model: nn.Layer, target_shape: tuple[int, ...]) -> np.ndarray:
    if transform == LINEAR:
        return np.ascontiguousarray(array.T)
    if transform == POS_EMBED and tuple(array.shape) != target_shape:
        from paddle_vit.layers.pos_embed import resample_pos_embed
        grid = model.patch_embed.grid_size
        prefix = target_shape[1] - grid[0] * grid[1]
        return resample_pos_embed(paddle.to_tensor(array), grid, num_prefix_tokens=prefix).numpy()
    return array


def plan_for(state: Mapping[str, Any], model: nn.Layer, source: str = "auto") -> list[Route]:
    """The checked route of every tensor of ``state`` into ``model`` (see ``convert_state_dict``)."""
    family = getattr(model, "family", None)
    if family is not None and source == "auto":
        source = detect_source(state.keys(), family)
    return plan({k: tuple(v.shape) for k, v in state.items()}, model, get_layout(family, source))


def convert_state_dict(state: Mapping[str, Any], model: nn.Layer, source: str = "auto") -> dict[str, np.ndarray]:
    """A torch-layout ``state`` (tensors or arrays) as a Paddle state_dict of ``model`` (numpy arrays).

    ``source``: ``'auto'`` (detected from the keys), ``'timm'``, ``'torchvision'`` or ``'torch_ref'``.
    """
    routes = plan_for(state, model, source)
    spec = target_spec(model)
    problems, out = [], {}
    for route in routes:
        array = to_numpy(state[route.src], route.src)
        if not np.issubdtype(array.dtype, np.floating):
            problems.append(f"{route.src!r} has dtype {array.dtype}, expected a floating-point tensor")
            continue
        if not np.isfinite(array).all():
            problems.append(f"{route.src!r} holds NaN or Inf values")
            continue
        out[route.dst] = apply_transform(array, route.transform, model, spec[route.dst][0]).astype(np.float32, copy=False)
    if problems:
        raise ConversionError(f"checkpoint does not fit model {model_name(model)!r}", problems)
    return out


def load_state_dict_strict(model: nn.Layer, state: Mapping[str, np.ndarray]) -> None:
    """Load a Paddle-layout state_dict only if every key and shape matches; else nothing is loaded."""
    current = model.state_dict()
    problems = [f"missing key {k!r} {list(v.shape)}" for k, v in current.items() if k not in state]
    problems += [f"unexpected key {k!r} {list(np.shape(v))}" for k, v in state.items() if k not in current]
    problems += [f"shape mismatch {k!r}: file {list(np.shape(v))}, model needs {list(current[k].shape)}"
                 for k, v in state.items() if k in current and tuple(np.shape(v)) != tuple(current[k].shape)]
    if problems:
        raise ConversionError(f"weights do not fit model {model_name(model)!r}", problems)
    for key, value in state.items():
        target = current[key]
        target.set_value(np.asarray(value).astype(_np_dtype(target), copy=False))


def _np_dtype(tensor: paddle.Tensor) -> np.dtype:
    return np.dtype(str(tensor.dtype).replace("paddle.", ""))
