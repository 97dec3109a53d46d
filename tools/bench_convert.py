"""Benchmark ``paddle-vit-convert`` on a full-size checkpoint against a plain load + save.

    python tools/bench_convert.py [--model vit_base_patch16_224] [--repeats 5]

Makes a checkpoint of ``--model`` with random weights (torch_ref, timm's layout), then times, each
in a fresh process with torch, Paddle and paddle_vit already imported (import time is not counted):

  load+save      torch.load(SRC) and paddle.save of the same tensors as numpy arrays (the floor)
  convert        paddle-vit-convert SRC DST.pdparams --no-verify
  convert (st)   the same to DST.safetensors
  convert+verify paddle-vit-convert SRC DST.pdparams (builds and runs both models)

Reports the median and best wall time, the median of each repeat's ratio to the load+save run
beside it (repeats alternate their order), the ratio of the best times, and the peak resident
memory above the process's memory after imports, as a ratio to the checkpoint's size. Medians and
paired ratios, because the CPU may be shared.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODES = ("load+save", "convert", "convert (st)", "convert+verify")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(mode: str, model: str, src: str, workdir: str) -> None:
    """Run one measurement in this (fresh) process and print it as JSON."""
    sys.path.insert(0, str(ROOT))
    import warnings
    warnings.filterwarnings("ignore")
    import paddle
    import torch
    from paddle_vit.convert.cli import main
    import paddle_vit.models  # noqa: F401
    import torch_ref.models  # noqa: F401
    base = rss_bytes()
    start = time.perf_counter()
    if mode == "load+save":
        state = torch.load(src, map_location="cpu", weights_only=True)
        paddle.save({k: v.numpy() for k, v in state.items()}, os.path.join(workdir, "plain.pdparams"))
        code = 0
    else:
        dst = os.path.join(workdir, "out.safetensors" if mode == "convert (st)" else "out.pdparams")
        argv = [src, dst, "--model", model, "--force", "--quiet"]
        code = main(argv + ([] if mode == "convert+verify" else ["--no-verify"]))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "base": base, "peak": peak, "exit": code}))


def make_checkpoint(model: str, path: Path) -> int:
    sys.path.insert(0, str(ROOT))
    import torch
    from torch_ref.registry import create_model
    torch.manual_seed(0)
    state = create_model(model).state_dict()
    torch.save(state, path)
    return sum(t.numel() * t.element_size() for t in state.values())


def measure(mode: str, model: str, src: Path, workdir: Path) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", str(os.cpu_count() or 1)))
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--model", model, "--src", str(src),
                          "--workdir", str(workdir)], capture_output=True, text=True, env=env, check=False)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"{mode} failed (exit {out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    result = json.loads(lines[-1])
    if result["exit"] != 0:
        raise SystemExit(f"{mode}: the converter exited {result['exit']}:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="vit_base_patch16_224")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    p.add_argument("--src", help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child, args.model, args.src, args.workdir)
        return
    with tempfile.TemporaryDirectory(prefix="bench_convert_") as tmp:
        workdir = Path(tmp)
        src = workdir / f"{args.model}.pth"
        tensor_bytes = make_checkpoint(args.model, src)
        size = src.stat().st_size
        print(f"{args.model}: checkpoint {size / 2**20:.1f} MiB ({tensor_bytes / 2**20:.1f} MiB of tensors), "
              f"{args.repeats} repeats, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', os.cpu_count())}, "
              f"{os.cpu_count()} CPUs")
        runs: dict[str, list[dict]] = {m: [] for m in MODES}
        for i in range(args.repeats):
            for mode in (MODES if i % 2 == 0 else MODES[::-1]):  # alternate the order: shared-CPU drift
                runs[mode].append(measure(mode, args.model, src, workdir))
        floor = [r["seconds"] for r in runs["load+save"]]
        print(f"{'':16}{'median s':>10}{'min s':>8}{'x load+save':>13}{'min/min':>9}{'peak extra MiB':>16}"
              f"{'x checkpoint':>14}")
        for mode in MODES:
            secs = [r["seconds"] for r in runs[mode]]
            # each repeat against the load+save run beside it: a shared CPU slows both alike
            paired = statistics.median(s / f for s, f in zip(secs, floor))
            extra = statistics.median(r["peak"] - r["base"] for r in runs[mode])
            print(f"{mode:16}{statistics.median(secs):>10.2f}{min(secs):>8.2f}{paired:>13.2f}"
                  f"{min(secs) / min(floor):>9.2f}{extra / 2**20:>16.0f}{extra / size:>14.2f}")

if __name__ == "__main__":
    main()
