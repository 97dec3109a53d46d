"""Per-epoch checkpoints that a killed run resumes from, losing nothing but the epoch in progress.

Each completed epoch ``k`` writes into the run's folder, in this order:

    epoch-00k.pdparams   the model (``paddle.load`` reads it, and so does paddle_vit's safe reader)
    epoch-00k.pdopt      the optimizer's accumulators, keyed by parameter *structure* names
                         (``head.weight::velocity_0``): Paddle's own keys are global counters such
                         as ``linear_3.w_0_velocity_0``, which differ between processes
    last.json            the commit record (``paddle_vit.train.runs``): epoch, model, classes, recipe,
                         curves, lr scheduler state and the SHA-256 of both files

Each file is written under a temporary name and renamed into place when complete
(``paddle_vit.convert.io.atomic_output``), and ``last.json`` comes last: a run killed at any
moment leaves the previous record and the files it names intact. Only numpy arrays and JSON are
written, and arrays are read back through the converter's numpy-only unpickler.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import paddle
import paddle.nn as nn

from paddle_vit.convert import ConversionError, load_state_dict_strict, save_paddle
from paddle_vit.convert.io import atomic_output, read_pdparams, write_pdparams
from paddle_vit.train.runs import CheckpointError, commit, committed_file, read_pointer

SCHEDULER_KEY = "LR_Scheduler"


def _param_names(model: nn.Layer) -> dict[str, str]:
    """Paddle's global parameter name -> structure name (``blocks.0.attn.qkv.weight``)."""
    return {p.name: n for n, p in model.named_parameters()}


def optimizer_arrays(optimizer: paddle.optimizer.Optimizer, model: nn.Layer) -> tuple[dict[str, np.ndarray], dict]:
    """``(arrays, scheduler state)``; each accumulator as ``'<structure name>::<accumulator>'``."""
    names = _param_names(model)
    arrays, scheduler = {}, {}
    for key, value in optimizer.state_dict().items():
        if key == SCHEDULER_KEY:
            scheduler = {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in value.items()}
            continue
        owner = max((key[:i] for i, ch in enumerate(key) if ch == "_" and key[:i] in names), key=len, default=None)
        if owner is None or not hasattr(value, "numpy"):
            raise CheckpointError(f"optimizer state {key!r} belongs to no parameter of the model; cannot save it")
        arrays[f"{names[owner]}::{key[len(owner) + 1:]}"] = value.numpy()
    return arrays, scheduler


def restore_optimizer(optimizer: paddle.optimizer.Optimizer, model: nn.Layer, arrays: Mapping[str, np.ndarray],
                      scheduler: Mapping[str, Any], path: Path) -> None:
    """Load ``optimizer_arrays``'s output back; every key must name a trainable parameter of ``model``
    with its shape, and every trainable parameter must have its accumulators."""
    params = {n: p for n, p in model.named_parameters() if not p.stop_gradient}
    state, problems, seen = {}, [], set()
    for key, value in arrays.items():
        struct, sep, acc = key.partition("::")
        if not sep or struct not in params:
            problems.append(f"{key!r}: no trainable parameter {struct!r} in this model")
        elif tuple(value.shape) != tuple(params[struct].shape):
            problems.append(f"{key!r}: shape {list(value.shape)}, the parameter has {list(params[struct].shape)}")
        else:
            state[f"{params[struct].name}_{acc}"] = value
            seen.add(struct)
    problems += [f"no optimizer state for trainable parameter {n!r}" for n in params if n not in seen]
    if problems:
        raise CheckpointError(f"optimizer state {path} does not fit this model: " + "; ".join(problems[:10]))
    if scheduler:
        state[SCHEDULER_KEY] = dict(scheduler)
    optimizer.set_state_dict(state)


def save_epoch(run_dir: str | os.PathLike, epoch: int, model: nn.Layer, optimizer: paddle.optimizer.Optimizer,
               meta: Mapping[str, Any]) -> Path:
    """Write the files of ``epoch`` (count of completed epochs), then commit them with ``meta``.
    Returns the weights file. Older weights stay (one per epoch, as the seed); older optimizer
    states are removed once the new record is in place."""
    run_dir = Path(run_dir)
    previous = read_pointer(run_dir)
    weights, opt_file = run_dir / f"epoch-{epoch:03d}.pdparams", run_dir / f"epoch-{epoch:03d}.pdopt"
    # force: a run killed after writing these but before committing them left complete, unnamed files
    save_paddle({k: v.numpy() for k, v in model.state_dict().items()}, weights, force=True)
    arrays, scheduler = optimizer_arrays(optimizer, model)
    with atomic_output(opt_file, force=True) as tmp:
        write_pdparams(arrays, tmp)
    commit(run_dir, epoch, {"weights": weights, "optimizer": opt_file}, dict(meta, scheduler=scheduler))
    old = (previous or {}).get("files", {}).get("optimizer")
    if old and old != opt_file.name:
        (run_dir / old).unlink(missing_ok=True)
    return weights


@dataclass
class Resume:
    """A committed epoch: its record, model weights and optimizer arrays."""
    record: dict[str, Any]
    weights: dict[str, np.ndarray]
    optimizer: dict[str, np.ndarray]
    optimizer_path: Path


def load_last(run_dir: str | os.PathLike) -> Resume | None:
    """The last committed epoch of ``run_dir`` (files checked against their SHA-256), or ``None``."""
    record = read_pointer(run_dir)
    if record is None:
        return None
    arrays = {}
    for role in ("weights", "optimizer"):
        path = committed_file(run_dir, record, role)
        try:
            arrays[role] = read_pdparams(path)
        except ConversionError as exc:
            raise CheckpointError(str(exc)) from None
    return Resume(record, arrays["weights"], arrays["optimizer"], committed_file(run_dir, record, "optimizer"))


def restore(resume: Resume, model: nn.Layer, optimizer: paddle.optimizer.Optimizer) -> None:
    """Put a committed epoch's weights and optimizer state into ``model`` and ``optimizer``."""
    load_state_dict_strict(model, resume.weights)
    restore_optimizer(optimizer, model, resume.optimizer, resume.record.get("scheduler", {}), resume.optimizer_path)
