"""Shared Paddle building blocks (mirrored one file for one file in ``torch_ref.layers``)."""
from paddle_vit.layers.activations import QuickGELU, SiLU, create_act, silu
from paddle_vit.layers.attention import Attention
from paddle_vit.layers.attention_pool import AttentionPoolLatent
from paddle_vit.layers.channel_attention import (CBAM, ECA, ChannelAttention, GlobalContext, SpatialAttention,
                                           SqueezeExcitation)
from paddle_vit.layers.cond_conv import CondConv2d
from paddle_vit.layers.conv2d_same import Conv2dSame, create_conv2d
from paddle_vit.layers.create_norm import RmsNorm, create_norm
from paddle_vit.layers.diff_attention import DiffAttention
from paddle_vit.layers.drop_path import DropPath, drop_path
from paddle_vit.layers.layer_scale import LayerScale
from paddle_vit.layers.linear import Linear
from paddle_vit.layers.mixed_conv import MixedConv2d
from paddle_vit.layers.mlp import GluMlp, Mlp, SwiGLU, SwiGLUPacked, create_mlp
from paddle_vit.layers.norm import BatchNorm2d
from paddle_vit.layers.norm_act import (BatchNormAct2d, EvoNorm2dS0, GroupNormAct, LayerNorm2d, LayerNormAct2d,
                                  create_norm_act)
from paddle_vit.layers.patch_dropout import PatchDropout
from paddle_vit.layers.patch_embed import PatchEmbed, PatchEmbedding, prepend_cls_token
from paddle_vit.layers.pos_embed import resample_pos_embed, sincos_1d, sincos_2d
from paddle_vit.layers.stn import SpatialTransformer

__all__ = ["SiLU", "silu", "Attention", "BatchNorm2d", "CBAM", "ChannelAttention", "Conv2dSame", "create_conv2d", "ECA",
           "SpatialAttention", "SqueezeExcitation", "DropPath", "drop_path", "Linear", "Mlp", "PatchEmbed", "PatchEmbedding",
           "prepend_cls_token", "resample_pos_embed", "sincos_1d", "sincos_2d",
           # the Vision Transformer zoo's layers (timm's names)
           "AttentionPoolLatent", "DiffAttention", "GluMlp", "LayerScale", "PatchDropout", "QuickGELU", "RmsNorm",
           "SwiGLU", "SwiGLUPacked", "create_act", "create_mlp", "create_norm", "SpatialTransformer",
           # the EfficientNet zoo's layers
           "GlobalContext", "CondConv2d", "MixedConv2d", "BatchNormAct2d", "EvoNorm2dS0", "GroupNormAct",
           "LayerNorm2d", "LayerNormAct2d", "create_norm_act"]
