"""EfficientNetV2: blocks, SAME padding, BatchNorm semantics, whole models in eval and in a training
step, and real checkpoint layouts (timm, torchvision) converted from random weights saved to disk."""
from __future__ import annotations

import numpy as np
import paddle
import pytest
import torch

import paddle_vit.layers as PL
import paddle_vit.models.efficientnetv2 as P
import torch_ref.layers as TL
import torch_ref.models.efficientnetv2 as T
from harness import check_parity, pair, random_input, randomize_, sync
from harness_train import check_batchnorm_config, check_state, check_training_steps
from paddle_vit import create_model
from paddle_vit.conv_arith import same_padding
from paddle_vit.convert import get_layout, plan_for
from paddle_vit.efficientnet_arch import block_specs
from paddle_vit.parity import assert_close, tolerance
from paddle_vit.variants import model_kwargs

# A tiny network: every block kind, with and without shortcut, in 21 blocks of <= 64 channels.
TINY = dict(channel_multiplier=0.25, depth_multiplier=0.5, num_features=256, drop_rate=0.0, drop_path_rate=0.0,
            num_classes=10)


def tiny_kwargs(name: str, **extra) -> dict:
    return model_kwargs(name, **{**TINY, **extra})[1]


# --- blocks ----------------------------------------------------------------------------
BLOCKS = [  # (class name, args, kwargs, has shortcut)
    ("ConvBNAct", (8, 8, 3, 1), dict(skip=True), True),
    ("ConvBNAct", (8, 12, 3, 2), dict(act=False), False),
    ("FusedMBConv", (8, 8, 3, 1, 1), {}, True),           # expansion 1: one conv with activation
    ("FusedMBConv", (8, 16, 3, 2, 1), {}, False),
    ("FusedMBConv", (8, 8, 3, 1, 4), {}, True),
    ("FusedMBConv", (8, 16, 3, 2, 4), {}, False),
    ("FusedMBConv", (8, 12, 5, 1, 3), {}, False),         # stride 1, in != out
    ("MBConv", (8, 8, 3, 1, 4, 0.25), {}, True),
    ("MBConv", (8, 16, 3, 2, 6, 0.25), {}, False),
    ("MBConv", (8, 8, 5, 1, 4, 0.0), {}, True),           # no SE
    ("MBConv", (16, 8, 3, 1, 6, 0.25), {}, False),
]


@pytest.mark.parametrize("name,args,kwargs,shortcut", BLOCKS, ids=[f"{b[0]}{b[1]}" for b in BLOCKS])
@pytest.mark.parametrize("pad_type,size", [("", (16, 16)), ("same", (16, 16)), ("same", (15, 17))])
def test_block_eval(device, name, args, kwargs, shortcut, pad_type, size):
    tm, pm, routes = pair(getattr(T, name), getattr(P, name), *args, pad_type=pad_type, device=device, **kwargs)
    assert pm.has_shortcut == shortcut
    check_parity(tm, pm, routes, [random_input([2, args[0], *size])], device=device)


@pytest.mark.parametrize("name,args,kwargs,shortcut", BLOCKS[::2], ids=[f"{b[0]}{b[1]}" for b in BLOCKS[::2]])
def test_block_train_mode(name, args, kwargs, shortcut):
    """Batch statistics in the forward and backward, and the running statistics they leave."""
    tm, pm, routes = pair(getattr(T, name), getattr(P, name), *args, **kwargs)
    tm.train()
    pm.train()
    check_parity(tm, pm, routes, [random_input([3, args[0], 7, 9])], kind="model")
    check_state(tm, pm, routes, tolerance("model"), "after one train-mode forward")


@pytest.mark.parametrize("size,kernel,stride", [(16, 3, 2), (15, 3, 2), (17, 5, 2), (16, 3, 1), (9, 4, 2), (1, 3, 2)])
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


def test_same_padding_puts_the_extra_pixel_after():
    assert same_padding(16, 3, 2) == (0, 1) and same_padding(15, 3, 2) == (1, 1) and same_padding(5, 1, 2) == (0, 0)
    with pytest.raises(ValueError, match="positive"):
        same_padding(0, 3, 2)


# --- BatchNorm semantics ---------------------------------------------------------------
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


# --- whole models ----------------------------------------------------------------------
@pytest.mark.parametrize("name,size", [("efficientnetv2_s", 64), ("tf_efficientnetv2_s", 64), ("tf_efficientnetv2_s", 65),
                                       ("efficientnetv2_m", 48), ("tf_efficientnetv2_l", 47)])
def test_model_eval(device, name, size):
    kwargs = tiny_kwargs(name, **({} if name.endswith("_s") else dict(depth_multiplier=0.25)))
    tm, pm, routes = pair(T.EfficientNetV2, P.EfficientNetV2, device=device, **kwargs)
    kinds = {(type(b).__name__, b.has_shortcut) for stage in pm.blocks for b in stage}
    assert {("FusedMBConv", True), ("FusedMBConv", False), ("MBConv", True), ("MBConv", False)} <= kinds
    check_parity(tm, pm, routes, [random_input([2, 3, size, size])], kind="model", device=device)


# 8 images of 64 x 64: at least 32 values per channel reach every BatchNorm (few values per channel
# make train-mode BatchNorm amplify rounding, see harness_train.check_training_steps).
TRAIN_BATCH = (random_input([8, 3, 64, 64]), np.arange(8) % 10)


@pytest.mark.parametrize("name", ["efficientnetv2_s", "tf_efficientnetv2_s"])
def test_training_step(name):
    tm, pm, routes = pair(T.EfficientNetV2, P.EfficientNetV2, **tiny_kwargs(name))
    assert check_batchnorm_config(tm, pm, routes) == sum(isinstance(m, torch.nn.BatchNorm2d) for m in tm.modules())
    losses = check_training_steps(tm, pm, routes, *TRAIN_BATCH)
    assert all(np.isfinite(losses))


def _momentum_not_converted(pm):
    for layer in pm.sublayers():
        if isinstance(layer, PL.BatchNorm2d):
            layer._momentum = 0.1  # torch's number taken as Paddle's (weight of the old value)


def _biased_running_variance(pm):
    for layer in pm.sublayers():
        if isinstance(layer, PL.BatchNorm2d):  # Paddle's own update: biased batch variance
            layer.forward = paddle.nn.BatchNorm2D.forward.__get__(layer)


@pytest.mark.filterwarnings("ignore:When training, we now always track")  # Paddle's own BN forward
@pytest.mark.parametrize("mistake", [_momentum_not_converted, _biased_running_variance])
def test_training_step_catches_batchnorm_mistakes(mistake):
    """The training-step check has teeth: each BatchNorm porting mistake makes it fail."""
    tm, pm, routes = pair(T.EfficientNetV2, P.EfficientNetV2, **tiny_kwargs("efficientnetv2_s", depth_multiplier=0.25))
    mistake(pm)
    with pytest.raises(AssertionError, match=r"running_(mean|var) after step 0"):
        check_training_steps(tm, pm, routes, *TRAIN_BATCH, steps=1)


def test_drop_path_rates_follow_the_linear_rule():
    """Block k of n drops its branch with probability rate * k / n, as timm builds it."""
    timm = pytest.importorskip("timm", reason="timm not installed")
    theirs = timm.create_model("efficientnetv2_s", drop_path_rate=0.3)
    ours = T.EfficientNetV2(**model_kwargs("efficientnetv2_s", drop_path_rate=0.3)[1])
    rate = lambda b: b.drop_path.drop_prob if hasattr(b.drop_path, "drop_prob") else 0.0  # noqa: E731
    for t_stage, o_stage in zip(theirs.blocks, ours.blocks):
        for t_block, o_block in zip(t_stage, o_stage):  # timm keeps a rate on blocks without shortcut, unused
            assert o_block.has_shortcut == t_block.has_skip
            assert rate(o_block) == pytest.approx(rate(t_block) if t_block.has_skip else 0.0)
    specs = block_specs(model_kwargs("efficientnetv2_s")[1]["stages"], 24, drop_path_rate=0.3)
    assert [s.drop_path for s in specs] == pytest.approx([0.3 * k / len(specs) for k in range(len(specs))])


# --- checkpoints -----------------------------------------------------------------------
def _convert_from_disk(tmp_path, source_model: torch.nn.Module, name: str, size: int, **overrides):
    source_model.eval()
    path = tmp_path / "source.pth"
    torch.save(source_model.state_dict(), path)
    pm = create_model(name, pretrained=path, **overrides)
    x = random_input([2, 3, size, size])
    with torch.no_grad():
        ref = source_model(torch.tensor(x))
    assert_close(ref, pm(paddle.to_tensor(x)), tolerance("model"), f"{name} logits")
    routes = plan_for(source_model.state_dict(), pm)  # the source layout is detected from the keys
    n_bn = sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in source_model.modules())
    assert check_batchnorm_config(source_model, pm, routes) == n_bn  # eps and momentum carried over


# timm builds its non-tf models with BN eps 1e-5, and scales S's head width with the multiplier (not M's, L's)
_TIMM_EXTRA = {"efficientnetv2_s": dict(bn_eps=1e-5, num_features=320)}


def _timm_model(name: str, **kwargs) -> torch.nn.Module:
    """timm's model with the random weights of our torch reference (the same keys by construction).
    timm's own init gives a depthwise conv fan_out k*k (std ~0.5): every residual block of a random
    network then doubles the activations (logits ~1e11 at 64 px), and a 3e-5 rounding difference
    grows into an O(1) one; no parity test passes or fails meaningfully on such a network."""
    timm = pytest.importorskip("timm", reason="timm not installed")
    import torch_ref
    theirs = timm.create_model(name, **kwargs)
    torch.manual_seed(0)
    ours = randomize_(torch_ref.create_model(name, **kwargs, **_TIMM_EXTRA.get(name, {})))
    theirs.load_state_dict(ours.state_dict(), strict=True)
    return theirs


def test_torchvision_efficientnet_v2_s(tmp_path):
    tv = pytest.importorskip("torchvision", reason="torchvision not installed")
    torch.manual_seed(0)
    _convert_from_disk(tmp_path, randomize_(tv.models.efficientnet_v2_s()), "efficientnetv2_s", 64)


@pytest.mark.parametrize("size", [64, 65])
def test_timm_tf_efficientnetv2_s(tmp_path, size):
    _convert_from_disk(tmp_path, _timm_model("tf_efficientnetv2_s"), "tf_efficientnetv2_s", size)


@pytest.mark.parametrize("name", ["efficientnetv2_s", "tf_efficientnetv2_m", "tf_efficientnetv2_l"])
def test_timm_scaled_down(tmp_path, name):
    scale = dict(channel_multiplier=0.25, depth_multiplier=0.25, num_classes=10)
    _convert_from_disk(tmp_path, _timm_model(name, **scale), name, 65, **scale, **_TIMM_EXTRA.get(name, {}))


def _meta_state(build) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in build().state_dict().items()}


@pytest.mark.parametrize("size", ["s", "m", "l"])
def test_layouts_cover_full_size_tables(size):
    """Every key of timm's and torchvision's full-size S/M/L lands on our key of the same shape
    (checked on shapes only: the reference tree built on torch's meta device)."""
    timm, tv = pytest.importorskip("timm"), pytest.importorskip("torchvision")
    import torch_ref
    ours = _meta_state(lambda: torch_ref.create_model(f"efficientnetv2_{size}"))
    mirror = {get_layout(None, "torch_ref").map_key(k)[0]: shape for k, shape in ours.items() if "num_batches" not in k}
    for source, build in [("timm", lambda: timm.create_model(f"tf_efficientnetv2_{size}")),
                          ("torchvision", getattr(tv.models, f"efficientnet_v2_{size}"))]:
        layout, theirs = get_layout("efficientnetv2", source), _meta_state(build)
        mapped = {layout.map_key(k)[0]: shape for k, shape in theirs.items() if layout.map_key(k)}
        assert mapped == mirror, f"{source} {size}: {sorted(set(mapped) ^ set(mirror))[:6]}"


# --- configuration errors ------------------------------------------------------------
@pytest.mark.parametrize("build,msg", [
    (lambda m: m.MBConv(8, 8, 3, 3), "stride must be 1 or 2"),
    (lambda m: m.FusedMBConv(8, 8, 3, 3), "stride must be 1 or 2"),
    (lambda m: m.MBConv(8, 8, 3, 1, expand_ratio=1), "expand_ratio > 1"),
    (lambda m: m.FusedMBConv(8, 8, 3, 1, 4, se_ratio=0.25), "no squeeze-excitation"),
    (lambda m: m.ConvBNAct(8, 8, pad_type="valid"), "pad_type must be one of"),
    (lambda m: m.EfficientNetV2([("mbconv", 2, 3, 1, 1, 16, 0.25)]), "MBConv needs expand_ratio != 1"),
    (lambda m: m.EfficientNetV2([("fused", 2, 3, 1, 4, 16, 0.25)]), "no squeeze-excitation"),
    (lambda m: m.EfficientNetV2([("fused", 2, 3, 4, 4, 16, 0.0)]), "stride must be 1 or 2"),
    (lambda m: m.EfficientNetV2([("fused", 2, 3, 1, 4)]), "expected \\(block, repeats"),
    (lambda m: m.EfficientNetV2([("conv", 2, 3, 1, 4, 16, 0.0)]), "block must be one of"),
])
@pytest.mark.parametrize("tree", [P, T])
def test_bad_config_is_a_clear_error(tree, build, msg):
    with pytest.raises(ValueError, match=msg):
        build(tree)


def test_bad_input_is_a_clear_error():
    pm = create_model("efficientnetv2_s", **TINY)
    with pytest.raises(ValueError, match="3 input channels"):
        pm(paddle.zeros([1, 1, 32, 32]))


@pytest.mark.full_size
def test_full_size_efficientnetv2_s_at_384():
    kwargs = model_kwargs("efficientnetv2_s")[1]
    tm, pm, routes = pair(T.EfficientNetV2, P.EfficientNetV2, **kwargs)
    assert len(routes) == 672 and pm.img_size == 384
    check_parity(tm, pm, routes, [random_input([1, 3, 384, 384])], kind="model", backward=False)
