"""Model families; importing this module registers each family's class."""
from torch_ref.models.efficientnetv2 import ConvBNAct, EfficientNetV2, FusedMBConv, MBConv
from torch_ref.models.swin import SwinTransformer
from torch_ref.models.swin_v2 import SwinTransformerV2
from torch_ref.models.vit import Block, VisionTransformer

__all__ = ["Block", "ConvBNAct", "EfficientNetV2", "FusedMBConv", "MBConv", "SwinTransformer", "SwinTransformerV2",
           "VisionTransformer"]
