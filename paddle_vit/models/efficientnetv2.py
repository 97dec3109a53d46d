"""EfficientNetV2 (Tan & Le, 2021) with timm's parameter names, so timm's ``efficientnetv2_*`` and
``tf_efficientnetv2_*`` checkpoints load as they are (torchvision's through a declared layout).

Blocks (all ``[B, in_chs, H, W]`` -> ``[B, out_chs, H/stride, W/stride]``; a residual shortcut,
with drop path on the branch, only when ``stride == 1`` and ``in_chs == out_chs``):
- ``ConvBNAct``: k x k conv -> BN -> SiLU (``conv``, ``bn1``), timm's ``ConvBnAct`` block.
- ``FusedMBConv``: k x k expand conv -> BN -> SiLU -> 1x1 project -> BN; with expansion 1 a single
  k x k conv -> BN -> SiLU (as ``ConvBNAct``, same names). No squeeze-excitation.
- ``MBConv``: 1x1 expand -> BN -> SiLU -> k x k depthwise -> BN -> SiLU -> SE -> 1x1 project -> BN.
"""
from __future__ import annotations

import math
from typing import Sequence

import paddle
import paddle.nn as nn

from paddle_vit.checks import check_image
from paddle_vit.conv_arith import round_channels
from paddle_vit.efficientnet_arch import block_specs, check_block
from paddle_vit.layers.activations import SiLU
from paddle_vit.layers.channel_attention import SqueezeExcitation, global_avg_pool
from paddle_vit.layers.conv2d_same import create_conv2d
from paddle_vit.layers.drop_path import DropPath
from paddle_vit.layers.linear import Linear
from paddle_vit.layers.norm import BatchNorm2d
from paddle_vit.registry import register_family



class _Residual(nn.Layer):
    """``x + drop_path(branch(x))`` when the shapes allow a shortcut, else ``branch(x)``."""

    def _init_residual(self, in_chs: int, out_chs: int, stride: int, skip: bool, drop_path: float) -> None:
        self.in_chs, self.out_chs = in_chs, out_chs
        self.has_shortcut = skip and stride == 1 and in_chs == out_chs
        self.drop_path = DropPath(drop_path) if self.has_shortcut and drop_path > 0 else nn.Identity()

    def branch(self, x: paddle.Tensor) -> paddle.Tensor:
        raise NotImplementedError

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        check_image(x, self.in_chs, None, type(self).__name__)
        y = self.branch(x)
        return x + self.drop_path(y) if self.has_shortcut else y


class ConvBNAct(_Residual):
    """k x k conv -> BN -> SiLU (or no activation); a shortcut only with ``skip=True``."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 3, stride: int = 1, groups: int = 1,
                 act: bool = True, skip: bool = False, drop_path: float = 0.0, bn_eps: float = 1e-3,
                 bn_momentum: float = 0.1, pad_type: str = "") -> None:
        super().__init__()
        self._init_residual(in_chs, out_chs, stride, skip, drop_path)
        self.conv = create_conv2d(in_chs, out_chs, kernel_size, stride, groups, pad_type=pad_type)
        self.bn1 = BatchNorm2d(out_chs, bn_eps, bn_momentum)
        self.act = SiLU() if act else nn.Identity()

    def branch(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.act(self.bn1(self.conv(x)))


class FusedMBConv(_Residual):
    """Fused-MBConv: the k x k expand conv replaces MBConv's 1x1 expand + depthwise."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 3, stride: int = 1, expand_ratio: int = 4,
                 se_ratio: float = 0.0, drop_path: float = 0.0, bn_eps: float = 1e-3, bn_momentum: float = 0.1,
                 pad_type: str = "") -> None:
        super().__init__()
        check_block("fused", stride, expand_ratio, se_ratio)
        self._init_residual(in_chs, out_chs, stride, True, drop_path)
        self.expand_ratio = expand_ratio
        if expand_ratio == 1:  # a single k x k conv with activation (timm: ConvBnAct 'conv', 'bn1')
            self.conv = create_conv2d(in_chs, out_chs, kernel_size, stride, pad_type=pad_type)
            self.bn1 = BatchNorm2d(out_chs, bn_eps, bn_momentum)
        else:
            mid = int(in_chs * expand_ratio)
            self.conv_exp = create_conv2d(in_chs, mid, kernel_size, stride, pad_type=pad_type)
            self.bn1 = BatchNorm2d(mid, bn_eps, bn_momentum)
            self.conv_pwl = create_conv2d(mid, out_chs, 1)
            self.bn2 = BatchNorm2d(out_chs, bn_eps, bn_momentum)
        self.act = SiLU()

    def branch(self, x: paddle.Tensor) -> paddle.Tensor:
        if self.expand_ratio == 1:
            return self.act(self.bn1(self.conv(x)))
        return self.bn2(self.conv_pwl(self.act(self.bn1(self.conv_exp(x)))))


class MBConv(_Residual):
    """MBConv (inverted residual): 1x1 expand, k x k depthwise, SE on the block input width, 1x1 project."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 3, stride: int = 1, expand_ratio: int = 4,
                 se_ratio: float = 0.25, drop_path: float = 0.0, bn_eps: float = 1e-3, bn_momentum: float = 0.1,
                 pad_type: str = "") -> None:
        super().__init__()
        check_block("mbconv", stride, expand_ratio, se_ratio)
        self._init_residual(in_chs, out_chs, stride, True, drop_path)
        mid = int(in_chs * expand_ratio)
        self.conv_pw = create_conv2d(in_chs, mid, 1)
        self.bn1 = BatchNorm2d(mid, bn_eps, bn_momentum)
        self.conv_dw = create_conv2d(mid, mid, kernel_size, stride, groups=mid, pad_type=pad_type)
        self.bn2 = BatchNorm2d(mid, bn_eps, bn_momentum)
        self.act = SiLU()
        self.se = SqueezeExcitation(mid, se_ratio, in_chs=in_chs) if se_ratio > 0 else nn.Identity()
        self.conv_pwl = create_conv2d(mid, out_chs, 1)
        self.bn3 = BatchNorm2d(out_chs, bn_eps, bn_momentum)

    def branch(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.act(self.bn1(self.conv_pw(x)))
        x = self.se(self.act(self.bn2(self.conv_dw(x))))
        return self.bn3(self.conv_pwl(x))


@register_family("efficientnetv2")
class EfficientNetV2(nn.Layer):
    """``[B, in_chans, H, W]`` -> logits ``[B, num_classes]`` (pooled ``[B, num_features]`` when
    ``num_classes=0``). Stem 3x3/2 conv, the stages of ``stages`` (see ``paddle_vit.variants``),
    1x1 head conv to ``num_features``, global average pool, dropout, classifier.

    ``channel_multiplier`` scales the stem and stage widths (rounded to multiples of 8, as timm),
    ``depth_multiplier`` the repeats (ceil); ``num_features`` is taken as given. ``bn_momentum`` is
    torch's convention (weight of the new statistic); ``pad_type='same'`` is TensorFlow's SAME
    padding (timm's ``tf_`` weights). ``img_size`` is the evaluation size the variant was designed
    for (metadata: any input size works).
    """

    def __init__(self, stages: Sequence[Sequence], num_classes: int = 1000, in_chans: int = 3, stem_size: int = 24,
                 num_features: int = 1280, channel_multiplier: float = 1.0, depth_multiplier: float = 1.0,
                 drop_rate: float = 0.0, drop_path_rate: float = 0.0, bn_eps: float = 1e-3,
                 bn_momentum: float = 0.1, pad_type: str = "", img_size: int | None = None) -> None:
        super().__init__()
        if num_classes < 0 or not 0.0 <= drop_rate < 1.0:
            raise ValueError(f"need num_classes >= 0 and drop_rate in [0, 1), got {num_classes} and {drop_rate}")
        specs = block_specs(stages, stem_size, channel_multiplier, depth_multiplier, drop_path_rate)
        bn = dict(bn_eps=bn_eps, bn_momentum=bn_momentum)
        self.in_chans, self.num_classes, self.img_size = in_chans, num_classes, img_size
        stem_size = round_channels(stem_size, channel_multiplier)
        self.num_features = num_features  # not scaled by channel_multiplier (the head width is given as is)
        self.conv_stem = create_conv2d(in_chans, stem_size, 3, stride=2, pad_type=pad_type)
        self.bn1 = BatchNorm2d(stem_size, bn_eps, bn_momentum)
        self.act = SiLU()
        stages_out: list[list[nn.Layer]] = [[] for _ in stages]
        for s in specs:
            cls = FusedMBConv if s.block == "fused" else MBConv
            stages_out[s.stage].append(cls(s.in_chs, s.out_chs, s.kernel_size, s.stride, s.expand_ratio,
                                           s.se_ratio, s.drop_path, pad_type=pad_type, **bn))
        self.blocks = nn.Sequential(*[nn.Sequential(*stage) for stage in stages_out])
        self.conv_head = create_conv2d(specs[-1].out_chs, self.num_features, 1)
        self.bn2 = BatchNorm2d(self.num_features, bn_eps, bn_momentum)
        self.head_drop = nn.Dropout(drop_rate)
        self.classifier = Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self._init_weights()

    def _init_weights(self) -> None:
        for layer in self.sublayers():
            if isinstance(layer, nn.Conv2D):
                # torch's kaiming_normal_(mode="fan_out") as the source: fan_out ignores groups, so a
                # depthwise conv starts sqrt(channels) times smaller than under timm's init, and a
                # random network's activations stay bounded instead of doubling in every block.
                fan_out = layer.weight.shape[0] * layer.weight.shape[2] * layer.weight.shape[3]
                nn.initializer.Normal(0.0, math.sqrt(2.0 / fan_out))(layer.weight)
                if layer.bias is not None:
                    nn.initializer.Constant(0.0)(layer.bias)
            elif isinstance(layer, nn.Linear):
                nn.initializer.Normal(0.0, 0.01)(layer.weight)
                nn.initializer.Constant(0.0)(layer.bias)

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        """``[B, in_chans, H, W]`` -> ``[B, num_features, H/32, W/32]`` (rounded up)."""
        check_image(x, self.in_chans, None, "EfficientNetV2")
        x = self.act(self.bn1(self.conv_stem(x)))
        x = self.blocks(x)
        return self.act(self.bn2(self.conv_head(x)))

    def forward_head(self, x: paddle.Tensor) -> paddle.Tensor:
        """``[B, num_features, h, w]`` -> ``[B, num_classes]``."""
        return self.classifier(self.head_drop(global_avg_pool(x).flatten(1)))

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.forward_head(self.forward_features(x))
