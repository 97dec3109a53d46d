"""``paddle-vit diff``: build a variant in both frameworks with the same weights and compare layer by layer."""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import numpy as np

from paddle_vit.checks import to_2tuple
from paddle_vit.parity.layerwise import LayerwiseReport, check_settings, compare, prepare
from paddle_vit.variants import model_kwargs

REFERENCES = ("torch_ref", "timm")


def build_twins(name: str, checkpoint: str | os.PathLike | None = None, reference: str = "torch_ref",
                seed: int = 0) -> tuple[Any, Any]:
    """``(torch reference, Paddle model)`` of variant ``name`` holding the same float32 weights, on CPU.

    The reference is our ``torch_ref`` model or timm's model of the same name. ``checkpoint``: a
    torch state_dict in the reference's layout (timm's names, which ``torch_ref`` shares); without
    one, torch_ref's seeded initialisation (well-conditioned, also for timm's model), every tensor
    perturbed. The Paddle weights always come through
    the converter, so a conversion bug shows up as a diverging layer too.
    """
    import paddle
    import torch

    from paddle_vit.convert import convert_state_dict, load_state_dict_strict, read_checkpoint
    from paddle_vit.registry import create_model as create_paddle

    if reference not in REFERENCES:
        raise ValueError(f"reference must be one of {REFERENCES}, got {reference!r}")
    torch.manual_seed(seed)
    paddle.seed(seed)
    pm = create_paddle(name)
    if reference == "timm":
        try:
            import timm
        except ImportError:
            raise ValueError("--reference timm needs timm: pip install timm") from None
        tm = timm.create_model(name, pretrained=False, num_classes=pm.num_classes)
    else:
        from torch_ref import create_model as create_torch
        tm = create_torch(name)
    if checkpoint is None:  # random weights with no zero bias or unit norm to hide a wrong mapping
        from torch_ref.random_weights import randomize_
        if reference == "timm":
            _well_conditioned(tm, name)
        randomize_(tm, seed)
    else:
        state, layout = read_checkpoint(checkpoint)
        if layout != "torch":
            raise ValueError(f"{checkpoint}: a Paddle-layout file; diff needs the torch checkpoint "
                             "both models are built from")
        state = {k: v if hasattr(v, "detach") else torch.from_numpy(np.asarray(v)) for k, v in state.items()}
        try:
            tm.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ValueError(f"{checkpoint} does not fit the {reference} model {name!r} "
                             f"(diff needs a {reference} / timm layout checkpoint): {exc}") from None
    tm.eval()
    load_state_dict_strict(pm, convert_state_dict(tm.state_dict(), pm, "timm"))
    pm.eval()
    return tm, pm


def _well_conditioned(tm: Any, name: str) -> None:
    """Give timm's model ``torch_ref``'s initial weights (the same names): timm's own init makes
    EfficientNetV2's depthwise convs sqrt(channels) larger than the fan-out init, and perturbed
    on top its activations reach ~1e13, where fp32 rounding decides the outputs of both
    frameworks (see ``tolerances``, ill-conditioned weights) and every comparison fails."""
    from torch_ref import create_model as create_torch
    tm.load_state_dict(create_torch(name, num_classes=getattr(tm, "num_classes", 1000)).state_dict(), strict=True)


def diff_model(name: str, checkpoint: str | os.PathLike | None = None, batch: int = 1, device: str = "cpu",
               dtype: str = "float32", backward: bool = False, reference: str = "torch_ref",
               seed: int = 0) -> LayerwiseReport:
    """Layer-by-layer report of variant ``name`` on a random ``[batch, 3, H, W]`` input."""
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    check_settings(device, dtype)  # before the (slow) build
    tm, pm = build_twins(name, checkpoint, reference, seed)
    prepare(tm, pm, device, dtype)
    h, w = to_2tuple(model_kwargs(name)[1].get("img_size", 224), "img_size")
    x = np.random.default_rng(seed).standard_normal((batch, 3, h, w)).astype(np.float32)
    report = compare(tm, pm, x, backward=backward, source="timm", seed=seed)
    report.title = f"{name}: paddle_vit vs {reference} ({dtype}, {device}, batch {batch})"
    return report


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="variant name (see paddle_vit.list_models())")
    p.add_argument("--checkpoint", help="torch checkpoint in timm / torch_ref layout (default: seeded random weights, every tensor perturbed)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--dtype", choices=("float32", "float64", "float16", "bfloat16"), default="float32",
                   help="half precision needs --device gpu; float64 judges weights whose float32 outputs "
                        "are decided by rounding (see paddle_vit/parity/tolerances.py)")
    p.add_argument("--backward", action="store_true", help="also compare gradients, layer by layer")
    p.add_argument("--reference", choices=REFERENCES, default="torch_ref", help="the torch model to compare with")
    p.add_argument("--report", help="write a report (.html or .md) and its plot (.png) beside it")
    p.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    """Print the table, write the report; exit status 0 if every layer passes, 1 otherwise."""
    from paddle_vit.parity.report import format_table, write_report

    start = time.perf_counter()
    report = diff_model(args.model, args.checkpoint, args.batch, args.device, args.dtype, args.backward,
                        args.reference, args.seed)
    print(format_table(report))
    print(f"\n{len(report.forward)} layers compared in {time.perf_counter() - start:.1f} s")
    if args.report:
        path, png = write_report(report, args.report)
        print(f"report: {path}" + (f", plot: {png}" if png else
                                   " (no plot: matplotlib is not installed; pip install paddle_vit[plot])"))
    sys.stdout.flush()
    return 0 if report.passed else 1
