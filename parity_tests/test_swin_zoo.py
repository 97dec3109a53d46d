"""Every timm Swin architecture with a pretrained tag is a variant, and its timm checkpoint loads.

The architectures are listed from the installed timm (``swin_transformer``: V1, ``swin_transformer_v2``:
V2; ``swinv2_cr_*`` is another family), so a timm release that adds one fails here, naming it. Each is
built by timm with random, non-trivial weights, shrunk (two blocks in stage 0 so that a shifted,
masked block is in every case, one block in the others, head_dim 4), at the architecture's own image
size and windows, saved, and loaded by ``create_model(name, pretrained=path, <same overrides>)`` in
both trees: the logits must be timm's within ``fp32_model``. Each distinct head size of the
architecture's tags is a case (the 22k tags: 21841 classes).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import paddle
import pytest
import torch

import paddle_vit
import torch_ref
import torch_ref.models.swin as TS
import torch_ref.models.swin_v2 as TS2
from harness import randomize_, random_input
from paddle_vit import swin_tables
from paddle_vit.models.swin_v2 import LOGIT_SCALE_MAX
from paddle_vit.parity import assert_close, tolerance
from paddle_vit.variants import get_variant, list_models

timm = pytest.importorskip("timm", reason="the Swin zoo is checked against the installed timm")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import gen_swin_zoo  # noqa: E402

MODULES = {"swin": "swin_transformer", "swinv2": "swin_transformer_v2"}
TIMM = {family: gen_swin_zoo.timm_variants(module) for family, module in MODULES.items()}
CASES = [pytest.param(arch, n, id=f"{arch}-{n}") for rows in TIMM.values()
         for arch, (_, tags) in rows.items() for n in sorted(set(tags.values()))]


def test_every_timm_architecture_is_a_variant():
    for family, rows in TIMM.items():
        missing = sorted(set(rows) - set(list_models()))
        assert not missing, f"timm's {MODULES[family]} architectures with pretrained tags that are not variants: " \
                            f"{missing} (run tools/gen_swin_zoo.py)"
        for name, (kwargs, _) in rows.items():
            assert get_variant(name) == (family, kwargs), \
                f"{name}: the table differs from timm (run tools/gen_swin_zoo.py)"
    ours = {n for n in list_models("swin*") if get_variant(n)[0] in MODULES}
    stale = sorted(ours - {n for rows in TIMM.values() for n in rows})
    assert not stale, f"variants that timm no longer has with a pretrained tag: {stale}"
    assert len(TIMM["swin"]) == 9 and len(TIMM["swinv2"]) == 12  # timm 1.0.31; a new one fails above first


@pytest.mark.parametrize("name", sorted(n for rows in TIMM.values() for n in rows))
def test_variant_is_timms_architecture(name):
    """Same tensors (keys and shapes), windows, shifts and V2 coordinate tables as timm's, block by block
    (timm's on torch's meta device: nothing is allocated)."""
    family, kwargs = get_variant(name)
    with torch.device("meta"):
        theirs = timm.create_model(name, pretrained=False)
        ours = (TS.SwinTransformer if family == "swin" else TS2.SwinTransformerV2)(**kwargs)
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == \
           {k: tuple(v.shape) for k, v in theirs.state_dict().items()}, name
    assert tuple(ours.patch_embed.img_size) == tuple(theirs.patch_embed.img_size)
    blocks = [(b, t) for s, ts in zip(ours.layers, theirs.layers) for b, t in zip(s.blocks, ts.blocks)]
    for b, t in blocks:
        assert (b.window_size, b.shift_size) == (tuple(t.window_size), tuple(t.shift_size)), name
        if family == "swinv2":
            assert b.attn.pretrained_window_size == tuple(t.attn.pretrained_window_size), name


def lively_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """``randomize_`` and then the Swin tensors whose timm init would hide a bug: V1 bias tables and
    V2's position-bias MLP large enough to matter, V2 post-norm scales around 1 (timm starts them at
    0), logit scales spread, with one head per layer above the clamp at log(100)."""
    randomize_(model, seed)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("relative_position_bias_table") or name.endswith("cpb_mlp.0.weight"):
                p.copy_(torch.randn(p.shape, generator=g))
            elif name.endswith("cpb_mlp.2.weight"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
            elif name.endswith("logit_scale"):  # [heads, 1, 1]: scales e^1 .. e^3, and one head clamped
                # (at 100, a cosine's rounding becomes a logit error of ~1e-5: every head there would make
                # the softmax ill-conditioned, not the port wrong)
                p.copy_(torch.rand(p.shape, generator=g) * 2.0 + 1.0)
                p[0] = LOGIT_SCALE_MAX + 0.5
            elif ".blocks." in name and (".norm1.weight" in name or ".norm2.weight" in name):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
    return model


def shrunk(name: str, num_classes: int = 1000) -> dict:
    """Overrides that shrink ``name``: two blocks in stage 0, one in the others, head_dim 4; windows,
    image size and pretrained windows as the architecture's."""
    _, kwargs = get_variant(name)
    stages = len(kwargs["depths"])
    return dict(depths=(2,) + (1,) * (stages - 1), embed_dim=4 * kwargs["num_heads"][0], num_classes=num_classes)


def img_shape(name: str) -> tuple[int, int]:
    size = get_variant(name)[1]["img_size"]
    return (size, size) if isinstance(size, int) else tuple(size)


@pytest.mark.parametrize("name,num_classes", CASES)
def test_timm_checkpoint_loads_with_timms_logits(tmp_path, name, num_classes):
    overrides = shrunk(name, num_classes)
    theirs = lively_(timm.create_model(name, pretrained=False, **overrides)).eval()
    path = tmp_path / f"{name}.pth"
    torch.save(theirs.state_dict(), path)
    x = random_input([1, 3, *img_shape(name)])  # batch 1: the 384 px windows of 576 tokens are large
    with torch.no_grad():
        ref = theirs(torch.tensor(x))
    pm = paddle_vit.create_model(name, pretrained=path, **overrides)
    assert_close(ref, pm(paddle.to_tensor(x)), tolerance("model"), f"{name}: paddle_vit logits vs timm")
    tm = torch_ref.create_model(name, pretrained=path, **overrides)
    with torch.no_grad():
        assert_close(ref, tm(torch.tensor(x)), tolerance("model"), f"{name}: torch_ref logits vs timm")


# --- checkpoints at another window or resolution ----------------------------------------------------
def _timm_loaded(name: str, path: Path, **kwargs) -> torch.nn.Module:
    """timm's own load of a checkpoint file into ``name`` built with ``kwargs`` (its checkpoint filter runs)."""
    overlay = dict(file=str(path), num_classes=kwargs.get("num_classes", 1000))
    return timm.create_model(name, pretrained=True, pretrained_cfg_overlay=overlay, **kwargs).eval()


def test_window7_checkpoint_at_window12_384_matches_timms_own_load(tmp_path):
    """The bias tables are resized as timm's checkpoint filter does (7 -> 12, and shrunk windows of
    the later stages: 6, 3), index and masks rebuilt, nothing else resampled."""
    small = dict(embed_dim=12, depths=(2, 2, 1, 1))
    src = lively_(timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, **small)).eval()
    path = tmp_path / "w7.pth"
    torch.save(src.state_dict(), path)
    at12 = dict(small, window_size=12, img_size=384)
    theirs = _timm_loaded("swin_tiny_patch4_window7_224", path, **at12)
    pm = paddle_vit.create_model("swin_tiny_patch4_window7_224", pretrained=path, **at12)
    ours = pm.state_dict()
    for key, table in theirs.state_dict().items():
        if key.endswith("relative_position_bias_table"):
            assert table.shape != src.state_dict()[key].shape, key  # really resized
            assert_close(table, ours[key], tolerance("layer"), key)
    x = random_input([2, 3, 384, 384])
    with torch.no_grad():
        ref = theirs(torch.tensor(x))
    assert_close(ref, pm(paddle.to_tensor(x)), tolerance("model"), "logits at window 12 / 384 vs timm's load")


def test_swinv2_window12_192_checkpoint_starts_the_window16_256_fine_tune(tmp_path):
    """The 22k recipe: swinv2_base_window12_192 weights into swinv2_base_window12to16_192to256
    (window 16 at 256 px, coordinates normalised by the pretrained windows 12, 12, 12, 6): nothing is
    resized (the bias is an MLP of the coordinates), and the logits are timm's own load's."""
    small = shrunk("swinv2_base_window12_192", 21841)
    src = lively_(timm.create_model("swinv2_base_window12_192", pretrained=False, **small)).eval()
    path = tmp_path / "w12.pth"
    torch.save(src.state_dict(), path)
    theirs = _timm_loaded("swinv2_base_window12to16_192to256", path, **small)
    pm = paddle_vit.create_model("swinv2_base_window12to16_192to256", pretrained=path, **small)
    assert pm.layers[0].blocks[0].attn.pretrained_window_size == (12, 12)
    x = random_input([1, 3, 256, 256])
    with torch.no_grad():
        ref = theirs(torch.tensor(x))
    assert_close(ref, pm(paddle.to_tensor(x)), tolerance("model"), "fine-tune start vs timm's load")


# --- torchvision's six Swin builders at full width --------------------------------------------------
TORCHVISION = [("swin_tiny_patch4_window7_224", "swin_t"), ("swin_small_patch4_window7_224", "swin_s"),
               ("swin_base_patch4_window7_224", "swin_b"), ("swinv2_tiny_window8_256", "swin_v2_t"),
               ("swinv2_small_window8_256", "swin_v2_s"), ("swinv2_base_window8_256", "swin_v2_b")]


@pytest.mark.full_size
@pytest.mark.parametrize("ours,builder", TORCHVISION, ids=[b for _, b in TORCHVISION])
def test_torchvision_builder_at_full_width(tmp_path, ours, builder):
    """torchvision's own constructor, random weights, at its own image size (batch 1); 3-12 s each
    on 2 loaded cores (swin_v2_b the longest)."""
    torchvision = pytest.importorskip("torchvision", reason="torchvision is needed for its checkpoints")
    from paddle_vit.convert.layouts import TORCHVISION_NAMES
    assert TORCHVISION_NAMES[ours] == builder
    torch.manual_seed(0)
    theirs = lively_(getattr(torchvision.models, builder)()).eval()
    path = tmp_path / f"{builder}.pth"
    torch.save(theirs.state_dict(), path)
    del theirs  # keep one full-size torch model in memory at a time
    pm = paddle_vit.create_model(ours, pretrained=path)
    x = random_input([1, 3, *img_shape(ours)])
    theirs = getattr(torchvision.models, builder)().eval()
    theirs.load_state_dict(torch.load(path, weights_only=True))
    with torch.no_grad():
        ref = theirs(torch.tensor(x))
    assert_close(ref, pm(paddle.to_tensor(x)), tolerance("model"), f"{ours} vs torchvision {builder}")


def test_s3_windows_are_per_stage():
    """Swin-S3's (7, 7, 14, 7): stage 2 at 224 px (14 x 14) is one 14 x 14 window in both trees and timm."""
    kwargs = get_variant("swin_s3_tiny_224")[1]
    ours = TS.SwinTransformer(**{**kwargs, **shrunk("swin_s3_tiny_224")})
    assert [s.blocks[0].window_size for s in ours.layers] == [(7, 7), (7, 7), (14, 14), (7, 7)]
    assert swin_tables.stage_windows(kwargs["window_size"], 4) == ((7, 7), (7, 7), (14, 14), (7, 7))
    pm = paddle_vit.create_model("swin_s3_tiny_224", **shrunk("swin_s3_tiny_224"))
    assert [s.blocks[0].window_size for s in pm.layers] == [(7, 7), (7, 7), (14, 14), (7, 7)]
    assert np.asarray(pm.layers[2].blocks[0].attn.relative_position_bias_table.shape).tolist() == [27 * 27, 12]
