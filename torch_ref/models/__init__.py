"""Model families; importing this module registers each family's class."""
from torch_ref.models.swin import SwinTransformer
from torch_ref.models.vit import Block, VisionTransformer

__all__ = ["Block", "SwinTransformer", "VisionTransformer"]
