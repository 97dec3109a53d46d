"""The framework-free EfficientNet builder (``paddle_vit.efficientnet_arch``): block strings decoded as
timm decodes them, stage depths scaled as timm scales them, and every bad string or argument a
``ValueError`` that names it and what is allowed."""
from __future__ import annotations

import pytest

from paddle_vit.efficientnet_arch import decode_block, efficientnet_spec, scale_stage_depth

timm_builder = pytest.importorskip("timm.models._efficientnet_builder", reason="timm not installed")
from paddle_vit.zoo.efficientnet import VARIANTS  # noqa: E402

# every distinct block string of the zoo
STRINGS = sorted({b for v in VARIANTS.values() for stage in v["arch"] for b in stage})


def _kernel(k):
    return tuple(k) if isinstance(k, list) else k


@pytest.mark.parametrize("block", STRINGS)
def test_block_strings_decode_as_timm(block):
    theirs, repeats = timm_builder._decode_block_str(block)
    ours = decode_block(block)
    assert ours.repeats == repeats and ours.out_chs == theirs["out_chs"] and ours.stride == theirs["stride"]
    kind = {"ds": "ds", "dsa": "ds", "ir": "ir", "er": "er", "cn": "cn"}[theirs["block_type"]]
    assert ours.kind == kind
    act = theirs["act_layer"]
    assert (ours.act is None) == (act is None)
    if kind == "cn":
        assert ours.kernel_size == theirs["kernel_size"] and ours.skip == theirs["skip"]
        return
    key = "exp_kernel_size" if kind == "er" else "dw_kernel_size"
    assert ours.kernel_size == _kernel(theirs[key])
    assert ours.pw_kernel_size == _kernel(theirs["pw_kernel_size"])
    assert ours.se_ratio == theirs["se_ratio"] and ours.noskip == theirs["noskip"]
    if kind in ("ir", "er"):
        assert ours.exp_ratio == theirs["exp_ratio"]
    if kind == "ir":
        assert ours.exp_kernel_size == _kernel(theirs["exp_kernel_size"]) and ours.s2d == theirs["s2d"]
        assert ours.num_experts == theirs.get("num_experts", 0)
    if kind == "ds":
        assert ours.pw_act == theirs["pw_act"] and ours.s2d == theirs["s2d"]
    if kind == "er":
        assert ours.force_in_chs == theirs["force_in_chs"]
    assert ours.group_size == theirs.get("group_size")


@pytest.mark.parametrize("repeats", [(1,), (2,), (4,), (1, 2), (1, 3), (1, 1, 1, 1), (1, 2, 1), (3, 1)])
@pytest.mark.parametrize("multiplier", [0.25, 0.5, 0.6, 0.9, 1.0, 1.1, 1.4, 2.2, 3.1, 5.3])
@pytest.mark.parametrize("trunc", ["ceil", "round"])
def test_stage_depth_scaling_is_timms(repeats, multiplier, trunc):
    args = [{"i": i} for i in range(len(repeats))]
    theirs = timm_builder._scale_stage_depth(args, list(repeats), multiplier, trunc)
    ours = scale_stage_depth(repeats, multiplier, trunc)
    assert [a["i"] for a in theirs] == [i for i, r in enumerate(ours) for _ in range(r)]


@pytest.mark.parametrize("block,msg", [
    ("xx_r1_k3_s1_c16", "unknown block kind 'xx'; allowed: ds, dsa, ir, er, cn"),
    ("uir_r1_k3_s1_e4_c16", "unknown block kind 'uir'"),
    ("ir_r1_k3_s3_e6_c16", "stride must be 1 or 2, got 3"),
    ("ir_r1_k3_s0_e6_c16", "stride must be 1 or 2"),
    ("ir_r1_k3_s1_c16", "missing option"),
    ("ir_r1_k3_s1_e6_c16_zz4", "option 'zz' is not allowed in a 'ir' block; allowed:"),
    ("er_r1_k3_s1_e4_c16_cc4", "option 'cc' is not allowed in a 'er' block"),
    ("cn_r1_k3_s1_c16_d1", "option 'd' is not allowed in a 'cn' block"),
    ("cn_r1_k3.5_s1_c16", "'cn' block takes one kernel size"),
    ("ds_r1_k3_s1_e6_c16", "'ds' block has no expansion"),
    ("ir_r1_k3.5_s1_e6_c16_cc4", "CondConv ('cc') does not combine with mixed kernels"),
    ("ir_r1_k3_s2_e6_c16_d1", "space-to-depth ('d') needs stride 1"),
    ("ir_r1_k3_s1_e6_c16_nxx", "unknown activation 'nxx'; allowed: nre (relu)"),
    ("ir_r1_k3_s1_e6_c16_se2", "SE ratio must be in [0, 1]"),
    ("ir_r1_k3_s1_e6_c16_r2", "option 'r' given twice"),
    ("ir_r1_k3_s1_e6_c16_", "cannot read option ''"),
    ("ir_r1_kx_s1_e6_c16", "cannot read option 'kx'"),
    ("", "a block string is a non-empty str"),
])
def test_bad_block_string_is_a_clear_error(block, msg):
    with pytest.raises(ValueError, match=msg.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        decode_block(block)
    if block:  # the message names the string
        with pytest.raises(ValueError, match=repr(block).replace("[", r"\[").replace(".", r"\.")):
            decode_block(block)


@pytest.mark.parametrize("kwargs,msg", [
    (dict(arch=()), "arch must be a non-empty sequence"),
    (dict(arch=(("ir_r1_k3_s1_e6_c16",), ())), "arch must be a non-empty sequence"),
    (dict(act_layer="gelu"), "act_layer must be one of"),
    (dict(se_layer="eca"), "se_layer must be one of"),
    (dict(depth_multiplier=(1.0, 1.0, 1.0)), "one number or one per stage"),
    (dict(depth_trunc="floor"), "depth_trunc must be one of"),
    (dict(drop_path_rate=1.0), "drop_path_rate must be in"),
    (dict(arch=(("ir_r1_k3_s1_e6_c16_gs5",),)), "not divisible by group size 5"),
    (dict(arch=(("ds_r1_k3_s1_c16_d1",), ("er_r1_k3_s1_e4_c24",))), "cannot follow a space-to-depth block"),
    (dict(arch=(("ir_r1_k3_s1_e1_c16_se0.01",),), stem_size=8), "squeeze width"),
    (dict(pruned=(32, ((1, 1, 1),), 1280)), "pruned lists 1 blocks"),
])
def test_bad_arguments_are_a_clear_error(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        efficientnet_spec(**{"arch": (("ir_r1_k3_s1_e6_c16",), ("ir_r2_k3_s2_e6_c24",)), **kwargs})


def test_drop_path_grows_linearly_with_the_block_index():
    spec = efficientnet_spec(VARIANTS["efficientnet_b0"]["arch"], drop_path_rate=0.3)
    n = len(spec.blocks)
    assert [b.drop_path for b in spec.blocks] == pytest.approx([0.3 * k / n for k in range(n)])


def test_space_to_depth_region_as_timm():
    """EfficientNet-X: the stem block goes 4x wider, the blocks after it in the stage stay 4x wider,
    the next stage's first block drops its stride and divides its expansion by 4."""
    spec = efficientnet_spec(VARIANTS["efficientnet_x_b5"]["arch"], channel_multiplier=1.6, depth_multiplier=2.2)
    first, second, ends = spec.blocks[0], spec.blocks[1], spec.blocks[3]
    assert (first.s2d, first.in_chs, first.mid_chs, first.kernel_size, first.dw_pad_type) == (1, 48, 192, 2, "same")
    assert first.out_chs == 4 * 24 and (second.s2d, second.in_chs, second.out_chs, second.has_skip) == (0, 96, 96, True)
    assert (ends.stage, ends.index, ends.stride, ends.mid_chs) == (1, 0, 1, 144)  # 96 * 6 / 4
