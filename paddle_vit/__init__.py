"""paddle_vit: ViT, Swin and EfficientNetV2 building blocks in PaddlePaddle.

Importing the package is cheap: Paddle itself is imported on first use of ``create_model``,
``layers``, ``models`` or ``convert`` (so ``torch_ref`` can read the shared variant table
without loading Paddle).
"""
from __future__ import annotations

import importlib
import os
from typing import Any

from paddle_vit.variants import list_models

__version__ = "0.1.0"

# Paddle pins OMP_NUM_THREADS=1 at import unless it is already set; use every core instead,
# unless the user has chosen (see README, "Threads").
if "OMP_NUM_THREADS" not in os.environ and "paddle" not in __import__("sys").modules:
    os.environ["OMP_NUM_THREADS"] = str(os.cpu_count() or 1)

_LAZY = {"create_model": "paddle_vit.registry", "layers": None, "models": None,
         "convert": None, "parity": None}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'paddle_vit' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name] or f"paddle_vit.{name}")
    value = getattr(module, name) if _LAZY[name] else module
    globals()[name] = value
    return value


__all__ = ["create_model", "list_models", "__version__"]
