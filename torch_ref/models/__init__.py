"""Model families; importing this module registers each family's class."""
from torch_ref.models.efficientnet import EfficientNet
from torch_ref.models.efficientnet_blocks import ConvBNAct, CondConvMBConv, DepthwiseSeparable, FusedMBConv, MBConv
from torch_ref.models.swin import SwinTransformer
from torch_ref.models.swin_v2 import SwinTransformerV2
from torch_ref.models.vit import Block, VisionTransformer

__all__ = ["Block", "CondConvMBConv", "ConvBNAct", "DepthwiseSeparable", "EfficientNet", "FusedMBConv", "MBConv",
           "SwinTransformer", "SwinTransformerV2",
           "VisionTransformer"]
