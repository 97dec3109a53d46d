"""The ViT zoo against its sources: every architecture of the installed timm's ``vision_transformer``
and ``deit`` modules that has a pretrained tag is a variant with timm's arguments, and timm's own
model of it (random, non-trivial weights, shrunk) saved to disk loads into both trees with timm's
logits; torchvision's five ViTs at full width; dynamic image sizes, DeiT's two heads, export per
option group; bad options and checkpoints of another variant."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest
import torch

import paddle_vit
import torch_ref
from harness import random_input
from paddle_vit.convert import ConversionError, load_pretrained
from paddle_vit.deploy import InferencePredictor, export
from paddle_vit.parity import assert_close, tolerance
from paddle_vit.variants import ALIASES, VARIANTS, get_variant, list_models
from vit_zoo_helpers import GROUP_IDS, OPTION_GROUPS, norm_eps, randomize_vit_, shrunk

timm = pytest.importorskip("timm", reason="the ViT zoo is checked against timm (pip install timm)")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import gen_vit_zoo  # noqa: E402  (the generator's reading of timm's model definitions)

ARCHS = gen_vit_zoo.architectures()   # from the installed timm, not from our table
TOL = tolerance("model")


def _x(model, batch: int = 2, seed: int = 0, size=None) -> np.ndarray:
    h, w = size or model.patch_embed.img_size
    return random_input([batch, 3, h, w], seed)


def _torch_out(model: torch.nn.Module, x: np.ndarray):
    with torch.no_grad():
        return model(torch.from_numpy(x))


def _paddle_out(model, x: np.ndarray):
    with paddle.no_grad():
        return model(paddle.to_tensor(x))


def _timm_model(name: str, **overrides) -> torch.nn.Module:
    return randomize_vit_(timm.create_model(name, pretrained=False, **overrides)).eval()


def _saved(module: torch.nn.Module, path: Path) -> Path:
    torch.save(module.state_dict(), path)
    return path


# --- the table is timm's ----------------------------------------------------------------------

def test_every_pretrained_timm_architecture_is_a_variant():
    assert len(ARCHS) >= 150, f"timm lists only {len(ARCHS)} pretrained ViT architectures: is it timm 1.0?"
    missing = [name for name in ARCHS if name not in VARIANTS]
    assert not missing, (f"{len(missing)} timm architecture(s) with a pretrained tag are not variants: {missing}; "
                         "rerun tools/gen_vit_zoo.py")


def test_table_matches_installed_timm():
    """Each row is what timm builds the architecture with (``tools/gen_vit_zoo.py`` reads timm's
    entrypoints); a row for an architecture timm no longer lists is reported too."""
    from paddle_vit.zoo import vit as table
    theirs = gen_vit_zoo.timm_table()
    differ = {n: {"ours": table.VARIANTS.get(n), "timm": row} for n, row in theirs.items() if table.VARIANTS.get(n) != row}
    stale = sorted(set(table.VARIANTS) - set(theirs))
    assert not differ and not stale, f"rows differing from timm: {differ}; rows timm does not list: {stale}"


@pytest.mark.parametrize("name", ARCHS)
def test_timm_checkpoint_loads_with_timm_logits(name, tmp_path):
    overrides = shrunk(name)
    tm = _timm_model(name, **overrides)
    path = _saved(tm, tmp_path / f"{name}.pth")
    x = _x(tm)
    ref = _torch_out(tm, x)
    pm = paddle_vit.create_model(name, pretrained=path, **overrides)
    assert_close(ref, _paddle_out(pm, x), TOL, f"{name}: paddle_vit vs timm logits")
    rm = torch_ref.create_model(name, pretrained=path, **overrides)
    assert_close(ref, _torch_out(rm, x), TOL, f"{name}: torch_ref vs timm logits")
    assert norm_eps(pm) == norm_eps(rm) == norm_eps(tm), "norm epsilons differ from timm's"


# --- torchvision's five, at full width -----------------------------------------------------------

TORCHVISION = ["vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32", "vit_h_14"]


def _torchvision_at_depth(tv_name: str, depth: int) -> torch.nn.Module:
    """torchvision's named constructor's architecture (read from it on the meta device) at ``depth``."""
    tv = pytest.importorskip("torchvision", reason="torchvision not installed")
    from torchvision.models.vision_transformer import VisionTransformer
    with torch.device("meta"):
        full = getattr(tv.models, tv_name)()
    heads = full.encoder.layers[0].self_attention.num_heads
    torch.manual_seed(0)
    model = VisionTransformer(full.image_size, full.patch_size, depth, heads, full.hidden_dim, full.mlp_dim,
                              num_classes=full.num_classes)
    return randomize_vit_(model).eval()


@pytest.mark.parametrize("tv_name", TORCHVISION)
def test_torchvision_vit_full_width(tv_name, tmp_path):
    """Full width at depth 2, loaded under torchvision's name and under timm's; and every tensor
    of the full-depth named constructor routes onto our full-size variant (shapes only)."""
    from paddle_vit.convert import get_layout, plan
    tvm = _torchvision_at_depth(tv_name, depth=2)
    path = _saved(tvm, tmp_path / f"{tv_name}.pth")
    x = _x(None, batch=1, size=(224, 224))
    ref = _torch_out(tvm, x)
    timm_name, extra = ALIASES[tv_name]
    for name, kwargs in ((tv_name, {}), (timm_name, extra)):
        pm = paddle_vit.create_model(name, pretrained=path, depth=2, **kwargs)
        assert_close(ref, _paddle_out(pm, x), TOL, f"torchvision {tv_name} as {name}")
    tv = pytest.importorskip("torchvision")
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in getattr(tv.models, tv_name)().state_dict().items()}
    with paddle.LazyGuard():
        full = paddle_vit.create_model(tv_name)
    assert len(plan(shapes, full, get_layout("vit", "torchvision"))) == len(shapes)


@pytest.mark.full_size
def test_torchvision_vit_h_14_full_size(tmp_path):
    """The largest of the five as torchvision builds it, all 32 blocks (~90 s and ~8 GB on 2 cores:
    the other four run at full depth only as shapes above, and vit_b_16 in test_vit.py)."""
    tv = pytest.importorskip("torchvision", reason="torchvision not installed")
    tvm = randomize_vit_(tv.models.vit_h_14()).eval()
    x = _x(None, batch=1, size=(224, 224))
    pm = paddle_vit.create_model("vit_h_14", pretrained=_saved(tvm, tmp_path / "tv.pth"))
    assert_close(_torch_out(tvm, x), _paddle_out(pm, x), TOL, "torchvision vit_h_14 full size")


def test_torchvision_names_are_aliases():
    """torchvision's names build timm's variant of the same architecture, with torchvision's head."""
    assert set(TORCHVISION) == set(ALIASES) and set(TORCHVISION) <= set(list_models("vit_*"))
    for tv_name, (name, extra) in ALIASES.items():
        assert get_variant(tv_name) == ("vit", {**get_variant(name)[1], **extra})
    assert get_variant("vit_h_14")[1]["num_classes"] == 1000 and get_variant("vit_huge_patch14_224")[1]["num_classes"] == 0
    assert torch_ref.list_models("vit_*") == list_models("vit_*")


# --- options with behaviour of their own ----------------------------------------------------

@pytest.mark.parametrize("name,extra,size", [
    ("test_vit2", {}, (48, 80)),                                      # reg token, no class token, LayerScale
    ("vit_intern300m_patch14_448", {}, (28, 70)),                     # class token, no final norm
    ("test_vit", {"dynamic_img_pad": True}, (37, 50)),                # padded to a multiple of the patch
])
def test_dynamic_img_size_resamples_the_position_embedding(name, extra, size, tmp_path):
    """An input of another size than the model's: the position embedding is resampled on the fly as
    timm does (antialiased bicubic), in both trees; backward against torch_ref too."""
    from harness import check_model_parity, sync
    overrides = shrunk(name, **extra)
    tm = _timm_model(name, **overrides)
    path = _saved(tm, tmp_path / "dyn.pth")
    x = _x(None, size=size)
    pm = paddle_vit.create_model(name, pretrained=path, **overrides)
    assert pm.dynamic_img_size and tuple(pm.patch_embed.img_size) != size
    assert_close(_torch_out(tm, x), _paddle_out(pm, x), TOL, f"{name} at {size}")
    rm = torch_ref.create_model(name, pretrained=path, **overrides)
    check_model_parity(rm, pm, sync(rm, pm), [x])


def test_fixed_size_model_refuses_another_size():
    pm = paddle_vit.create_model("vit_tiny_patch16_224", **shrunk("vit_tiny_patch16_224"))
    with pytest.raises(ValueError, match=r"expected image size \(32, 48\)"):
        pm(paddle.to_tensor(random_input([1, 3, 48, 48])))
    dyn = paddle_vit.create_model("test_vit", **shrunk("test_vit"))
    with pytest.raises(ValueError, match="not divisible by the patch size.*dynamic_img_pad=True"):
        dyn(paddle.to_tensor(random_input([1, 3, 40, 48])))


def test_distilled_heads_in_train_and_eval(tmp_path):
    """DeiT distilled: eval averages the two heads; training too, unless distilled training is
    set, which returns both (timm's behaviour); pre_logits averages the two tokens."""
    name, overrides = "deit_tiny_distilled_patch16_224", shrunk("deit_tiny_distilled_patch16_224")
    tm = _timm_model(name, **overrides)
    path = _saved(tm, tmp_path / "deit.pth")
    pm = paddle_vit.create_model(name, pretrained=path, **overrides)
    x = _x(pm)
    for training in (False, True):
        tm.train(training)
        pm.train() if training else pm.eval()
        for distill in (False, True):
            tm.set_distilled_training(distill)
            pm.set_distilled_training(distill)
            ref, got = _torch_out(tm, x), _paddle_out(pm, x)
            if training and distill:
                assert isinstance(got, tuple) and len(got) == 2
                for r, g, head in zip(ref, got, ("head", "head_dist")):
                    assert_close(r, g, TOL, f"distilled training: {head}")
            else:
                assert_close(ref, got, TOL, f"training={training}, distilled_training={distill}")
    pm.eval()
    tm.eval()
    with torch.no_grad():
        ref = tm.forward_head(tm.forward_features(torch.from_numpy(x)), pre_logits=True)
    assert_close(ref, pm.forward_head(pm.forward_features(paddle.to_tensor(x)), pre_logits=True), TOL, "pre_logits")


def test_patch_dropout_drops_patches_in_training_only():
    overrides = shrunk("vit_medium_patch16_reg4_gap_256", patch_drop_rate=0.5, img_size=(64, 64))
    x = _x(None, size=(64, 64))
    for model, run in ((paddle_vit.create_model("vit_medium_patch16_reg4_gap_256", **overrides), _paddle_out),
                       (torch_ref.create_model("vit_medium_patch16_reg4_gap_256", **overrides), _torch_out)):
        model.train()
        assert list(model.forward_features(paddle.to_tensor(x) if run is _paddle_out else torch.from_numpy(x)).shape) \
            == [2, 4 + 8, 32]  # 4 register tokens + int(16 * 0.5) patches
        model.eval()
        assert list(run(model, x).shape) == [2, 7]


@pytest.mark.parametrize("group", GROUP_IDS)
def test_export_per_option_group(group, tmp_path):
    """``deploy.export`` + Paddle Inference (oneDNN) give the eager logits, any batch size; the
    dynamic-size group is exported at another size than its own."""
    name, extra = OPTION_GROUPS[group]
    paddle.seed(0)
    model = paddle_vit.create_model(name, **shrunk(name, **extra))
    for p in model.parameters():  # no zero head or unit norm: every tensor must travel
        p.set_value(p + paddle.randn(p.shape) * 0.05)
    h, w = model.patch_embed.img_size
    if model.dynamic_img_size:
        h, w = h + 2 * model.patch_embed.patch_size[0], w
    x = random_input([3, 3, h, w])
    eager = _paddle_out(model, x).numpy()
    predictor = InferencePredictor(export(model, tmp_path / "model", [None, 3, h, w]), threads=1)
    assert_close(eager, predictor(x), TOL, f"{group}: inference")
    assert_close(eager[:1], predictor(x[:1]), TOL, f"{group}: inference, batch 1")


# --- bad input: one clear error ---------------------------------------------------------------

@pytest.mark.parametrize("overrides,match", [
    (dict(global_pool="mean"), r"global_pool='mean' is not supported; allowed: \['', 'token', 'avg', 'avgmax', 'max', 'map'\]"),
    (dict(global_pool="prr"), r"global_pool='prr' is not supported"),
    (dict(act_layer="swish"), r"act_layer='swish' is not supported; allowed: \['gelu', 'gelu_tanh', 'quick_gelu'"),
    (dict(norm_layer="batchnorm"), r"norm_layer='batchnorm' is not supported; allowed: \['layernorm', 'rmsnorm'\]"),
    (dict(mlp_layer="GatedMlp"), r"mlp_layer='GatedMlp' is not supported; allowed: \['Mlp', 'SwiGLU', 'SwiGLUPacked', 'GluMlp'\]"),
    (dict(block_fn="ParallelThingsBlock"), r"block_fn='ParallelThingsBlock' is not supported; allowed: \['Block'"),
    (dict(attn_layer="rope"), r"attn_layer='rope' is not supported; allowed: \['attn', 'diff'\]"),
    (dict(pos_embed="sincos"), r"pos_embed='sincos' is not supported; allowed: \['learn', 'none'\]"),
    (dict(embed_norm_layer="groupnorm"), r"embed_norm_layer='groupnorm' is not supported"),
    (dict(class_token=False), r"global_pool='token' needs class_token=True"),
    (dict(distilled=True, no_embed_class=True), r"distilled=True .* needs .*no_embed_class=False"),
    (dict(block_fn="ParallelScalingBlock", mlp_layer="SwiGLU"), r"needs mlp_layer='Mlp' and attn_layer='attn'"),
    (dict(block_fn="ParallelScalingBlock", scale_attn_norm=True), r"has no scale norms"),
    (dict(attn_layer="diff", embed_dim=36, num_heads=4), r"divisible by 2 \* num_heads \(8\)"),
    (dict(mlp_layer="GluMlp", embed_dim=30, num_heads=2, mlp_ratio=2.5), r"mlp_layer='GluMlp' .* even hidden width.* = 75"),
    (dict(patch_drop_rate=1.0), r"patch_drop_rate must be in \[0, 1\)"),
    (dict(attn_layer="diff", qk_scale=0.1), r"qk_scale is supported with attn_layer='attn'"),
])
@pytest.mark.parametrize("tree", ["paddle_vit", "torch_ref"])
def test_unsupported_options_are_a_clear_error(overrides, match, tree):
    create = paddle_vit.create_model if tree == "paddle_vit" else torch_ref.create_model
    with pytest.raises(ValueError, match=match):
        create("vit_tiny_patch16_224", **{**shrunk("vit_tiny_patch16_224"), **overrides})


@pytest.mark.parametrize("source,target,img_size,expect", [
    # DINOv2 with registers into plain DINOv2: the register token is unexpected, the embedding's shape differs
    ("vit_small_patch14_reg4_dinov2", "vit_small_patch14_dinov2", (28, 42),
     [r"unexpected key 'reg_token' \[1, 4, 32\]",
      r"shape mismatch 'pos_embed': checkpoint \[1, 6, 32\], model 'pos_embed' needs \[1, 7, 32\]"]),
    # DeiT III (class token outside the position embedding) into DeiT: the same keys, one shape
    ("deit3_small_patch16_224", "deit_small_patch16_224", (32, 48),
     [r"shape mismatch 'pos_embed': checkpoint \[1, 6, 32\], model 'pos_embed' needs \[1, 7, 32\]"]),
    # FlexiViT (class token outside the position embedding) into augreg: only the embedding's length
    # differs, and its grid would not be square (before: a bare resampling ValueError mid-conversion)
    ("flexivit_small", "vit_small_patch16_224", (32, 48),
     [r"shape mismatch 'pos_embed': checkpoint \[1, 6, 32\], model 'pos_embed' needs \[1, 7, 32\] "
      r"\(or 1 prefix token\(s\) \+ any square grid, resampled\)"]),
    # DINOv2 (LayerScale, patch 14) into an augreg ViT (patch 16) at 112 px
    ("vit_small_patch14_dinov2", "vit_small_patch16_224", (112, 112),
     [r"unexpected key 'blocks\.0\.ls1\.gamma' \[32\]",
      r"shape mismatch 'patch_embed\.proj\.weight': checkpoint \[32, 3, 14, 14\], model 'patch_embed\.proj\.weight' "
      r"needs \[32, 3, 16, 16\]"]),
    # SigLIP's attention-pooling head into its global-average twin
    ("vit_base_patch16_siglip_224", "vit_base_patch16_siglip_gap_224", (32, 48),
     [r"unexpected key 'attn_pool\.latent' \[1, 1, 32\]"]),
])
def test_checkpoint_of_another_variant_names_keys_and_shapes(source, target, img_size, expect, tmp_path):
    path = _saved(_timm_model(source, **shrunk(source, img_size=img_size)), tmp_path / "other.pth")
    pm = paddle_vit.create_model(target, **shrunk(target, img_size=img_size))
    before = {k: v.numpy().copy() for k, v in pm.state_dict().items()}
    with pytest.raises(ConversionError) as err:
        load_pretrained(pm, path)
    for pattern in expect:
        assert any(re.search(pattern, p) for p in err.value.problems), (pattern, err.value.problems)
    assert all(np.array_equal(before[k], v.numpy()) for k, v in pm.state_dict().items()), "a failed load changed the model"


@pytest.mark.parametrize("name", ["vit_small_patch14_reg4_dinov2", "vit_base_patch16_siglip_224",
                                  "vit_dpwee_patch16_reg1_gap_256", "deit_tiny_distilled_patch16_224"])
def test_layer_by_layer_diff_against_timm(name):
    """``paddle-vit diff``'s comparison pairs timm's modules with ours through the layout and every
    hooked output and gradient passes (register tokens, attention pooling, parallel blocks, DeiT)."""
    from harness import sync
    from paddle_vit.parity.layerwise import compare
    overrides = shrunk(name)
    tm = _timm_model(name, **overrides)
    pm = paddle_vit.create_model(name, **overrides)
    sync(tm, pm, source="timm")
    report = compare(tm, pm, [_x(pm, batch=1)], backward=True)
    assert report.passed, report.summary()
    assert len(report.forward) >= 20 and report.params, report.summary()


@pytest.mark.parametrize("name", ["vit_small_patch14_reg4_dinov2", "vit_base_patch16_siglip_224"])
def test_convert_cli_verifies_a_zoo_checkpoint(name, tmp_path):
    """``paddle-vit-convert`` detects timm's layout (no class token needed), converts, and its
    verification (timm's own model vs ours) passes; the output loads with ``pretrained=``."""
    from convert_helpers import run_cli
    overrides = shrunk(name)
    src = _saved(_timm_model(name, **overrides), tmp_path / "src.pth")
    args = ["--model", name, "--num-classes", "7"]
    args += [f for k, v in overrides.items() if k != "num_classes" for f in ("--override", f"{k}={v!r}")]
    code, out = run_cli(src, tmp_path / "out.pdparams", *args)
    assert code == 0 and "PASS" in out and "timm vs paddle_vit" in out, out
    pm = paddle_vit.create_model(name, pretrained=tmp_path / "out.pdparams", **overrides)
    tm = paddle_vit.create_model(name, pretrained=src, **overrides)
    x = _x(pm)
    assert_close(_paddle_out(tm, x), _paddle_out(pm, x), tolerance("layer"), "the .pdparams file vs the .pth")
