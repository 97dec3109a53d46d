"""Generate ``paddle_vit/zoo/efficientnet.py`` from the installed timm's ``efficientnet`` module.

    python tools/gen_efficientnet_zoo.py            # rewrite the table
    python tools/gen_efficientnet_zoo.py --check    # exit 1 if the table differs from timm's definitions

For every architecture of the module it calls timm's registered function (``pretrained=True``, so
that variants whose pretrained weights need other arguments, fbnetc_100's BN eps, get those) with
timm's ``_create_effnet`` replaced by a recorder: nothing is built or downloaded. The recorder keeps
what timm's generator (``_gen_*``) decided: the block strings it passed to ``decode_arch_def`` and
that function's arguments, the channel rounding, stem, head, activation, normalisation, SE layer
and padding. ``*_pruned`` variants also get their layer widths from timm's ``_pruned/*.txt``.
``parity_tests/test_efficientnet_zoo.py`` runs ``rows()`` again and compares it with the table, so
the table cannot drift from the installed timm; the project itself never imports timm.
"""
from __future__ import annotations

import argparse
import functools
import inspect
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "paddle_vit" / "zoo" / "efficientnet.py"
# Architectures we do not build: anti-aliased (BlurPool) downsampling has no counterpart here.
UNSUPPORTED = {"efficientnet_blur_b0": "aa_layer (BlurPool) is not implemented"}
# The head width rule of each timm generator (the base width and how the multiplier applies);
# checked against the width timm computes at the variant's multiplier.
_HEAD_SCALED = {"_gen_efficientnet", "_gen_efficientnet_edge", "_gen_efficientnet_condconv",
                "_gen_efficientnetv2_base", "_gen_efficientnetv2_s", "_gen_efficientnet_x", "_gen_test_efficientnet"}
_ACTS = {"ReLU": "relu", "ReLU6": "relu6", "SiLU": "silu", "Swish": "silu", "HardSwish": "hard_swish",
         "Hardswish": "hard_swish", "Mish": "mish"}
_NORMS = {"BatchNorm2d": "batchnorm", "GroupNormAct": "groupnorm", "LayerNormAct2d": "layernorm",
          "EvoNorm2dS0": "evonorm_s0"}


def head_rule(gen: str, gen_kwargs: dict[str, Any]) -> dict[str, Any]:
    """``fix_head`` / ``head_floor`` and the unscaled head width for a generator's call."""
    if gen == "_gen_mobilenet_v1":
        if not gen_kwargs.get("head_conv"):
            return dict(num_features=0)
        return dict(num_features=1024, **({"fix_head": True} if gen_kwargs.get("fix_stem_head") else {"head_floor": True}))
    if gen == "_gen_mobilenet_v2":
        return dict(num_features=1280, **({"fix_head": True} if gen_kwargs.get("fix_stem_head") else {"head_floor": True}))
    if gen == "_gen_tinynet":
        return dict(num_features=1280, head_floor=True)
    if gen in _HEAD_SCALED:
        base = 256 if gen == "_gen_test_efficientnet" else 1792 if gen_kwargs.get("rw") else 1280
        return dict(num_features=base)
    return dict(fix_head=True)  # the generator's number as it is


@contextmanager
def recording() -> Iterator[dict[str, Any]]:
    """timm's efficientnet module with its generators, ``decode_arch_def`` and ``_create_effnet``
    recording their arguments (``_create_effnet`` builds nothing); restored afterwards."""
    from timm.models import efficientnet as E
    record: dict[str, Any] = {}
    saved = {n: getattr(E, n) for n in dir(E) if n.startswith("_gen_") or n in ("decode_arch_def", "_create_effnet")}

    def gen_recorder(name: str, fn):
        @functools.wraps(fn)
        def wrapper(variant, *args, **kwargs):
            bound = inspect.signature(fn).bind(variant, *args, **kwargs)
            record.setdefault("gen", (name, {k: v for k, v in bound.arguments.items() if k not in ("variant", "kwargs")}
                                      | bound.arguments.get("kwargs", {})))
            return fn(variant, *args, **kwargs)
        return wrapper

    def decode_recorder(arch_def, *args, **kwargs):
        bound = inspect.signature(saved["decode_arch_def"]).bind(arch_def, *args, **kwargs)
        bound.apply_defaults()
        record["decode"] = dict(bound.arguments)
        return saved["decode_arch_def"](arch_def, *args, **kwargs)

    def create_recorder(variant, pretrained=False, **kwargs):
        record["create"] = kwargs

    try:
        for n, fn in saved.items():
            if n.startswith("_gen_"):
                setattr(E, n, gen_recorder(n, fn))
        E.decode_arch_def, E._create_effnet = decode_recorder, create_recorder
        yield record
    finally:
        for n, fn in saved.items():
            setattr(E, n, fn)


def capture(name: str) -> dict[str, Any]:
    """What timm's registered ``name`` passes to its generator, ``decode_arch_def`` and ``EfficientNet``."""
    import timm.models.efficientnet as E
    with recording() as record:
        getattr(E, name)(pretrained=True)
    return dict(record)


def _act(layer: Any) -> str:
    name = layer if isinstance(layer, str) else getattr(layer, "__name__", type(layer).__name__)
    return _ACTS.get(name, name)


def pruned_widths(name: str, n_blocks: int, kinds: list[str]) -> tuple:
    """``(stem, ((mid, se, out), ...), head)`` from timm's ``_pruned/{name}.txt``."""
    from importlib import resources
    text = resources.files("timm.models").joinpath("_pruned", f"{name}.txt").read_text()
    shapes = {}
    for item in text.split("***"):
        key, _, shape = item.partition(":")
        dims = shape.strip()[1:-1]
        shapes[key.strip()] = [int(v) for v in dims.split(",")] if dims.strip() else []
    prefixes = sorted({".".join(k.split(".")[:3]) for k in shapes if k.startswith("blocks.")},
                      key=lambda p: tuple(int(v) for v in p.split(".")[1:3]))
    assert len(prefixes) == n_blocks, (name, len(prefixes), n_blocks)
    widths = []
    for p, kind in zip(prefixes, kinds):
        mid = shapes[f"{p}.conv_dw.weight"][0]
        out = shapes[f"{p}.{'conv_pwl' if kind == 'ir' else 'conv_pw'}.weight"][0]
        if kind == "ir":
            assert shapes[f"{p}.conv_pw.weight"][0] == mid, p
        se = shapes[f"{p}.se.conv_reduce.weight"][0] if f"{p}.se.conv_reduce.weight" in shapes else 0
        widths.append((mid, se, out))
    return (shapes["conv_stem.weight"][0], tuple(widths), shapes["conv_head.weight"][0])


def row(name: str) -> tuple[dict[str, Any], tuple[str, dict[str, Any]]]:
    """Our constructor arguments for timm's ``name``, and the timm generator call they came from."""
    import timm
    from paddle_vit.efficientnet_arch import SPEC_ARGS, efficientnet_spec
    rec = capture(name)
    gen, gen_kwargs = rec["gen"]
    decode, create = rec["decode"], rec["create"]
    rnd = create["round_chs_fn"]
    assert rnd.func.__name__ == "round_channels", name
    rk = rnd.keywords
    norm = create.get("norm_layer")
    norm_cls = norm.func if isinstance(norm, functools.partial) else norm
    norm_kw = dict(norm.keywords) if isinstance(norm, functools.partial) else {}
    out: dict[str, Any] = dict(arch=tuple(tuple(s) for s in decode["arch_def"]))
    mult = rk.get("multiplier", 1.0)
    out["channel_multiplier"] = mult
    if rk.get("divisor", 8) != 8:
        out["channel_divisor"] = rk["divisor"]
    if rk.get("round_limit", 0.9) != 0.9:
        out["round_limit"] = rk["round_limit"]
    dm = decode["depth_multiplier"]
    out["depth_multiplier"] = tuple(dm) if isinstance(dm, (list, tuple)) else dm
    for key, default in (("depth_trunc", "ceil"), ("fix_first_last", False), ("group_size", None),
                         ("experts_multiplier", 1)):
        if decode[key] != default:
            out[key] = decode[key]
    out["stem_size"] = create.get("stem_size", 32)
    for key, default in (("stem_kernel_size", 3), ("fix_stem", False)):
        if create.get(key, default) != default:
            out[key] = create[key]
    out.update(head_rule(gen, gen_kwargs))
    if out.get("fix_head"):
        out["num_features"] = create.get("num_features", 1280)
    out["act_layer"] = _act(create.get("act_layer") or "ReLU")
    kind = _NORMS[norm_cls.__name__ if norm_cls is not None else "BatchNorm2d"]
    if kind != "batchnorm":
        out["norm_layer"] = kind
        if norm_kw.get("group_size"):
            out["norm_group_size"] = norm_kw.pop("group_size")
    out["bn_eps"] = norm_kw.get("eps", 1e-5)
    if norm_kw.get("momentum", 0.1) != 0.1:
        out["bn_momentum"] = norm_kw["momentum"]
    if create.get("se_layer") not in (None, "se"):
        out["se_layer"] = create["se_layer"]
    if create.get("pad_type", ""):
        out["pad_type"] = create["pad_type"]
    out["img_size"] = timm.models.get_pretrained_cfg(name).input_size[-1]
    if create.get("pruned"):
        spec = efficientnet_spec(**{k: v for k, v in out.items() if k in SPEC_ARGS})
        out["pruned"] = pruned_widths(name, len(spec.blocks), [b.kind for b in spec.blocks])
    spec = efficientnet_spec(**{k: v for k, v in out.items() if k in SPEC_ARGS})
    assert spec.num_features == create.get("num_features", 1280), (name, spec.num_features, create.get("num_features"))
    assert spec.stem_chs == (create["stem_size"] if create.get("fix_stem") else rnd(create["stem_size"])), name
    unknown = set(create) - {"block_args", "num_features", "stem_size", "stem_kernel_size", "fix_stem", "round_chs_fn",
                             "act_layer", "norm_layer", "se_layer", "pad_type", "pruned"}
    assert not unknown, (name, unknown)
    timm_kwargs = {k: _layer_ref(v) for k, v in gen_kwargs.items() if k != "pretrained"}
    return out, (gen, timm_kwargs)


def _layer_ref(value: Any) -> Any:
    """A layer argument of a timm generator as data: ``partial(GroupNormAct, group_size=8)`` ->
    ``('GroupNormAct', {'group_size': 8})`` (a class of ``timm.layers``); other values as they are."""
    if isinstance(value, functools.partial):
        return (value.func.__name__, dict(value.keywords))
    if isinstance(value, type):
        return (value.__name__, {})
    assert not callable(value), value
    return value


def architectures() -> list[str]:
    import timm
    return sorted(n for n in timm.list_models(module="efficientnet") if n not in UNSUPPORTED)


def rows() -> tuple[dict[str, dict[str, Any]], dict[str, tuple[str, dict[str, Any]]]]:
    out, gens = {}, {}
    for name in architectures():
        out[name], gens[name] = row(name)
    return out, gens


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, tuple) and value and all(isinstance(v, str) for v in value):
        return "(" + ", ".join(repr(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def render(table: dict[str, dict[str, Any]], gens: dict[str, tuple[str, dict[str, Any]]]) -> str:
    import timm
    users: dict[tuple, list[str]] = {}
    for name, r in table.items():
        users.setdefault(r["arch"], []).append(name)
    def base_user(n: str) -> tuple:  # the unscaled, unprefixed variant names the table
        r = table[n]
        return n.startswith(("tf_", "gc_", "test_")), r["channel_multiplier"] != 1.0, r["depth_multiplier"] != 1.0, len(n), n

    # one constant per distinct block-string table
    archs = {arch: "ARCH_" + min(names, key=base_user).upper() for arch, names in users.items()}
    pruned = {name: r["pruned"] for name, r in table.items() if "pruned" in r}
    lines = [
        '"""timm\'s EfficientNet family as data: every architecture of timm\'s ``efficientnet`` module',
        f"(timm {timm.__version__}), under timm's name and with timm's arguments, built by",
        "``paddle_vit.models.efficientnet.EfficientNet`` through ``paddle_vit.efficientnet_arch``.",
        "",
        "GENERATED by ``python tools/gen_efficientnet_zoo.py`` from timm's definitions (its ``_gen_*``",
        "functions and block strings); ``parity_tests/test_efficientnet_zoo.py`` fails if this file and the",
        "installed timm disagree. Do not edit by hand: change the tool and run it again.",
        "",
        "``bn_eps`` is the eps of timm's model of that name: 1e-3 for the ``tf_`` ports of TensorFlow",
        "weights (and fbnetc_100's and the pruned models' weights), 1e-5 for timm's own. Checkpoints from",
        "other libraries bring their builders' eps with them (``paddle_vit.convert.layouts``, ``config``).",
        '"""',
        "from __future__ import annotations",
        "",
        "from typing import Any",
        "",
        'FAMILY = "efficientnet"',
        "",
        "# Block strings, one tuple per stage (see paddle_vit/efficientnet_arch.py for the notation).",
    ]
    for arch, const in archs.items():
        lines.append(f"{const} = (")
        lines += [f"    {_fmt(stage)}," for stage in arch]
        lines.append(")")
    lines += ["", "# Layer widths of timm's pruned models, (stem, ((mid, se, out) per block), head), from timm's _pruned/*.txt."]
    for name, widths in pruned.items():
        stem, blocks, head = widths
        lines.append(f"PRUNED_{name.upper()} = ({stem}, (")
        for i in range(0, len(blocks), 6):
            lines.append("    " + " ".join(f"{b!r}," for b in blocks[i:i + 6]))
        lines.append(f"), {head})")
    lines += ["", "VARIANTS: dict[str, dict[str, Any]] = {"]
    for name, r in table.items():
        items = []
        for k, v in r.items():
            if k == "arch":
                items.append(f"arch={archs[v]}")
            elif k == "pruned":
                items.append(f"pruned=PRUNED_{name.upper()}")
            else:
                items.append(f"{k}={_fmt(v)}")
        lines.append(f"    {name!r}: dict({', '.join(items)}),")
    lines += ["}", "",
              "# The timm generator each variant comes from and its arguments (for tests that build timm's",
              "# network at other widths and depths; the models never read this).",
              "TIMM_GENERATORS: dict[str, tuple[str, dict[str, Any]]] = {"]
    lines += [f"    {name!r}: ({g!r}, {kw!r})," for name, (g, kw) in gens.items()]
    lines += ["}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on a difference")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    text = render(*rows())
    if args.check:
        same = TABLE.read_text() == text
        print("up to date" if same else f"{TABLE} differs from the installed timm: run tools/gen_efficientnet_zoo.py")
        return 0 if same else 1
    TABLE.write_text(text)
    print(f"wrote {TABLE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
