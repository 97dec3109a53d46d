"""Shared by the converter tests: a tiny configuration per family, source checkpoints made by the
real source libraries, and running the CLI in-process or as a subprocess."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from harness import randomize_
from paddle_vit.convert.cli import main
from paddle_vit.convert.layouts import ALIASES, LAYOUTS
from paddle_vit.convert.sources import BUILDERS, build_source_model

ROOT = Path(__file__).resolve().parent.parent

# One tiny configuration per family: (variant, constructor overrides). A family added to the
# registry without an entry here is reported as skipped, with the reason, not silently passed.
TINY: dict[str, tuple[str, dict[str, Any]]] = {
    "vit": ("vit_tiny_patch16_224", {"img_size": 32, "num_classes": 10, "depth": 2, "embed_dim": 32, "num_heads": 2}),
    # window 2 divides every stage map (16, 8, 4, 2): where torchvision's Swin and timm's agree
    "swin": ("swin_tiny_patch4_window7_224", {"img_size": 64, "num_classes": 10, "embed_dim": 16,
                                              "depths": (2, 2, 2, 2), "num_heads": (1, 1, 2, 2), "window_size": 2}),
    "swinv2": ("swinv2_tiny_window8_256", {"img_size": 64, "num_classes": 10, "embed_dim": 16,
                                           "depths": (2, 2, 2, 2), "num_heads": (1, 1, 2, 2), "window_size": 2}),
    # tf_ (SAME padding) at an odd size; img_size is only the verification's input size
    "efficientnet": ("tf_efficientnetv2_s", {"num_classes": 10, "depth_multiplier": 0.25, "img_size": 65}),
}
# Where a source library cannot build the tiny configuration: torchvision builds its networks only as
# they are (B0 is its smallest); efficientnet-pytorch's B0 is timm's tf_efficientnet_b0.
TINY_FOR_SOURCE: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
    ("efficientnet", "torchvision"): ("efficientnet_b0", {"num_classes": 10, "img_size": 64}),
    ("efficientnet", "efficientnet_pytorch"): ("tf_efficientnet_b0", {"num_classes": 10, "depth_multiplier": 0.5,
                                                                       "img_size": 65}),
}


def tiny(family: str, source: str = "torch_ref") -> tuple[str, dict[str, Any]]:
    """The (variant, overrides) the converter tests build for ``family`` read from ``source``."""
    return TINY_FOR_SOURCE.get((family, source), TINY[family])


def all_sources() -> list[tuple[str, str]]:
    """Every (family, source) the converter reads, aliases included."""
    pairs = sorted(LAYOUTS)
    return pairs + sorted((f, alias) for alias, target in ALIASES.items() for f, s in LAYOUTS if s == target)


def source_params() -> list:
    """``all_sources()`` as pytest params; a pair the tests cannot build is skipped, saying why."""
    params = []
    for family, source in all_sources():
        reason = None
        if family not in TINY:
            reason = f"no tiny configuration for family {family!r} in parity_tests/convert_helpers.py TINY"
        elif (family, source) not in BUILDERS and ("*", source) not in BUILDERS:
            reason = f"no source-model builder for ({family!r}, {source!r}) in paddle_vit/convert/sources.py"
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        params.append(pytest.param(family, source, id=f"{family}-{source}", marks=marks))
    return params


def cli_args(family: str, source: str = "torch_ref") -> list[str]:
    """The CLI arguments that build ``family``'s tiny configuration."""
    name, kwargs = tiny(family, source)
    args = ["--model", name]
    for key, value in kwargs.items():
        if key == "img_size":
            args += ["--img-size", str(value)]
        elif key == "num_classes":
            args += ["--num-classes", str(value)]
        else:
            args += ["--override", f"{key}={value!r}"]
    return args


def source_state(family: str, source: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state_dict of ``family``'s tiny model as ``source``'s own library lays it out, with
    every tensor perturbed (no zero head or unit norm that would hide a wrong mapping)."""
    name, kwargs = tiny(family, source)
    torch.manual_seed(seed)
    return randomize_(build_source_model(name, family, source, kwargs), seed).state_dict()


def run_cli(*args: Any) -> tuple[int, str]:
    """``paddle-vit-convert`` in this process: (exit status, stdout + stderr)."""
    import contextlib
    import io
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main([str(a) for a in args])
    return code, out.getvalue()


def run_cli_process(*args: Any, entry: list[str] | None = None) -> subprocess.CompletedProcess:
    """``python -m paddle_vit.convert ARGS`` (or ``entry``) in a fresh process, from the repository root."""
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"), PYTHONPATH=str(ROOT))
    cmd = (entry or [sys.executable, "-m", "paddle_vit.convert"]) + [str(a) for a in args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)


def folder_listing(path: Path) -> list[str]:
    """Every name in ``path`` (temporary files included: a failure must leave none behind)."""
    return sorted(os.listdir(path))
