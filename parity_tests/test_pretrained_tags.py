"""The pretrained-tag tables (``paddle_vit/zoo/*_tags.py``) against the installed timm and
torchvision, for every registered variant: they cannot drift, and a variant added to a zoo table
without regenerating them fails here by name (``python tools/gen_pretrained_tags.py``)."""
from __future__ import annotations

import importlib.util
import types
from pathlib import Path

import pytest

import paddle_vit
from paddle_vit.pretrained import TagRow, get_tag, pretrained_row, row_from_data, tables
from paddle_vit.variants import VARIANTS, model_kwargs

ROOT = Path(__file__).resolve().parent.parent
REGENERATE = "regenerate with: PYTHONPATH=$PWD python tools/gen_pretrained_tags.py"


def _generator() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("gen_pretrained_tags", ROOT / "tools" / "gen_pretrained_tags.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen():
    return _generator()


@pytest.fixture(scope="module")
def expected(gen):
    return gen.compute()


def test_every_registered_variant_with_timm_weights_has_its_tags(expected):
    import timm
    missing = []
    for arch in sorted(VARIANTS):
        theirs = set(timm.list_models(arch, pretrained=True)) if timm.is_model(arch) else set()
        theirs = {n for n in theirs if "." in n}   # the tagless default name is the same weights again
        ours = {r.name for r in tables().rows.values() if r.arch == arch and r.has_weights}
        if theirs - ours:
            missing.append(f"{arch}: {sorted(theirs - ours)}")
    assert not missing, "registered variants whose timm pretrained tags have no tag rows:\n  " + "\n  ".join(
        missing) + f"\n{REGENERATE}"


def test_stored_rows_equal_timm_and_torchvision(expected):
    stored = tables()
    problems = []
    for table, data in expected.items():
        for name, row in data["TAGS"].items():
            want = row_from_data(name, row)
            if stored.rows.get(name) != want:
                problems.append(f"{name}: stored {stored.rows.get(name)}, installed libraries say {want}")
        for arch, tag in data["DEFAULT_TAGS"].items():
            if stored.defaults.get(arch) != f"{arch}.{tag}":
                problems.append(f"default tag of {arch}: stored {stored.defaults.get(arch)}, timm's {arch}.{tag}")
    extra = set(stored.rows) - {n for d in expected.values() for n in d["TAGS"]}
    problems += [f"{name}: stored, but neither timm nor torchvision has it now" for name in sorted(extra)]
    assert not problems, "\n".join(problems[:40]) + f"\n{REGENERATE}"


def test_generated_files_are_up_to_date_and_deterministic(gen):
    first, second = gen.outputs(), gen.outputs()
    assert first == second
    stale = [str(p.relative_to(ROOT)) for p, text in first.items() if not p.exists() or p.read_text() != text]
    assert not stale, f"out of date: {stale}; {REGENERATE}"


def test_generator_handles_families_it_has_not_seen(gen, monkeypatch):
    """A new zoo table: an arch timm knows (with and without weights) and one it does not."""
    import paddle_vit.zoo
    new = types.ModuleType("paddle_vit.zoo.newfamily")
    new.FAMILY, new.VARIANTS = "newfamily", {"resnet18": {}, "not_a_timm_model": {}}
    monkeypatch.setattr(paddle_vit.zoo, "TABLES", (new,))
    data = gen.compute()["paddle_vit.zoo.newfamily"]
    assert data["NOT_IN_TIMM"] == ("not_a_timm_model",)
    assert data["DEFAULT_TAGS"]["resnet18"] and all(n.startswith("resnet18.") for n in data["TAGS"])
    text = gen.render("paddle_vit.zoo.newfamily", data)
    namespace: dict = {}
    exec(compile(text, "newfamily_tags.py", "exec"), namespace)
    assert namespace["TAGS"] == data["TAGS"]


def test_list_models_pretrained_lists_timms_tags_and_torchvisions():
    import timm
    ours = paddle_vit.list_models(pretrained=True)
    assert ours == sorted(ours) and len(ours) == len(set(ours))
    timms = {n for n in timm.list_models(pretrained=True) if "." in n and n.partition(".")[0] in VARIANTS}
    tv = {n for n in ours if tables().rows[n].source == "torchvision"}
    assert set(ours) - tv == timms
    assert all(n.partition(".")[2].startswith("tv_") for n in tv)
    assert paddle_vit.list_models("swin_tiny*", pretrained=True) == [n for n in ours if n.startswith("swin_tiny")]
    assert paddle_vit.list_models("*.ms_in1k", pretrained=True) == sorted(n for n in ours if n.endswith(".ms_in1k"))


def test_bare_arch_means_timms_default_tag():
    from timm.models import get_pretrained_cfg
    for arch in sorted(VARIANTS):
        cfg = get_pretrained_cfg(arch)
        row = get_tag(arch)
        assert (row.name if row else None) == (f"{arch}.{cfg.tag}" if cfg else None), arch
        if row is not None and row.has_weights:
            assert pretrained_row(arch) == row
    # no timm weights for efficientnetv2_s: pretrained=True takes torchvision's
    assert pretrained_row("efficientnetv2_s").name == "efficientnetv2_s.tv_imagenet1k_v1"


def test_tags_set_num_classes_and_fixed_size_like_timm():
    """timm's create_model(tag) takes num_classes (and img_size where the input size is fixed) from the tag."""
    import timm
    small = {"vit": {"depth": 1}, "swin": {"embed_dim": 16, "depths": (1, 1, 1, 1), "num_heads": (1, 1, 1, 1)},
             "tf_efficientnetv2": {"depth_multiplier": 0.25}}
    for tag in ("vit_tiny_patch16_224.augreg_in21k", "vit_base_patch16_224.dino", "swin_large_patch4_window7_224.ms_in22k",
                "tf_efficientnetv2_s.in21k"):
        overrides = next(v for k, v in small.items() if tag.startswith(k))
        model = timm.create_model(tag, pretrained=False, **overrides)
        assert model_kwargs(tag)[1]["num_classes"] == model.num_classes, tag
        if hasattr(model, "patch_embed"):  # a fixed input size: the tag's, as timm builds it
            size = model_kwargs(tag)[1]["img_size"]
            assert (size, size) == tuple(model.patch_embed.img_size), tag
    assert model_kwargs("vit_base_patch16_224.augreg_in21k", num_classes=7)[1]["num_classes"] == 7


def test_bad_tags_and_heads_are_clear_errors():
    with pytest.raises(ValueError, match="unknown pretrained tag 'swin_tiny_patch4_window7_224.ms_in2k'.*ms_in22k"):
        get_tag("swin_tiny_patch4_window7_224.ms_in2k")
    with pytest.raises(ValueError, match="unknown model"):
        paddle_vit.create_model("vit_enormous_patch16_224.in1k", pretrained=True)
    with pytest.raises(ValueError, match="has no pretrained weights.*tags with weights: efficientnetv2_s.tv_imagenet1k_v1"):
        pretrained_row("efficientnetv2_s.untrained")
    with pytest.raises(ValueError, match="21843-class classifier and num_classes=10"):
        paddle_vit.create_model("vit_tiny_patch16_224.augreg_in21k", pretrained=True, num_classes=10)
    with pytest.raises(ValueError, match="unknown fields"):
        row_from_data("x.y", {"source": "timm", "colour": "red"})


def test_tags_and_transforms_need_no_timm_torch_or_paddle():
    import subprocess
    import sys
    code = ("import sys, numpy as np, paddle_vit, paddle_vit.data as d\n"
            "tags = paddle_vit.list_models(pretrained=True)\n"
            "x = d.create_transform(**d.resolve_data_config(tags[0]))(np.zeros((40, 50, 3), np.uint8))\n"
            "print(len(tags), x.shape, sorted(m for m in ('timm', 'torch', 'paddle', 'torchvision') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "PYTHONPATH": str(ROOT)}).stdout.split("\n")[-2]
    assert out.endswith("[]"), out
    assert TagRow.__module__ == "paddle_vit.pretrained"
