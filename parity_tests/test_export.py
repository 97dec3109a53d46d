"""paddle.jit export and Paddle Inference (CPU, with and without oneDNN) match eager logits."""
from __future__ import annotations

import paddle
import pytest

import paddle_vit
from paddle_vit.export import Predictor, export
from paddle_vit.parity import assert_close, tolerance
from harness import random_input


def shrunk(name: str) -> paddle.nn.Layer:
    family, kwargs = paddle_vit.variants.get_variant(name)
    small = {"vit": dict(depth=1, embed_dim=4 * kwargs.get("num_heads", 1), num_classes=7)}.get(family, {})
    return paddle_vit.create_model(name, **small)


@pytest.mark.parametrize("name", paddle_vit.list_models("vit_*"))
def test_export_and_inference_match_eager(name, tmp_path):
    model = shrunk(name)
    h, w = model.patch_embed.img_size
    x = random_input([2, 3, h, w])
    eager = model(paddle.to_tensor(x)).numpy()
    prefix = export(model, tmp_path / "model", [3, h, w])
    for onednn in (False, True):
        assert_close(eager, Predictor(prefix, onednn=onednn)(x), tolerance("model"), f"inference onednn={onednn}")
    assert_close(eager[:1], Predictor(prefix)(x[:1]), tolerance("model"), "dynamic batch of 1")
