"""``create_model(tag, pretrained=True)`` through a real, offline Hugging Face cache (no mocks).

A timm model with random weights is saved as timm saves a Hub repo (``timm.models.save_for_hf``:
``model.safetensors`` + ``config.json``, plus a ``pytorch_model.bin`` holding *other* weights, so
only the safetensors file gives the reference's logits) and written into a temporary HF_HOME laid
out as ``huggingface_hub`` lays it out (checked by its own cache scanner). A fresh process with
HF_HUB_OFFLINE=1 then loads each family's tag three times: converted, from our cache, after the
cached file is truncated; timm loads the same tag from the same cache; one repo gets a new commit
(the cached entry is stale). A torchvision tag goes through torch.hub's cache the same way.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from harness import randomize_
from hub_helpers import put_in_hf_cache
from paddle_vit.parity import error_stats, tolerance
from paddle_vit.pretrained import get_tag

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# One tag per family, tiny: (tag, overrides, input H x W)
CASES = {
    "vit": ("vit_base_patch16_224.augreg2_in21k_ft_in1k",
            {"img_size": 32, "depth": 2, "embed_dim": 32, "num_heads": 2}, (32, 32)),
    "swin": ("swin_tiny_patch4_window7_224.ms_in1k",
             {"img_size": 64, "embed_dim": 16, "depths": [2, 2, 2, 2], "num_heads": [1, 1, 2, 2], "window_size": 2},
             (64, 64)),
    "efficientnetv2": ("tf_efficientnetv2_s.in21k_ft_in1k", {"depth_multiplier": 0.25}, (64, 64)),
    "torchvision-vit": ("vit_base_patch16_224.tv_imagenet1k_v1",
                        {"img_size": 32, "depth": 2, "embed_dim": 32, "num_heads": 2}, (32, 32)),
}
STALE = "vit"   # the case whose repo gets a new commit after the first loads
PREDICT = ("vit", "torchvision-vit")   # cases also run through paddle-vit predict --compare-torch
MISSING = ["swin_base_patch4_window7_224.ms_in1k", "efficientnetv2_s.tv_imagenet1k_v1"]


def _timm_repo(tag: str, overrides: dict, folder: Path, seed: int) -> dict[str, Path]:
    """The files of a timm Hub repo for ``tag`` (random weights), as timm's ``save_for_hf`` writes them."""
    import timm
    from timm.models import save_for_hf
    model = randomize_(timm.create_model(tag, pretrained=False, **overrides), seed)
    save_for_hf(model, str(folder), safe_serialization=True)
    other = randomize_(timm.create_model(tag, pretrained=False, **overrides), seed + 100)
    torch.save(other.state_dict(), folder / "pytorch_model.bin")  # must not be the file that is read
    return {name: folder / name for name in ("model.safetensors", "config.json", "pytorch_model.bin")}


@pytest.fixture(scope="module")
def hub_run(tmp_path_factory):
    """Prepare the caches, run hub_child.py once offline; its results and logits."""
    from paddle_vit.convert.sources import build_source_model
    root = tmp_path_factory.mktemp("hub")
    hf_cache, torch_home = root / "hf" / "hub", root / "torch"
    plan = {"cases": [], "missing": MISSING}
    for key, (tag, overrides, size) in CASES.items():
        row = get_tag(tag)
        case = {"key": key, "tag": tag, "overrides": overrides, "input_hw": list(size), "source": row.source,
                "predict": key in PREDICT}
        if row.source == "timm":
            files = _timm_repo(tag, overrides, root / f"repo-{key}", seed=1)
            repo_id = row.hf_hub_id
            put_in_hf_cache(hf_cache, repo_id, files)
            case.update(hf_cache=str(hf_cache), repo_id=repo_id)
            if key == STALE:
                case["new_commit"] = str(_timm_repo(tag, overrides, root / f"repo-{key}-new", seed=2)["model.safetensors"])
        else:  # torchvision: the file torch.hub would have downloaded, under the name it would have
            model = randomize_(build_source_model(row.arch, "vit", "torchvision", overrides), 3)
            path = torch_home / "hub" / "checkpoints" / os.path.basename(row.url)
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(model.state_dict(), path)
            case["torch_file"] = str(path)
        plan["cases"].append(case)
    (root / "plan.json").write_text(json.dumps(plan))
    env = dict(os.environ, HF_HOME=str(root / "hf"), HF_HUB_OFFLINE="1", PADDLE_VIT_CACHE=str(root / "paddle_vit"),
               TORCH_HOME=str(torch_home), PYTHONPATH=str(ROOT), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    env.pop("HF_HUB_CACHE", None)
    env.pop("HUGGINGFACE_HUB_CACHE", None)
    proc = subprocess.run([sys.executable, str(HERE / "hub_child.py"), str(root / "plan.json"), str(root)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    results = json.loads((root / "results.json").read_text())
    with np.load(root / "logits.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    return results, arrays


@pytest.mark.parametrize("key", list(CASES))
def test_pretrained_loads_from_offline_cache_and_matches_reference(hub_run, key):
    results, arrays = hub_run
    case = results["cases"][key]
    first = case["first"]
    assert first["from_cache"] is False and first["rebuilt"] is None and first["warnings"] == []
    if CASES[key][0].split(".")[1].startswith("tv_"):
        assert Path(first["source"]).parent.name == "checkpoints"
    else:
        assert Path(first["source"]).name == "model.safetensors"  # preferred over pytorch_model.bin
        assert "/snapshots/" in first["source"]
    ref, got = arrays[f"{key}/reference"], arrays[f"{key}/first"]
    stats = error_stats(ref, got, f"{key} logits")
    assert stats.passes(tolerance("model")), stats.describe(tolerance("model"))
    assert float(np.abs(ref).max()) > 1e-3  # non-trivial reference logits


@pytest.mark.parametrize("key", list(CASES))
def test_second_call_reads_the_cache(hub_run, key):
    results, arrays = hub_run
    case = results["cases"][key]
    second = case["second"]
    assert second["from_cache"] is True and second["rebuilt"] is None and second["warnings"] == []
    assert second["cache"] == case["first"]["cache"]
    assert case["cache_mtime_second"] == case["cache_mtime_first"]  # not written again
    np.testing.assert_array_equal(arrays[f"{key}/second"], arrays[f"{key}/first"])


@pytest.mark.parametrize("key", list(CASES))
def test_truncated_cache_entry_is_rebuilt_not_loaded(hub_run, key):
    results, arrays = hub_run
    case = results["cases"][key]
    third = case["truncated"]
    assert third["from_cache"] is False
    assert "truncated" in third["rebuilt"], third["rebuilt"]
    assert any("rebuilding the converted cache entry" in w for w in third["warnings"]), third["warnings"]
    assert case["cache_size_after_rebuild"] == case["cache_size_first"]
    np.testing.assert_array_equal(arrays[f"{key}/truncated"], arrays[f"{key}/first"])


@pytest.mark.parametrize("key", list(CASES))
def test_corrupt_cache_entry_is_rebuilt_not_loaded(hub_run, key):
    results, arrays = hub_run
    corrupt = results["cases"][key]["corrupt"]
    assert corrupt["from_cache"] is False and "SHA-256" in corrupt["rebuilt"], corrupt
    np.testing.assert_array_equal(arrays[f"{key}/corrupt"], arrays[f"{key}/first"])


def test_new_commit_makes_the_cache_entry_stale(hub_run):
    results, arrays = hub_run
    stale = results["cases"][STALE]["stale"]
    assert stale["from_cache"] is False and "another file" in stale["rebuilt"], stale
    ref, got = arrays[f"{STALE}/reference_stale"], arrays[f"{STALE}/stale"]
    stats = error_stats(ref, got, "logits after the new commit")
    assert stats.passes(tolerance("model")), stats.describe(tolerance("model"))
    assert not np.allclose(got, arrays[f"{STALE}/first"], atol=1e-3)  # the new weights, not the old entry


@pytest.mark.parametrize("key", [k for k, (tag, _, _) in CASES.items() if get_tag(tag).source == "timm"])
def test_data_config_is_timms(hub_run, key):
    ours, timms = hub_run[0]["cases"][key]["data_config"]
    assert ours == {k: list(v) if isinstance(v, (tuple, list)) else v for k, v in timms.items()}


@pytest.mark.parametrize("key", PREDICT)
def test_predict_with_pretrained_tag_matches_reference(hub_run, key):
    import re
    result = hub_run[0]["cases"][key]["predict"]
    assert result["code"] == 0, result
    rows = re.findall(r"^\s+\d+  (.{34} +[\d.]+%)   (.{34} +[\d.]+%)$", result["stdout"], re.M)
    assert len(rows) == 5 and all(a == b for a, b in rows), result["stdout"]
    assert "top-5 identical" in result["stdout"] and "within the policy" in result["stdout"]
    assert "/snapshots/" in result["stdout"] or "checkpoints" in result["stdout"]  # the weights it fetched


@pytest.mark.parametrize("tag", MISSING)
def test_missing_offline_says_what_and_how(hub_run, tag):
    error = hub_run[0]["missing"][tag]
    assert error["type"] == "PretrainedUnavailable", error
    row = get_tag(tag)
    text = error["error"]
    assert "HF_HUB_OFFLINE" in text and f"create_model({tag!r}, pretrained='/path/to/" in text and "--checkpoint" in text
    if row.hf_hub_id:
        assert row.hf_hub_id in text and "model.safetensors" in text and "pytorch_model.bin" in text
    else:
        assert row.url in text
