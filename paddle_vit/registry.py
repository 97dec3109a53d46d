"""``create_model`` for Paddle: a variant name (see ``paddle_vit.variants``) -> a built model."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import paddle.nn as nn

from paddle_vit.variants import model_kwargs

if TYPE_CHECKING:
    from paddle_vit.convert import Pretrained

FAMILIES: dict[str, type[nn.Layer]] = {}


def register_family(name: str) -> Callable[[type[nn.Layer]], type[nn.Layer]]:
    """Class decorator: ``name`` in the variant table builds this class."""
    def wrap(cls: type[nn.Layer]) -> type[nn.Layer]:
        FAMILIES[name] = cls
        cls.family = name
        return cls
    return wrap


def create_model(name: str, pretrained: bool | str | Path | Pretrained | None = None, num_classes: int | None = None,
                 img_size: Any = None, **overrides: Any) -> nn.Layer:
    """Build variant ``name`` (an arch, or ``'<arch>.<tag>'`` for a pretrained tag: its
    ``num_classes`` and input size, as timm's ``create_model``).

    ``pretrained``: ``True`` fetches the tag's checkpoint (a bare arch: timm's default tag) through
    the Hugging Face Hub cache, converts it once and keeps the Paddle file cached (see
    ``paddle_vit.hub``); a path loads a ``.pdparams``/``.safetensors`` file of this model or a torch
    checkpoint (timm, torchvision, efficientnet-pytorch or torch_ref layout), converted on the fly
    (or a ``paddle_vit.convert.Pretrained`` already read, e.g. with a layout named by the caller).
    The model is built with the constructor arguments the checkpoint needs (a BatchNorm eps its
    library uses, see ``paddle_vit.convert.pretrained``), and the weights are checked completely
    before any is loaded. ``model.pretrained_cfg`` holds the tag's row (what
    ``paddle_vit.data.resolve_data_config`` reads)."""
    import paddle_vit.models  # noqa: F401  (registers the families)
    from paddle_vit.pretrained import check_head, model_tag
    from paddle_vit.runtime import configure_cpu
    configure_cpu()  # the CPU defaults, in case Paddle was imported before paddle_vit

    arch, row = model_tag(name, pretrained is True)
    family, kwargs = model_kwargs(row.name if row else name, num_classes, img_size, **overrides)
    if pretrained is True:
        check_head(row, kwargs)
    ckpt = None
    if pretrained is not None and pretrained is not False and pretrained is not True:
        from paddle_vit.convert import Pretrained, read_pretrained
        ckpt = pretrained if isinstance(pretrained, Pretrained) else read_pretrained(pretrained, family, arch)
        kwargs = ckpt.model_kwargs(kwargs, overrides)
    model = FAMILIES[family](**kwargs)
    model.variant = arch
    model.pretrained_cfg = row.as_dict() if row else {}
    if pretrained is True:
        from paddle_vit.hub import load_tag
        model.pretrained_info = load_tag(model, row, {"family": family, **kwargs})
    elif ckpt is not None:
        from paddle_vit.convert import load_pretrained
        load_pretrained(model, ckpt)
    model.eval()
    return model
