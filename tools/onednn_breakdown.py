#!/usr/bin/env python
"""Where Paddle Inference's time goes, primitive by primitive: exports a registered model, runs its
oneDNN predictor twice in a child process with ``ONEDNN_VERBOSE=1`` and sums the second run's
execution times per (primitive, implementation), e.g. ``inner_product brgemm:avx2``.

    python tools/onednn_breakdown.py vit_small_patch16_224 --batch 8 --threads 2

Ops that Paddle runs with its own kernels (gather, split, ...) do not appear: this shows the
oneDNN part only. Random weights; the timings do not depend on them.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARK = "== second run"


def child(name: str, batch: int, size: int | None, threads: int, workdir: str) -> None:
    import numpy as np

    import paddle_vit
    from paddle_vit.deploy import InferencePredictor, export
    model = paddle_vit.create_model(name)
    model.eval()
    size = size or getattr(model, "img_size", None) or 224
    size = size[0] if isinstance(size, (tuple, list)) else size
    x = np.random.default_rng(0).standard_normal([batch, 3, size, size]).astype(np.float32)
    predictor = InferencePredictor(export(model, os.path.join(workdir, "model"), x.shape), threads=threads)
    predictor(x)
    print(MARK, flush=True)
    predictor(x)


def summarize(log: str) -> list[tuple[float, int, str]]:
    """``onednn_verbose,v1,primitive,exec,cpu,<kind>,<impl>,...,<ms>`` lines after MARK ->
    ``(total ms, calls, 'kind impl')``, largest first."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    seen = False
    for line in log.splitlines():
        seen = seen or line.startswith(MARK)
        if seen and line.startswith("onednn_verbose,v1,primitive,exec,cpu,"):
            fields = line.split(",")
            key = f"{fields[5]} {fields[6]}"
            totals[key][0] += float(fields[-1])
            totals[key][1] += 1
    return sorted(((ms, int(n), key) for key, (ms, n) in totals.items()), reverse=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=None, help="image size (default: the variant's)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        with tempfile.TemporaryDirectory() as workdir:
            child(args.model, args.batch, args.size, args.threads, workdir)
        return 0
    env = dict(os.environ, ONEDNN_VERBOSE="1", OMP_NUM_THREADS=str(args.threads),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    cmd = [sys.executable, __file__, args.model, "--batch", str(args.batch), "--threads", str(args.threads), "--child"]
    if args.size:
        cmd += ["--size", str(args.size)]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if run.returncode != 0:
        sys.stderr.write(run.stderr[-4000:])
        print(f"the predictor run failed (exit {run.returncode})", file=sys.stderr)
        return 1
    rows = summarize(run.stdout)
    if not rows:
        print("no oneDNN primitive ran (is oneDNN on in this Paddle build?)", file=sys.stderr)
        return 1
    total = sum(ms for ms, _, _ in rows)
    print(f"{args.model}, batch {args.batch}, {args.threads} threads: oneDNN primitives of one predictor run")
    for ms, n, key in rows:
        print(f"{ms:9.1f} ms {100 * ms / total:5.1f} % {n:5d} calls  {key}")
    print(f"{total:9.1f} ms in oneDNN primitives")
    return 0


if __name__ == "__main__":
    sys.exit(main())
