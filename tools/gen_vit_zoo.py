"""Generate ``paddle_vit/zoo/vit.py``, the ViT variant table, from the installed timm's model definitions.

    python tools/gen_vit_zoo.py            # rewrite paddle_vit/zoo/vit.py
    python tools/gen_vit_zoo.py --check    # exit 1 (listing the differences) if the table is not timm's

Every architecture of timm's ``vision_transformer`` and ``deit`` modules with at least one
pretrained tag becomes one row under timm's name. The row is what timm's entrypoint passes to
its model class when ``timm.create_model(name)`` builds the architecture with its default
pretrained configuration (image size and class count of the first tag), in our constructor's
terms (``translate``): a ``functools.partial(LayerNorm, eps=1e-5)`` becomes ``norm_eps=1e-5``,
classes become timm's names (``mlp_layer='SwiGLU'``), ``VisionTransformerDistilled`` becomes
``distilled=True``. Arguments equal to our defaults are left out, except the five that say
which ViT a row is (image, patch, width, depth, heads).

timm is needed only here and in the test that checks the table against it
(``parity_tests/test_vit_zoo.py``); the project does not import timm at run time.
"""
from __future__ import annotations

import argparse
import functools
import inspect
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "paddle_vit" / "zoo" / "vit.py"
MODULES = ("vision_transformer", "deit")
CORE = ("img_size", "patch_size", "embed_dim", "depth", "num_heads")

# torchvision's five ViTs under their own names: (timm's variant of the same architecture, what
# torchvision's constructor builds differently from timm's default configuration). Facts from
# torchvision.models.vision_transformer: vit_b_16/b_32/l_16/l_32/h_14 at 224 px, 1000 classes.
TORCHVISION_ALIASES = {
    "vit_b_16": ("vit_base_patch16_224", {}),
    "vit_b_32": ("vit_base_patch32_224", {}),
    "vit_l_16": ("vit_large_patch16_224", {}),
    "vit_l_32": ("vit_large_patch32_224", {"num_classes": 1000}),
    "vit_h_14": ("vit_huge_patch14_224", {"num_classes": 1000}),
}


def architectures() -> list[str]:
    """timm's ``vision_transformer`` and ``deit`` architectures that have a pretrained tag, sorted."""
    import timm
    return sorted({tag.split(".")[0] for module in MODULES for tag in timm.list_models(module=module, pretrained=True)})


class _Captured(Exception):
    pass


def timm_constructor_args(name: str) -> tuple[str, dict[str, Any]]:
    """``(class name, kwargs)`` that ``timm.create_model(name)`` hands its model class (nothing is built)."""
    from timm.models import _builder, _registry, deit, vision_transformer
    seen: dict[str, Any] = {}

    def build(model_cls: Any, variant: str, pretrained: bool, **kwargs: Any) -> Any:
        def record(**final: Any) -> Any:
            seen.update(cls=model_cls.__name__, kwargs=final)
            raise _Captured
        try:
            _builder.build_model_with_cfg(record, variant, pretrained, **kwargs)
        except _Captured:
            pass

    patched = [m for m in (vision_transformer, deit) if hasattr(m, "build_model_with_cfg")]
    originals = [m.build_model_with_cfg for m in patched]
    try:
        for m in patched:
            m.build_model_with_cfg = build
        _registry.model_entrypoint(name)(pretrained=False)
    finally:
        for m, original in zip(patched, originals):
            m.build_model_with_cfg = original
    if not seen:
        raise RuntimeError(f"timm's entrypoint {name!r} did not build through build_model_with_cfg")
    return seen["cls"], seen["kwargs"]


def _norm(value: Any, option: str) -> tuple[str, float | None]:
    """A timm norm layer (class or ``partial(cls, eps=...)``) -> (our name, eps or None for the default)."""
    from timm.layers import LayerNorm, RmsNorm
    import torch.nn as nn
    eps = None
    if isinstance(value, functools.partial):
        if set(value.keywords) - {"eps"} or value.args:
            raise ValueError(f"{option}={value!r}: only an eps may be bound")
        eps, value = value.keywords.get("eps"), value.func
    names = {LayerNorm: "layernorm", nn.LayerNorm: "layernorm", RmsNorm: "rmsnorm"}
    if value not in names:
        raise ValueError(f"{option}={value!r} has no counterpart here")
    return names[value], eps


def _act(value: Any) -> str:
    import torch.nn as nn
    from timm.layers.activations import GELUTanh, QuickGELU
    if isinstance(value, str):
        return value
    names = {nn.GELU: "gelu", nn.SiLU: "silu", nn.ReLU: "relu", nn.Sigmoid: "sigmoid", GELUTanh: "gelu_tanh",
             QuickGELU: "quick_gelu"}
    if value not in names:
        raise ValueError(f"act_layer={value!r} has no counterpart here")
    return names[value]


def _mlp(value: Any) -> str:
    from timm.layers import GluMlp, Mlp, SwiGLU, SwiGLUPacked
    if value is SwiGLUPacked or (isinstance(value, functools.partial) and value.func is GluMlp
                                 and value.keywords.get("gate_last") is False and not value.args):
        return "SwiGLUPacked"  # its act_layer is overridden by the block's, as in timm
    names = {Mlp: "Mlp", SwiGLU: "SwiGLU", GluMlp: "GluMlp"}
    if value not in names:
        raise ValueError(f"mlp_layer={value!r} has no counterpart here")
    return names[value]


def translate(cls_name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """timm's constructor arguments -> ours (see the module doc); an argument with no counterpart is an error."""
    from paddle_vit.vit_arch import ATTN_LAYERS, BLOCK_FNS
    from timm.layers import Attention
    import timm.models.vision_transformer as tvt
    timm_defaults = {k: p.default for k, p in inspect.signature(tvt.VisionTransformer.__init__).parameters.items()}
    out: dict[str, Any] = {k: kwargs.get(k, timm_defaults[k]) for k in CORE}
    size = out["img_size"]
    out["img_size"] = size if isinstance(size, int) or size[0] != size[1] else int(size[0])
    if cls_name == "VisionTransformerDistilled":
        out["distilled"] = True
    elif cls_name != "VisionTransformer":
        raise ValueError(f"model class {cls_name} is not a VisionTransformer")
    for key, value in kwargs.items():
        if key in CORE:
            continue
        if key == "norm_layer":
            out["norm_layer"], eps = _norm(value, key)
            if eps is not None:
                out["norm_eps"] = eps
        elif key == "embed_norm_layer":
            out["embed_norm_layer"], eps = _norm(value, key)
            if eps is not None and eps != out.get("norm_eps", 1e-6):
                raise ValueError(f"embed_norm_layer eps {eps} differs from norm_layer's: one norm_eps here")
        elif key == "act_layer":
            out[key] = _act(value)
        elif key == "mlp_layer":
            out[key] = _mlp(value)
        elif key == "block_fn":
            if getattr(value, "__name__", None) not in BLOCK_FNS:
                raise ValueError(f"block_fn={value!r} has no counterpart here")
            out[key] = value.__name__
        elif key == "attn_layer":
            value = "attn" if value in ("", Attention) else value
            if value not in ATTN_LAYERS:
                raise ValueError(f"attn_layer={value!r} has no counterpart here")
            out[key] = value
        else:
            out[key] = tuple(value) if isinstance(value, list) else value
    return _without_defaults(out)


def _without_defaults(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Drop what equals our constructor's default (the five core arguments always stay)."""
    from torch_ref.models.vit import VisionTransformer
    ours = inspect.signature(VisionTransformer.__init__).parameters
    unknown = sorted(set(kwargs) - set(ours))
    if unknown:
        raise ValueError(f"timm arguments with no counterpart in our VisionTransformer: {unknown}")
    return {k: v for k, v in kwargs.items() if k in CORE or v != ours[k].default}


def timm_table() -> dict[str, dict[str, Any]]:
    """Every architecture (``architectures()``) -> its row, from the installed timm."""
    return {name: translate(*timm_constructor_args(name)) for name in architectures()}


def render(table: dict[str, dict[str, Any]]) -> str:
    import timm
    lines = [
        '"""Vision Transformer variants: every architecture of timm\'s ``vision_transformer`` and ``deit``',
        "modules with a pretrained tag, under timm's name, with the arguments timm builds it with (its",
        "default pretrained configuration's image size and class count included).",
        "",
        f"GENERATED by tools/gen_vit_zoo.py from timm {timm.__version__}; do not edit by hand: rerun it.",
        "parity_tests/test_vit_zoo.py checks this table against the installed timm.",
        "",
        "``ALIASES``: torchvision's five ViTs under torchvision's names (``create_model('vit_h_14')``):",
        "the timm variant of the same architecture, with what torchvision's constructor builds differently.",
        '"""',
        "from __future__ import annotations",
        "",
        "from typing import Any",
        "",
        'FAMILY = "vit"',
        "",
        "VARIANTS: dict[str, dict[str, Any]] = {",
    ]
    for name, kwargs in table.items():
        lines += _row(f'    "{name}": dict(', kwargs, "),")
    lines += ["}", "", "ALIASES: dict[str, tuple[str, dict[str, Any]]] = {"]
    for alias, (target, extra) in TORCHVISION_ALIASES.items():
        lines.append(f'    "{alias}": ("{target}", {extra!r}),')
    lines += ["}", ""]
    return "\n".join(lines)


def _row(head: str, kwargs: dict[str, Any], tail: str, width: int = 118) -> list[str]:
    parts = [f"{k}={v!r}" for k, v in kwargs.items()]
    lines, line = [], head
    for i, part in enumerate(parts):
        piece = part + (", " if i < len(parts) - 1 else "")
        if len(line) + len(piece.rstrip()) > width and line.strip() != head.strip():
            lines.append(line.rstrip())
            line = " " * 8
        line += piece
    lines.append(line + tail)
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare, do not write")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    text = render(timm_table())
    if args.check:
        if TABLE.read_text() != text:
            print(f"{TABLE} differs from the installed timm's definitions: rerun tools/gen_vit_zoo.py", file=sys.stderr)
            return 1
        print("the ViT table matches the installed timm")
        return 0
    TABLE.write_text(text)
    print(f"wrote {TABLE}: {text.count('dict(')} variants")
    return 0


if __name__ == "__main__":
    sys.exit(main())
