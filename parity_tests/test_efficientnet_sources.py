"""EfficientNet checkpoints from other libraries: torchvision's eleven builders (B0-B7, V2 S/M/L) and
efficientnet-pytorch's (and its Lite fork's) layout, each from random weights saved to disk and
loaded with ``create_model(name, pretrained=path)`` and nothing else; and the constructor
arguments a checkpoint brings (torchvision's BatchNorm eps) through create_model, the converter and
the Paddle files it writes."""
from __future__ import annotations

import re

import numpy as np
import paddle
import pytest
import torch

from convert_helpers import run_cli
from harness import random_input
from effnet_helpers import skip_unless_selected
from harness_train import check_batchnorm_config
from paddle_vit import create_model
from paddle_vit.convert import ConversionError, get_layout, load_pretrained, plan_for
from paddle_vit.convert.layouts import TORCHVISION_NAMES
from paddle_vit.parity import assert_close, tolerance
from torch_ref.random_weights import well_conditioned_

tv = pytest.importorskip("torchvision", reason="torchvision not installed")
TV_EFFNETS = sorted(n for n in TORCHVISION_NAMES if n.startswith("efficientnet"))
SMALL_TV = ["efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3", "efficientnet_b4",
            "efficientnetv2_s"]


def test_torchvision_has_eleven_efficientnets():
    assert len(TV_EFFNETS) == 11 and all(hasattr(tv.models, TORCHVISION_NAMES[n]) for n in TV_EFFNETS)


def _load_and_compare(tmp_path, source_model: torch.nn.Module, name: str, size: int = 33, **kwargs) -> paddle.nn.Layer:
    """``source_model``'s state_dict saved and loaded by ``create_model(name, pretrained=path)``: same logits,
    same BatchNorm eps and momentum in every layer."""
    source_model.eval()
    path = tmp_path / "source.pth"
    torch.save(source_model.state_dict(), path)
    pm = create_model(name, pretrained=path, **kwargs)
    x = random_input([2, 3, size, size])
    with torch.no_grad():
        ref = source_model(torch.from_numpy(x))
    assert_close(ref, pm(paddle.to_tensor(x)), tolerance("model"), f"{name} logits")
    n_bn = sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in source_model.modules())
    assert check_batchnorm_config(source_model, pm, plan_for(source_model.state_dict(), pm)) == n_bn
    return pm


@pytest.mark.parametrize("name", TV_EFFNETS)
def test_torchvision_layout_covers_every_builder(name):
    """Every key of torchvision's full-size network lands on our key of the same shape, and our model
    built for that checkpoint has its BatchNorm eps and momentum (shapes and numbers only, meta device)."""
    import torch_ref
    layout = get_layout("efficientnet", "torchvision")
    with torch.device("meta"):
        theirs = getattr(tv.models, TORCHVISION_NAMES[name])()
        ours = torch_ref.create_model(name, **layout.config_for(name))
    t_state, o_state = theirs.state_dict(), ours.state_dict()
    targets = layout.key_mapper(t_state.keys(), ours)
    mapped = {dst: tuple(v.shape) for k, v in t_state.items() for dst, _ in targets(k)}
    # the layout gives Paddle's BatchNorm names; compare with torch_ref's through the same renaming
    mirror = get_layout(None, "torch_ref")
    want = {mirror.map_key(k)[0]: tuple(v.shape) for k, v in o_state.items() if mirror.map_key(k)}
    assert mapped == want, f"{name}: {sorted(set(mapped.items()) ^ set(want.items()))[:6]}"
    t_bn = [(m.eps, m.momentum) for m in theirs.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    o_bn = [(m.eps, m.momentum) for m in ours.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert t_bn == o_bn


@pytest.mark.parametrize("name", SMALL_TV)
def test_torchvision_checkpoint(tmp_path, name):
    torch.manual_seed(0)
    _load_and_compare(tmp_path, well_conditioned_(getattr(tv.models, TORCHVISION_NAMES[name])()), name)


@pytest.mark.full_size
@pytest.mark.parametrize("name", sorted(set(TV_EFFNETS) - set(SMALL_TV)))
def test_torchvision_checkpoint_large(request, tmp_path, name):
    skip_unless_selected(request)
    torch.manual_seed(0)
    _load_and_compare(tmp_path, well_conditioned_(getattr(tv.models, TORCHVISION_NAMES[name])()), name)


def test_torchvision_v2_builds_the_seed_network_and_timm_its_own(tmp_path):
    """The eps of ``efficientnetv2_s`` follows the checkpoint: torchvision's (the seed's network) 1e-3,
    timm's 1e-5; neither needs a flag."""
    timm = pytest.importorskip("timm", reason="timm not installed")
    scale = dict(channel_multiplier=0.5, depth_multiplier=0.25)
    torch.manual_seed(0)
    pm = _load_and_compare(tmp_path, well_conditioned_(timm.create_model("efficientnetv2_s", **scale)),
                           "efficientnetv2_s", **scale)
    assert pm.bn_eps == 1e-5
    torch.manual_seed(0)
    pm = _load_and_compare(tmp_path, well_conditioned_(tv.models.efficientnet_v2_s()), "efficientnetv2_s")
    assert pm.bn_eps == 1e-3


def test_checkpoint_arguments_cannot_be_contradicted(tmp_path):
    path = tmp_path / "tv.pth"
    torch.save(tv.models.efficientnet_b0().state_dict(), path)  # B0: no arguments of its own
    assert create_model("efficientnet_b0", pretrained=path).bn_eps == 1e-5
    torch.save(tv.models.efficientnet_v2_s().state_dict(), path)
    with pytest.raises(ConversionError, match=r"bn_eps=1e-05: the weights need bn_eps=0.001"):
        create_model("efficientnetv2_s", pretrained=path, bn_eps=1e-5)
    model = create_model("efficientnetv2_s")  # built for timm's checkpoints: eps 1e-5
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    with pytest.raises(ConversionError, match=r"the model has bn_eps=1e-05, the weights need bn_eps=0.001"):
        load_pretrained(model, path)
    assert all(np.array_equal(before[k], v.numpy()) for k, v in model.state_dict().items())  # untouched


@pytest.mark.parametrize("suffix", [".pdparams", ".safetensors"])
def test_converted_file_records_the_arguments(tmp_path, suffix):
    """torchvision V2-S -> paddle-vit-convert -> create_model(name, pretrained=file): the written file
    says eps 1e-3, so its logits are torchvision's with no flag."""
    torch.manual_seed(0)
    theirs = well_conditioned_(tv.models.efficientnet_v2_s(num_classes=10)).eval()
    src, dst = tmp_path / "tv.pth", tmp_path / f"out{suffix}"
    torch.save(theirs.state_dict(), src)
    code, out = run_cli(src, dst, "--model", "efficientnetv2_s", "--num-classes", "10", "--img-size", "33", "--quiet")
    assert code == 0, out
    pm = create_model("efficientnetv2_s", pretrained=dst, num_classes=10)
    assert pm.bn_eps == 1e-3
    x = random_input([1, 3, 41, 41])
    with torch.no_grad():
        assert_close(theirs(torch.from_numpy(x)), pm(paddle.to_tensor(x)), tolerance("model"), f"{dst.name} logits")


def test_verification_names_an_eps_mismatch(tmp_path, monkeypatch):
    """Had the torchvision layout not declared its eps (the defect this replaces: a torchvision V2-S
    checkpoint in a 1e-5 network), verification fails and says why."""
    monkeypatch.setitem(get_layout("efficientnet", "torchvision").config, "efficientnetv2_s", {})
    torch.manual_seed(0)
    src, dst = tmp_path / "tv.pth", tmp_path / "out.pdparams"
    torch.save(well_conditioned_(tv.models.efficientnet_v2_s(num_classes=10)).state_dict(), src)
    code, out = run_cli(src, dst, "--model", "efficientnetv2_s", "--num-classes", "10", "--img-size", "33")
    assert code == 3 and not dst.exists(), out
    assert re.search(r"BatchNorm eps differs in \d+ layer\(s\)", out) and "uses 0.001, ours 1e-05" in out, out


def test_timm_verification_at_another_image_size(tmp_path):
    """--img-size sets the verification input; timm's EfficientNet takes no img_size (it would be a TypeError)."""
    timm = pytest.importorskip("timm", reason="timm not installed")
    torch.manual_seed(0)
    src, dst = tmp_path / "timm.pth", tmp_path / "out.pdparams"
    torch.save(well_conditioned_(timm.create_model("tf_efficientnetv2_s", depth_multiplier=0.25)).state_dict(), src)
    code, out = run_cli(src, dst, "--model", "tf_efficientnetv2_s", "--source", "timm", "--img-size", "97",
                        "--override", "depth_multiplier=0.25")
    assert code == 0 and "PASS" in out and "[1, 3, 97, 97]" in out, out


# --- efficientnet-pytorch and efficientnet-lite-pytorch ----------------------------------
@pytest.mark.parametrize("package,theirs,name,size", [
    ("efficientnet_pytorch", "efficientnet-b0", "tf_efficientnet_b0", 33),
    ("efficientnet_pytorch", "efficientnet-b0", "tf_efficientnet_b0", 64),
    ("efficientnet_lite_pytorch", "efficientnet-lite0", "tf_efficientnet_lite0", 35),
])
def test_efficientnet_pytorch_checkpoint(tmp_path, package, theirs, name, size):
    """Their static SAME padding is computed for ``image_size``; at that size it is TF's, as ours."""
    module = pytest.importorskip(package, reason=f"{package} not installed")
    torch.manual_seed(0)
    model = well_conditioned_(module.EfficientNet.from_name(theirs, image_size=size))
    pm = _load_and_compare(tmp_path, model, name, size)
    assert pm.bn_momentum == 0.01  # their BatchNorm momentum (1 - 0.99), for training on


def test_efficientnet_pytorch_scaled_b3(tmp_path):
    """Their width and depth coefficients round as timm's multipliers do (B3: 1.2 x 1.4)."""
    module = pytest.importorskip("efficientnet_pytorch", reason="efficientnet-pytorch not installed")
    torch.manual_seed(0)
    model = well_conditioned_(module.EfficientNet.from_name("efficientnet-b3", image_size=33, width_coefficient=0.6))
    _load_and_compare(tmp_path, model, "tf_efficientnet_b3", 33, channel_multiplier=0.6)
