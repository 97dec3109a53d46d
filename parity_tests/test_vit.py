"""Vision Transformer: one variant per option group (shrunk) against torch_ref, forward and backward;
timm and torchvision checkpoints, resizing. The whole zoo against timm: test_vit_zoo.py."""
from __future__ import annotations

import numpy as np
import paddle
import pytest
import torch

import paddle_vit
import torch_ref
from harness import check_model_parity, check_parity, randomize_, random_input, sync, use_device
from paddle_vit.convert import ConversionError, convert_state_dict, load_pretrained
from paddle_vit.parity import assert_close, tolerance
from paddle_vit.variants import get_variant
from vit_zoo_helpers import GROUP_IDS, OPTION_GROUPS, randomize_vit_, shrunk

VIT_NAMES = paddle_vit.list_models("vit_*")


def tiny(name: str, **extra) -> dict:
    """The variant's image and patch size and head count, at depth 2 and 8 channels per head."""
    heads = get_variant(name)[1]["num_heads"]
    return dict(depth=2, embed_dim=8 * heads, num_heads=heads, num_classes=10, **extra)


def built_pair(name: str, device: str = "cpu", **overrides):
    tdev = use_device(device)
    tm = randomize_vit_(torch_ref.create_model(name, **overrides)).to(tdev)
    pm = paddle_vit.create_model(name, **overrides)
    routes = sync(tm.cpu(), pm)
    return tm.to(tdev), pm, routes


def image(model, batch: int = 2, seed: int = 0) -> np.ndarray:
    h, w = model.patch_embed.img_size
    return random_input([batch, 3, h, w], seed)


def test_required_variants_are_registered():
    for name in ["vit_tiny_patch16_224", "vit_small_patch16_224", "vit_small_patch32_224", "vit_base_patch16_224",
                 "vit_base_patch32_224", "vit_base_patch16_384", "vit_large_patch16_224", "vit_large_patch16_384"]:
        assert name in VIT_NAMES
    assert torch_ref.list_models("vit_*") == VIT_NAMES


@pytest.mark.parametrize("group", GROUP_IDS)
def test_variant_logits_features_and_backward(group, device):
    name, extra = OPTION_GROUPS[group]
    tm, pm, routes = built_pair(name, device, **shrunk(name, **extra))
    x = image(tm, batch=1)
    check_model_parity(tm, pm, routes, [x], device=device)
    check_parity(tm, pm, routes, [x], call=lambda m, xs: m.forward_features(*xs), kind="model",
                 device=device, backward=False, names=["forward_features"])


@pytest.mark.parametrize("overrides", [
    dict(global_pool="avg"), dict(num_classes=0), dict(qkv_bias=False), dict(img_size=(64, 96), patch_size=16)])
def test_options(overrides):
    tm, pm, routes = built_pair("vit_tiny_patch16_224", **{**tiny("vit_tiny_patch16_224"), **overrides})
    x = image(tm)
    check_model_parity(tm, pm, routes, [x])
    if overrides.get("num_classes") == 0:
        assert list(pm(paddle.to_tensor(x)).shape) == [2, pm.embed_dim]


def test_train_mode_with_drop_path_schedule():
    pm = paddle_vit.create_model("vit_tiny_patch16_224", **tiny("vit_tiny_patch16_224", drop_path_rate=0.2))
    rates = [b.drop_path1.drop_prob for b in pm.blocks]
    assert rates == pytest.approx([0.0, 0.2])  # linear 0 -> rate across depth
    tm = torch_ref.create_model("vit_tiny_patch16_224", **tiny("vit_tiny_patch16_224", drop_path_rate=0.2))
    assert [b.drop_path1.drop_prob for b in tm.blocks] == rates


@pytest.mark.full_size
def test_full_size_vit_base(tmp_path):
    tm, pm, routes = built_pair("vit_base_patch16_224")
    check_model_parity(tm, pm, routes, [image(tm, batch=1)], backward=False)


# --- real checkpoint layouts ------------------------------------------------------------------

def _compare_logits(reference: torch.nn.Module, pm, x: np.ndarray, where: str) -> None:
    with torch.no_grad():
        ref = reference(torch.tensor(x))
    assert_close(ref, pm(paddle.to_tensor(x)), tolerance("model"), where)


@pytest.mark.parametrize("name", ["vit_tiny_patch16_224", "vit_small_patch32_224", "vit_base_patch16_384"])
def test_timm_checkpoint(name, tmp_path):
    timm = pytest.importorskip("timm", reason="timm not installed (pip install timm)")
    cfg = tiny(name)
    tm = randomize_(timm.create_model(name, pretrained=False, **cfg)).eval()
    path = tmp_path / "timm.pth"
    torch.save(tm.state_dict(), path)
    pm = paddle_vit.create_model(name, pretrained=path, **cfg)
    _compare_logits(tm, pm, image(pm), f"timm {name} logits")


def _torchvision_vit(tv, **cfg):
    return tv.models.VisionTransformer(image_size=224, patch_size=16, num_layers=cfg["depth"],
                                       num_heads=cfg["num_heads"], hidden_dim=cfg["embed_dim"],
                                       mlp_dim=4 * cfg["embed_dim"], num_classes=cfg["num_classes"])


def test_torchvision_checkpoint(tmp_path):
    tv = pytest.importorskip("torchvision", reason="torchvision not installed")
    cfg = tiny("vit_base_patch16_224")
    tvm = randomize_(_torchvision_vit(tv, **cfg)).eval()
    path = tmp_path / "vit_b_16.pth"
    torch.save(tvm.state_dict(), path)
    pm = paddle_vit.create_model("vit_base_patch16_224", pretrained=path, **cfg)
    _compare_logits(tvm, pm, image(pm), "torchvision vit_b_16 logits")


@pytest.mark.full_size
def test_torchvision_vit_b_16_full_size(tmp_path):
    tv = pytest.importorskip("torchvision", reason="torchvision not installed")
    tvm = randomize_(tv.models.vit_b_16()).eval()
    pm = paddle_vit.create_model("vit_base_patch16_224")
    load_pretrained(pm, _saved(tvm, tmp_path))
    _compare_logits(tvm, pm, image(pm, batch=1), "torchvision vit_b_16 logits")


def _saved(module: torch.nn.Module, tmp_path) -> str:
    path = tmp_path / "ckpt.pth"
    torch.save(module.state_dict(), path)
    return str(path)


def test_224_checkpoint_at_384_matches_timm_resize(tmp_path):
    timm = pytest.importorskip("timm", reason="timm not installed (pip install timm)")
    from timm.models.vision_transformer import checkpoint_filter_fn
    cfg = tiny("vit_tiny_patch16_224")
    at224 = randomize_(timm.create_model("vit_tiny_patch16_224", **cfg)).eval()
    at384 = timm.create_model("vit_tiny_patch16_224", img_size=384, **cfg).eval()
    at384.load_state_dict(checkpoint_filter_fn(at224.state_dict(), at384))  # timm's own resize
    pm = paddle_vit.create_model("vit_tiny_patch16_224", pretrained=_saved(at224, tmp_path), img_size=384, **cfg)
    assert list(pm.pos_embed.shape) == [1, 1 + 24 * 24, cfg["embed_dim"]]
    _compare_logits(at384, pm, image(pm, batch=1), "224 checkpoint at 384")


# --- wrong checkpoints: a clear error, nothing loaded ---------------------------------------

def _weights(pm) -> dict:
    return {k: v.numpy().copy() for k, v in pm.state_dict().items()}


@pytest.mark.parametrize("break_it,expect", [
    (lambda sd: sd.pop("blocks.1.mlp.fc2.weight"), r"missing key 'blocks\.1\.mlp\.fc2\.weight' \[32, 128\]"),
    (lambda sd: sd.__setitem__("blocks.0.extra", torch.zeros(3)), r"unexpected key 'blocks\.0\.extra'"),
    (lambda sd: sd.__setitem__("head.weight", torch.zeros(11, 32)),
     r"shape mismatch 'head\.weight': checkpoint \[11, 32\], model 'head\.weight' needs \[10, 32\]"),
])
def test_wrong_checkpoint_names_keys_and_shapes(break_it, expect, tmp_path):
    name, cfg = "vit_tiny_patch16_224", dict(depth=2, embed_dim=32, num_heads=4, num_classes=10)
    sd = torch_ref.create_model(name, **cfg).state_dict()
    break_it(sd)
    pm = paddle_vit.create_model(name, **cfg)
    before = _weights(pm)
    path = tmp_path / "bad.pth"
    torch.save(sd, path)
    with pytest.raises(ConversionError, match=expect) as err:
        load_pretrained(pm, path)
    assert name in str(err.value)
    after = _weights(pm)
    assert all(np.array_equal(before[k], after[k]) for k in before), "a failed load changed the model"


def test_wider_checkpoint_lists_every_mismatch():
    small = dict(depth=1, embed_dim=32, num_heads=4, num_classes=10)
    sd = torch_ref.create_model("vit_tiny_patch16_224", **{**small, "embed_dim": 48}).state_dict()
    pm = paddle_vit.create_model("vit_tiny_patch16_224", **small)
    with pytest.raises(ConversionError) as err:
        convert_state_dict(sd, pm)
    mismatches = [p for p in err.value.problems if p.startswith("shape mismatch")]
    assert len(mismatches) == len(sd) - 1, err.value  # every tensor but head.bias [10] depends on the width


def test_another_architecture_is_refused():
    tv = pytest.importorskip("torchvision", reason="torchvision not installed")
    sd = tv.models.resnet18().state_dict()
    pm = paddle_vit.create_model("vit_tiny_patch16_224", depth=1)
    with pytest.raises(ConversionError, match="cannot tell the source layout"):
        convert_state_dict(sd, pm)
    with pytest.raises(ConversionError, match="unmapped key 'conv1.weight'"):
        convert_state_dict(sd, pm, source="torchvision")
