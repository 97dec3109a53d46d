"""Export (``paddle.jit.to_static`` + ``paddle.jit.save``) of every variant, shrunk, and Paddle
Inference on the CPU with and without oneDNN: the exported program gives the eager logits, for
any batch size (Swin's index and masks are non-persistable buffers, so they must be baked into
the program rather than expected in the parameter file)."""
from __future__ import annotations

import paddle
import pytest

import paddle_vit
from harness import random_input
from paddle_vit.deploy import InferencePredictor, export
from paddle_vit.parity import assert_close, tolerance
from paddle_vit.variants import get_variant

SWIN_SMALL = dict(img_size=(64, 96), window_size=4, embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4))
EFFNET_SMALL = dict(channel_multiplier=0.25, depth_multiplier=0.25, img_size=65)  # odd size: SAME padding


def shrunk(name: str) -> tuple[paddle.nn.Layer, tuple[int, int]]:
    family, kwargs = get_variant(name)
    small = {"vit": dict(depth=1, embed_dim=4 * kwargs.get("num_heads", 1)),
             "swin": SWIN_SMALL, "swinv2": SWIN_SMALL, "efficientnet": EFFNET_SMALL}[family]
    paddle.seed(0)
    model = paddle_vit.create_model(name, num_classes=7, **small)
    for p in model.parameters():  # no zero head or unit norm: every tensor must travel
        p.set_value(p + paddle.randn(p.shape) * 0.05)
    size = model.patch_embed.img_size if family == "vit" else small["img_size"]
    return model, (size, size) if isinstance(size, int) else tuple(size)


# ViT: two plain variants here; one variant per ViT option group in test_vit_zoo.py (test_export_per_option_group)
NAMES = ["vit_tiny_patch16_224", "vit_base_patch32_384"] + ["swin_tiny_patch4_window7_224", "tf_efficientnetv2_s",
                                                            "efficientnetv2_s", "tf_efficientnet_cc_b0_4e", "mixnet_s"]


@pytest.mark.parametrize("name", NAMES)
def test_export_and_inference_match_eager(name, tmp_path):
    model, (h, w) = shrunk(name)
    x = random_input([3, 3, h, w])
    eager = model(paddle.to_tensor(x)).numpy()
    prefix = export(model, tmp_path / "model", [None, 3, h, w])
    loaded = paddle.jit.load(prefix)
    loaded.eval()
    assert_close(eager, loaded(paddle.to_tensor(x)), tolerance("model"), "jit.load")
    for onednn in (False, True):
        predictor = InferencePredictor(prefix, threads=1, onednn=onednn)
        assert_close(eager, predictor(x), tolerance("model"), f"inference onednn={onednn}")
        assert_close(eager[:1], predictor(x[:1]), tolerance("model"), f"inference onednn={onednn}, batch 1")
