"""Model families; importing this module registers each family's class."""
from torch_ref.models.efficientnetv2 import ConvBNAct, EfficientNetV2, FusedMBConv, MBConv
from torch_ref.models.vit import Block, VisionTransformer

__all__ = ["Block", "VisionTransformer", "ConvBNAct", "EfficientNetV2", "FusedMBConv", "MBConv"]
