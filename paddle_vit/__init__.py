"""paddle_vit: ViT, Swin and EfficientNetV2 building blocks in PaddlePaddle.

Importing the package is cheap: Paddle itself is imported on first use of ``create_model``,
``layers``, ``models`` or ``convert`` (so ``torch_ref`` can read the shared variant table
without loading Paddle).
"""
from __future__ import annotations

import importlib
from typing import Any

from paddle_vit.runtime import configure_cpu
from paddle_vit.variants import list_models

__version__ = "0.1.0"

# All cores instead of Paddle's OMP_NUM_THREADS=1, and MKL's AVX2/AVX-512 kernels on AMD CPUs, each
# only where the user has not chosen; also when Paddle was imported first (see paddle_vit.runtime).
configure_cpu()

_LAZY = {"create_model": "paddle_vit.registry", "layers": None, "models": None,
         "convert": None, "parity": None, "data": None}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'paddle_vit' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name] or f"paddle_vit.{name}")
    value = getattr(module, name) if _LAZY[name] else module
    globals()[name] = value
    return value


__all__ = ["create_model", "list_models", "__version__"]
