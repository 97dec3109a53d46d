"""tools/bench_growth.py runs end to end on tiny models (``--dry-run``) and writes a results file,
the markdown tables and the plot, with one row per point x batch x path and exponents that follow
from the rows. No timing is asserted: speed lives in the benchmark (BENCHMARKS.md)."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from paddle_vit.parity.tolerances import tolerance

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "bench_growth.py"
sys.path.insert(0, str(ROOT / "tools"))
import bench_growth  # noqa: E402

sys.path.remove(str(ROOT / "tools"))


def run_tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("growth")
    proc = run_tool("--dry-run", "--threads", "1", "--out-dir", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, json.loads((out / "growth.json").read_text())


def test_one_row_per_point_batch_and_path(dry_run):
    _, data = dry_run
    series = bench_growth.DRY_SERIES
    unique = {bench_growth.point_key(p) for pts in series.values() for p in pts}
    assert set(data["points"]) == unique and len(unique) == 5  # the 32 px Swin with window 4 is shared
    assert data["meta"]["batch_sizes"] == [1, 2] and data["meta"]["paths"] == bench_growth.PATHS
    keys = [(r["point"], r["batch"], r["path"]) for r in data["results"]]
    assert len(keys) == len(set(keys)) == len(unique) * 2 * len(bench_growth.PATHS)
    for r in data["results"]:
        assert r["status"] == "ok", r
        assert r["ms_per_image"] > 0 and math.isclose(r["ms_per_image"], r["median_ms"] / r["batch"])
        assert r["err_vs_torch_ref"] < tolerance("model").bound, r  # the same weights in every path
        assert r["torch_path"] == "torch_ref" and r["peak_rss_mb"] is None  # no memory in a dry run
        ref = next(q for q in data["results"]
                   if (q["point"], q["batch"], q["path"]) == (r["point"], r["batch"], "torch_ref"))
        assert math.isclose(r["x_torch_time"], r["median_ms"] / ref["median_ms"])


def test_tokens_and_multiply_adds(dry_run):
    _, data = dry_run
    for key, pt in data["points"].items():
        grid = (pt["img_size"] // pt["overrides"].get("patch_size", 4)) ** 2
        assert pt["tokens"] == grid + (1 if pt["model"].startswith("vit") else 0), key
        assert pt["gmacs"] > 0
    macs = {ln["series"]: ln["macs_exponent"] for ln in data["lines"]}
    # a fixed window: attention grows with the tokens like every linear layer (only the head is fixed)
    assert 0.95 < macs["tiny Swin, window 4"] <= 1.0
    # the counter sees the attention matmuls: they grow faster than the tokens in ViT and with the window in Swin
    assert macs["tiny ViT"] > 1.05 and macs["tiny Swin, window 4 -> 8"] > macs["tiny Swin, window 4"] + 0.05


def test_exponents_follow_from_the_rows(dry_run):
    _, data = dry_run
    rows = {(r["point"], r["batch"], r["path"]): r for r in data["results"]}
    assert len(data["lines"]) == 3 * 2 * len(bench_growth.PATHS)
    for ln in data["lines"]:
        (a, b) = data["series"][ln["series"]]
        ya, yb = rows[(a, ln["batch"], ln["path"])]["ms_per_image"], rows[(b, ln["batch"], ln["path"])]["ms_per_image"]
        xa, xb = data["points"][a]["tokens"], data["points"][b]["tokens"]
        assert ln["tokens"] == [xa, xb] and ln["ms_per_image"] == [ya, yb]
        assert math.isclose(ln["exponent"], math.log(yb / ya) / math.log(xb / xa), rel_tol=1e-9, abs_tol=1e-12)


def test_markdown_and_plot(dry_run, tmp_path):
    out, data = dry_run
    md = (out / "growth.md").read_text()
    table_rows = [ln for ln in md.splitlines() if ln.startswith("| ") and not ln.startswith(("| model", "| series"))]
    assert len(table_rows) == len(data["results"]) + len(data["lines"])
    assert "| tiny ViT | paddle_eager | 1 | 17 -> 65 |" in md
    import matplotlib.image
    img = matplotlib.image.imread(out / "growth.png")
    assert img.ndim == 3 and img.shape[1] > img.shape[0] > 100  # two panels side by side
    # --report redraws both from the results file alone
    proc = run_tool("--report", str(out / "growth.json"), "--out-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "growth.md").read_text() == md and (tmp_path / "growth.png").stat().st_size > 0


def test_peak_rss_per_path(tmp_path):
    proc = run_tool("--dry-run", "--memory", "--series", "tiny ViT", "--batch-sizes", "2", "--paths", "paddle_eager",
                    "torch_ref", "--threads", "1", "--out-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "growth.json").read_text())
    assert list(data["series"]) == ["tiny ViT"] and len(data["results"]) == 2 * 2
    for r in data["results"]:
        assert r["peak_rss_mb"] > r["rss_growth_mb"] > 0, r
    assert f"| {data['results'][0]['peak_rss_mb']:.0f} |" in (tmp_path / "growth.md").read_text()


def test_bad_input_is_one_message(tmp_path):
    proc = run_tool("--threads", "0")
    assert proc.returncode == 2 and "--threads >= 1" in proc.stderr
    proc = run_tool("--dry-run", "--series", "ViT-B/16")  # a full-size series is not a dry run's
    assert proc.returncode == 2 and "unknown series ['ViT-B/16']" in proc.stderr and "tiny ViT" in proc.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"results": []}')
    proc = run_tool("--report", str(bad), "--out-dir", str(tmp_path))
    assert proc.returncode == 2 and "not a growth results file" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "growth.md").exists()


def test_a_run_stopped_half_way_still_reports(dry_run, tmp_path):
    """growth.json is saved after each cell: the rows of a point not reached leave its lines blank."""
    _, data = dry_run
    last = data["series"]["tiny ViT"][1]
    partial = {k: v for k, v in data.items() if k != "lines"}
    partial["results"] = [r for r in data["results"] if r["point"] != last]
    lines = bench_growth.slopes(partial)
    blank = [ln for ln in lines if ln["series"] == "tiny ViT"]
    assert blank and all(ln["exponent"] is None and ln["ms_per_image"] == [] for ln in blank)
    assert all(ln["exponent"] is not None for ln in lines if ln["series"] != "tiny ViT")
    assert "| tiny ViT | paddle_eager | 1 | 17 -> 65 | - | - |" in bench_growth.markdown(partial)
    bench_growth.plot(partial, tmp_path / "partial.png")
    assert (tmp_path / "partial.png").stat().st_size > 0
