"""Peers of ``paddle-vit bench --peers``: PaddleClas's equivalent architectures and timm through ONNX Runtime.

PaddleClas (``pip install --no-deps paddleclas``; PaddleClas 2.6.0 pins ``numpy==1.24.4`` and
pulls in opencv, faiss, visualdl, scikit-learn: none of them is needed to build its models) is
not a dependency of paddle_vit. Its model modules are imported one by one, without running the
``paddleclas``/``ppcls`` package ``__init__`` files (they import the whole model zoo, the training
engine, ``requests``, ``cv2``, ``sklearn``, ``six``), and with two of its leaf modules left out:

  ``ppcls.utils.download``  the weights downloader (``requests``): the bench uses random weights
  ``ppcls.utils.check``     config-file checks (``six`` and the whole backbone registry), imported
                            by ``ppcls.utils.config``, whose ``AttrDict`` EfficientNetV2 needs

Each is replaced by a module whose functions raise when called, so nothing silently downloads
or checks. PaddleClas's models get their own random initialisation: their
outputs are not comparable with ours (the bench leaves the error column empty for them).
"""
from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PADDLECLAS_INSTALL = "pip install --no-deps paddleclas"
BACKBONE = "paddleclas.ppcls.arch.backbone"


@dataclass(frozen=True)
class Peer:
    """A PaddleClas constructor for one of our bench models, and how the two architectures differ."""
    module: str        # under ppcls.arch.backbone
    constructor: str   # the function PaddleClas's configs name (``Arch.name``)
    cls: str           # the class it builds (for overridden sizes, e.g. the dry run)
    differences: str   # "" when the architecture is the same as timm's
    same_param_count: bool = True  # as timm's model (trainable parameters; a test checks it)


# Our bench model -> PaddleClas (2.6.0), or why there is none. Read from PaddleClas's constructors.
PADDLECLAS_MODELS: dict[str, Peer | str] = {
    "vit_small_patch16_224": Peer(
        "model_zoo.vision_transformer", "ViT_small_patch16_224", "VisionTransformer",
        "not timm's ViT-S/16: PaddleClas's is the 2020 'ViT small' (embed 768, depth 8, 8 heads, MLP ratio 3, "
        "no qkv bias, qk scale 768^-0.5, LayerNorm eps 1e-5) where timm's has embed 384, depth 12, 6 heads, "
        "MLP ratio 4, qkv bias, eps 1e-6", same_param_count=False),
    "vit_base_patch16_224": Peer("model_zoo.vision_transformer", "ViT_base_patch16_224", "VisionTransformer", ""),
    "swin_tiny_patch4_window7_224": Peer(
        "legendary_models.swin_transformer", "SwinTransformer_tiny_patch4_window7_224", "SwinTransformer", ""),
    "swinv2_tiny_window8_256": Peer(
        "model_zoo.swin_transformer_v2", "SwinTransformerV2_tiny_patch4_window8_256", "SwinTransformerV2", ""),
    "efficientnetv2_s": Peer(
        "model_zoo.efficientnet_v2", "EfficientNetV2_S", "EfficientNetV2",
        "same blocks as timm's efficientnetv2_s, but TF 'SAME' padding computed at build for 384 px inputs "
        "(asymmetric cases padded then cropped) where timm pads symmetrically"),
    "efficientnet_b0": Peer(
        "model_zoo.efficientnet", "EfficientNetB0", "EfficientNet",
        "TF 'SAME' padding computed at build for 224 px (padded then cropped where asymmetric) where timm's "
        "efficientnet_b0 pads symmetrically"),
    "mobilenetv2_100": Peer(
        "model_zoo.mobilenet_v2", "MobileNetV2", "MobileNet",
        "its first inverted residual (expansion 1) keeps a 1x1 expansion conv 32->32 + BN + ReLU6 that timm's "
        "mobilenetv2_100 (and torchvision's) leave out", same_param_count=False),
    "vit_small_patch14_reg4_dinov2": "PaddleClas 2.6.0 has no ViT with register tokens and no DINOv2 "
                                     "(its foundation ViTs: CLIP, BEiTv2, CAE, EVA, MAE, MoCoV3, ...)",
}
# Our ViT overrides (the dry run's) -> PaddleClas VisionTransformer's arguments. Its **kwargs
# swallow unknown names silently, so only these are passed; any other override is refused.
VIT_OVERRIDES = {"img_size": "img_size", "patch_size": "patch_size", "embed_dim": "embed_dim", "depth": "depth",
                 "num_heads": "num_heads", "mlp_ratio": "mlp_ratio", "qkv_bias": "qkv_bias",
                 "num_classes": "class_num"}
VIT_DEFAULTS = {"qkv_bias": True, "epsilon": 1e-6}  # timm's ViT, where our overrides do not say


def mparams(model) -> float:
    """Millions of trainable parameters of a Paddle or torch model (Paddle lists BatchNorm's
    running statistics among its parameters, not trainable; torch keeps them as buffers)."""
    return sum(int(p.numel()) for p in model.parameters() if getattr(p, "trainable", True)) / 1e6


class PeerUnavailable(Exception):
    """A peer that cannot run here: the message says why (and what to install)."""


def _package(name: str, directory: Path) -> types.ModuleType:
    """``name`` as a package whose ``__init__`` is not run (its submodules import as usual)."""
    if name in sys.modules:
        return sys.modules[name]
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
    module.__spec__.submodule_search_locations = module.__path__ = [str(directory)]
    module.__package__ = name
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    return module


class _LeftOut(types.ModuleType):
    """A stand-in for a PaddleClas module the bench leaves out: every function it is asked for
    exists (``from .download import get_weights_path_from_url`` imports) and raises when called."""

    def __init__(self, name: str, why: str) -> None:
        super().__init__(name)
        self._why = why

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)

        def refuse(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError(f"{self.__name__}.{attr} is left out by paddle_vit.bench_peers: {self._why}")
        return refuse


def _left_out(name: str, why: str) -> None:
    if name not in sys.modules:
        sys.modules[name] = module = _LeftOut(name, why)
        parent, _, child = name.rpartition(".")
        setattr(sys.modules[parent], child, module)


def paddleclas_module(module: str) -> types.ModuleType:
    """``ppcls.arch.backbone.<module>`` of the installed PaddleClas, imported as the docstring says."""
    spec = importlib.util.find_spec("paddleclas")  # a top-level name: finds, does not import
    if spec is None or not spec.submodule_search_locations:
        raise PeerUnavailable(f"PaddleClas is not installed: {PADDLECLAS_INSTALL}")
    root = Path(list(spec.submodule_search_locations)[0])
    if not (root / "ppcls" / "arch" / "backbone" / (module.replace(".", "/") + ".py")).exists():
        raise PeerUnavailable(f"this PaddleClas has no ppcls/arch/backbone/{module}.py (2.6.0 has)")
    backbone = root / "ppcls" / "arch" / "backbone"
    for name, directory in [("paddleclas", root), ("paddleclas.ppcls", root / "ppcls"),
                            ("paddleclas.ppcls.utils", root / "ppcls" / "utils"),
                            ("paddleclas.ppcls.arch", root / "ppcls" / "arch"),
                            (BACKBONE, backbone), (BACKBONE + ".legendary_models", backbone / "legendary_models")]:
        _package(name, directory)
    _left_out("paddleclas.ppcls.utils.download", "the bench uses random weights, it downloads nothing")
    _left_out("paddleclas.ppcls.utils.check", "the bench reads no PaddleClas config file")
    try:
        return importlib.import_module(f"{BACKBONE}.{module}")
    except ImportError as e:
        raise PeerUnavailable(f"PaddleClas's {module} does not import here: {e}") from None


def build_paddleclas(name: str, overrides: dict[str, Any]):
    """``(model, note)``: PaddleClas's model for our bench model ``name`` (random weights, eval mode),
    and a note on what it is. ``overrides`` (our ViT sizes, as the dry run gives) build their
    ``VisionTransformer`` at those sizes; other families are built only at their own sizes."""
    peer = PADDLECLAS_MODELS.get(name)
    if peer is None:
        raise PeerUnavailable(f"no PaddleClas equivalent of {name} is mapped")
    if isinstance(peer, str):
        raise PeerUnavailable(peer)
    import paddle
    module = paddleclas_module(peer.module)
    if overrides and (peer.cls != "VisionTransformer" or set(overrides) - set(VIT_OVERRIDES)):
        raise PeerUnavailable(f"PaddleClas's {peer.cls} is built here only at its own sizes "
                              f"(overrides {sorted(overrides)})")
    kwargs = {**VIT_DEFAULTS, **{VIT_OVERRIDES[k]: v for k, v in overrides.items()}}
    # A fresh parameter-name scope: PaddleClas's convnets name their parameters (``_conv_stem_weights``,
    # ``conv1_1_weights``), and dygraph refuses a second model with the same names in one process.
    with paddle.utils.unique_name.guard():
        if overrides:
            model, what = getattr(module, peer.cls)(**kwargs), f"PaddleClas {peer.cls}({kwargs})"
        else:
            model, what = getattr(module, peer.constructor)(pretrained=False), f"PaddleClas {peer.constructor}"
    model.eval()
    note = f"{what}, random weights, {mparams(model):.3g} M params"
    return model, note + (f"; {peer.differences}" if peer.differences and not overrides else "")
