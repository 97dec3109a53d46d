"""timm's EfficientNet family (EfficientNet B0-B8/L2, Lite, EdgeTPU, CondConv, X, V2, MixNet,
MnasNet, MobileNet V1/V2, FBNet, SPNASNet, TinyNet) with timm's parameter names: one class built
from block strings by ``paddle_vit.efficientnet_arch``; the variants are rows of
``paddle_vit.zoo.efficientnet``.
"""
from __future__ import annotations

import math
from typing import Sequence

import paddle
import paddle.nn as nn

from paddle_vit.checks import check_image
from paddle_vit.efficientnet_arch import SPEC_ARGS, BlockSpec, efficientnet_spec
from paddle_vit.layers.channel_attention import global_avg_pool
from paddle_vit.layers.cond_conv import CondConv2d
from paddle_vit.layers.conv2d_same import create_conv2d
from paddle_vit.layers.linear import Linear
from paddle_vit.layers.norm_act import create_norm_act
from paddle_vit.models.efficientnet_blocks import ConvBNAct, CondConvMBConv, DepthwiseSeparable, FusedMBConv, MBConv
from paddle_vit.registry import register_family


def make_block(s: BlockSpec, pad_type: str, se_layer: str, norm: dict) -> nn.Layer:
    """The layer of one ``BlockSpec`` (``norm``: ``norm_layer``, ``bn_eps``, ``bn_momentum``, ``norm_group_size``)."""
    common = dict(drop_path=s.drop_path, pad_type=pad_type, **norm)
    if s.kind == "cn":
        return ConvBNAct(s.in_chs, s.out_chs, s.kernel_size, s.stride, s.groups, s.act, s.has_skip, **common)
    attn = dict(se_chs=s.se_chs, se_layer=se_layer, act_layer=s.act, pw_kernel_size=s.pw_kernel_size,
                groups=s.groups, noskip=not s.has_skip)
    if s.kind == "ds":
        return DepthwiseSeparable(s.in_chs, s.out_chs, s.kernel_size, s.stride, pw_act=s.pw_act, s2d=s.s2d,
                                  dw_pad_type=s.dw_pad_type, **attn, **common)
    if s.kind == "er":
        return FusedMBConv(s.in_chs, s.out_chs, s.kernel_size, s.stride, mid_chs=s.mid_chs, **attn, **common)
    ir = dict(mid_chs=s.mid_chs, exp_kernel_size=s.exp_kernel_size, **attn, **common)
    if s.num_experts:
        return CondConvMBConv(s.in_chs, s.out_chs, s.kernel_size, s.stride, num_experts=s.num_experts, **ir)
    return MBConv(s.in_chs, s.out_chs, s.kernel_size, s.stride, s2d=s.s2d, dw_pad_type=s.dw_pad_type, **ir)


@register_family("efficientnet")
class EfficientNet(nn.Layer):
    """``[B, in_chans, H, W]`` -> logits ``[B, num_classes]`` (pooled ``[B, num_features]`` when
    ``num_classes=0``): stem conv (stride 2) + norm + act, the blocks of ``arch``, 1x1 head conv to
    ``num_features`` + norm + act (none when ``num_features=0``), global average pool, dropout, classifier.

    ``arch`` and the width / depth / head / stem arguments are those of
    ``paddle_vit.efficientnet_arch.efficientnet_spec`` (timm's builder). ``act_layer``: relu, relu6,
    silu, hard_swish, mish. ``norm_layer``: batchnorm (torch's momentum convention and running-variance
    rule, ``bn_eps``, ``bn_momentum``), groupnorm / evonorm_s0 (``norm_group_size`` channels per
    group), layernorm; ``bn_eps`` is every norm layer's eps. ``se_layer``: 'se' (squeeze-excitation)
    or 'gc' (global context). ``pad_type='same'`` is TensorFlow's SAME padding (timm's ``tf_``
    weights). ``img_size`` is the evaluation size of the variant's weights (metadata: any size works).
    """

    def __init__(self, arch: Sequence[Sequence[str]], num_classes: int = 1000, in_chans: int = 3,
                 stem_size: int = 32, stem_kernel_size: int = 3, fix_stem: bool = False, num_features: int = 1280,
                 fix_head: bool = False, head_floor: bool = False, channel_multiplier: float = 1.0,
                 channel_divisor: int = 8, round_limit: float = 0.9, depth_multiplier: float | Sequence[float] = 1.0,
                 depth_trunc: str = "ceil", fix_first_last: bool = False, group_size: int | None = None,
                 experts_multiplier: int = 1, act_layer: str = "relu", norm_layer: str = "batchnorm",
                 norm_group_size: int | None = None, bn_eps: float = 1e-5, bn_momentum: float = 0.1,
                 se_layer: str = "se", pad_type: str = "", drop_rate: float = 0.0, drop_path_rate: float = 0.0,
                 pruned: Sequence | None = None, img_size: int | None = None) -> None:
        super().__init__()
        if num_classes < 0 or in_chans < 1 or not 0.0 <= drop_rate < 1.0:
            raise ValueError(f"need num_classes >= 0, in_chans >= 1 and drop_rate in [0, 1), got "
                             f"{num_classes}, {in_chans} and {drop_rate}")
        args = {k: v for k, v in locals().items() if k in SPEC_ARGS}
        self.spec = spec = efficientnet_spec(**args)
        norm = dict(norm_layer=norm_layer, bn_eps=bn_eps, bn_momentum=bn_momentum, norm_group_size=norm_group_size)
        self.in_chans, self.num_classes, self.img_size = in_chans, num_classes, img_size
        self.bn_eps, self.bn_momentum, self.pad_type = bn_eps, bn_momentum, pad_type
        self.conv_stem = create_conv2d(in_chans, spec.stem_chs, spec.stem_kernel_size, stride=2, pad_type=pad_type)
        self.bn1 = create_norm_act(norm_layer, spec.stem_chs, act_layer, bn_eps, bn_momentum, norm_group_size)
        stages: list[list[nn.Layer]] = [[] for _ in range(spec.blocks[-1].stage + 1)]
        for s in spec.blocks:
            stages[s.stage].append(make_block(s, pad_type, se_layer, norm))
        self.blocks = nn.Sequential(*[nn.Sequential(*stage) for stage in stages])
        self.num_features = spec.feature_chs
        if spec.num_features:
            self.conv_head = create_conv2d(spec.blocks[-1].out_chs, spec.num_features, 1, pad_type=pad_type)
            self.bn2 = create_norm_act(norm_layer, spec.num_features, act_layer, bn_eps, bn_momentum, norm_group_size)
        else:
            self.conv_head, self.bn2 = nn.Identity(), nn.Identity()
        self.head_drop = nn.Dropout(drop_rate)
        self.classifier = Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self._init_weights()

    @property
    def flat_blocks(self) -> list[str]:
        """Every block's key prefix in order, ``blocks.{stage}.{index}`` (for layouts that number blocks flat)."""
        return [f"blocks.{s.stage}.{s.index}" for s in self.spec.blocks]

    def _init_weights(self) -> None:
        for layer in self.sublayers():
            if isinstance(layer, (nn.Conv2D, CondConv2d)):
                # torch's kaiming_normal_(mode="fan_out") as the seed and torchvision: fan_out ignores groups, so a
                # depthwise conv starts sqrt(channels) times smaller than under timm's init, and a
                # random network's activations stay bounded instead of doubling in every block.
                k = layer.weight.shape[-1] if isinstance(layer, nn.Conv2D) else layer.kernel_size
                out = layer.weight.shape[0] if isinstance(layer, nn.Conv2D) else layer.out_channels
                nn.initializer.Normal(0.0, math.sqrt(2.0 / (out * k * k)))(layer.weight)
                if layer.bias is not None:
                    nn.initializer.Constant(0.0)(layer.bias)
            elif isinstance(layer, nn.Linear):
                nn.initializer.Normal(0.0, 0.01)(layer.weight)
                nn.initializer.Constant(0.0)(layer.bias)

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        """``[B, in_chans, H, W]`` -> ``[B, num_features, H/32, W/32]`` (rounded up)."""
        check_image(x, self.in_chans, None, type(self).__name__)
        x = self.blocks(self.bn1(self.conv_stem(x)))
        return self.bn2(self.conv_head(x))

    def forward_head(self, x: paddle.Tensor) -> paddle.Tensor:
        """``[B, num_features, h, w]`` -> ``[B, num_classes]``."""
        return self.classifier(self.head_drop(global_avg_pool(x).flatten(1)))

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.forward_head(self.forward_features(x))
