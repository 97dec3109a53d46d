"""torch_ref: the PyTorch reference tree, mirroring ``paddle_vit`` file for file and name for name."""
from paddle_vit.variants import list_models
from torch_ref.registry import create_model

__all__ = ["create_model", "list_models"]
