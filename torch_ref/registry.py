"""``create_model`` for the torch reference: same variant table as ``paddle_vit``."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from paddle_vit.variants import model_kwargs

FAMILIES: dict[str, type[nn.Module]] = {}


def register_family(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: ``name`` in the variant table builds this class."""
    def wrap(cls: type[nn.Module]) -> type[nn.Module]:
        FAMILIES[name] = cls
        cls.family = name
        return cls
    return wrap


def create_model(name: str, pretrained: str | Path | None = None, num_classes: int | None = None,
                 img_size: Any = None, **overrides: Any) -> nn.Module:
    """Build variant ``name`` (an arch or ``'<arch>.<tag>'``, as ``paddle_vit.create_model``);
    ``pretrained`` is a torch state_dict file of this model (strict). Hub downloads
    (``pretrained=True``) are ``paddle_vit``'s; for the torch side use timm or torchvision."""
    import torch_ref.models  # noqa: F401  (registers the families)
    from paddle_vit.pretrained import model_tag

    if pretrained is True:
        raise ValueError("torch_ref.create_model takes a checkpoint path; pretrained=True is paddle_vit's "
                         "(paddle_vit.create_model) or timm's")
    arch, row = model_tag(name, False)
    family, kwargs = model_kwargs(name, num_classes, img_size, **overrides)
    model = FAMILIES[family](**kwargs)
    model.variant = arch
    model.pretrained_cfg = row.as_dict() if row else {}
    if pretrained is not None and pretrained is not False:
        model.load_state_dict(torch.load(pretrained, map_location="cpu", weights_only=True), strict=True)
    model.eval()
    return model
