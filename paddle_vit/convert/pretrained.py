"""A checkpoint's constructor arguments: what the weights need besides their tensors.

Some facts of a trained network are not tensors: BatchNorm's eps, for one. A variant's arguments
are those of timm's model of that name; a checkpoint from another library brings the arguments its
library builds the model with, declared by its layout (``Layout.config``, e.g. torchvision's
EfficientNetV2 uses eps 1e-3 where timm's ``efficientnetv2_s`` uses 1e-5). The layout is detected
from the keys, so ``create_model(name, pretrained=path)`` builds the right network for either
source with no flag. Paddle files written by the converter record the arguments (``io.CONFIG_KEY``)
and bring them the same way. An explicit argument that contradicts them is an error: it would give
other logits than the network the weights were trained in.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

from paddle_vit.convert.core import ConversionError, detect_source, tensor_shapes
from paddle_vit.convert.io import read_checkpoint
from paddle_vit.convert.layouts import get_layout


@dataclass
class Pretrained:
    """A checkpoint read for variant ``variant``: its tensors, whose keys they use (``'paddle'`` or a
    torch source layout) and the constructor arguments they need."""
    path: str
    state: Mapping[str, Any]
    source: str          # 'paddle', or the torch layout ('timm', 'torchvision', ...)
    config: dict

    def model_kwargs(self, kwargs: dict[str, Any], explicit: Mapping[str, Any]) -> dict[str, Any]:
        """``kwargs`` with the checkpoint's arguments; ``explicit`` (the caller's own) may not contradict them."""
        check_config(self.config, explicit, f"{self.path} ({self.source} checkpoint)")
        return {**kwargs, **self.config}


def check_config(config: Mapping[str, Any], given: Mapping[str, Any], what: str) -> None:
    """Raise ``ConversionError`` if ``given`` sets an argument to another value than ``config``."""
    clash = [f"{k}={given[k]!r}: the weights need {k}={v!r}" for k, v in config.items()
             if k in given and given[k] != v]
    if clash:
        raise ConversionError(f"{what} was trained in a network built with {config}", clash + [
            "drop the argument: the model is built with the checkpoint's own"])


def read_pretrained(path: str | os.PathLike, family: str | None, variant: str | None,
                    source: str = "auto") -> Pretrained:
    """Read ``path`` and find the constructor arguments its weights need for ``variant``."""
    state, kind = read_checkpoint(path)
    if kind == "paddle":
        return Pretrained(str(path), state, "paddle", dict(getattr(state, "config", {})))
    if family is not None and source == "auto":
        source = detect_source(tensor_shapes(state), family)
    config = get_layout(family, source).config_for(variant) if family is not None else {}
    return Pretrained(str(path), state, source, config)


def checkpoint_config(source: str, family: str | None, variant: str | None) -> dict:
    """The constructor arguments a ``source``-layout checkpoint of ``variant`` needs (the converter's view)."""
    if family is None or source in ("paddle", "torch_ref"):
        return {}
    return get_layout(family, source).config_for(variant)


def model_config_mismatch(model: Any, config: Mapping[str, Any]) -> list[str]:
    """The arguments of ``config`` that a built ``model`` (its attributes of the same names) contradicts."""
    return [f"the model has {k}={getattr(model, k)!r}, the weights need {k}={v!r}"
            for k, v in config.items() if hasattr(model, k) and getattr(model, k) != v]
