"""Loading a checkpoint into a model with a new classifier (torch mirror of ``paddle_vit.train.pretrained``).

Takes checkpoints in our own layout (torch_ref, which is timm's names): keys and shapes must
match the model except the classifier's, which is dropped when its shape differs and starts from
``recipe.new_head_value`` (the same values as the Paddle side). Anything else that does not fit
is one ``ValueError`` listing every problem, and the model keeps its weights.
"""
from __future__ import annotations

import os

import torch
import torch.nn as nn

from paddle_vit.convert.io import read_checkpoint
from paddle_vit.train.recipe import LoadReport, classifier_prefix, new_head_value


def load_for_finetune(model: nn.Module, path: str | os.PathLike, source: str = "auto", seed: int = 0) -> LoadReport:
    """Load ``path`` (``.pth``/``.safetensors`` of this model's layout) into ``model``, dropping the
    classifier tensors whose shape differs. All or nothing."""
    if source not in ("auto", "timm", "torch_ref"):
        raise ValueError(f"torch_ref.train reads timm/torch_ref checkpoints only, not {source!r}")
    state, layout = read_checkpoint(path)
    if layout != "torch":
        raise ValueError(f"{path} is a Paddle checkpoint; torch_ref.train reads torch layouts only")
    prefix = classifier_prefix(model.family)
    current = model.state_dict()
    report = LoadReport(str(path), "torch_ref")
    merged, problems = {}, []
    for key, value in state.items():
        if key not in current:
            if not key.endswith("num_batches_tracked"):
                problems.append(f"unexpected key {key!r} {list(value.shape)}")
            continue
        want = tuple(current[key].shape)
        if tuple(value.shape) == want:
            merged[key] = value
        elif key.startswith(prefix):
            merged[key] = torch.from_numpy(new_head_value(key, want, seed))
            report.dropped.append((key, key, tuple(value.shape), want))
        else:
            problems.append(f"shape mismatch {key!r}: checkpoint {list(value.shape)}, model {list(want)}")
    problems += [f"missing key {k!r} {list(v.shape)}" for k, v in current.items()
                 if k not in state and not k.endswith("num_batches_tracked")]
    if problems:
        raise ValueError(f"checkpoint {path} does not fit model {model.variant!r}: {len(problems)} problem(s)\n  "
                         + "\n  ".join(problems[:60]))
    missing_ok = {k: current[k] for k in current if k not in merged}  # num_batches_tracked
    model.load_state_dict({**missing_ok, **merged}, strict=True)
    report.loaded = len(merged) - len(report.dropped) - sum(k.endswith("num_batches_tracked") for k in merged)
    return report
