"""Fine-tuning an imported model: the EfficientNetV2 tutorial's transfer-learning recipe (seed 003).

``finetune(data=..., model=..., checkpoint=..., ...)`` (also ``paddle-vit finetune``) runs on one
process or data-parallel under ``paddle.distributed.launch``. The framework-free parts (``recipe``,
``data``, ``runs``, ``curves``, ``toydata``) are shared with the torch twin ``torch_ref.train``;
importing this package does not load Paddle.
"""
from __future__ import annotations

from typing import Any

from paddle_vit.train.recipe import Recipe


def finetune(recipe: Recipe | None = None, **kwargs: Any) -> dict[str, Any]:
    """See ``paddle_vit.train.engine.finetune``."""
    from paddle_vit.train.engine import finetune as run
    return run(recipe, **kwargs)


__all__ = ["Recipe", "finetune"]
