"""``create_model`` for Paddle: a variant name (see ``paddle_vit.variants``) -> a built model."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import paddle.nn as nn

from paddle_vit.variants import model_kwargs

FAMILIES: dict[str, type[nn.Layer]] = {}


def register_family(name: str) -> Callable[[type[nn.Layer]], type[nn.Layer]]:
    """Class decorator: ``name`` in the variant table builds this class."""
    def wrap(cls: type[nn.Layer]) -> type[nn.Layer]:
        FAMILIES[name] = cls
        cls.family = name
        return cls
    return wrap


def create_model(name: str, pretrained: str | Path | None = None, num_classes: int | None = None,
                 img_size: Any = None, **overrides: Any) -> nn.Layer:
    """Build variant ``name``; ``pretrained`` is a ``.pdparams``/``.safetensors`` file of this
    model or a torch checkpoint (timm, torchvision or torch_ref layout), converted on the fly.
    The weights are checked completely before any is loaded. The model is built with the
    constructor arguments the checkpoint needs (a BatchNorm eps its library uses, see
    ``paddle_vit.convert.pretrained``)."""
    import paddle_vit.models  # noqa: F401  (registers the families)

    family, kwargs = model_kwargs(name, num_classes, img_size, **overrides)
    ckpt = None
    if pretrained is not None:
        from paddle_vit.convert import read_pretrained
        ckpt = read_pretrained(pretrained, family, name)
        kwargs = ckpt.model_kwargs(kwargs, overrides)
    model = FAMILIES[family](**kwargs)
    model.variant = name
    if ckpt is not None:
        from paddle_vit.convert import load_pretrained
        load_pretrained(model, ckpt)
    model.eval()
    return model
