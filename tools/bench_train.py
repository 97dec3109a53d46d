#!/usr/bin/env python
"""Training throughput, Paddle vs torch_ref, side by side in one process: images/s of the
fine-tuning recipe's step (forward, cross-entropy, backward, SGD with momentum and weight decay)
at batch 16, for EfficientNetV2-S (the seed's train size, 300 px) and ViT-S/16 (224 px).

    python tools/bench_train.py [--models efficientnetv2_s vit_small_patch16_224] [--batch 16]
                                [--repeats 5] [--warmup 2] [--threads N] [--frozen] [--out r.json]
    python tools/bench_train.py --quick      # tiny models, one repeat: checks that it runs

Both models start from the same weights (torch_ref's, through the converter), with dropout and
drop path off so that both compute the same function (the first step's losses are compared).
The steps alternate between the frameworks, so that load on the machine hits both alike.
``--frozen`` times the recipe's default (classifier only trained); the default trains every layer.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODELS = ["efficientnetv2_s", "vit_small_patch16_224"]
QUICK = {"efficientnetv2_s": dict(channel_multiplier=0.25, depth_multiplier=0.25, num_features=64),
         "vit_small_patch16_224": dict(depth=2, embed_dim=48, num_heads=3, img_size=64)}


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="for both frameworks")
    ap.add_argument("--frozen", action="store_true", help="train the classifier only (the recipe's default)")
    ap.add_argument("--quick", action="store_true", help="tiny models, batch 4, one repeat, no warm-up")
    ap.add_argument("--out", help="write the results as JSON")
    args = ap.parse_args(argv)
    if args.quick:
        args.batch, args.repeats, args.warmup = 4, 1, 0
    if min(args.batch, args.repeats, args.threads) < 1 or args.warmup < 0:
        ap.error("need --batch, --repeats, --threads >= 1 and --warmup >= 0")
    return args


def bench_model(name: str, args: argparse.Namespace) -> dict:
    import numpy as np
    import paddle
    import torch
    import torch.nn.functional as TF

    import paddle_vit.train.engine as PE
    import torch_ref
    import torch_ref.train.engine as TE
    from paddle_vit.convert import convert_state_dict, load_state_dict_strict
    from paddle_vit.parity import error_stats
    from paddle_vit.train.recipe import Recipe
    from paddle_vit.variants import model_kwargs
    from torch_ref.random_weights import randomize_

    overrides = dict(QUICK.get(name, {}) if args.quick else {}, drop_rate=0.0, drop_path_rate=0.0)
    family, kwargs = model_kwargs(name, **overrides)
    recipe = Recipe(data="", model=name, overrides=overrides, freeze_layers=args.frozen)
    size = recipe.sizes(name, kwargs.get("img_size"))[0]
    tm = randomize_(torch_ref.create_model(name, num_classes=10, **overrides))
    pm = paddle_vit_model(name, overrides)
    load_state_dict_strict(pm, convert_state_dict(tm.state_dict(), pm, "torch_ref"))
    tm.train(), pm.train()
    t_names, p_names = TE.freeze(tm, recipe), PE.freeze(pm, recipe)
    t_opt, _ = TE.build_optimizer(tm, t_names, recipe)
    p_opt, _ = PE.build_optimizer(pm, p_names, recipe)
    rng = np.random.default_rng(0)
    x = rng.standard_normal([args.batch, 3, size, size]).astype(np.float32)
    y = rng.integers(0, 10, args.batch)
    tx, ty, px, py = torch.tensor(x), torch.tensor(y), paddle.to_tensor(x), paddle.to_tensor(y)

    def torch_step() -> float:
        loss = TF.cross_entropy(tm(tx), ty)
        loss.backward()
        t_opt.step()
        t_opt.zero_grad()
        return loss.item()

    def paddle_step() -> float:
        loss = paddle.nn.functional.cross_entropy(pm(px), py)
        loss.backward()
        p_opt.step()
        p_opt.clear_grad()
        return float(loss)

    first = {"paddle": paddle_step(), "torch": torch_step()}
    times: dict[str, list[float]] = {"paddle": [], "torch": []}
    for r in range(args.warmup + args.repeats):
        order = [("paddle", paddle_step), ("torch", torch_step)][::1 if r % 2 == 0 else -1]
        for path, step in order:
            t0 = time.perf_counter()
            step()
            if r >= args.warmup:
                times[path].append(time.perf_counter() - t0)
    row = dict(model=name, family=family, img_size=size, batch=args.batch, frozen=args.frozen,
               first_loss=first, first_loss_err=error_stats(first["torch"], first["paddle"]).scaled)
    for path, ts in times.items():
        median = statistics.median(ts)
        row[path] = dict(median_ms=1000 * median, images_per_s=args.batch / median, samples_ms=[1000 * t for t in ts])
    row["paddle_vs_torch"] = row["paddle"]["images_per_s"] / row["torch"]["images_per_s"]
    return row


def paddle_vit_model(name: str, overrides: dict):
    from paddle_vit.registry import create_model
    return create_model(name, num_classes=10, **overrides)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from paddle_vit.bench import set_threads
    set_threads(args.threads)
    import paddle
    import torch
    torch.set_num_threads(args.threads)
    rows = [bench_model(name, args) for name in args.models]
    print(f"training step, batch {args.batch}, {'classifier only' if args.frozen else 'all layers'}, "
          f"threads: {args.threads} for paddle and torch (paddle {paddle.__version__}, torch {torch.__version__})")
    print(f"{'model':26s} {'px':>4s} {'paddle img/s':>13s} {'torch img/s':>12s} {'paddle/torch':>13s} {'loss err':>9s}")
    for r in rows:
        print(f"{r['model']:26s} {r['img_size']:4d} {r['paddle']['images_per_s']:13.2f} {r['torch']['images_per_s']:12.2f} "
              f"{r['paddle_vs_torch']:13.2f} {r['first_loss_err']:9.1e}")
    if args.out:
        meta = dict(threads=args.threads, batch=args.batch, repeats=args.repeats, warmup=args.warmup, quick=args.quick,
                    versions=dict(paddle=paddle.__version__, torch=torch.__version__))
        Path(args.out).write_text(json.dumps(dict(meta=meta, results=rows), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
