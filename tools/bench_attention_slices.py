"""Eager attention over slices of the B x H rows (``LOGITS_SLICE_BYTES``) against unsliced, in one
process, round robin, with torch_ref on the same weights for scale; models whose logits are large.

    python tools/bench_attention_slices.py --threads 2 [--rounds 3] [--batch 8]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--models", nargs="+", default=["vit_small_patch14_reg4_dinov2:518", "vit_base_patch16_384:384"])
    ap.add_argument("--slices-mb", nargs="+", type=int, default=[4, 16, 64])
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import numpy as np
    import paddle
    import torch
    import paddle_vit  # noqa: F401  (the CPU defaults before the first GEMM)
    import paddle_vit.layers.attention as A
    from paddle_vit.bench import build_paddle, build_torch_ref
    torch.set_num_threads(args.threads)
    for spec in args.models:
        name, img = spec.split(":")
        tm = build_torch_ref(name, {})
        pm = build_paddle(name, {}, {k: v.detach().clone() for k, v in tm.state_dict().items()})
        x = np.random.default_rng(0).standard_normal((args.batch, 3, int(img), int(img))).astype(np.float32)
        px, tx = paddle.to_tensor(x), torch.from_numpy(x)
        settings = {"unsliced": 1 << 62, **{f"slices {mb} MB": mb << 20 for mb in args.slices_mb}}
        times: dict[str, list[float]] = {k: [] for k in [*settings, "torch_ref"]}
        outs = {}
        for r in range(args.rounds + 1):  # round 0: warm-up
            for label, limit in settings.items():
                A.LOGITS_SLICE_BYTES = limit
                time.sleep(0.25)
                t0 = time.perf_counter()
                with paddle.no_grad():
                    outs[label] = pm(px).numpy()
                if r:
                    times[label].append(time.perf_counter() - t0)
            time.sleep(0.25)
            t0 = time.perf_counter()
            with torch.inference_mode():
                ref = tm(tx).numpy()
            if r:
                times["torch_ref"].append(time.perf_counter() - t0)
        base = statistics.median(times["unsliced"])
        print(f"\n{name} at {img} px, batch {args.batch}, {args.threads} threads, median of {args.rounds}:")
        for label, ts in times.items():
            med = statistics.median(ts)
            same = "" if label == "torch_ref" else (
                f"  output {'identical to unsliced' if np.array_equal(outs[label], outs['unsliced']) else 'DIFFERS'}")
            print(f"  {label:16} {1000 * med:9.1f} ms  unsliced / this {base / med:5.2f}x{same}")
        print(f"  max |paddle - torch_ref| / max |torch_ref|: "
              f"{np.abs(outs['unsliced'] - ref).max() / np.abs(ref).max():.1e}")


if __name__ == "__main__":
    main()
