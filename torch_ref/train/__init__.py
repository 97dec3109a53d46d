"""The torch twin of ``paddle_vit.train``: the same recipe, data pipeline and run folder, in PyTorch
(one process; ``paddle_vit.train`` is the one that runs data-parallel)."""
from __future__ import annotations

from typing import Any

from paddle_vit.train.recipe import Recipe


def finetune(recipe: Recipe | None = None, **kwargs: Any) -> dict[str, Any]:
    """See ``torch_ref.train.engine.finetune``."""
    from torch_ref.train.engine import finetune as run
    return run(recipe, **kwargs)


__all__ = ["Recipe", "finetune"]
