"""tools/bench.py runs end to end (a tiny model, one repeat, every path including ``--peers``) and
writes valid JSON; PaddleClas's rows without PaddleClas say how to install it; the PaddleClas
mapping's notes match the installed PaddleClas; the oneDNN breakdown tool reads oneDNN's verbose log right.
No timing is asserted: speed lives in the benchmark, not in the tests."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from effnet_helpers import skip_unless_selected
from paddle_vit.bench_peers import PADDLECLAS_MODELS, Peer

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "tools" / "bench.py"


def c_compiler() -> str | None:
    """The C++ compiler torch.compile's inductor would call on the CPU, if any."""
    return shutil.which(os.environ.get("CXX", "g++")) or shutil.which("clang++")


def test_bench_dry_run_writes_json(tmp_path):
    """``--peers`` too: every path of the bench, at the dry run's size, in one process."""
    from paddle_vit.bench import ALL_PATHS, PEER_PATHS, TORCH_PATHS
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(BENCH), "--dry-run", "--peers", "--threads", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": ""})
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["meta"]["threads"] == 1 and data["meta"]["versions"]["paddle"]
    rows = {r["path"]: r for r in data["results"]}
    assert set(rows) == set(ALL_PATHS + PEER_PATHS)
    from paddle_vit.deploy_onnx import missing_extra
    runnable = ["paddle_eager", "paddle_static", "paddle_infer", "torch_ref", "timm"]
    if missing_extra():  # ONNX Runtime is an optional extra: without it the row says so
        assert rows["onnxruntime"]["status"] == "not available" and "paddle_vit[onnx]" in rows["onnxruntime"]["reason"]
    else:
        runnable += ["onnxruntime", "timm_onnxruntime"]
    if c_compiler():
        runnable.append("timm_compile")
        assert "compiled in" in rows["timm_compile"]["reason"]
    else:  # reported, not raised
        assert rows["timm_compile"]["status"] == "not available", rows["timm_compile"]
        assert rows["timm_compile"]["reason"].startswith("torch.compile failed"), rows["timm_compile"]
    for path in runnable:
        row = rows[path]
        assert row["status"] == "ok", row
        assert row["images_per_s"] > 0 and len(row["samples_ms"]) == 1
        # every path computes the reference's function (same weights through the converter)
        assert row["err_vs_torch_ref"] < 1e-4, row
    check_paddleclas_rows(rows)
    # the best torch path (torch_ref, timm, timm_compile; never a peer) is the denominator of x_best_torch
    best_torch = max(rows[p]["images_per_s"] for p in TORCH_PATHS if rows[p]["images_per_s"])
    for row in rows.values():
        if row["images_per_s"]:
            assert abs(row["x_best_torch"] - row["images_per_s"] / best_torch) < 1e-9 * row["x_best_torch"], row
    assert "threads: 1 for paddle and torch" in proc.stdout
    # the fastest path of the one (model, batch) cell is named, in the JSON and on stdout
    (best,) = data["fastest"]
    assert best["images_per_s"] == max(r["images_per_s"] for r in data["results"] if r["images_per_s"])
    assert f"fastest: {best['model']} cpu/fp32 batch 2: {best['path']}" in proc.stdout
    # paddle_vit's best path against the peers, as ratios
    (peer,) = data["peers"]
    ours = max((rows[p] for p in ("paddle_eager", "paddle_static", "paddle_infer", "onnxruntime")
                if rows[p]["images_per_s"]), key=lambda r: r["images_per_s"])
    assert peer["paddle_vit_path"] == ours["path"]
    if rows["timm_onnxruntime"]["images_per_s"]:
        assert peer["x_timm_onnxruntime"] == ours["images_per_s"] / rows["timm_onnxruntime"]["images_per_s"]
    assert f"peers: {ours['model']} cpu/fp32 batch 2: paddle_vit's best {ours['path']}" in proc.stdout


def check_paddleclas_rows(rows: dict[str, dict]) -> None:
    """PaddleClas's rows: measured where it is installed (no error column: its own random
    weights), else the install command."""
    for path in ("paddleclas_eager", "paddleclas_infer"):
        row = rows[path]
        if importlib.util.find_spec("paddleclas") is None:
            assert row["status"] == "not available", row
            assert row["reason"] == "PaddleClas is not installed: pip install --no-deps paddleclas", row
            continue
        assert row["status"] == "ok", row
        assert row["images_per_s"] > 0 and row["err_vs_torch_ref"] is None, row
        assert row["reason"].startswith("PaddleClas VisionTransformer(") and "random weights" in row["reason"], row


def test_bench_without_paddleclas(tmp_path):
    """PaddleClas made unimportable (``sys.modules["paddleclas"] = None``, Python's own switch):
    its rows say how to install it, the other paths run."""
    out = tmp_path / "bench.json"
    code = ("import sys; sys.modules['paddleclas'] = None; "
            "from paddle_vit.bench import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.run([sys.executable, "-c", code, "--dry-run", "--paths", "torch_ref", "paddleclas_eager",
                           "paddleclas_infer", "--threads", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {r["path"]: r for r in json.loads(out.read_text())["results"]}
    assert rows["torch_ref"]["status"] == "ok"
    for path in ("paddleclas_eager", "paddleclas_infer"):
        assert rows[path]["status"] == "not available", rows[path]
        assert rows[path]["reason"] == "PaddleClas is not installed: pip install --no-deps paddleclas"
    assert "not available: PaddleClas is not installed: pip install --no-deps paddleclas" in proc.stdout


def test_every_bench_model_has_a_paddleclas_entry():
    """Each default bench model names its PaddleClas constructor or says why there is none."""
    from paddle_vit.bench import DEFAULT_MODELS
    for name in DEFAULT_MODELS:
        peer = PADDLECLAS_MODELS[name]
        assert isinstance(peer, Peer) or (isinstance(peer, str) and peer), name
    assert set(PADDLECLAS_MODELS) <= set(DEFAULT_MODELS)


def test_two_paddleclas_models_in_one_process():
    """PaddleClas's convnets name their parameters (``conv1_1_weights``); the bench builds one model
    per path, and dygraph refused the second one until each build got its own name scope."""
    if importlib.util.find_spec("paddleclas") is None:
        pytest.skip("PaddleClas is not installed (pip install --no-deps paddleclas): nothing to build")
    from paddle_vit.bench_peers import build_paddleclas
    first, _ = build_paddleclas("mobilenetv2_100", {})
    second, _ = build_paddleclas("mobilenetv2_100", {})
    assert [p.name for p in first.parameters()] == [p.name for p in second.parameters()]


@pytest.mark.full_size
@pytest.mark.parametrize("name", [n for n, p in PADDLECLAS_MODELS.items() if isinstance(p, Peer)])
def test_paddleclas_peer_matches_its_note(request, name):
    """PaddleClas's model for ``name`` (full size) runs a forward pass through the bench's own
    builder, or the bench reports the failure; and its parameter count is timm's exactly where
    the mapping says the architecture is the same (so the notes cannot drift from the installed
    PaddleClas)."""
    skip_unless_selected(request)
    if importlib.util.find_spec("paddleclas") is None:
        pytest.skip("PaddleClas is not installed (pip install --no-deps paddleclas): nothing to compare")
    import numpy as np
    import timm
    from paddle_vit.bench import DEFAULT_MODELS, Unavailable, paddleclas_call
    from paddle_vit.bench_peers import build_paddleclas, mparams
    peer, size = PADDLECLAS_MODELS[name], DEFAULT_MODELS[name]
    model, note = build_paddleclas(name, {})
    assert note.startswith(f"PaddleClas {peer.constructor}, random weights") and peer.differences in note
    ours, theirs = mparams(timm.create_model(name)), mparams(model)
    assert (ours == theirs) == peer.same_param_count, (ours, theirs)
    x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    try:
        call, _ = paddleclas_call("paddleclas_eager", name, {}, x, "cpu", "fp32", 1, "")
    except Unavailable as e:  # PaddleClas 2.6.0's SwinTransformerV2: its PatchEmbed returns an undefined name
        assert str(e).startswith("PaddleClas's model fails on a forward pass: "), e
        return
    out = call()
    assert out.shape == [1, 1000] and np.isfinite(out.numpy()).all()


def test_bench_reports_missing_models(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(BENCH), "--models", "no_such_model", "--paths", "paddle_eager",
                           "torch_ref", "--repeats", "1", "--warmup", "0", "--threads", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(out.read_text())["results"]
    assert {r["status"] for r in rows} == {"not available"}
    assert all("not in the variant table" in r["reason"] for r in rows)


def test_paddle_vit_bench_subcommand(tmp_path, capsys):
    """``paddle-vit bench`` is the same bench: it reads a results file and rejects bad options."""
    from paddle_vit.cli import main
    results = tmp_path / "r.json"
    row = {"model": "m", "device": "cpu", "precision": "fp32", "batch": 8, "path": "paddle_infer",
           "median_ms": 10.0, "min_ms": 9.0, "cpu_ms": 20.0, "images_per_s": 800.0, "x_best_torch": 1.5,
           "peak_rss_mb": None, "rss_growth_mb": None, "status": "ok"}
    results.write_text(json.dumps({"meta": {}, "results": [row]}))
    assert main(["bench", "--markdown", str(results)]) == 0
    assert "| m | cpu/fp32 | 8 | paddle_infer | 10.0 |" in capsys.readouterr().out
    assert main(["bench", "--threads", "0"]) == 2
    assert "--threads >= 1" in capsys.readouterr().err


def test_onednn_breakdown_sums_the_second_run_per_primitive():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from onednn_breakdown import MARK, summarize
    finally:
        sys.path.remove(str(ROOT / "tools"))
    line = "onednn_verbose,v1,primitive,exec,cpu,{},{},forward_inference,src:f32,,,8x384,{}"
    log = "\n".join([line.format("inner_product", "brgemm:avx2", 100.0),   # first run: not counted
                     MARK,
                     line.format("inner_product", "brgemm:avx2", 2.5),
                     "onednn_verbose,v1,info,cpu,isa:Intel AVX2",
                     line.format("matmul", "gemm:jit:f32", 1.0),
                     line.format("inner_product", "brgemm:avx2", 1.5)])
    assert summarize(log) == [(4.0, 2, "inner_product brgemm:avx2"), (1.0, 1, "matmul gemm:jit:f32")]
