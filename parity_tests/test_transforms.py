"""paddle_vit.data's transform gives the array timm's ``create_transform`` (and torchvision's
``weights.transforms()``) gives, on real photos (scikit-image ships them in its wheel), for every
data config of the tag tables and every interpolation x crop mode; policy row ``preprocess`` (0)."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from paddle_vit.data import CROP_MODES, INTERPOLATIONS, create_transform, load_image, resolve_data_config
from paddle_vit.parity import error_stats
from paddle_vit.parity.tolerances import POLICY
from paddle_vit.pretrained import tables

skimage_data = pytest.importorskip("skimage.data", reason="the test photos come from scikit-image (pip install scikit-image)")
PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")   # 300x451, 400x600, 512x512, 427x640
EXACT = POLICY["preprocess"]


@pytest.fixture(scope="module")
def photos():
    from PIL import Image
    return {name: Image.fromarray(getattr(skimage_data, name)()) for name in PHOTOS}


def _configs_in_tables() -> list[dict]:
    """Every distinct data config of a tag with weights (and its test size), as timm resolves it."""
    seen = {}
    for row in tables().rows.values():
        if row.has_weights:
            for test_size in (False, True):
                config = row.data_config(use_test_size=test_size)
                seen.setdefault(repr(sorted(config.items())), config)
    return [seen[k] for k in sorted(seen)]


def _config_id(c: dict) -> str:
    return (f"{c['interpolation']}-{c['crop_mode']}-{c['input_size'][1]}x{c['input_size'][2]}-pct{c['crop_pct']:.4f}"
            f"-mean{c['mean'][0]:g}")


def _assert_exact(ref: np.ndarray, got: np.ndarray, where: str) -> None:
    stats = error_stats(ref, got, where)
    assert stats.passes(EXACT), stats.describe(EXACT)


@pytest.mark.parametrize("config", _configs_in_tables(), ids=_config_id)
def test_table_configs_equal_timm(photos, config):
    import timm.data
    ours, theirs = create_transform(**config), timm.data.create_transform(**config)
    for name, image in photos.items():
        ref = theirs(image).numpy()
        _assert_exact(ref, ours(image), f"{name} PIL")
        _assert_exact(ref, ours(np.asarray(image)), f"{name} numpy")


@pytest.mark.parametrize("interpolation,crop_mode", list(itertools.product(INTERPOLATIONS, CROP_MODES)))
def test_every_interpolation_and_crop_mode_equals_timm(photos, interpolation, crop_mode):
    import timm.data
    for input_size, crop_pct in [((3, 224, 224), 0.875), ((3, 256, 192), 1.0), ((3, 200, 320), 0.95)]:
        config = dict(input_size=input_size, interpolation=interpolation, crop_mode=crop_mode, crop_pct=crop_pct,
                      mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
        ours, theirs = create_transform(**config), timm.data.create_transform(**config)
        for name, image in photos.items():
            _assert_exact(theirs(image).numpy(), ours(image), f"{name} {config}")


def test_border_trim_and_unnormalized_equal_timm(photos):
    import timm.data
    config = dict(input_size=(3, 224, 224), interpolation="bilinear", crop_pct=0.9, crop_border_pixels=7)
    for name, image in photos.items():
        _assert_exact(timm.data.create_transform(**config)(image).numpy(), create_transform(**config)(image), name)
        raw = create_transform(input_size=160, normalize=False)(image)
        assert raw.dtype == np.uint8
        np.testing.assert_array_equal(raw, timm.data.create_transform(input_size=160, normalize=False)(image).numpy())


@pytest.mark.parametrize("tag", sorted(n for n, r in tables().rows.items() if r.source == "torchvision"))
def test_torchvision_tags_equal_torchvision_transforms(photos, tag):
    import torchvision.models as tvm
    row = tables().rows[tag]
    enum_name, member = row.torchvision_weights.split(".")
    weights = getattr(getattr(tvm, enum_name), member)
    ours, theirs = create_transform(**resolve_data_config(tag)), weights.transforms()
    for name, image in photos.items():
        _assert_exact(theirs(image).numpy(), ours(image), f"{name} {row.torchvision_weights}")


def test_bad_inputs_are_clear_errors(photos):
    transform = create_transform(input_size=32)
    gray = photos["chelsea"].convert("L")
    with pytest.raises(ValueError, match=r"convert\('RGB'\)"):
        transform(gray)
    with pytest.raises(ValueError, match=r"uint8 array \[H, W, 3\]"):
        transform(np.zeros((32, 32, 3), np.float32))
    with pytest.raises(ValueError, match=r"uint8 array \[H, W, 3\]"):
        transform(np.zeros((3, 32, 32), np.uint8))
    with pytest.raises(ValueError, match="interpolation must be one of"):
        create_transform(interpolation="cubic")
    with pytest.raises(ValueError, match="crop_mode must be one of"):
        create_transform(crop_mode="middle")
    with pytest.raises(ValueError, match="evaluation transform only"):
        create_transform(is_training=True)


def test_load_image_converts_with_a_note_and_refuses_bad_files(tmp_path: Path, photos):
    image = photos["astronaut"]
    image.convert("L").save(tmp_path / "gray.png")
    image.convert("RGBA").save(tmp_path / "rgba.png")
    image.save(tmp_path / "rgb.jpg")
    rgb, note = load_image(tmp_path / "rgb.jpg")
    assert rgb.mode == "RGB" and note is None
    gray, note = load_image(tmp_path / "gray.png")
    assert gray.mode == "RGB" and "grayscale" in note and "converted to RGB" in note
    np.testing.assert_array_equal(np.asarray(gray)[..., 0], np.asarray(gray)[..., 2])
    rgba, note = load_image(tmp_path / "rgba.png")
    assert rgba.mode == "RGB" and "alpha" in note
    np.testing.assert_array_equal(np.asarray(rgba), np.asarray(image))
    data = (tmp_path / "rgb.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    (tmp_path / "notes.txt").write_text("not an image")
    for name, match in [("cut.jpg", "truncated"), ("notes.txt", "not an image format"), ("none.png", "no such file"),
                        (".", "directory")]:
        with pytest.raises(ValueError, match=match) as info:
            load_image(tmp_path / name)
        assert str(tmp_path / name) in str(info.value) or name == "."


def test_resolve_data_config_matches_timm_for_every_tag():
    import timm.data
    from timm.models import get_pretrained_cfg
    for name, row in tables().rows.items():
        if row.source != "timm":
            continue
        cfg = get_pretrained_cfg(name).to_dict()
        for test_size in (False, True):
            assert resolve_data_config(name, use_test_size=test_size) == timm.data.resolve_data_config(
                pretrained_cfg=cfg, use_test_size=test_size), name
    override = dict(crop_pct=0.5, interpolation="bilinear", img_size=64)
    tag = "vit_base_patch16_224.augreg2_in21k_ft_in1k"
    assert resolve_data_config(tag, args=override) == timm.data.resolve_data_config(
        args=override, pretrained_cfg=get_pretrained_cfg(tag).to_dict())
