"""Loading a checkpoint into a model with a new classifier (the seed's transfer-learning step).

The seed keeps every tensor whose size fits the model and silently skips the rest. Here only the
classifier may be dropped, and every dropped tensor is reported with both shapes; anything else
that does not fit (a different backbone) is the converter's ``ConversionError`` listing every
problem, and the model keeps its weights. A dropped classifier tensor gets a new initial value
(``recipe.new_head_value``, the same in both trees), which goes through the same checked
conversion as the rest.
"""
from __future__ import annotations

import os
from typing import Any, Iterator, Mapping

import numpy as np
import paddle.nn as nn

from paddle_vit.convert import (convert_state_dict, detect_source, get_layout, load_state_dict_strict,
                                read_checkpoint, target_spec)
from paddle_vit.convert.core import LINEAR, expected_source_shape, tensor_shapes
from paddle_vit.convert.layouts import NONE
from paddle_vit.train.recipe import LoadReport, classifier_prefix, new_head_value


class _Overlay(Mapping):
    """``base`` with some values replaced, keeping ``base``'s lazy reading (``.shapes``)."""

    def __init__(self, base: Mapping[str, Any], replaced: Mapping[str, np.ndarray]) -> None:
        self.base, self.replaced = base, dict(replaced)
        self.shapes = {**tensor_shapes(base), **{k: tuple(v.shape) for k, v in self.replaced.items()}}

    def __getitem__(self, key: str) -> Any:
        return self.replaced[key] if key in self.replaced else self.base[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.base)

    def __len__(self) -> int:
        return len(self.base)


def load_for_finetune(model: nn.Layer, path: str | os.PathLike, source: str = "auto", seed: int = 0) -> LoadReport:
    """Load ``path`` (any checkpoint the converter reads: torch timm/torchvision/torch_ref,
    ``.pdparams``, ``.safetensors``) into ``model``, dropping the classifier tensors whose shape
    differs (a new number of classes); those start from ``recipe.new_head_value``. All or nothing,
    as ``paddle_vit.convert.load_pretrained``."""
    state, layout = read_checkpoint(path)
    prefix = classifier_prefix(model.family)
    spec = target_spec(model)
    shapes = tensor_shapes(state)
    report = LoadReport(str(path), "paddle")
    replaced: dict[str, np.ndarray] = {}
    if layout == "torch":
        report.source = detect_source(shapes, model.family) if source == "auto" else source
        targets = get_layout(model.family, report.source).key_mapper(shapes, model)
    for key, shape in shapes.items():
        if layout == "torch":
            try:
                mapped = targets(key)
            except KeyError:
                continue  # the converter reports it, with every other problem
            if not mapped:
                continue
            dst, transform = mapped[0]  # a classifier tensor is never split
        else:
            dst, transform = key, NONE
        if not dst.startswith(prefix) or dst not in spec:
            continue
        target_shape, kind = spec[dst]
        kind = kind if transform == NONE else transform
        want = expected_source_shape(target_shape, kind) if layout == "torch" else target_shape
        if tuple(shape) != tuple(want):
            value = new_head_value(dst, expected_source_shape(target_shape, kind), seed)  # torch's layout
            replaced[key] = value if layout == "torch" or kind != LINEAR else np.ascontiguousarray(value.T)
            report.dropped.append((dst, key, tuple(shape), tuple(want)))
    state = _Overlay(state, replaced)
    if layout == "torch":
        state = convert_state_dict(state, model, report.source)
    load_state_dict_strict(model, state)
    report.loaded = len(state) - len(replaced)
    return report
