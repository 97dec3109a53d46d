"""SE, global context, ECA and CBAM: Paddle against the torch reference (forward, input and weight gradients),
against timm's independent implementations where they share the design, and bad input."""
from __future__ import annotations

import numpy as np
import paddle
import pytest
import torch

import paddle_vit.layers as P
import torch_ref.layers as T
from harness import check_parity, pair, random_input, randomize_, sync
from paddle_vit.conv_arith import eca_kernel_size
from paddle_vit.parity import assert_close, tolerance


@pytest.mark.parametrize("channels,se_ratio,in_chs", [(32, 0.25, 8), (24, 0.25, None), (96, 0.0625, 16), (7, 0.5, 3)])
def test_squeeze_excitation(device, channels, se_ratio, in_chs):
    tm, pm, routes = pair(T.SqueezeExcitation, P.SqueezeExcitation, channels, se_ratio, in_chs, device=device)
    assert list(pm.conv_reduce.weight.shape)[0] == int((in_chs or channels) * se_ratio)  # block-input width
    check_parity(tm, pm, routes, [random_input([2, channels, 5, 7])], device=device)


@pytest.mark.parametrize("channels,rd,act", [(32, 8, "silu"), (48, 4, "relu"), (7, 1, "hard_swish")])
def test_squeeze_excitation_explicit_width(device, channels, rd, act):
    tm, pm, routes = pair(T.SqueezeExcitation, P.SqueezeExcitation, channels, rd_channels=rd, act_layer=act, device=device)
    assert list(pm.conv_reduce.weight.shape)[0] == rd
    check_parity(tm, pm, routes, [random_input([2, channels, 5, 3])], device=device)


@pytest.mark.parametrize("channels,rd,act,size", [(32, 4, "silu", (5, 7)), (16, 3, "relu", (1, 1)), (24, 24, "silu", (8, 3))])
def test_global_context(device, channels, rd, act, size):
    tm, pm, routes = pair(T.GlobalContext, P.GlobalContext, channels, rd, act, device=device)
    assert sorted(k for k, _ in pm.named_parameters()) == [
        "conv_attn.bias", "conv_attn.weight", "mlp_scale.fc1.bias", "mlp_scale.fc1.weight", "mlp_scale.fc2.bias",
        "mlp_scale.fc2.weight", "mlp_scale.norm.bias", "mlp_scale.norm.weight"]
    check_parity(tm, pm, routes, [random_input([2, channels, *size])], device=device)


def test_global_context_matches_timm():
    """timm's GlobalContext as gc_efficientnetv2_rw_t builds it: softmax pooling, scale fusion, LayerNorm eps 1e-6."""
    timm_layers = pytest.importorskip("timm.layers", reason="timm not installed")
    theirs = randomize_(timm_layers.GlobalContext(64, rd_ratio=0.25 / 4, act_layer=torch.nn.SiLU)).eval()
    rd = theirs.mlp_scale.fc1.out_channels
    pm = P.GlobalContext(64, rd, "silu")
    sync(theirs, pm)
    x = random_input([2, 64, 6, 5])
    with torch.no_grad():
        ref = theirs(torch.tensor(x))
    assert_close(ref, pm(paddle.to_tensor(x)), tolerance("layer"), "paddle vs timm GlobalContext")


@pytest.mark.parametrize("channels,kernel_size", [(4, None), (16, None), (64, None), (256, None), (40, 5)])
def test_eca(device, channels, kernel_size):
    tm, pm, routes = pair(T.ECA, P.ECA, channels, kernel_size, device=device)
    assert pm.kernel_size == (kernel_size or eca_kernel_size(channels))
    check_parity(tm, pm, routes, [random_input([2, channels, 6, 5])], device=device)


@pytest.mark.parametrize("channels,reduction,kernel", [(32, 16, 7), (48, 4, 3), (8, 16, 7)])
def test_cbam(device, channels, reduction, kernel):
    tm, pm, routes = pair(T.CBAM, P.CBAM, channels, reduction, kernel, device=device)
    assert sorted(k for k, _ in pm.named_parameters()) == ["channel.fc1.weight", "channel.fc2.weight", "spatial.conv.weight"]
    check_parity(tm, pm, routes, [random_input([2, channels, 9, 11])], device=device)


@pytest.mark.parametrize("channels,expected", [(4, 1), (16, 3), (64, 3), (128, 5), (512, 5), (2048, 7)])
def test_eca_kernel_rule(channels, expected):
    # ECA-Net: k = |log2(C)/gamma + b/gamma| rounded to the nearest odd (t, or t + 1 when t is even)
    assert eca_kernel_size(channels) == expected


def test_se_matches_timm_squeeze_excite():
    """timm's EfficientNet SE (rd_ratio relative to the expanded width) is ours with in_chs."""
    blocks = pytest.importorskip("timm.models._efficientnet_blocks", reason="timm not installed")
    # in_chs 16, expansion 4; EfficientNetV2 passes its SiLU to the SE (timm's default is ReLU)
    theirs = blocks.SqueezeExcite(64, rd_ratio=0.25 / 4, act_layer=torch.nn.SiLU).eval()
    randomize_(theirs)
    ours = T.SqueezeExcitation(64, 0.25, in_chs=16)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    pm = P.SqueezeExcitation(64, 0.25, in_chs=16)
    sync(theirs, pm)
    x = random_input([2, 64, 5, 5])
    with torch.no_grad():
        ref = theirs(torch.tensor(x))
    assert_close(ref, ours(torch.tensor(x)).detach(), tolerance("layer"), "torch_ref vs timm")
    assert_close(ref, pm(paddle.to_tensor(x)), tolerance("layer"), "paddle vs timm")


def test_eca_matches_timm_eca_module():
    timm_layers = pytest.importorskip("timm.layers", reason="timm not installed")
    theirs = randomize_(timm_layers.EcaModule(channels=128)).eval()  # k = 5 by both rules for 128 channels
    pm = P.ECA(128)
    sync(theirs, pm)
    x = random_input([2, 128, 4, 4])
    with torch.no_grad():
        ref = theirs(torch.tensor(x))
    assert_close(ref, pm(paddle.to_tensor(x)), tolerance("layer"), "paddle vs timm EcaModule")


@pytest.mark.parametrize("build,shape,msg", [
    (lambda t: t.SqueezeExcitation(16), [2, 8, 4, 4], "16 input channels"),
    (lambda t: t.ECA(16), [2, 16, 4], "rank 3"),
    (lambda t: t.CBAM(16), [2, 15, 4, 4], "16 input channels"),
    (lambda t: t.GlobalContext(16, 4), [2, 15, 4, 4], "16 input channels"),
])
@pytest.mark.parametrize("tree", ["paddle", "torch"])
def test_bad_input_is_a_clear_error(tree, build, shape, msg):
    layer = build(P if tree == "paddle" else T)
    with pytest.raises(ValueError, match=msg):
        layer(paddle.zeros(shape) if tree == "paddle" else torch.zeros(shape))


@pytest.mark.parametrize("ctor,msg", [
    (lambda m: m.SqueezeExcitation(16, 0.25, in_chs=3), "squeeze width"),
    (lambda m: m.SqueezeExcitation(16, act_layer="tanh"), "unknown activation"),
    (lambda m: m.GlobalContext(16, 0), "rd_channels must be >= 1"),
    (lambda m: m.ECA(16, kernel_size=4), "positive odd"),
    (lambda m: m.CBAM(16, reduction=0), "reduction must be >= 1"),
    (lambda m: m.CBAM(16, spatial_kernel_size=6), "positive odd"),
])
@pytest.mark.parametrize("tree", [P, T])
def test_bad_config_is_a_clear_error(tree, ctor, msg):
    with pytest.raises(ValueError, match=msg):
        ctor(tree)


def test_silu_gradient_is_finite_where_paddles_kernel_overflows():
    """Paddle's fused silu backward gives -inf/NaN below about -88; ours (swish) matches torch there."""
    x = np.array([-200.0, -100.0, -89.0, -88.0, -20.0, -1.0, 0.0, 0.5, 30.0, 200.0], dtype=np.float32)
    tx, px = torch.tensor(x, requires_grad=True), paddle.to_tensor(x, stop_gradient=False)
    T.SiLU()(tx).sum().backward()
    P.SiLU()(px).sum().backward()
    assert np.isfinite(px.grad.numpy()).all()
    assert_close(tx.grad, px.grad, tolerance("layer"), "silu gradient")
    assert_close(T.SiLU()(tx).detach(), P.SiLU()(px), tolerance("layer"), "silu")
