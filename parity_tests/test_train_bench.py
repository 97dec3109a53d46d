"""tools/bench_train.py runs end to end on tiny models and writes valid JSON. No timing is
asserted: speed lives in the benchmark (BENCHMARKS.md), not in the tests."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_train_quick_writes_json(tmp_path):
    out = tmp_path / "train.json"
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "bench_train.py"), "--quick", "--threads", "1",
                           "--out", str(out)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": ""})
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["meta"]["threads"] == 1 and data["meta"]["batch"] == 4
    assert [r["model"] for r in data["results"]] == ["efficientnetv2_s", "vit_small_patch16_224"]
    for row in data["results"]:
        assert row["first_loss_err"] < 1e-4, row  # both frameworks train the same function
        for path in ("paddle", "torch"):
            assert row[path]["images_per_s"] > 0 and len(row[path]["samples_ms"]) == 1
    assert "threads: 1 for paddle and torch" in proc.stdout
