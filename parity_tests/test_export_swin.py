"""Swin through ``paddle.jit.to_static`` + ``paddle.jit.save`` and Paddle Inference: the exported
program gives the eager model's logits (the window index and shift masks are non-persistable
buffers, so they must be baked into the program, not expected in the parameter file)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import paddle
import pytest
from paddle import inference

import paddle_vit
from harness import random_input
from paddle_vit.parity import assert_close, tolerance

CFG = dict(img_size=(64, 96), window_size=4, embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4),
           num_classes=10)


def export(model: paddle.nn.Layer, shape: list, prefix: Path) -> Path:
    """Save ``model`` as a static program for inputs ``shape`` (``None`` = any batch); returns the model file."""
    spec = [paddle.static.InputSpec(shape, "float32", "x")]
    paddle.jit.save(paddle.jit.to_static(model, input_spec=spec, full_graph=True), str(prefix))
    files = [prefix.with_suffix(s) for s in (".json", ".pdmodel") if prefix.with_suffix(s).exists()]
    assert files and prefix.with_suffix(".pdiparams").exists(), f"paddle.jit.save wrote {os.listdir(prefix.parent)}"
    return files[0]


def predict(model_file: Path, params_file: Path, x: np.ndarray, mkldnn: bool) -> np.ndarray:
    config = inference.Config(str(model_file), str(params_file))
    config.disable_gpu()
    if mkldnn:
        config.enable_mkldnn()
    else:
        config.disable_mkldnn()
    predictor = inference.create_predictor(config)
    handle = predictor.get_input_handle(predictor.get_input_names()[0])
    handle.reshape(list(x.shape))
    handle.copy_from_cpu(x)
    predictor.run()
    return predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    paddle.seed(0)
    model = paddle_vit.create_model("swin_tiny_patch4_window7_224", **CFG)
    for p in model.parameters():  # no zero heads or unit norms: every tensor must travel
        p.set_value(p + paddle.randn(p.shape) * 0.05)
    prefix = tmp_path_factory.mktemp("swin_export") / "swin"
    return model, export(model, [None, 3, *CFG["img_size"]], prefix), prefix.with_suffix(".pdiparams")


def test_jit_load_matches_eager(exported):
    model, model_file, _ = exported
    x = random_input([2, 3, *CFG["img_size"]])
    loaded = paddle.jit.load(str(model_file.with_suffix("")))
    loaded.eval()
    assert_close(model(paddle.to_tensor(x)), loaded(paddle.to_tensor(x)), tolerance("layer"), "jit.load logits")


@pytest.mark.parametrize("mkldnn", [False, True])
@pytest.mark.parametrize("batch", [1, 3])
def test_inference_matches_eager(exported, mkldnn, batch):
    """oneDNN kernels sum in another order than the eager ones: a network's bound (fp32_model)."""
    model, model_file, params_file = exported
    x = random_input([batch, 3, *CFG["img_size"]], seed=batch)
    ref = model(paddle.to_tensor(x))
    assert_close(ref, predict(model_file, params_file, x, mkldnn), tolerance("model"),
                 f"inference logits (mkldnn={mkldnn})")
