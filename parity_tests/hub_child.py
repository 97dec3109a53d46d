"""Run by test_hub.py in a fresh process whose environment sets HF_HOME, HF_HUB_OFFLINE=1,
PADDLE_VIT_CACHE and TORCH_HOME (huggingface_hub reads them when it is imported, so they must be
set before, as for a user). For each case of the plan: ``create_model(tag, pretrained=True)``
three times (convert, from the cache, after truncating the cached file), optionally after a new
commit of the repo (stale entry), and the reference model loaded from the same file (timm through
the same offline cache; torchvision from the same torch.hub file).

    python hub_child.py PLAN.json OUT_DIR     -> OUT_DIR/results.json, OUT_DIR/logits.npz
"""
from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import paddle_vit  # noqa: E402  (before paddle: CPU defaults)
import paddle  # noqa: E402
import torch  # noqa: E402


def paddle_logits(model, x: np.ndarray) -> np.ndarray:
    with paddle.no_grad():
        return model(paddle.to_tensor(x)).numpy()


def torch_logits(model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def load(tag: str, overrides: dict) -> tuple[object, dict]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        model = paddle_vit.create_model(tag, pretrained=True, **overrides)
        seconds = time.perf_counter() - t0
    info = dict(model.pretrained_info, seconds=seconds,
                warnings=[str(w.message) for w in caught if str(w.message).startswith("paddle_vit")])
    return model, info


def reference(case: dict, overrides: dict):
    from paddle_vit.pretrained import get_tag
    row = get_tag(case["tag"])
    if row.source == "timm":
        import timm
        return timm.create_model(case["tag"], pretrained=True, **overrides).eval()
    from paddle_vit.convert.sources import build_source_model
    from paddle_vit.variants import get_variant
    model = build_source_model(row.arch, get_variant(row.arch)[0], "torchvision", overrides)
    model.load_state_dict(torch.load(case["torch_file"], map_location="cpu", weights_only=True), strict=True)
    return model.eval()


def run_case(case: dict, arrays: dict, out_dir: Path) -> dict:
    from paddle_vit.data import resolve_data_config
    tag, overrides, key = case["tag"], case["overrides"], case["key"]
    size = case["input_hw"]
    x = np.random.default_rng(0).standard_normal((2, 3, *size)).astype(np.float32)
    out = {}
    model, out["first"] = load(tag, overrides)
    arrays[f"{key}/first"] = paddle_logits(model, x)
    cached = Path(out["first"]["cache"])
    out["cache_mtime_first"] = cached.stat().st_mtime_ns
    model, out["second"] = load(tag, overrides)
    out["cache_mtime_second"] = cached.stat().st_mtime_ns
    arrays[f"{key}/second"] = paddle_logits(model, x)
    data = cached.read_bytes()
    cached.write_bytes(data[: len(data) // 2])
    model, out["truncated"] = load(tag, overrides)
    out["cache_size_after_rebuild"] = cached.stat().st_size
    out["cache_size_first"] = len(data)
    arrays[f"{key}/truncated"] = paddle_logits(model, x)
    data = bytearray(cached.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte of a tensor changed
    cached.write_bytes(bytes(data))
    model, out["corrupt"] = load(tag, overrides)
    arrays[f"{key}/corrupt"] = paddle_logits(model, x)
    ref = reference(case, overrides)
    arrays[f"{key}/reference"] = torch_logits(ref, x)
    if case.get("source") == "timm":
        import timm.data
        out["data_config"] = [resolve_data_config(model), timm.data.resolve_model_data_config(ref)]
    if case.get("predict"):  # paddle-vit predict on a photo, through the same cache, against the reference
        import contextlib
        import io
        from PIL import Image
        from skimage.data import chelsea
        from paddle_vit.cli import main as cli
        image = out_dir / "chelsea.png"
        Image.fromarray(chelsea()).save(image)
        args = ["predict", str(image), "--model", tag, "--compare-torch"]
        args += [f"--override={k}={tuple(v) if isinstance(v, list) else v!r}" for k, v in overrides.items()]
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = cli(args)
        out["predict"] = {"code": code, "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}
    if case.get("new_commit"):
        from hub_helpers import put_in_hf_cache
        put_in_hf_cache(Path(case["hf_cache"]), case["repo_id"], {"model.safetensors": Path(case["new_commit"])})
        model, out["stale"] = load(tag, overrides)
        arrays[f"{key}/stale"] = paddle_logits(model, x)
        arrays[f"{key}/reference_stale"] = torch_logits(reference(case, overrides), x)
    return out


def main() -> int:
    plan = json.loads(Path(sys.argv[1]).read_text())
    out_dir = Path(sys.argv[2])
    results, arrays = {"cases": {}}, {}
    for case in plan["cases"]:
        results["cases"][case["key"]] = run_case(case, arrays, out_dir)
    for tag in plan.get("missing", []):
        t0 = time.perf_counter()
        try:
            paddle_vit.create_model(tag, pretrained=True)
            results.setdefault("missing", {})[tag] = {"error": None}
        except ValueError as exc:
            results.setdefault("missing", {})[tag] = {"error": str(exc), "type": type(exc).__name__,
                                                      "seconds": time.perf_counter() - t0}
    np.savez(out_dir / "logits.npz", **arrays)
    (out_dir / "results.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
