"""The deployment paths (``paddle_vit.deploy``): to_static and Paddle Inference with oneDNN give
the torch reference's outputs, under the same tolerance as eager Paddle."""
from __future__ import annotations

import ctypes
import os

import numpy as np
import paddle
import pytest
import torch

import paddle_vit.models.vit as PV
import torch_ref.models.vit as TV
from harness import pair, random_input
from paddle_vit.deploy import InferencePredictor, export, to_static
from paddle_vit.parity import assert_close, tolerance

TINY_VIT = dict(img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3, num_classes=10)


@pytest.fixture(scope="module")
def tiny_pair():
    return pair(TV.VisionTransformer, PV.VisionTransformer, **TINY_VIT)


def _reference(tm, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return tm(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("onednn", [True, False])
def test_inference_predictor_matches_reference(tiny_pair, tmp_path, onednn):
    tm, pm, _ = tiny_pair
    x = random_input([2, 3, 32, 32])
    model = PV.VisionTransformer(**TINY_VIT)
    model.set_state_dict(pm.state_dict())
    prefix = export(model, tmp_path / "vit", x.shape)
    got = InferencePredictor(prefix, threads=1, onednn=onednn)(x)
    assert_close(_reference(tm, x), got, tolerance("model"), f"predictor (oneDNN {onednn})")


def test_to_static_matches_reference(tiny_pair):
    tm, pm, _ = tiny_pair
    x = random_input([2, 3, 32, 32])
    model = PV.VisionTransformer(**TINY_VIT)
    model.set_state_dict(pm.state_dict())
    model.eval()
    static = to_static(model, x.shape)
    with paddle.no_grad():
        got = static(paddle.to_tensor(x))
    assert_close(_reference(tm, x), got, tolerance("model"), "to_static")


def _math_threads() -> int:
    """MKL's thread count as MKL itself reports it (the library eager Paddle's GEMMs run on)."""
    path = os.path.join(os.path.dirname(paddle.__file__), "libs", "libmklml_intel.so")
    if not os.path.exists(path):
        pytest.skip(f"this Paddle build has no {path}")
    return ctypes.CDLL(path).MKL_Get_Max_Threads()


def test_predictor_run_keeps_eager_threads(tiny_pair, tmp_path):
    """A predictor run used to leave the whole process on one math thread."""
    _, pm, _ = tiny_pair
    x = random_input([2, 3, 32, 32])
    model = PV.VisionTransformer(**TINY_VIT)
    model.set_state_dict(pm.state_dict())
    before = _math_threads()
    InferencePredictor(export(model, tmp_path / "vit", x.shape), threads=1)(x)
    assert _math_threads() == before == int(os.environ["OMP_NUM_THREADS"])


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        to_static(PV.VisionTransformer(**TINY_VIT), [2, 3, 32])
    with pytest.raises(ValueError, match="no exported model"):
        InferencePredictor(tmp_path / "missing")
    with pytest.raises(ValueError, match="device"):
        InferencePredictor(tmp_path / "missing", device="tpu")
