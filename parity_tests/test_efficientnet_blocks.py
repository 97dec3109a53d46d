"""The MBConv family's blocks and layers, Paddle against the torch reference (forward, input and
weight gradients, train-mode BatchNorm) and against timm's own layers where they share the design:
SAME padding, mixed-kernel and CondConv convolutions, the norm + activation layers; BatchNorm's
momentum and variance rule; bad configurations."""
from __future__ import annotations

import numpy as np
import paddle
import pytest
import torch

import paddle_vit.layers as PL
import paddle_vit.models.efficientnet_blocks as P
import torch_ref.layers as TL
import torch_ref.models.efficientnet_blocks as T
from harness import check_parity, pair, random_input, randomize_, sync
from harness_train import check_batchnorm_config, check_state
from paddle_vit.conv_arith import same_padding, split_channels
from paddle_vit.parity import assert_close, tolerance

# --- blocks ----------------------------------------------------------------------------
BLOCKS = [  # (class name, args, kwargs, has shortcut)
    ("ConvBNAct", (8, 8, 3, 1), dict(skip=True), True),
    ("ConvBNAct", (8, 12, 3, 2), dict(act_layer=None), False),
    ("ConvBNAct", (8, 16, 1, 1), dict(act_layer="relu"), False),            # EdgeTPU's 1x1 stem block
    ("DepthwiseSeparable", (8, 8, 3, 1), dict(se_chs=2), True),
    ("DepthwiseSeparable", (8, 16, 3, 2), dict(act_layer="relu6", pw_act=True, noskip=True), False),
    ("DepthwiseSeparable", (8, 24, 2, 1), dict(se_chs=8, s2d=1, dw_pad_type="same"), False),  # EfficientNet-X stem
    ("MBConv", (8, 8, 3, 1, 4, 0.25), {}, True),
    ("MBConv", (8, 16, 3, 2, 6, 0.25), {}, False),
    ("MBConv", (8, 8, 5, 1, 4, 0.0), {}, True),                              # no SE
    ("MBConv", (16, 8, 3, 1, 6, 0.25), dict(act_layer="hard_swish"), False),
    ("MBConv", (16, 16, (3, 5, 7), 1, 3, 0.0), dict(exp_kernel_size=(1, 1), pw_kernel_size=(1, 1)), True),  # MixNet
    ("MBConv", (12, 24, (3, 5), 2, 6, 0.5), dict(act_layer="silu", se_chs=6), False),
    ("MBConv", (8, 8, 3, 1, 4), dict(se_chs=3, se_layer="gc"), True),        # global context
    ("MBConv", (16, 16, 3, 1, 4, 0.0), dict(groups=4, mid_chs=64), True),    # grouped, not depthwise
    ("CondConvMBConv", (8, 8, 3, 1, 4, 0.25), dict(num_experts=4), True),
    ("CondConvMBConv", (8, 16, 5, 2, 6, 0.25), dict(num_experts=2), False),
    ("FusedMBConv", (8, 8, 3, 1, 4), {}, True),
    ("FusedMBConv", (8, 16, 3, 2, 4), {}, False),
    ("FusedMBConv", (8, 8, 3, 1, 1), {}, True),                              # expansion 1: still two convs
    ("FusedMBConv", (8, 12, 5, 1, 3, 0.25), dict(act_layer="relu"), False),  # SE, as EfficientNet-X
    ("FusedMBConv", (16, 16, 3, 1, 4), dict(groups=2, norm_layer="groupnorm", norm_group_size=8), True),
    ("MBConv", (16, 16, 3, 1, 4, 0.25), dict(norm_layer="evonorm_s0", norm_group_size=8), True),
    ("MBConv", (16, 24, 3, 2, 4, 0.25), dict(norm_layer="layernorm"), False),
]
IDS = [f"{b[0]}{b[1]}{'-' + '-'.join(f'{k}={v}' for k, v in b[2].items()) if b[2] else ''}" for b in BLOCKS]


@pytest.mark.parametrize("name,args,kwargs,shortcut", BLOCKS, ids=IDS)
@pytest.mark.parametrize("pad_type,size", [("", (16, 16)), ("same", (16, 16)), ("same", (15, 17))])
def test_block_eval(device, name, args, kwargs, shortcut, pad_type, size):
    tm, pm, routes = pair(getattr(T, name), getattr(P, name), *args, pad_type=pad_type, device=device, **kwargs)
    assert pm.has_shortcut == shortcut
    check_parity(tm, pm, routes, [random_input([2, args[0], *size])], device=device)


@pytest.mark.parametrize("name,args,kwargs,shortcut", BLOCKS[::2], ids=IDS[::2])
def test_block_train_mode(name, args, kwargs, shortcut):
    """Batch statistics in the forward and backward, and the running statistics they leave."""
    tm, pm, routes = pair(getattr(T, name), getattr(P, name), *args, **kwargs)
    tm.train()
    pm.train()
    check_parity(tm, pm, routes, [random_input([3, args[0], 7, 9])], kind="model")
    check_state(tm, pm, routes, tolerance("model"), "after one train-mode forward")


def test_blocks_match_timms():
    """Our blocks with timm's block classes' weights give timm's outputs (the same design, names, widths)."""
    blocks = pytest.importorskip("timm.models._efficientnet_blocks", reason="timm not installed")
    from functools import partial
    se = partial(blocks.SqueezeExcite, rd_ratio=0.25 / 4)
    cases = [
        (blocks.InvertedResidual(16, 16, 3, exp_ratio=4, se_layer=se, act_layer=torch.nn.SiLU),
         T.MBConv(16, 16, 3, 1, 4, se_chs=4, act_layer="silu", bn_eps=1e-5)),
        (blocks.InvertedResidual(16, 24, [3, 5], stride=2, exp_ratio=6, exp_kernel_size=[1, 1], pw_kernel_size=[1, 1],
                                 act_layer=torch.nn.ReLU, pad_type="same"),
         T.MBConv(16, 24, (3, 5), 2, 6, 0.0, exp_kernel_size=(1, 1), pw_kernel_size=(1, 1), act_layer="relu",
                  pad_type="same", bn_eps=1e-5)),
        (blocks.EdgeResidual(16, 16, 3, exp_ratio=4, act_layer=torch.nn.SiLU),
         T.FusedMBConv(16, 16, 3, 1, 4, act_layer="silu", bn_eps=1e-5)),
        (blocks.DepthwiseSeparableConv(16, 16, 3, se_layer=partial(blocks.SqueezeExcite, rd_ratio=0.25),
                                       act_layer=torch.nn.SiLU),
         T.DepthwiseSeparable(16, 16, 3, se_chs=4, act_layer="silu", bn_eps=1e-5)),
        (blocks.CondConvResidual(16, 16, 3, exp_ratio=4, num_experts=4, act_layer=torch.nn.SiLU),
         T.CondConvMBConv(16, 16, 3, 1, 4, 0.0, num_experts=4, act_layer="silu", bn_eps=1e-5)),
        (blocks.ConvBnAct(16, 16, 3, skip=True, act_layer=torch.nn.SiLU), T.ConvBNAct(16, 16, 3, skip=True, bn_eps=1e-5)),
    ]
    for theirs, ours in cases:
        randomize_(theirs).eval()
        ours.load_state_dict(theirs.state_dict(), strict=True)
        ours.eval()
        x = torch.tensor(random_input([2, 16, 9, 11]))
        with torch.no_grad():
            assert_close(theirs(x), ours(x), tolerance("layer"), f"{type(ours).__name__} vs timm's {type(theirs).__name__}")


# --- convolutions ------------------------------------------------------------------------
@pytest.mark.parametrize("size,kernel,stride", [(16, 3, 2), (15, 3, 2), (17, 5, 2), (16, 3, 1), (9, 4, 2), (1, 3, 2),
                                                (9, 2, 2), (9, 2, 1)])
def test_conv2d_same_matches_timm(size, kernel, stride):
    timm_layers = pytest.importorskip("timm.layers", reason="timm not installed")
    theirs = randomize_(timm_layers.create_conv2d(4, 6, kernel, stride=stride, padding="same")).eval()
    pm = PL.create_conv2d(4, 6, kernel, stride, pad_type="same")
    sync(theirs, pm)
    x = random_input([2, 4, size, size + 2])
    out = pm(paddle.to_tensor(x))
    assert list(out.shape[2:]) == [-(-size // stride), -(-(size + 2) // stride)]  # ceil(H / s)
    with torch.no_grad():
        assert_close(theirs(torch.tensor(x)), out, tolerance("layer"), "Conv2dSame vs timm")


@pytest.mark.parametrize("cin,cout,kernels,stride,depthwise,pad", [
    (16, 16, (3, 5, 7), 1, True, ""), (17, 17, (3, 5), 2, True, "same"), (16, 24, (1, 1), 1, False, ""),
    (20, 40, (3, 5, 7, 9), 2, True, "same"), (12, 30, (1, 1), 1, False, "same")])
def test_mixed_conv_matches_timm(cin, cout, kernels, stride, depthwise, pad):
    timm_layers = pytest.importorskip("timm.layers", reason="timm not installed")
    if depthwise:
        cout = cin
    theirs = randomize_(timm_layers.MixedConv2d(cin, cout, list(kernels), stride=stride, padding=pad,
                                                depthwise=depthwise)).eval()
    pm = PL.MixedConv2d(cin, cout, kernels, stride, pad, depthwise=depthwise)
    sync(theirs, pm)
    assert [list(c.weight.shape)[0] for c in pm.children()] == split_channels(cout, len(kernels))
    x = random_input([2, cin, 13, 10])
    with torch.no_grad():
        assert_close(theirs(torch.tensor(x)), pm(paddle.to_tensor(x)), tolerance("layer"), "MixedConv2d vs timm")


@pytest.mark.parametrize("cin,cout,k,stride,groups,pad,experts,bias", [
    (8, 16, 1, 1, 1, "", 4, False), (16, 16, 3, 2, 16, "same", 4, False), (16, 16, 5, 1, 16, "", 8, True),
    (8, 12, 3, 2, 1, "", 2, True)])
def test_cond_conv_matches_timm(cin, cout, k, stride, groups, pad, experts, bias):
    timm_layers = pytest.importorskip("timm.layers", reason="timm not installed")
    theirs = randomize_(timm_layers.CondConv2d(cin, cout, k, stride, pad, groups=groups, bias=bias,
                                               num_experts=experts)).eval()
    tm = TL.CondConv2d(cin, cout, k, stride, groups, bias, pad, experts)
    tm.load_state_dict(theirs.state_dict(), strict=True)
    pm = PL.CondConv2d(cin, cout, k, stride, groups, bias, pad, experts)
    sync(theirs, pm)
    x, r = random_input([3, cin, 11, 9]), np.random.default_rng(1).uniform(size=[3, experts]).astype(np.float32)
    with torch.no_grad():
        ref = theirs(torch.tensor(x), torch.tensor(r))
        assert_close(ref, tm(torch.tensor(x), torch.tensor(r)), tolerance("layer"), "torch_ref CondConv2d vs timm")
    assert_close(ref, pm(paddle.to_tensor(x), paddle.to_tensor(r)), tolerance("layer"), "CondConv2d vs timm")
    # the static-graph path (any batch size): a sum over experts of one grouped conv
    from paddle_vit.layers.conv2d_same import pad_same
    px = paddle.to_tensor(x)
    px = pad_same(px, k, stride) if pm.dynamic_same else px
    assert_close(ref, pm._expert_sum(px, paddle.to_tensor(r)), tolerance("layer"), "CondConv2d (static path) vs timm")


def test_same_padding_puts_the_extra_pixel_after():
    assert same_padding(16, 3, 2) == (0, 1) and same_padding(15, 3, 2) == (1, 1) and same_padding(5, 1, 2) == (0, 0)
    with pytest.raises(ValueError, match="positive"):
        same_padding(0, 3, 2)


# --- norm + activation layers ------------------------------------------------------------
def _timm_norm(kind, channels, act):
    timm_layers = pytest.importorskip("timm.layers", reason="timm not installed")
    act_layer = {None: None, "silu": torch.nn.SiLU, "relu": torch.nn.ReLU}[act]
    apply = act is not None
    return {"batchnorm": lambda: timm_layers.BatchNormAct2d(channels, eps=1e-3, act_layer=act_layer, apply_act=apply),
            "groupnorm": lambda: timm_layers.GroupNormAct(channels, group_size=8, act_layer=act_layer, apply_act=apply),
            "layernorm": lambda: timm_layers.LayerNormAct2d(channels, act_layer=act_layer, apply_act=apply),
            "evonorm_s0": lambda: timm_layers.EvoNorm2dS0(channels, group_size=8, apply_act=apply)}[kind]()


@pytest.mark.parametrize("kind", ["batchnorm", "groupnorm", "layernorm", "evonorm_s0"])
@pytest.mark.parametrize("act", [None, "silu", "relu"])
def test_norm_act_matches_timm(device, kind, act):
    theirs = randomize_(_timm_norm(kind, 16, act)).eval()
    eps = 1e-3 if kind == "batchnorm" else 1e-5
    tm, pm, routes = pair(lambda *a, **k: TL.create_norm_act(kind, 16, act, eps, group_size=8),
                          lambda *a, **k: PL.create_norm_act(kind, 16, act, eps, group_size=8), device=device)
    tm.load_state_dict(theirs.state_dict(), strict=True)
    sync(tm.cpu(), pm)
    x = random_input([2, 16, 5, 7])
    with torch.no_grad():
        assert_close(theirs(torch.tensor(x)), tm(torch.tensor(x)), tolerance("layer"), f"torch_ref {kind} vs timm")
    tdev = "cuda" if device == "gpu" else "cpu"
    check_parity(tm.to(tdev), pm, routes, [x], device=device)


# --- BatchNorm semantics -----------------------------------------------------------------
@pytest.mark.parametrize("eps,momentum,shape", [(1e-3, 0.1, [4, 6, 3, 5]), (1e-5, 0.01, [2, 3, 1, 2]), (1e-3, 0.5, [8, 2, 2, 2])])
def test_batchnorm_matches_torch(eps, momentum, shape):
    tm, pm, routes = pair(TL.BatchNorm2d, PL.BatchNorm2d, shape[1], eps, momentum)
    assert (pm.eps, pm.momentum, pm._momentum) == (eps, pytest.approx(momentum), pytest.approx(1 - momentum))
    assert check_batchnorm_config(tm, pm, routes) == 1
    tm.train()
    pm.train()
    for step in range(3):  # running statistics after every update, with the unbiased variance
        check_parity(tm, pm, routes, [random_input(shape, seed=step)], kind="layer", backward=step == 0)
        check_state(tm, pm, routes, tolerance("layer"), f"after update {step}")
    tm.eval()
    pm.eval()
    check_parity(tm, pm, routes, [random_input(shape, seed=9)])


def test_batchnorm_bad_input():
    bn = PL.BatchNorm2d(3)
    bn.train()
    with pytest.raises(ValueError, match="B\\*H\\*W >= 2"):
        bn(paddle.zeros([1, 3, 1, 1]))
    with pytest.raises(ValueError, match="momentum"):
        PL.BatchNorm2d(3, momentum=1.5)


# --- configuration errors ----------------------------------------------------------------
@pytest.mark.parametrize("build,msg", [
    (lambda m: m.MBConv(8, 8, 3, 3), "stride must be 1 or 2"),
    (lambda m: m.FusedMBConv(8, 8, 3, 3), "stride must be 1 or 2"),
    (lambda m: m.DepthwiseSeparable(8, 8, 3, 0), "stride must be 1 or 2"),
    (lambda m: m.ConvBNAct(8, 8, pad_type="valid"), "pad_type must be one of"),
    (lambda m: m.MBConv(8, 8, 3, 1, 4, se_layer="eca"), "se_layer must be one of"),
    (lambda m: m.MBConv(8, 8, 3, 1, 4, act_layer="tanhshrink"), "unknown activation 'tanhshrink'"),
    (lambda m: m.MBConv(8, 8, 3, 1, 4, norm_layer="instancenorm"), "norm_layer must be one of"),
    (lambda m: m.MBConv(12, 12, 3, 1, 4, norm_layer="groupnorm", norm_group_size=5), "not divisible by group size 5"),
    (lambda m: m.MBConv(8, 8, (3, 5), 1, 4, num_experts=4), "mixed kernels and CondConv do not combine"),
    (lambda m: m.CondConvMBConv(8, 8, 3, 1, 4, num_experts=0), "num_experts >= 1"),
    (lambda m: m.MBConv(8, 8, 3, 1, 4, s2d=2), "s2d must be 0 or 1"),
    (lambda m: m.MBConv(16, 16, 3, 1, 4, 0.0, groups=7, mid_chs=60), "do not split into 7 groups"),
])
@pytest.mark.parametrize("tree", [P, T])
def test_bad_config_is_a_clear_error(tree, build, msg):
    with pytest.raises(ValueError, match=msg):
        build(tree)


def test_bad_input_is_a_clear_error():
    pm = P.MBConv(8, 8, 3, 1, 4)
    with pytest.raises(ValueError, match="8 input channels"):
        pm(paddle.zeros([1, 3, 8, 8]))
