"""How far fp32 Paddle and fp32 torch each are from float64 on weights whose activations explode.

Builds a variant with timm's own initialisation, every tensor perturbed (``randomize_``; for
tf_efficientnetv2_s the activations grow to ~1e13: timm's depthwise init is sqrt(channels) larger
than the fan-out init our models and torch_ref use), converted for Paddle; runs one random image
per seed through both frameworks in float32 and float64, and prints per seed: each fp32 run's
max error against torch's float64 run (scaled by its max), the two fp32 runs against each other,
the two fp64 runs against each other, and which squeeze-excitation gates flipped (|fp32 - fp64|
> 0.5 somewhere). For the first flip it shows the gate's input in each run and the size of the
terms that sum to it (the cancellation). The measurement behind ``tolerances`` "Ill-conditioned
weights".

    python tools/fp32_conditioning.py --seeds 6            # tf_efficientnetv2_s at 300 px
"""
from __future__ import annotations

import argparse
import copy
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import paddle_vit  # noqa: E402,F401  (CPU defaults before Paddle loads)


def _hook(model, framework: str, suffixes: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Record the output (and first input) of every module whose name ends with one of ``suffixes``."""
    out: dict[str, np.ndarray] = {}
    as_np = (lambda t: t.detach().double().numpy().copy()) if framework == "torch" else \
        (lambda t: t.numpy().astype(np.float64))
    named = model.named_modules() if framework == "torch" else model.named_sublayers()
    for name, module in named:
        if name.endswith(suffixes):
            def hook(m, args, o, name=name):
                out[name] = as_np(o)
                out[name + ":in"] = as_np(args[0])
            (module.register_forward_hook if framework == "torch" else module.register_forward_post_hook)(hook)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="tf_efficientnetv2_s")
    ap.add_argument("--size", type=int, default=300)
    ap.add_argument("--seeds", type=int, default=6, help="random input images, one per seed")
    args = ap.parse_args(argv)
    import paddle
    import timm
    import torch
    from paddle_vit.convert import convert_state_dict, load_state_dict_strict
    from paddle_vit.parity.layerwise import prepare
    from paddle_vit.registry import create_model
    from torch_ref.random_weights import randomize_

    torch.manual_seed(0)
    t32 = randomize_(timm.create_model(args.model), 0)
    t64, p32, p64 = copy.deepcopy(t32), create_model(args.model), create_model(args.model)
    for pm in (p32, p64):
        load_state_dict_strict(pm, convert_state_dict(t32.state_dict(), pm, "timm"))
    prepare(t32, p32)
    prepare(t64, p64, dtype="float64")
    keys = ("se.gate", "se.conv_expand", "se.act1")
    rec = {"t32": _hook(t32, "torch", keys), "t64": _hook(t64, "torch", keys),
           "p32": _hook(p32, "paddle", keys), "p64": _hook(p64, "paddle", keys)}
    rel = lambda ref, got: float(np.abs(got - ref).max() / np.abs(ref).max())  # noqa: E731
    print(f"{args.model}, {args.size} px, timm's init perturbed; "
          "errors are max|a - b| / max|b| of the logits")
    for seed in range(args.seeds):
        x = np.random.default_rng(seed).standard_normal((1, 3, args.size, args.size)).astype(np.float32)
        with torch.no_grad():
            out = {"t32": t32(torch.from_numpy(x)).numpy(), "t64": t64(torch.from_numpy(x).double()).numpy()}
        with paddle.no_grad():
            out["p32"] = p32(paddle.to_tensor(x)).numpy()
            out["p64"] = p64(paddle.to_tensor(x.astype(np.float64))).numpy()
        gates = [k for k in rec["t64"] if k.endswith("se.gate")]
        flips = {f: [g for g in gates if np.abs(rec[f][g] - rec["t64"][g]).max() > 0.5] for f in ("t32", "p32")}
        print(f"seed {seed}: logits max {np.abs(out['t64']).max():.1e} | torch32 vs fp64 {rel(out['t64'], out['t32']):.1e}"
              f" | paddle32 vs fp64 {rel(out['t64'], out['p32']):.1e} | paddle32 vs torch32 "
              f"{rel(out['t32'], out['p32']):.1e} | paddle64 vs torch64 {rel(out['t64'], out['p64']):.1e}")
        for f, who in (("t32", "torch"), ("p32", "paddle")):
            if not flips[f]:
                print(f"    {who} fp32: no gate flipped")
                continue
            g = flips[f][0]
            i = int(np.abs(rec[f][g] - rec["t64"][g]).argmax())
            conv = g.replace("se.gate", "se.conv_expand")
            w = dict(t64.named_parameters())[conv + ".weight"].detach().double().numpy().reshape(-1, rec["t64"][conv + ":in"].size)
            terms = np.abs(w[i] * rec["t64"][conv + ":in"].ravel()).sum()
            print(f"    {who} fp32: {len(flips[f])} gates flipped, first {g} channel {i}: its input fp64 "
                  f"{rec['t64'][conv].ravel()[i]:.4g}, torch32 {rec['t32'][conv].ravel()[i]:.4g}, paddle32 "
                  f"{rec['p32'][conv].ravel()[i]:.4g}; sum of |terms| {terms:.3g}; "
                  f"gate fp64 {rec['t64'][g].ravel()[i]:.3g} vs {rec[f][g].ravel()[i]:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
