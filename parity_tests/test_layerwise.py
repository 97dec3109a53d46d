"""The layer-by-layer parity tool: it passes a correct model at every layer, names the first
broken layer of a broken one, pairs renamed modules through the converter, and reports."""
from __future__ import annotations

import numpy as np
import paddle
import pytest
import torch

import paddle_vit.models.vit as PV
import torch_ref.models.vit as TV
from convert_helpers import TINY as TINY_FAMILIES
from harness import _GPU, _WHY, check_model_parity, pair, random_input, randomize_, sync
from paddle_vit.cli import main as cli_main
from paddle_vit.parity.layerwise import ROOT, compare, pair_modules, prepare
from paddle_vit.parity.report import FIRST, format_table, to_markdown, write_report

TINY = dict(img_size=32, patch_size=8, embed_dim=32, depth=4, num_heads=4, num_classes=10)
needs_gpu = [pytest.mark.gpu, pytest.mark.skipif(not _GPU, reason=_WHY)]


def tiny_vit(device: str = "cpu", **overrides):
    tm, pm, routes = pair(TV.VisionTransformer, PV.VisionTransformer, device=device, **{**TINY, **overrides})
    prepare(tm, pm, device)  # on GPU: TF32 off in both frameworks, as the policy's GPU rows assume
    return tm, pm, routes


def test_correct_model_passes_every_layer(device):
    tm, pm, _ = tiny_vit(device)
    report = compare(tm, pm, random_input([2, 3, 32, 32]), backward=True)
    assert report.passed, format_table(report)
    assert report.tol.name == ("gpu_fp32_model" if device == "gpu" else "fp32_model")
    names = [r.name for r in report.forward]
    # every layer of the mirror is paired and hooked, children before their parents
    assert report.unpaired == {"torch": [], "paddle": []}
    assert names[0] == "patch_embed.proj" and names[-1] == ROOT
    assert names.index("blocks.1.attn.qkv") < names.index("blocks.1.attn") < names.index("blocks.1") < names.index("blocks.2.norm1")
    assert {f"blocks.{i}" for i in range(4)} <= set(names)
    # backward: the model's output gradient comes first, every parameter gradient is compared
    assert report.backward[0].name in ("grad of head", f"grad of {ROOT}")
    assert len(report.params) == len(list(pm.parameters()))


def _break_scale(pm):
    pm.blocks[2].attn.scale *= 1.25


def _perturb(path):
    def brk(pm):
        p = dict(pm.named_parameters())[path]
        p.set_value(p.numpy() + 0.05 * random_input(p.shape, seed=7))
    return brk


@pytest.mark.parametrize("brk,first", [
    (_break_scale, "blocks.2.attn.proj"),          # softmax scale: first visible after the projection
    (_perturb("blocks.1.mlp.fc1.weight"), "blocks.1.mlp.fc1"),
    (_perturb("blocks.3.norm2.weight"), "blocks.3.norm2"),
    (_perturb("patch_embed.proj.bias"), "patch_embed.proj"),
])
def test_broken_layer_is_the_first_failure(brk, first):
    tm, pm, _ = tiny_vit()
    brk(pm)
    report = compare(tm, pm, random_input([2, 3, 32, 32]))
    assert report.first_failure is not None and report.first_failure.name == first, format_table(report)
    k = report.first_failure.index
    assert all(r.passed for r in report.forward[:k])
    assert not report.forward[-1].passed  # and it reaches the logits
    assert first in report.summary()


class _WrongGrad(paddle.autograd.PyLayer):
    """Identity whose backward doubles the gradient: a bug only backward can see."""
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        return 2 * g


class _TorchTwo(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.act, self.fc2 = torch.nn.Linear(6, 8), torch.nn.Identity(), torch.nn.Linear(8, 4)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class _PaddleTwo(paddle.nn.Layer):
    def __init__(self):
        super().__init__()
        self.fc1, self.act, self.fc2 = paddle.nn.Linear(6, 8), _PaddleAct(), paddle.nn.Linear(8, 4)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class _PaddleAct(paddle.nn.Layer):
    def forward(self, x):
        return _WrongGrad.apply(x)


def test_broken_gradient_is_found_in_backward_order():
    tm, pm = _TorchTwo(), _PaddleTwo()
    sync(tm, pm)
    report = compare(tm, pm, random_input([3, 6]), backward=True)
    assert all(r.passed for r in report.forward)  # forward is right
    bad = report.first_failure
    assert bad is not None and bad.name == "grad of fc1", format_table(report)
    rows = {r.name: r for r in report.backward}
    assert [r.name for r in report.backward[:2]] == ["grad of fc2", f"grad of {ROOT}"]  # backward order
    assert rows["grad of act"].passed and not rows["grad of fc1"].passed  # the doubling happens between
    assert {r.name for r in report.params if not r.passed} == {"grad of fc1.weight", "grad of fc1.bias"}


def test_model_parity_failure_names_the_first_diverging_layer():
    tm, pm, routes = tiny_vit()
    x = [random_input([2, 3, 32, 32])]
    check_model_parity(tm, pm, routes, x)  # a correct model passes
    _break_scale(pm)
    with pytest.raises(AssertionError, match=r"first diverging layer \(forward\): blocks\.2\.attn\.proj"):
        check_model_parity(tm, pm, routes, x)


def test_torchvision_modules_pair_through_the_rename_rules():
    tv = pytest.importorskip("torchvision.models.vision_transformer", reason="torchvision not installed")
    torch.manual_seed(0)
    tm = tv.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=32,
                              mlp_dim=128, num_classes=10).eval()
    with torch.no_grad():  # torchvision zero-initialises the head: give it values
        tm.heads.head.weight.normal_(0, 0.1)
    pm = PV.VisionTransformer(**{**TINY, "depth": 2})
    pm.eval()
    sync(tm, pm, source="torchvision")
    pairs, unpaired = pair_modules(tm, pm)
    assert {("conv_proj", "patch_embed.proj"), ("encoder.layers.encoder_layer_1.self_attention", "blocks.1.attn"),
            ("encoder.layers.encoder_layer_0", "blocks.0"), ("encoder.layers.encoder_layer_0.mlp", "blocks.0.mlp"),
            ("encoder.ln", "norm"), ("heads.head", "head"), ("", "")} <= set(pairs)
    assert "encoder" in unpaired["torch"]  # owns pos_embed + blocks + norm: no single twin
    report = compare(tm, pm, random_input([2, 3, 32, 32]), backward=True)
    assert report.passed, format_table(report)
    assert {"blocks.0.attn", "blocks.1.mlp", "head", ROOT} <= {r.name for r in report.forward}
    row = next(r for r in report.forward if r.name == "blocks.0.attn")
    assert row.ref_name == "encoder.layers.encoder_layer_0.self_attention"



# --- fused modules: timm's BatchNormAct2d is norm + activation, ours is the norm, then our activation ---
TINY_EFFNET = dict(num_classes=10, depth_multiplier=0.25)


def timm_effnet():
    timm = pytest.importorskip("timm", reason="timm not installed")
    import paddle_vit
    torch.manual_seed(0)
    tm = randomize_(timm.create_model("tf_efficientnetv2_s", **TINY_EFFNET), 0).eval()
    pm = paddle_vit.create_model("tf_efficientnetv2_s", **TINY_EFFNET)
    sync(tm, pm, source="timm")
    return tm, pm


def test_timm_batchnorm_act_pairs_with_our_norm_and_activation():
    """timm's ``bn1`` (BatchNormAct2d) used to be held against our plain BatchNorm: every bn row
    failed (cosine ~0.90) and ``bn1`` was named the first diverging layer of a correct model. Our
    EfficientNet now mirrors timm's norm + act modules, so they pair one to one; where ours keeps
    the activation apart, the fusion pairs them (``test_a_missing_activation_is_not_hidden_by_the_fusion``)."""
    tm, pm = timm_effnet()
    report = compare(tm, pm, random_input([2, 3, 64, 64]), backward=True)
    assert report.passed, format_table(report)
    names = {r.name for r in report.forward}
    assert {"bn1", "blocks.1.0.bn1", "blocks.1.0.bn2"} <= names
    assert "grad of bn1" in {r.name for r in report.backward}


@pytest.mark.parametrize("param", ["blocks.1.0.bn1.weight", "blocks.1.0.bn2.weight", "blocks.2.0.conv_exp.weight"])
def test_timm_effnet_injected_error_is_found_first(param):
    """The first failing row is the broken layer (a norm + act module's activation child, which
    finishes first, counts as the layer)."""
    tm, pm = timm_effnet()
    p = dict(pm.named_parameters())[param]
    p.set_value(p.numpy() * 1.1)
    report = compare(tm, pm, random_input([2, 3, 64, 64]))
    layer = param.rsplit(".", 1)[0]
    assert report.first_failure is not None and report.first_failure.name in (layer, f"{layer}.act"), \
        format_table(report)


class _TorchNormAct(torch.nn.Module):
    def __init__(self):
        super().__init__()
        from timm.layers import BatchNormAct2d
        self.conv, self.bn1 = torch.nn.Conv2d(3, 8, 3), BatchNormAct2d(8, act_layer=torch.nn.SiLU)

    def forward(self, x):
        return self.bn1(self.conv(x))


class _PaddleNormAct(paddle.nn.Layer):
    def __init__(self, with_act: bool):
        super().__init__()
        from paddle_vit.layers.activations import SiLU
        from paddle_vit.layers.norm import BatchNorm2d
        self.conv, self.bn1, self.act, self.with_act = paddle.nn.Conv2D(3, 8, 3), BatchNorm2d(8), SiLU(), with_act

    def forward(self, x):
        y = self.bn1(self.conv(x))
        return self.act(y) if self.with_act else y


@pytest.mark.parametrize("with_act", [True, False])
def test_a_missing_activation_is_not_hidden_by_the_fusion(with_act):
    pytest.importorskip("timm", reason="timm not installed")
    tm, pm = randomize_(_TorchNormAct()).eval(), _PaddleNormAct(with_act)
    pm.eval()
    sync(tm, pm)
    report = compare(tm, pm, random_input([2, 3, 8, 8]))
    if with_act:
        assert report.passed and [r.name for r in report.forward] == ["conv", "bn1+act", ROOT], format_table(report)
    else:  # no activation consumed bn1's output: compared as they are, and the note says why they differ
        assert report.first_failure.name == "bn1", format_table(report)
        assert any("also applies its bn1.act (silu)" in n for n in report.notes), report.notes


# --- float64, and weights that fp32 rounding decides (tolerances: "Ill-conditioned weights") ---
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("family", sorted(TINY_FAMILIES))
def test_every_family_passes_in_float32_and_float64(family, dtype):
    """``prepare`` casts floating-point tensors only: it used to cast Swin's integer index buffers
    too, and ``paddle-vit diff`` of any Swin crashed ('Tensor holds no memory')."""
    import torch_ref
    import paddle_vit
    name, kwargs = TINY_FAMILIES[family]
    torch.manual_seed(0)
    tm, pm = randomize_(torch_ref.create_model(name, **kwargs)), paddle_vit.create_model(name, **kwargs)
    sync(tm, pm)
    prepare(tm, pm, "cpu", dtype)
    size = kwargs.get("img_size", 64)
    report = compare(tm, pm, random_input([2, 3, size, size]), backward=dtype == "float64")
    assert report.tol.name == {"float32": "fp32_model", "float64": "fp64_model"}[dtype]
    assert report.passed, format_table(report)


def test_ill_conditioned_weights_are_judged_in_float64():
    """timm's own init, perturbed, makes the activations of a tf_efficientnetv2_s explode (logits ~5e5
    from inputs ~1; full size ~1e13): there fp32 is decided by rounding (here 0.48 at the logits, first
    failing at an SE gate), float64 is not. In float64 both frameworks agree at every layer under the
    fp64 row; it used to fail there (5e-2 at an SE gate) because Paddle keeps a norm's epsilon as a
    float32 (prepare now rounds the reference's the same way), and timm's in-place SiLU rewrote the
    recorded float64 outputs (as_numpy now copies). A real error is still found first."""
    timm = pytest.importorskip("timm", reason="timm not installed")
    import paddle_vit
    arch = dict(num_classes=10, depth_multiplier=0.5)
    torch.manual_seed(0)
    tm = randomize_(timm.create_model("tf_efficientnetv2_s", **arch), 0).eval()
    pm = paddle_vit.create_model("tf_efficientnetv2_s", **arch)
    sync(tm, pm, source="timm")
    prepare(tm, pm, "cpu", "float64")
    x = random_input([1, 3, 96, 96])
    report = compare(tm, pm, x)
    assert report.forward[-1].stats.scale > 1e5, "the weights should make the activations explode"
    assert report.passed, format_table(report)
    p = dict(pm.named_parameters())["blocks.2.0.conv_exp.weight"]
    p.set_value(p.numpy() * 1.01)
    assert compare(tm, pm, x).first_failure.name == "blocks.2.0.conv_exp"


def test_diff_twins_with_timm_are_well_conditioned():
    """``paddle-vit diff --reference timm`` used to keep timm's own init (perturbed): for EfficientNetV2
    the activations explode and every comparison failed (tolerances); timm's model now starts from
    torch_ref's initial weights."""
    pytest.importorskip("timm", reason="timm not installed")
    from paddle_vit.parity.model_diff import build_twins
    tm, pm = build_twins("tf_efficientnetv2_s", reference="timm")
    prepare(tm, pm)
    report = compare(tm, pm, random_input([1, 3, 96, 96]))
    assert report.passed and report.forward[-1].stats.scale < 1e3, format_table(report)

def test_reports(tmp_path):
    tm, pm, _ = tiny_vit(depth=2)
    _perturb("blocks.1.attn.qkv.weight")(pm)
    report = compare(tm, pm, random_input([1, 3, 32, 32]))
    table = format_table(report)
    marked = [line for line in table.splitlines() if line.startswith(FIRST)]
    assert len(marked) == 1 and "blocks.1.attn.qkv" in marked[0] and "FIRST FAIL" in marked[0]
    assert "**blocks.1.attn.qkv**" in to_markdown(report)
    for name in ("r.html", "r.md"):
        path, png = write_report(report, tmp_path / name)
        text = path.read_text()
        assert "blocks.1.attn.qkv" in text and "first diverging layer" in text
        if png is None:
            assert "matplotlib is not installed" in text
        else:
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.name in text
    with pytest.raises(ValueError, match=r"\.html or \.md"):
        write_report(report, tmp_path / "r.txt")


def test_cli_diff_writes_table_and_report(tmp_path, capsys):
    status = cli_main(["diff", "--model", "vit_tiny_patch16_224", "--report", str(tmp_path / "tiny.md")])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "all " in out and "compared tensors pass" in out and "blocks.11.mlp.fc2" in out
    assert (tmp_path / "tiny.md").exists()


@pytest.mark.parametrize("argv,msg", [
    (["--dtype", "float16"], "float16 needs device 'gpu'"),
    (["--batch", "0"], "batch must be >= 1"),
])
def test_cli_diff_bad_arguments(argv, msg, capsys):
    assert cli_main(["diff", "--model", "vit_tiny_patch16_224", *argv]) == 2
    assert msg in capsys.readouterr().err


def test_prepare_rejects_bad_settings():
    tm, pm, _ = tiny_vit(depth=1)
    with pytest.raises(ValueError, match="dtype must be one of float32, float64, float16, bfloat16"):
        prepare(tm, pm, "cpu", "int8")
    with pytest.raises(ValueError, match="'cpu' or 'gpu'"):
        prepare(tm, pm, "tpu")
    with pytest.raises(ValueError, match="numpy array"):
        compare(tm, pm, [])


@pytest.mark.parametrize("dtype", [pytest.param(d, marks=needs_gpu) for d in ("float16", "bfloat16")])
def test_half_precision_gpu(dtype):
    """Both models cast to ``dtype`` on the GPU; forward and gradients held to the dtype's model row."""
    tm, pm, _ = tiny_vit("gpu")
    prepare(tm, pm, "gpu", dtype)
    report = compare(tm, pm, random_input([2, 3, 32, 32]), backward=True)
    assert report.tol.name == {"float16": "fp16_model", "bfloat16": "bf16_model"}[dtype]
    assert report.passed, format_table(report)
    pm.blocks[2].attn.scale *= 4.0  # a gross bug (3e-1 at that layer, see tolerances) is still caught
    assert compare(tm, pm, random_input([2, 3, 32, 32])).first_failure.name == "blocks.2.attn.proj"


@pytest.mark.full_size
def test_cli_diff_full_size(tmp_path, capsys):
    """The issue's command: vit_small_patch16_224 at batch 1, table and HTML report with its plot."""
    status = cli_main(["diff", "--model", "vit_small_patch16_224", "--report", str(tmp_path / "report.html")])
    out = capsys.readouterr().out
    assert status == 0, out
    assert (tmp_path / "report.html").exists() and "report:" in out
