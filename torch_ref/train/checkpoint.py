"""Per-epoch checkpoints (torch mirror of ``paddle_vit.train.checkpoint``): ``epoch-00k.pth`` (model),
``epoch-00k.opt.pth`` (optimizer), then the commit record ``last.json`` (``paddle_vit.train.runs``),
each written atomically; read back with ``torch.load(weights_only=True)``."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn as nn

from paddle_vit.convert.io import atomic_output
from paddle_vit.train.runs import CheckpointError, commit, committed_file, read_pointer


def _save(obj: Any, dst: Path) -> None:
    with atomic_output(dst, force=True) as tmp:
        torch.save(obj, tmp)


def save_epoch(run_dir: str | os.PathLike, epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer,
               scheduler: torch.optim.lr_scheduler.LRScheduler, meta: Mapping[str, Any]) -> Path:
    """Write the files of ``epoch`` (count of completed epochs), then commit them with ``meta``."""
    run_dir = Path(run_dir)
    previous = read_pointer(run_dir)
    weights, opt_file = run_dir / f"epoch-{epoch:03d}.pth", run_dir / f"epoch-{epoch:03d}.opt.pth"
    _save(model.state_dict(), weights)
    _save(optimizer.state_dict(), opt_file)
    commit(run_dir, epoch, {"weights": weights, "optimizer": opt_file},
           dict(meta, scheduler={k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}))
    old = (previous or {}).get("files", {}).get("optimizer")
    if old and old != opt_file.name:
        (run_dir / old).unlink(missing_ok=True)
    return weights


@dataclass
class Resume:
    record: dict[str, Any]
    weights: dict[str, torch.Tensor]
    optimizer: dict[str, Any]


def load_last(run_dir: str | os.PathLike) -> Resume | None:
    record = read_pointer(run_dir)
    if record is None:
        return None
    loaded = {}
    for role in ("weights", "optimizer"):
        path = committed_file(run_dir, record, role)
        try:
            loaded[role] = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CheckpointError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
    return Resume(record, loaded["weights"], loaded["optimizer"])


def restore(resume: Resume, model: nn.Module, optimizer: torch.optim.Optimizer,
            scheduler: torch.optim.lr_scheduler.LRScheduler) -> None:
    model.load_state_dict(resume.weights, strict=True)
    optimizer.load_state_dict(resume.optimizer)
    scheduler.load_state_dict({**resume.record["scheduler"], "lr_lambdas": [None] * len(optimizer.param_groups)})
