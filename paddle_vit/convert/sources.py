"""The torch model a source layout comes from, built with the source's own arguments for our variant.

The converter's verification runs a checkpoint through the model it was made for (timm's,
torchvision's or ``torch_ref``'s) and through ours. A family adds a source by registering a
builder here; a source with no builder, or whose package is missing, cannot be verified and
says so (it never passes silently).
"""
from __future__ import annotations

import importlib.util
from typing import Any, Callable

from paddle_vit.convert.core import ConversionError
from paddle_vit.convert.layouts import ALIASES

Builder = Callable[[str, dict], Any]   # (variant name, overrides of its arguments) -> torch.nn.Module
BUILDERS: dict[tuple[str, str], Builder] = {}
# The package each source needs, for the "install it" message.
PACKAGES = {"timm": "timm", "torchvision": "torchvision", "torch_ref": "torch"}


def register_builder(family: str, source: str) -> Callable[[Builder], Builder]:
    def wrap(fn: Builder) -> Builder:
        BUILDERS[(family, source)] = fn
        return fn
    return wrap


def build_source_model(name: str, family: str, source: str, kwargs: dict[str, Any]) -> Any:
    """The torch model of ``source`` layout for variant ``name`` with its arguments overridden by
    ``kwargs`` (as ``create_model`` takes them), in eval mode."""
    builder = BUILDERS.get((family, source)) or BUILDERS.get(("*", source))
    if builder is None:
        raise ConversionError(f"cannot verify a {source} checkpoint of the {family!r} family",
                              [f"no builder for ({family!r}, {source!r}) in paddle_vit/convert/sources.py; "
                               "pass --no-verify to convert without checking"])
    package = PACKAGES.get(source)
    if package and importlib.util.find_spec(package) is None:
        raise ConversionError(f"cannot verify a {source} checkpoint",
                              [f"verification builds the {source} model and needs `pip install {package}`; "
                               "or pass --no-verify"])
    try:
        return builder(name, dict(kwargs)).eval()
    except TypeError as exc:  # an argument of ours that the source library's constructor does not take
        raise ConversionError(f"cannot verify: the {source} model of {name!r} cannot be built with {kwargs}",
                              [str(exc)[:300], "pass --no-verify to convert without the check"]) from None


@register_builder("*", "torch_ref")
def _torch_ref(name: str, kwargs: dict) -> Any:
    from torch_ref.registry import create_model
    return create_model(name, **kwargs)


# The source's own arguments. Our variant names are timm's and so are most of our constructor
# arguments; the exceptions, per family: the name timm's constructor uses for ours, INPUT_SIZE (the
# value only names the input size: timm's model takes any size, so it is left out, and the
# verification still runs at that size), or FIXED (timm's variant fixes it: there is no argument
# to pass an override of it to). A family or argument not listed is passed on as it is.
INPUT_SIZE, FIXED = "<input size>", None
TIMM_ARGS: dict[str, dict[str, str | None]] = {
    # timm's EfficientNet has no img_size; its _gen_efficientnetv2_* builders set the stage table
    # (block_args), stem_size and num_features themselves
    "efficientnetv2": {"img_size": INPUT_SIZE, "stages": FIXED, "stem_size": FIXED, "num_features": FIXED},
}


def timm_kwargs(name: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` of our arguments for variant ``name`` as timm's ``create_model`` takes them."""
    from paddle_vit.variants import get_variant
    family = get_variant(name)[0]
    table = TIMM_ARGS.get(family, {})
    fixed = sorted(k for k in overrides if k in table and table[k] is FIXED)
    if fixed:
        raise ConversionError(f"cannot verify a timm checkpoint of {name!r} built with {fixed}",
                              [f"timm's {family} models fix {', '.join(fixed)} by variant: there is no argument "
                               "for an override; pass --no-verify, or --source torch_ref (same layout)"])
    return {table.get(k, k): v for k, v in overrides.items() if table.get(k, k) != INPUT_SIZE}


@register_builder("*", "timm")
def _timm(name: str, kwargs: dict) -> Any:
    import timm
    from paddle_vit.variants import canonical_name
    args = timm_kwargs(name, kwargs)
    name, extra = canonical_name(name)  # another library's name (torchvision's vit_h_14) -> timm's
    try:
        return timm.create_model(name, pretrained=False, **{**extra, **args})
    except RuntimeError as exc:  # timm's "Unknown model"
        raise ConversionError(f"cannot verify a timm checkpoint of {name!r}", [str(exc)[:300]]) from None


# torchvision's VisionTransformer argument for each of ours; the MLP width is derived.
_TV_VIT_ARGS = {"img_size": "image_size", "patch_size": "patch_size", "depth": "num_layers",
                "num_heads": "num_heads", "embed_dim": "hidden_dim", "num_classes": "num_classes"}


@register_builder("vit", "torchvision")
def _torchvision_vit(name: str, overrides: dict) -> Any:
    from torchvision.models.vision_transformer import VisionTransformer
    from paddle_vit.variants import model_kwargs
    kwargs = model_kwargs(name, **overrides)[1]
    unsupported = set(kwargs) - set(_TV_VIT_ARGS) - {"mlp_ratio"}
    if unsupported or not isinstance(kwargs.get("img_size", 224), int) or not isinstance(kwargs["patch_size"], int):
        raise ConversionError(f"cannot verify a torchvision checkpoint of {name!r}", [
            f"torchvision's VisionTransformer has no counterpart to {sorted(unsupported) or 'a non-square size'}"])
    args = {_TV_VIT_ARGS[k]: v for k, v in kwargs.items() if k in _TV_VIT_ARGS}
    args.setdefault("image_size", 224)
    args["mlp_dim"] = int(kwargs["embed_dim"] * kwargs.get("mlp_ratio", 4.0))
    return VisionTransformer(**args)


@register_builder("swin", "torchvision")
def _torchvision_swin(name: str, overrides: dict) -> Any:
    from torchvision.models.swin_transformer import SwinTransformer
    return SwinTransformer(**_torchvision_swin_args(name, overrides, "swin"))


@register_builder("swinv2", "torchvision")
def _torchvision_swin_v2(name: str, overrides: dict) -> Any:
    from torchvision.models.swin_transformer import PatchMergingV2, SwinTransformer, SwinTransformerBlockV2
    return SwinTransformer(**_torchvision_swin_args(name, overrides, "swinv2"), block=SwinTransformerBlockV2,
                           downsample_layer=PatchMergingV2)


def _torchvision_swin_args(name: str, overrides: dict, family: str) -> dict[str, Any]:
    """torchvision's ``SwinTransformer`` arguments for our Swin (V1 or V2) variant."""
    from paddle_vit import swin_tables
    from paddle_vit.variants import model_kwargs
    kwargs = model_kwargs(name, **overrides)[1]
    kwargs.pop("img_size", None)  # torchvision's Swin takes any size
    kwargs.pop("window_rule", None)  # torchvision computes by its own (plan() refuses a model that differs)
    if family == "swinv2" and any(kwargs.pop("pretrained_window_sizes", None) or ()):
        raise ConversionError(f"cannot verify a torchvision checkpoint of {name!r}", [
            "torchvision's Swin V2 normalises its coordinates by the window itself: it has no "
            "pretrained_window_sizes"])
    unsupported = set(kwargs) - {"patch_size", "embed_dim", "depths", "num_heads", "window_size", "num_classes",
                                 "mlp_ratio"}
    windows = set(swin_tables.stage_windows(kwargs.get("window_size", 7), len(kwargs["depths"])))
    if unsupported or len(windows) > 1:
        raise ConversionError(f"cannot verify a torchvision checkpoint of {name!r}", [
            f"torchvision's SwinTransformer has no counterpart to {sorted(unsupported) or 'per-stage windows'}"])
    pair = lambda v: [v, v] if isinstance(v, int) else list(v)  # noqa: E731
    return dict(patch_size=pair(kwargs.get("patch_size", 4)), embed_dim=kwargs["embed_dim"],
                depths=list(kwargs["depths"]), num_heads=list(kwargs["num_heads"]), window_size=list(windows.pop()),
                mlp_ratio=kwargs.get("mlp_ratio", 4.0), num_classes=kwargs.get("num_classes", 1000))


@register_builder("efficientnetv2", "torchvision")
def _torchvision_efficientnetv2(name: str, overrides: dict) -> Any:
    import torchvision
    from paddle_vit.convert.layouts import TORCHVISION_NAMES
    unsupported = set(overrides) - {"num_classes", "img_size"}  # torchvision's net takes any image size
    if name not in TORCHVISION_NAMES or unsupported:
        raise ConversionError(f"cannot verify a torchvision checkpoint of {name!r}", [
            f"torchvision builds only {sorted(n for n in TORCHVISION_NAMES if 'efficientnet' in n)} as they are"
            + (f", without {sorted(unsupported)}" if unsupported else "")])
    return getattr(torchvision.models, TORCHVISION_NAMES[name])(num_classes=overrides.get("num_classes", 1000))


def source_names(family: str) -> list[str]:
    """Every ``--source`` value that reads ``family`` (layouts and their aliases)."""
    from paddle_vit.convert.layouts import sources
    found = sources(family)
    return sorted(found + [a for a, s in ALIASES.items() if s in found])
