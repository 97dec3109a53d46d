"""tools/bench.py runs end to end (a tiny model, one repeat) and writes valid JSON; the oneDNN
breakdown tool reads oneDNN's verbose log right.
No timing is asserted: speed lives in the benchmark, not in the tests."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "tools" / "bench.py"


def test_bench_dry_run_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(BENCH), "--dry-run", "--threads", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": ""})
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["meta"]["threads"] == 1 and data["meta"]["versions"]["paddle"]
    rows = {r["path"]: r for r in data["results"]}
    assert set(rows) == {"paddle_eager", "paddle_static", "paddle_infer", "onnxruntime", "torch_ref", "timm"}
    from paddle_vit.deploy_onnx import missing_extra
    runnable = ["paddle_eager", "paddle_static", "paddle_infer", "torch_ref"]
    if missing_extra():  # ONNX Runtime is an optional extra: without it the row says so
        assert rows["onnxruntime"]["status"] == "not available" and "paddle_vit[onnx]" in rows["onnxruntime"]["reason"]
    else:
        runnable.append("onnxruntime")
    for path in runnable:
        row = rows[path]
        assert row["status"] == "ok", row
        assert row["images_per_s"] > 0 and len(row["samples_ms"]) == 1
        # every path computes the reference's function (same weights through the converter)
        assert row["err_vs_torch_ref"] < 1e-4, row
    assert "threads: 1 for paddle and torch" in proc.stdout
    # the fastest path of the one (model, batch) cell is named, in the JSON and on stdout
    (best,) = data["fastest"]
    assert best["images_per_s"] == max(r["images_per_s"] for r in data["results"] if r["images_per_s"])
    assert f"fastest: {best['model']} cpu/fp32 batch 2: {best['path']}" in proc.stdout


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
