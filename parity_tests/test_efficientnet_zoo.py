"""timm's EfficientNet zoo: every architecture of timm's ``efficientnet`` module with a pretrained tag
is a variant, the variant table is what the installed timm defines, and a state_dict saved from
timm's model of that name loads with ``create_model(name, pretrained=path)`` and gives timm's
logits, with no extra argument (timm's BatchNorm eps per variant included).

The architectures are listed from the installed timm, so a new one fails here by name. Models
small enough run at their real size; larger ones are built smaller with timm's own generator
(the width and depth multipliers it takes) and are also compared at full size structurally:
every parameter's shape, every conv's kernel, stride, padding and groups, every norm's eps and
momentum, every activation (both built on torch's meta device, no weights)."""
from __future__ import annotations

import importlib.util
import math

import numpy as np
import paddle
import pytest
import torch

from harness import random_input
from effnet_helpers import skip_unless_selected
from harness_train import check_batchnorm_config
from paddle_vit import create_model, list_models
from paddle_vit.convert import plan_for
from paddle_vit.convert.sources import timm_efficientnet
from paddle_vit.efficientnet_arch import SPEC_ARGS, NetworkSpec, efficientnet_spec
from paddle_vit.parity import assert_close, tolerance
from paddle_vit.variants import model_kwargs
from torch_ref.random_weights import well_conditioned_

timm = pytest.importorskip("timm", reason="timm not installed")
from convert_helpers import ROOT  # noqa: E402

PRETRAINED = sorted({n.split(".")[0] for n in timm.list_models(module="efficientnet", pretrained=True)})
# Models up to this many parameters run at full size; larger ones are scaled down (see scaled()).
FULL_SIZE_LIMIT = 12e6
INPUT = 33  # odd: TF "SAME" padding puts the extra pixel after; 33 -> 17 -> 9 -> 5 -> 3 -> 2


def _generator_module():
    spec = importlib.util.spec_from_file_location("gen_efficientnet_zoo", ROOT / "tools" / "gen_efficientnet_zoo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_timm_architecture_is_a_variant():
    gen = _generator_module()
    ours = set(list_models())
    missing = [n for n in gen.architectures() if n not in ours]
    assert not missing, f"timm's efficientnet module has architectures that are not variants: {missing}"
    assert len(PRETRAINED) >= 81 and not set(PRETRAINED) - ours


def test_table_is_what_the_installed_timm_defines():
    """The zoo is generated from timm's definitions; regenerating it now must give the same file."""
    gen = _generator_module()
    text = gen.render(*gen.rows())
    table = (ROOT / "paddle_vit" / "zoo" / "efficientnet.py").read_text()
    assert text == table, "paddle_vit/zoo/efficientnet.py differs from the installed timm: run tools/gen_efficientnet_zoo.py"


def approx_params(spec: NetworkSpec) -> float:
    """Roughly the conv parameters of ``spec`` (enough to decide whether a model is small)."""
    k2 = lambda k: max(k if isinstance(k, int) else max(k), 1) ** 2  # noqa: E731
    total = spec.stem_chs * 27 + spec.feature_chs * (spec.num_features and spec.blocks[-1].out_chs) + spec.feature_chs * 1000
    for b in spec.blocks:
        experts = max(b.num_experts, 1)
        if b.kind == "cn":
            total += b.in_chs * b.out_chs * k2(b.kernel_size) // b.groups
        elif b.kind == "er":
            total += b.in_chs * b.mid_chs * k2(b.kernel_size) // b.groups + b.mid_chs * b.out_chs
        else:
            total += experts * (b.in_chs * b.mid_chs * (b.kind == "ir") + b.mid_chs * k2(b.kernel_size)
                                + b.mid_chs * b.out_chs)
        total += 2 * b.mid_chs * b.se_chs
    return float(total)


def scaled(name: str) -> dict:
    """``{}`` for a small model; else the width multiplier halved until it is small, and the depth
    multiplier too where that keeps a block of every kind with and without shortcut (B3's second
    depthwise-separable block, for one, has the only shortcut of its kind)."""
    kwargs = model_kwargs(name)[1]
    spec = lambda over: efficientnet_spec(**{k: v for k, v in {**kwargs, **over}.items() if k in SPEC_ARGS})  # noqa: E731
    kinds = lambda s: {(b.kind, b.has_skip, b.num_experts > 0, b.s2d) for b in s.blocks}  # noqa: E731
    full, over = kinds(spec({})), {}
    while approx_params(spec(over)) > FULL_SIZE_LIMIT:
        over["channel_multiplier"] = over.get("channel_multiplier", kwargs["channel_multiplier"]) / 2
        dm = over.get("depth_multiplier", kwargs["depth_multiplier"])
        shallower = {**over, "depth_multiplier": tuple(d / 2 for d in dm) if isinstance(dm, tuple) else dm / 2}
        if kinds(spec(shallower)) == full:
            over = shallower
    return over


def _config(m: torch.nn.Module) -> tuple | None:
    """What a module does besides its tensors' shapes: conv geometry, norm eps / momentum / groups, activation."""
    if isinstance(m, torch.nn.Conv2d):
        return ("conv", m.kernel_size, m.stride, m.padding, m.dilation, m.groups, "same" in type(m).__name__.lower())
    if getattr(m, "num_experts", 0) and hasattr(m, "weight_shape"):  # CondConv (timm's and ours)
        return ("condconv", tuple(m.weight_shape), m.num_experts, tuple(m.stride) if isinstance(m.stride, tuple)
                else (m.stride, m.stride), bool(getattr(m, "dynamic_padding", False) or getattr(m, "dynamic_same", False)))
    if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
        return ("bn", m.eps, m.momentum)
    if isinstance(m, torch.nn.GroupNorm):
        return ("gn", m.eps, m.num_groups)
    if isinstance(m, torch.nn.LayerNorm):
        return ("ln", m.eps, tuple(m.normalized_shape))
    if type(m).__name__ == "EvoNorm2dS0":
        return ("evonorm", m.eps, m.groups, m.v is not None)
    for act in (torch.nn.ReLU, torch.nn.ReLU6, torch.nn.SiLU, torch.nn.Hardswish, torch.nn.Mish, torch.nn.Sigmoid):
        if isinstance(m, act):
            return ("act", act.__name__)
    return None


def assert_same_structure(theirs: torch.nn.Module, ours: torch.nn.Module, name: str) -> None:
    t_shapes = {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    o_shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert t_shapes == o_shapes, f"{name}: tensors differ: {sorted(set(t_shapes.items()) ^ set(o_shapes.items()))[:6]}"
    o_modules = dict(ours.named_modules())
    for path, m in theirs.named_modules():
        want = _config(m)
        if want is None:
            continue
        got = _config(o_modules[path]) if path in o_modules else None
        assert got == want, f"{name}: {path}: timm {want}, ours {got}"


# timm's own efficientnetv2_* and efficientnet_b6/b7 have no published weights (BatchNorm eps 1e-5): the
# variants of those names are still timm's; torchvision's checkpoints of them bring their own eps.
NAMES = PRETRAINED + ["efficientnetv2_s", "efficientnetv2_m", "efficientnet_b6", "efficientnet_b7"]


@pytest.mark.parametrize("name", NAMES)
def test_timm_state_dict_gives_timm_logits(tmp_path, name):
    import torch_ref
    over = scaled(name)
    if over:  # the real network, checked without weights
        with torch.device("meta"):
            assert_same_structure(timm_efficientnet(name, {}), torch_ref.create_model(name), name)
    torch.manual_seed(0)
    theirs = well_conditioned_(timm_efficientnet(name, over)).eval()
    path = tmp_path / f"{name}.pth"
    torch.save(theirs.state_dict(), path)
    pm = create_model(name, pretrained=path, **over)
    x = random_input([2, 3, INPUT, INPUT])
    with torch.no_grad():
        ref = theirs(torch.from_numpy(x))
    assert float(ref.abs().max()) > 1e-2 and math.isfinite(float(ref.abs().max()))
    assert_close(ref, pm(paddle.to_tensor(x)), tolerance("model"), f"{name} logits{' at ' + str(over) if over else ''}")
    n_bn = sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in theirs.modules())
    assert check_batchnorm_config(theirs, pm, plan_for(theirs.state_dict(), pm)) == n_bn  # eps and momentum


@pytest.mark.full_size
@pytest.mark.parametrize("name", [n for n in PRETRAINED if scaled(n)])
def test_full_size_timm_logits(request, tmp_path, name):
    skip_unless_selected(request)
    import torch_ref  # noqa: F401
    torch.manual_seed(0)
    theirs = well_conditioned_(timm_efficientnet(name, {})).eval()
    path = tmp_path / f"{name}.pth"
    torch.save(theirs.state_dict(), path)
    del theirs
    pm = create_model(name, pretrained=path)
    theirs = timm_efficientnet(name, {}).eval()
    theirs.load_state_dict(torch.load(path, weights_only=True))
    x = random_input([1, 3, INPUT, INPUT])
    with torch.no_grad():
        ref = theirs(torch.from_numpy(x))
    assert_close(ref, pm(paddle.to_tensor(x)), tolerance("model"), f"{name} logits")


def test_scaled_models_keep_every_block_kind():
    """The scaled-down stand-ins still have blocks with and without shortcut in every stage kind."""
    for name in PRETRAINED:
        over = scaled(name)
        if not over:
            continue
        spec = efficientnet_spec(**{k: v for k, v in model_kwargs(name, **over)[1].items() if k in SPEC_ARGS})
        full = efficientnet_spec(**{k: v for k, v in model_kwargs(name)[1].items() if k in SPEC_ARGS})
        assert {(b.kind, b.has_skip, b.num_experts > 0, b.s2d) for b in full.blocks} == \
               {(b.kind, b.has_skip, b.num_experts > 0, b.s2d) for b in spec.blocks}, name
        assert approx_params(spec) <= FULL_SIZE_LIMIT


def test_input_size_is_metadata():
    pm = create_model("tf_efficientnet_lite0", num_classes=3)
    assert pm.img_size == 224
    assert list(pm(paddle.to_tensor(np.zeros([1, 3, 37, 41], np.float32))).shape) == [1, 3]


UNTAGGED = sorted(set(_generator_module().architectures()) - set(NAMES))


@pytest.mark.parametrize("name", UNTAGGED)
def test_variants_without_weights_have_timms_structure(name):
    """timm's architectures without a pretrained tag: the same network at full size (meta device)."""
    import torch_ref
    with torch.device("meta"):
        assert_same_structure(timm_efficientnet(name, {}), torch_ref.create_model(name), name)
