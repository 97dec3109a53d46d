"""ONNX export (``deploy.export(format="onnx")``: paddle2onnx) run by ONNX Runtime gives eager Paddle's
output, under the policy's fp32 model bound, for every family (shrunk as in test_export), at any
batch size from one file; the export refuses a graph that does not compute the model and never
leaves a half-written or clobbered file. Skipped, with the reason, without the extra ``onnx``."""
from __future__ import annotations

import numpy as np
import paddle
import pytest

import paddle_vit
from harness import random_input
from paddle_vit.deploy_onnx import missing_extra
from paddle_vit.parity import assert_close, tolerance
from paddle_vit.registry import FAMILIES
from test_export import shrunk

pytestmark = pytest.mark.skipif(missing_extra() is not None, reason=f"the ONNX path: {missing_extra()}")


def _family_cases() -> list:
    """One variant per registered family, plus the tf_ EfficientNet (TF "SAME" padding: F.pad ->
    ONNX Pad, the op paddle2onnx gets wrong) and Swin on maps that are no multiple of the window."""
    import paddle_vit.models  # noqa: F401  (registers the families)
    from paddle_vit.variants import VARIANTS
    firsts = {}
    for name, (family, _) in VARIANTS.items():  # the first row of each family's table
        firsts.setdefault(family, name)
    cases = [pytest.param(name, None, id=name) for family, name in sorted(firsts.items())]
    missing = set(FAMILIES) - set(firsts)
    assert not missing, f"families without a variant: {missing}"
    cases.append(pytest.param("tf_efficientnetv2_s", None, id="tf_efficientnetv2_s-same-padding"))
    cases.append(pytest.param("swin_tiny_patch4_window7_224", dict(img_size=(40, 56)), id="swin-padded-windows"))
    return cases


def _build(name: str, extra: dict | None) -> tuple[paddle.nn.Layer, tuple[int, int]]:
    if extra is None:
        return shrunk(name)
    from test_export import SWIN_SMALL
    paddle.seed(0)
    kwargs = {**SWIN_SMALL, **extra}
    model = paddle_vit.create_model(name, num_classes=7, **kwargs)
    for p in model.parameters():
        p.set_value(p + paddle.randn(p.shape) * 0.05)
    return model, kwargs["img_size"]


@pytest.mark.parametrize("name,extra", _family_cases())
def test_onnx_runtime_matches_eager(name, extra, tmp_path):
    import onnx
    from onnx import numpy_helper
    from paddle_vit.deploy import ONNX_OPSET, OnnxPredictor, export
    model, (h, w) = _build(name, extra)
    model.eval()
    x = random_input([3, 3, h, w], seed=1)
    with paddle.no_grad():
        eager = model(paddle.to_tensor(x)).numpy()
    path = export(model, tmp_path / "model", [None, 3, h, w], format="onnx")
    assert path == str(tmp_path / "model.onnx")
    proto = onnx.load(path)
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [ONNX_OPSET]
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    # paddle2onnx 2.1 leaves every Pad's value uninitialised (it reads Paddle's ``pad_value`` under
    # another name); the export writes the program's value back: 0, our models only zero-pad
    values = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    values.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in proto.graph.node
                   if n.op_type == "Constant" and n.attribute[0].name == "value"})
    pads = [n for n in proto.graph.node if n.op_type == "Pad"]
    assert [(values[n.input[2]].dtype, float(values[n.input[2]])) for n in pads] == [(np.float32, 0.0)] * len(pads)
    assert bool(pads) == name.startswith("tf_"), "only Conv2dSame pads with F.pad"
    predictor = OnnxPredictor(path, threads=1)
    assert_close(eager, predictor(x), tolerance("model"), "ONNX Runtime, batch 3")
    assert_close(eager[:1], predictor(x[:1]), tolerance("model"), "ONNX Runtime, batch 1 (same file)")


def _wrong_pads(monkeypatch):
    """Make the pad repair write 1.0 instead of the program's value: a graph that computes something else."""
    import paddle_vit.deploy_onnx as D
    original = D.restore_pad_values
    monkeypatch.setattr(D, "restore_pad_values", lambda proto, values: original(proto, [v + 1.0 for v in values]))


def test_a_wrong_graph_is_refused_and_nothing_is_written(tmp_path, monkeypatch):
    from paddle_vit.deploy import ExportError, export
    model, (h, w) = shrunk("tf_efficientnetv2_s")
    target = tmp_path / "m.onnx"
    target.write_bytes(b"an earlier export")
    _wrong_pads(monkeypatch)
    with pytest.raises(ExportError, match="does not compute the model.*nothing written"):
        export(model, tmp_path / "m", [None, 3, h, w], format="onnx")
    assert target.read_bytes() == b"an earlier export"  # not clobbered
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # no temporary left behind


def test_predictor_threads_and_bad_input(tmp_path):
    from paddle_vit.deploy import OnnxPredictor, export
    model, (h, w) = shrunk("vit_small_patch16_224")
    with pytest.raises(ValueError, match="format must be one of"):
        export(model, tmp_path / "m", [None, 3, h, w], format="tflite")
    with pytest.raises(ValueError, match=r"opset must be an integer in \[11, "):
        export(model, tmp_path / "m", [None, 3, h, w], format="onnx", opset=7)
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        export(model, tmp_path / "m", [None, 3, h], format="onnx")
    assert list(tmp_path.iterdir()) == []
    path = export(model, tmp_path / "m", [2, 3, h, w], format="onnx")  # a fixed batch
    predictor = OnnxPredictor(path, threads=1)
    assert predictor.session.get_session_options().intra_op_num_threads == 1
    assert OnnxPredictor(path, threads=2).session.get_session_options().intra_op_num_threads == 2
    with pytest.raises(ValueError, match="no ONNX model at"):
        OnnxPredictor(tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="device must be"):
        OnnxPredictor(path, device="tpu")


def test_paddle_vit_export_subcommand(tmp_path, capsys):
    from paddle_vit.cli import main
    from paddle_vit.deploy import OnnxPredictor
    args = ["export", "--model", "vit_small_patch16_224", "--img-size", "32", "--num-classes", "5",
            "--override", "depth=1", "--override", "patch_size=8", "--out", str(tmp_path / "vit")]
    assert main(args + ["--format", "onnx"]) == 0
    assert f"wrote {tmp_path / 'vit.onnx'}: vit_small_patch16_224, input ['B', 3, 32, 32], ONNX opset 17" \
        in capsys.readouterr().out
    assert OnnxPredictor(tmp_path / "vit.onnx", threads=1)(random_input([4, 3, 32, 32])).shape == (4, 5)
    assert main(args) == 0  # the Paddle Inference program
    assert {p.name for p in tmp_path.iterdir()} >= {"vit.json", "vit.pdiparams", "vit.onnx"}
    assert main(args + ["--format", "onnx", "--opset", "5"]) == 2
    assert "opset must be an integer" in capsys.readouterr().err
    assert main(["export", "--model", "no_such_model", "--out", str(tmp_path / "x")]) == 2
    assert "unknown model" in capsys.readouterr().err
