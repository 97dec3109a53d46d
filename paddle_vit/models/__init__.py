"""Model families; importing this module registers each family's class."""
from paddle_vit.models.efficientnet import EfficientNet
from paddle_vit.models.efficientnet_blocks import ConvBNAct, CondConvMBConv, DepthwiseSeparable, FusedMBConv, MBConv
from paddle_vit.models.swin import SwinTransformer
from paddle_vit.models.swin_v2 import SwinTransformerV2
from paddle_vit.models.vit import Block, VisionTransformer

__all__ = ["Block", "CondConvMBConv", "ConvBNAct", "DepthwiseSeparable", "EfficientNet", "FusedMBConv", "MBConv",
           "SwinTransformer", "SwinTransformerV2",
           "VisionTransformer"]
