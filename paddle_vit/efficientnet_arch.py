"""timm's EfficientNet builder as data: block strings -> one spec per block; framework-free, shared
by both trees (``paddle_vit.models.efficientnet`` and its torch mirror build their layers from it).

A network is a tuple of stages, each a tuple of block strings such as ``ir_r2_k3_s2_e6_c24_se0.25``:
the block kind first, then options in any order (timm's notation, ``_decode_block_str``):

    kind  ds (depthwise-separable), dsa (ds with activation after the pointwise conv, no skip),
          ir (inverted residual, MBConv), er (edge residual, Fused-MBConv), cn (conv-bn-act)
    r     repeats            k  kernel size, '3.5.7' = mixed kernels (MixNet's MixedConv2d)
    s     stride (1 or 2)    e  expansion ratio       c  output channels      se  SE ratio
    a, p  kernel(s) of the expansion / projection 1x1 convs ('1.1' = two channel groups)
    n     activation override: nre relu, nr6 relu6, nhs hard_swish, nsw silu, nmi mish
    noskip / skip   no shortcut (ir, er, ds) / a shortcut (cn)
    cc    CondConv experts (ir)     d1  space-to-depth stem block (ir, ds)
    fc    force the expansion's input width (er)     gs  group size of the k x k conv

Everything else that shapes the network is an argument of ``efficientnet_spec``: width and depth
multipliers with timm's rounding, ``fix_stem``, ``fix_first_last``, the head width rule, the
activation, normalisation and SE kinds. A string or argument outside these rules is a
``ValueError`` naming it and what is allowed.
"""
from __future__ import annotations

import inspect
import math
import re
from dataclasses import dataclass, replace
from typing import Sequence, Union

from paddle_vit.conv_arith import make_divisible

Kernel = Union[int, tuple]  # one kernel size, or a tuple: one per channel group (mixed / grouped conv)

BLOCK_KINDS = ("ds", "dsa", "ir", "er", "cn")
ACT_CODES = {"re": "relu", "r6": "relu6", "hs": "hard_swish", "sw": "silu", "mi": "mish"}
ACT_LAYERS = ("relu", "relu6", "silu", "hard_swish", "mish")
NORM_LAYERS = ("batchnorm", "groupnorm", "layernorm", "evonorm_s0")
SE_LAYERS = ("se", "gc")    # timm's SqueezeExcite, GlobalContext
DEPTH_TRUNC = ("ceil", "round")
# Options each kind takes (besides r, s, c): timm ignores the others silently, we refuse them.
_OPTIONS = {
    "ir": {"k", "e", "se", "a", "p", "cc", "d", "gs", "n", "noskip"},
    "ds": {"k", "e", "se", "p", "d", "gs", "n", "noskip"},
    "dsa": {"k", "e", "se", "p", "d", "gs", "n"},
    "er": {"k", "e", "se", "p", "fc", "gs", "n", "noskip"},
    "cn": {"k", "e", "gs", "n", "skip"},
}
_REQUIRED = {"ir": ("k", "e"), "ds": ("k",), "dsa": ("k",), "er": ("k", "e"), "cn": ("k",)}


@dataclass(frozen=True)
class BlockArgs:
    """One decoded block string (before channel rounding and repeats)."""
    kind: str                    # one of BLOCK_KINDS
    repeats: int
    out_chs: int
    stride: int
    kernel_size: Kernel          # the k x k (depthwise, expansion or plain) conv
    exp_ratio: float = 1.0
    exp_kernel_size: Kernel = 1  # ir: the 1x1 expansion ('a'); timm calls it exp_kernel_size
    pw_kernel_size: Kernel = 1   # the 1x1 projection ('p')
    se_ratio: float = 0.0
    act: str | None = None       # None: the model's activation
    noskip: bool = False
    skip: bool = False           # cn only: a shortcut
    num_experts: int = 0         # ir only: CondConv
    s2d: bool = False            # ir / ds: space-to-depth
    force_in_chs: int = 0        # er only
    group_size: int | None = None  # None: the kind's default (depthwise for ds/ir, dense for er/cn)
    pw_act: bool = False         # dsa: activation after the pointwise conv


def _kernel(value: str, block: str, key: str) -> Kernel:
    parts = value.split(".")
    if not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"block string {block!r}: option {key!r} needs positive integers joined by '.', got {value!r}")
    return int(parts[0]) if len(parts) == 1 else tuple(int(p) for p in parts)


def _number(value: str, block: str, key: str, kind: type = int) -> float:
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"block string {block!r}: option {key!r} needs a number, got {value!r}") from None


def decode_block(block: str) -> BlockArgs:
    """``'ir_r2_k3_s2_e6_c24_se0.25'`` -> ``BlockArgs``; a ValueError names the string and what is allowed."""
    if not isinstance(block, str) or not block:
        raise ValueError(f"a block string is a non-empty str such as 'ir_r2_k3_s2_e6_c24_se0.25', got {block!r}")
    kind, *ops = block.split("_")
    if kind not in BLOCK_KINDS:
        raise ValueError(f"block string {block!r}: unknown block kind {kind!r}; allowed: {', '.join(BLOCK_KINDS)}")
    allowed = _OPTIONS[kind] | {"r", "s", "c"}
    opts: dict[str, str] = {}
    flags: set[str] = set()
    for op in ops:
        if op in ("noskip", "skip"):
            key, value = op, ""
        elif op.startswith("n") and not op[1:2].isdigit():
            key, value = "n", op[1:]
            if value not in ACT_CODES:
                raise ValueError(f"block string {block!r}: unknown activation {op!r}; allowed: "
                                 + ", ".join(f"n{c} ({a})" for c, a in ACT_CODES.items()))
        else:
            found = re.fullmatch(r"([a-z]+)(\d.*)", op)
            if not found:
                raise ValueError(f"block string {block!r}: cannot read option {op!r} (expected a letter code and a number)")
            key, value = found.groups()
        if key not in allowed:
            raise ValueError(f"block string {block!r}: option {key!r} is not allowed in a {kind!r} block; "
                             f"allowed: {', '.join(sorted(allowed))}")
        if key in opts or key in flags:
            raise ValueError(f"block string {block!r}: option {key!r} given twice")
        (flags.add(key) if key in ("noskip", "skip") else opts.__setitem__(key, value))
    missing = [k for k in ("r", "s", "c") + _REQUIRED[kind] if k not in opts]
    if missing:
        raise ValueError(f"block string {block!r}: missing option(s) {', '.join(missing)}")
    stride = int(_number(opts["s"], block, "s"))
    if stride not in (1, 2):
        raise ValueError(f"block string {block!r}: stride must be 1 or 2, got {opts['s']}")
    repeats, out_chs = int(_number(opts["r"], block, "r")), int(_number(opts["c"], block, "c"))
    if repeats < 1 or out_chs < 1:
        raise ValueError(f"block string {block!r}: repeats and channels must be >= 1")
    exp_ratio = _number(opts.get("e", "1"), block, "e", float)
    if kind in ("ds", "dsa", "cn") and exp_ratio != 1:
        raise ValueError(f"block string {block!r}: a {kind!r} block has no expansion (e must be 1); "
                         "use 'ir' or 'er' for an expanded block")
    if exp_ratio <= 0:
        raise ValueError(f"block string {block!r}: expansion ratio must be > 0")
    se_ratio = _number(opts.get("se", "0"), block, "se", float)
    if not 0 <= se_ratio <= 1:
        raise ValueError(f"block string {block!r}: SE ratio must be in [0, 1], got {se_ratio}")
    kernel = _kernel(opts["k"], block, "k")
    if kind == "cn" and not isinstance(kernel, int):
        raise ValueError(f"block string {block!r}: a 'cn' block takes one kernel size, not mixed kernels")
    args = BlockArgs(
        kind="ds" if kind == "dsa" else kind, repeats=repeats, out_chs=out_chs, stride=stride, kernel_size=kernel,
        exp_ratio=exp_ratio,
        exp_kernel_size=_kernel(opts["a"], block, "a") if "a" in opts else 1,
        pw_kernel_size=_kernel(opts["p"], block, "p") if "p" in opts else 1,
        se_ratio=se_ratio, act=ACT_CODES[opts["n"]] if "n" in opts else None,
        noskip=kind == "dsa" or "noskip" in flags, skip="skip" in flags,
        num_experts=int(_number(opts["cc"], block, "cc")) if "cc" in opts else 0,
        s2d=int(_number(opts.get("d", "0"), block, "d")) > 0,
        force_in_chs=int(_number(opts["fc"], block, "fc")) if "fc" in opts else 0,
        group_size=int(_number(opts["gs"], block, "gs")) if "gs" in opts else None)
    if args.num_experts and any(not isinstance(k, int) for k in (kernel, args.exp_kernel_size, args.pw_kernel_size)):
        raise ValueError(f"block string {block!r}: CondConv ('cc') does not combine with mixed kernels")
    if args.s2d and (stride != 1 or not isinstance(kernel, int)):
        raise ValueError(f"block string {block!r}: space-to-depth ('d') needs stride 1 and one kernel size")
    return replace(args, pw_act=kind == "dsa")


def scale_stage_depth(repeats: Sequence[int], multiplier: float, trunc: str = "ceil") -> list[int]:
    """The repeats of a stage's block strings after a depth multiplier (timm's ``_scale_stage_depth``):
    the stage total is scaled (``ceil``, or ``round`` with at least 1), then shared out from the
    last string backwards, so that the first string is the least likely to grow."""
    if trunc not in DEPTH_TRUNC:
        raise ValueError(f"depth_trunc must be one of {DEPTH_TRUNC}, got {trunc!r}")
    total = sum(repeats)
    scaled = max(1, round(total * multiplier)) if trunc == "round" else int(math.ceil(total * multiplier))
    out = []
    for r in reversed(repeats):
        rs = max(1, round(r / total * scaled))
        out.append(rs)
        total -= r
        scaled -= rs
    return out[::-1]


@dataclass(frozen=True)
class BlockSpec:
    """One block of the network, ``blocks.{stage}.{index}``: every width and choice resolved."""
    stage: int
    index: int
    kind: str                 # 'ds', 'ir', 'er' or 'cn'
    in_chs: int
    out_chs: int
    mid_chs: int              # expanded width (ir, er); the depthwise width for ds; out_chs for cn
    stride: int
    kernel_size: Kernel
    exp_kernel_size: Kernel
    pw_kernel_size: Kernel
    groups: int               # of the k x k conv
    act: str
    se_chs: int               # squeeze width, 0: no SE / GC
    has_skip: bool
    pw_act: bool              # ds: activation after the pointwise conv (dsa)
    drop_path: float
    num_experts: int = 0      # CondConv
    s2d: int = 0              # 1: this block starts with the space-to-depth conv (in_chs -> 4 in_chs)
    dw_pad_type: str = ""     # pad type of the k x k conv (SAME for the 2x2 conv after space-to-depth)


@dataclass(frozen=True)
class NetworkSpec:
    """The whole network: stem, blocks in order, head."""
    stem_chs: int
    stem_kernel_size: int
    blocks: tuple[BlockSpec, ...]
    num_features: int         # 0: no head conv (the last block's width is the feature width)
    act: str
    feature_chs: int          # width reaching the classifier


def _groups(group_size: int | None, channels: int, default: int | None, where: str) -> int:
    """timm's ``num_groups``: group size 0 -> one group (dense), g -> channels // g (1 = depthwise)."""
    size = default if group_size is None else group_size
    if not size:
        return 1
    if channels % size:
        raise ValueError(f"{where}: {channels} channels are not divisible by group size {size}")
    return channels // size


def _se_chs(channels: int, ratio: float, se_layer: str, where: str) -> int:
    if not ratio:
        return 0
    # SqueezeExcite: round(c * r) (Python's round, as timm); GlobalContext: make_divisible(c * r, 1, round_limit=0)
    chs = round(channels * ratio) if se_layer == "se" else make_divisible(channels * ratio, 1, round_limit=0.0)
    if chs < 1:
        raise ValueError(f"{where}: squeeze width round({channels} * {ratio:g}) is 0; use a wider block or no SE")
    return chs


def efficientnet_spec(arch: Sequence[Sequence[str]], stem_size: int = 32, stem_kernel_size: int = 3,
                      fix_stem: bool = False, num_features: int = 1280, fix_head: bool = False,
                      head_floor: bool = False, channel_multiplier: float = 1.0, channel_divisor: int = 8,
                      round_limit: float = 0.9, depth_multiplier: float | Sequence[float] = 1.0,
                      depth_trunc: str = "ceil", fix_first_last: bool = False, group_size: int | None = None,
                      experts_multiplier: int = 1, act_layer: str = "relu", se_layer: str = "se",
                      pad_type: str = "", drop_path_rate: float = 0.0,
                      pruned: Sequence | None = None) -> NetworkSpec:
    """The network timm's ``EfficientNet`` + ``EfficientNetBuilder`` build from these arguments.

    Widths: ``round(c) = make_divisible(c * channel_multiplier, channel_divisor, round_limit)`` for
    every block's output, the stem (unless ``fix_stem``) and the head (``fix_head``: as given;
    ``head_floor``: never below ``num_features``; else ``round(num_features)``). Depth: each stage's
    repeats by ``depth_multiplier`` (one number, or one per stage; ``fix_first_last`` keeps the
    first and last stage). Block ``k`` of ``n`` drops its branch with probability
    ``drop_path_rate * k / n``. ``pruned``: ``(stem, ((mid, se, out), ...), head)`` widths that
    replace the computed ones (timm's ``*_pruned`` models).
    """
    if not arch or not all(isinstance(stage, (list, tuple)) and stage for stage in arch):
        raise ValueError(f"arch must be a non-empty sequence of non-empty stages of block strings, got {arch!r}")
    if act_layer not in ACT_LAYERS:
        raise ValueError(f"act_layer must be one of {ACT_LAYERS}, got {act_layer!r}")
    if se_layer not in SE_LAYERS:
        raise ValueError(f"se_layer must be one of {SE_LAYERS}, got {se_layer!r}")
    if not 0.0 <= drop_path_rate < 1.0:
        raise ValueError(f"drop_path_rate must be in [0, 1), got {drop_path_rate}")
    if channel_multiplier <= 0 or stem_size < 1 or num_features < 0 or experts_multiplier < 1:
        raise ValueError("need channel_multiplier > 0, stem_size >= 1, num_features >= 0 and experts_multiplier >= 1")
    depths = tuple(depth_multiplier) if isinstance(depth_multiplier, (list, tuple)) else (depth_multiplier,) * len(arch)
    if len(depths) != len(arch) or min(depths) <= 0:
        raise ValueError(f"depth_multiplier must be > 0, one number or one per stage ({len(arch)}), got {depth_multiplier!r}")

    def round_chs(c: int) -> int:
        return make_divisible(c * channel_multiplier, channel_divisor, round_limit=round_limit)

    stages = []
    for s, (strings, mult) in enumerate(zip(arch, depths)):
        decoded = [decode_block(b) for b in strings]
        fixed = fix_first_last and s in (0, len(arch) - 1)
        reps = scale_stage_depth([b.repeats for b in decoded], 1.0 if fixed else mult, depth_trunc)
        stage = []
        for b, r in zip(decoded, reps):
            if b.num_experts and experts_multiplier > 1:
                b = replace(b, num_experts=b.num_experts * experts_multiplier)
            if group_size is not None and b.group_size is None:
                b = replace(b, group_size=group_size)
            stage += [b] * r
        stages.append(stage)

    stem = stem_size if fix_stem else round_chs(stem_size)
    total, k, in_chs, blocks = sum(len(st) for st in stages), 0, stem, []
    space2depth = 0  # timm's state: 1 in the block that starts a space-to-depth region, 2 after it
    for s, stage in enumerate(stages):
        for j, b in enumerate(stage):
            stride, exp_ratio, s2d = (b.stride if j == 0 else 1), b.exp_ratio, 0
            if not space2depth and b.s2d:
                space2depth = 1
            if space2depth == 2 and stride == 2:  # the block that ends the region drops its stride
                stride, exp_ratio, space2depth = 1, exp_ratio / 4, 0
            elif space2depth:
                s2d = space2depth
            blocks.append(_block_spec(b, s, j, in_chs, round_chs(b.out_chs), stride, exp_ratio, s2d,
                                      round_chs(b.force_in_chs) if b.force_in_chs else 0, act_layer, se_layer,
                                      pad_type, drop_path_rate * k / total))
            if space2depth == 1:
                space2depth = 2
            in_chs, k = blocks[-1].out_chs, k + 1
    head = num_features if fix_head or not num_features else round_chs(num_features)
    if head_floor and num_features:
        head = max(num_features, head)
    spec = NetworkSpec(stem_chs=stem, stem_kernel_size=stem_kernel_size, blocks=tuple(blocks), num_features=head,
                       act=act_layer, feature_chs=head or in_chs)
    return apply_pruned(spec, pruned) if pruned is not None else spec


def _block_spec(b: BlockArgs, stage: int, index: int, in_chs: int, out_chs: int, stride: int, exp_ratio: float,
                s2d: int, force_in_chs: int, act_layer: str, se_layer: str, pad_type: str,
                drop_path: float) -> BlockSpec:
    """One block as timm's ``EfficientNetBuilder._make_block`` and the block classes resolve it."""
    where = f"blocks.{stage}.{index} ({b.kind})"
    if s2d and b.kind not in ("ir", "ds"):
        raise ValueError(f"{where}: a {b.kind!r} block cannot follow a space-to-depth block at stride 1; "
                         "allowed there: 'ir', 'ds' (or stride 2, which ends the region)")
    out = out_chs * 4 if s2d else out_chs
    se_ratio = b.se_ratio / (exp_ratio if b.kind in ("ir", "er") else 1.0)
    kernel, dw_pad, width = b.kernel_size, pad_type, in_chs
    if s2d == 1:  # a 2x2/2 SAME conv to 4x the channels, then a kernel half the size
        se_ratio /= 4
        width, kernel = 4 * in_chs, (b.kernel_size + 1) // 2
        dw_pad = "same" if kernel == 2 else pad_type
    if b.kind == "ir":
        mid = make_divisible(width * exp_ratio)
        groups, has_skip = _groups(b.group_size, mid, 1, where), in_chs == out and stride == 1 and not b.noskip
    elif b.kind == "er":
        mid = make_divisible((force_in_chs or in_chs) * exp_ratio)
        groups, has_skip = _groups(b.group_size, mid, 0, where), in_chs == out and stride == 1 and not b.noskip
        if in_chs % groups:
            raise ValueError(f"{where}: {in_chs} input channels do not split into {groups} groups")
    elif b.kind == "ds":
        mid = width
        groups, has_skip = _groups(b.group_size, width, 1, where), stride == 1 and in_chs == out and not b.noskip
    else:  # cn
        mid = out
        groups, has_skip = _groups(b.group_size, in_chs, 0, where), b.skip and stride == 1 and in_chs == out
    se = _se_chs(mid, se_ratio, se_layer, where) if b.kind != "cn" else 0
    return BlockSpec(stage=stage, index=index, kind=b.kind, in_chs=in_chs, out_chs=out, mid_chs=mid, stride=stride,
                     kernel_size=kernel, exp_kernel_size=b.exp_kernel_size, pw_kernel_size=b.pw_kernel_size,
                     groups=groups, act=b.act or act_layer, se_chs=se, has_skip=has_skip, pw_act=b.pw_act,
                     drop_path=drop_path, num_experts=b.num_experts, s2d=1 if s2d == 1 else 0, dw_pad_type=dw_pad)


def apply_pruned(spec: NetworkSpec, pruned: Sequence) -> NetworkSpec:
    """``spec`` with the widths of a pruned network, ``(stem, ((mid, se, out), ...), head)``: each
    block's input is the previous output; a depthwise block's width is its input's."""
    try:
        stem, widths, head = pruned
        widths = [tuple(int(v) for v in w) for w in widths]
    except (TypeError, ValueError):
        raise ValueError("pruned must be (stem, ((mid, se, out), ...), head)") from None
    if len(widths) != len(spec.blocks) or any(len(w) != 3 for w in widths):
        raise ValueError(f"pruned lists {len(widths)} blocks of (mid, se, out), the network has {len(spec.blocks)}")
    blocks, in_chs = [], int(stem)
    for b, (mid, se, out) in zip(spec.blocks, widths):
        where = f"pruned blocks.{b.stage}.{b.index}"
        if b.kind == "ds" and mid != in_chs:
            raise ValueError(f"{where}: a depthwise block's width must be its input's ({in_chs}), got {mid}")
        if b.has_skip and in_chs != out:
            raise ValueError(f"{where}: the block has a shortcut, so its output must be its input's width ({in_chs})")
        if bool(se) != bool(b.se_chs) or b.groups not in (1, b.mid_chs) or b.num_experts or b.s2d:
            raise ValueError(f"{where}: only SE widths and depthwise / dense convs can be pruned")
        blocks.append(replace(b, in_chs=in_chs, mid_chs=mid if b.kind != "cn" else out, out_chs=out, se_chs=se,
                              groups=mid if b.groups > 1 else 1))
        in_chs = out
    head = int(head)
    return replace(spec, stem_chs=int(stem), blocks=tuple(blocks), num_features=head,
                   feature_chs=head or in_chs)


SPEC_ARGS = frozenset(inspect.signature(efficientnet_spec).parameters)  # the network-shaping constructor arguments
