"""A run folder's commit record (``last.json``), framework-free: both trees' checkpoints use it.

The record is written last and atomically after an epoch's files (see ``paddle_vit.train.checkpoint``),
so whatever it names is complete; the SHA-256 it holds shows a file changed since.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

from paddle_vit.convert.io import atomic_output
from paddle_vit.train.recipe import RESUMABLE

POINTER = "last.json"
FORMAT = 1


class CheckpointError(ValueError):
    """A run folder whose checkpoint cannot be resumed; the message says what was expected."""


def sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_json(data: Mapping[str, Any], dst: str | os.PathLike) -> None:
    """``data`` as JSON at ``dst``, atomically (replacing an older file)."""
    with atomic_output(dst, force=True) as tmp:
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def read_pointer(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The record of ``run_dir``'s last complete epoch, or ``None`` if it has none."""
    path = Path(run_dir) / POINTER
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a paddle_vit fine-tuning record (format {FORMAT})")
    return record


def commit(run_dir: str | os.PathLike, epoch: int, files: Mapping[str, str | os.PathLike],
           meta: Mapping[str, Any]) -> dict[str, Any]:
    """Record epoch ``epoch`` (count of completed epochs) with ``files`` (role -> path inside
    ``run_dir``, already complete) and ``meta``; returns the record."""
    record = dict(meta, format=FORMAT, epoch=epoch, files={k: Path(v).name for k, v in files.items()},
                  sha256={Path(v).name: sha256(v) for v in files.values()})
    write_json(record, Path(run_dir) / POINTER)
    return record


def committed_file(run_dir: str | os.PathLike, record: Mapping[str, Any], role: str) -> Path:
    """The path of the record's ``role`` file, checked to be the very file that was committed."""
    name = record.get("files", {}).get(role)
    path = Path(run_dir) / str(name)
    if not name or not path.is_file():
        raise CheckpointError(f"{Path(run_dir) / POINTER} names {role} file {name!r}, which is missing")
    if sha256(path) != record.get("sha256", {}).get(path.name):
        raise CheckpointError(f"{path} is not the file {POINTER} committed (its SHA-256 differs): changed or damaged")
    return path


def check_resumable(record: Mapping[str, Any], recipe: Mapping[str, Any], classes: list[str], framework: str,
                    processes: int, run_dir: str | os.PathLike) -> None:
    """The committed run must be this one: same framework, model, classes, number of processes (the
    global batch is ``batch_size`` times it) and recipe (fields that change the computation;
    ``recipe.RESUMABLE`` may differ). One message lists every difference."""
    saved = record.get("recipe", {})
    recipe = json.loads(json.dumps(recipe))  # tuples as the record holds them (lists)
    problems = []
    if record.get("framework") != framework:
        problems.append(f"it was written by {record.get('framework')!r}, this is {framework!r}")
    if record.get("writer", {}).get("processes") != processes:
        problems.append(f"it ran on {record.get('writer', {}).get('processes')} process(es), this on {processes}")
    if record.get("classes") != list(classes):
        problems.append(f"classes {record.get('classes')} there, {list(classes)} in this dataset")
    for key in sorted(set(saved) | set(recipe)):
        if key not in RESUMABLE and saved.get(key) != recipe.get(key):
            problems.append(f"{key}={saved.get(key)!r} there, {recipe.get(key)!r} now")
    if problems:
        raise CheckpointError(f"cannot resume {run_dir}: its checkpoint (epoch {record.get('epoch')}) is from another "
                              "run: " + "; ".join(problems) + " (use another --out to start a new run)")


def remove_leftovers(run_dir: str | os.PathLike) -> list[Path]:
    """Delete the temporary files a killed run left (``atomic_output``'s ``.<name>.*.tmp`` of this
    run's own files); the committed files are never touched."""
    stale = [p for p in Path(run_dir).glob(".*.tmp") if p.name.startswith((".epoch-", ".last.json.", ".curves."))]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale
