"""Model families; importing this module registers each family's class."""
from paddle_vit.models.efficientnetv2 import ConvBNAct, EfficientNetV2, FusedMBConv, MBConv
from paddle_vit.models.swin import SwinTransformer
from paddle_vit.models.swin_v2 import SwinTransformerV2
from paddle_vit.models.vit import Block, VisionTransformer

__all__ = ["Block", "ConvBNAct", "EfficientNetV2", "FusedMBConv", "MBConv", "SwinTransformer", "SwinTransformerV2",
           "VisionTransformer"]
