"""The main job, end to end: a torch model with random weights is saved as a checkpoint,
converted to Paddle (and saved as .pdparams), loaded into paddle_vit, and both run the same
batch. Prints the differences per output and exits non-zero if any misses the tolerance policy.

    bash tools/run.sh demo [--models vit_small_patch16_224 ...] [--batch 2]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import paddle_vit
import torch_ref

DEFAULT_MODELS = ["vit_small_patch16_224", "swin_tiny_patch4_window7_224", "efficientnetv2_s"]


def image_size(model) -> tuple[int, int]:
    for attr in ("patch_embed.img_size", "img_size", "default_img_size"):
        obj = model
        try:
            for part in attr.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        return (obj, obj) if isinstance(obj, int) else tuple(obj)
    return (224, 224)


def run(name: str, batch: int, workdir: Path) -> list:
    import paddle
    import torch
    from paddle_vit.convert import convert_state_dict, load_pretrained, save_paddle
    from paddle_vit.parity import error_stats, tolerance
    from torch_ref.random_weights import randomize_

    tm = randomize_(torch_ref.create_model(name)).eval()
    src = workdir / f"{name}.pth"
    torch.save(tm.state_dict(), src)
    t0 = time.perf_counter()
    pm = paddle_vit.create_model(name)
    dst = workdir / f"{name}.pdparams"
    save_paddle(convert_state_dict(torch.load(src, weights_only=True), pm), dst)
    fresh = paddle_vit.create_model(name, pretrained=dst)
    print(f"{name}: converted {src.name} -> {dst.name} in {time.perf_counter() - t0:.1f}s")
    x = np.random.default_rng(0).standard_normal([batch, 3, *image_size(fresh)]).astype(np.float32)
    with torch.no_grad():
        ref_logits, ref_feat = tm(torch.tensor(x)), tm.forward_features(torch.tensor(x))
    got_logits, got_feat = fresh(paddle.to_tensor(x)), fresh.forward_features(paddle.to_tensor(x))
    tol = tolerance("model")
    return [(name, error_stats(ref_feat, got_feat, "forward_features"), tol),
            (name, error_stats(ref_logits, got_logits, "logits"), tol)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=None, help="variant names (default: one per family)")
    parser.add_argument("--batch", type=int, default=2)
    args = parser.parse_args(argv)
    names = args.models or [n for n in DEFAULT_MODELS if n in paddle_vit.list_models()]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            rows += run(name, args.batch, Path(tmp))
    print()
    print(f"{'model':32} {'output':18} {'shape':18} {'max abs':>10} {'max rel':>10} {'scaled':>10} {'bound':>7}  result")
    failed = 0
    for name, s, tol in rows:
        ok = s.passes(tol)
        failed += not ok
        print(f"{name:32} {s.where:18} {str(list(s.shape)):18} {s.max_abs:10.2e} {s.max_rel:10.2e} "
              f"{s.scaled:10.2e} {tol.bound:7.0e}  {'pass' if ok else 'FAIL'}")
    print(f"\n{len(rows) - failed} passed, {failed} failed (tolerance policy: paddle_vit/parity/tolerances.py)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
