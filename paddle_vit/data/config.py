"""timm's ``resolve_data_config``: the preprocessing a model (or a tag) was trained with."""
from __future__ import annotations

from typing import Any, Mapping

from paddle_vit.pretrained import (DEFAULT_CROP_MODE, DEFAULT_CROP_PCT, DEFAULT_INTERPOLATION, IMAGENET_DEFAULT_MEAN,
                                   IMAGENET_DEFAULT_STD, get_tag)


def _pretrained_cfg(model_or_tag: Any) -> tuple[dict[str, Any], Any]:
    """(the tag's config, the model's image size if known) for a model, a tag or an arch name."""
    if isinstance(model_or_tag, str):
        row = get_tag(model_or_tag)
        img_size = None
        if row is None:
            from paddle_vit.pretrained import split_name
            from paddle_vit.variants import get_variant
            img_size = get_variant(split_name(model_or_tag)[0])[1].get("img_size")
        return (row.as_dict() if row else {}), img_size
    if isinstance(model_or_tag, Mapping):  # a pretrained cfg itself
        return dict(model_or_tag), None
    cfg = getattr(model_or_tag, "pretrained_cfg", None)
    img_size = getattr(getattr(model_or_tag, "patch_embed", None), "img_size", None)
    if cfg is None and getattr(model_or_tag, "variant", None):
        return _pretrained_cfg(model_or_tag.variant)
    return dict(cfg or {}), img_size


def resolve_data_config(model_or_tag: Any = None, args: Mapping[str, Any] | None = None,
                        use_test_size: bool = False) -> dict[str, Any]:
    """``input_size``, ``interpolation``, ``mean``, ``std``, ``crop_pct``, ``crop_mode`` for
    ``model_or_tag``: a model from ``create_model`` (its ``pretrained_cfg``), a tag
    (``'vit_base_patch16_224.augreg2_in21k_ft_in1k'``), an arch (its default tag) or a pretrained
    cfg dict. ``args`` overrides any key (and ``img_size``), as timm's. Resolution is timm's; where
    no tag exists the model's own image size replaces timm's fallback of 224."""
    args = dict(args or {})
    cfg, img_size = _pretrained_cfg(model_or_tag) if model_or_tag is not None else ({}, None)
    if img_size is None:
        img_size = 224
    h, w = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    config: dict[str, Any] = {}
    if args.get("input_size") is not None:
        config["input_size"] = tuple(args["input_size"])
    elif args.get("img_size") is not None:
        config["input_size"] = (3, args["img_size"], args["img_size"])
    elif use_test_size and cfg.get("test_input_size"):
        config["input_size"] = tuple(cfg["test_input_size"])
    else:
        config["input_size"] = tuple(cfg.get("input_size") or (3, h, w))
    config["interpolation"] = args.get("interpolation") or cfg.get("interpolation") or DEFAULT_INTERPOLATION
    config["mean"] = tuple(args["mean"] if args.get("mean") is not None else cfg.get("mean") or IMAGENET_DEFAULT_MEAN)
    config["std"] = tuple(args["std"] if args.get("std") is not None else cfg.get("std") or IMAGENET_DEFAULT_STD)
    if args.get("crop_pct"):
        config["crop_pct"] = args["crop_pct"]
    elif use_test_size and cfg.get("test_crop_pct"):
        config["crop_pct"] = cfg["test_crop_pct"]
    else:
        config["crop_pct"] = cfg.get("crop_pct") or DEFAULT_CROP_PCT
    config["crop_mode"] = args.get("crop_mode") or cfg.get("crop_mode") or DEFAULT_CROP_MODE
    return config
