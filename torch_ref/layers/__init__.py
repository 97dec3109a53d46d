"""Torch mirror of ``paddle_vit.layers``, file for file."""
from torch_ref.layers.activations import QuickGELU, SiLU, create_act, silu
from torch_ref.layers.attention import Attention
from torch_ref.layers.attention_pool import AttentionPoolLatent
from torch_ref.layers.channel_attention import (CBAM, ECA, ChannelAttention, GlobalContext, SpatialAttention,
                                          SqueezeExcitation)
from torch_ref.layers.cond_conv import CondConv2d
from torch_ref.layers.conv2d_same import Conv2dSame, create_conv2d
from torch_ref.layers.create_norm import RmsNorm, create_norm
from torch_ref.layers.diff_attention import DiffAttention
from torch_ref.layers.drop_path import DropPath, drop_path
from torch_ref.layers.layer_scale import LayerScale
from torch_ref.layers.linear import Linear
from torch_ref.layers.mixed_conv import MixedConv2d
from torch_ref.layers.mlp import GluMlp, Mlp, SwiGLU, SwiGLUPacked, create_mlp
from torch_ref.layers.norm import BatchNorm2d
from torch_ref.layers.norm_act import (BatchNormAct2d, EvoNorm2dS0, GroupNormAct, LayerNorm2d, LayerNormAct2d,
                                 create_norm_act)
from torch_ref.layers.patch_dropout import PatchDropout
from torch_ref.layers.patch_embed import PatchEmbed, PatchEmbedding, prepend_cls_token
from torch_ref.layers.pos_embed import resample_pos_embed, sincos_1d, sincos_2d
from torch_ref.layers.stn import SpatialTransformer

__all__ = ["SiLU", "silu", "Attention", "BatchNorm2d", "CBAM", "ChannelAttention", "Conv2dSame", "create_conv2d", "ECA",
           "SpatialAttention", "SqueezeExcitation", "DropPath", "drop_path", "Linear", "Mlp", "PatchEmbed", "PatchEmbedding",
           "prepend_cls_token", "resample_pos_embed", "sincos_1d", "sincos_2d",
           # the Vision Transformer zoo's layers (timm's names)
           "AttentionPoolLatent", "DiffAttention", "GluMlp", "LayerScale", "PatchDropout", "QuickGELU", "RmsNorm",
           "SwiGLU", "SwiGLUPacked", "create_act", "create_mlp", "create_norm", "SpatialTransformer",
           # the EfficientNet zoo's layers
           "GlobalContext", "CondConv2d", "MixedConv2d", "BatchNormAct2d", "EvoNorm2dS0", "GroupNormAct",
           "LayerNorm2d", "LayerNormAct2d", "create_norm_act"]
