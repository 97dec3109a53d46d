"""The MBConv family's blocks, with timm's parameter names so that timm's checkpoints load as they are.

All map ``[B, in_chs, H, W]`` -> ``[B, out_chs, H/stride, W/stride]``; a residual shortcut, with
drop path on the branch, only when ``stride == 1``, ``in_chs == out_chs`` and the block allows one.
Every norm layer carries the activation that follows it (``paddle_vit.layers.norm_act``).

- ``ConvBNAct``: k x k conv -> BN + act (``conv``, ``bn1``; timm's ``ConvBnAct``, the seed's
  Fused-MBConv with expansion 1). A shortcut only with ``skip=True``.
- ``DepthwiseSeparable``: k x k depthwise -> BN + act -> SE -> 1x1 pointwise -> BN (+ act with
  ``pw_act``): ``conv_dw``, ``bn1``, ``se``, ``conv_pw``, ``bn2`` (timm's ``DepthwiseSeparableConv``).
- ``MBConv``: 1x1 expand -> BN + act -> k x k depthwise -> BN + act -> SE -> 1x1 project -> BN
  (``conv_pw``, ``bn1``, ``conv_dw``, ``bn2``, ``se``, ``conv_pwl``, ``bn3``; timm's ``InvertedResidual``).
- ``CondConvMBConv``: ``MBConv`` whose three convs are CondConv, routed by ``routing_fn`` on the pooled input.
- ``FusedMBConv``: k x k expand -> BN + act -> SE -> 1x1 project -> BN (``conv_exp``, ``bn1``, ``se``,
  ``conv_pwl``, ``bn2``; timm's ``EdgeResidual``, two convs even at expansion 1).

``s2d=1`` (``DepthwiseSeparable``, ``MBConv``): the block starts with a 2x2/2 SAME conv to 4x the
channels (``conv_s2d``, ``bn_s2d``), EfficientNet-X's space-to-depth stem.
"""
from __future__ import annotations

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from paddle_vit.checks import check_image
from paddle_vit.conv_arith import make_divisible
from paddle_vit.efficientnet_arch import SE_LAYERS
from paddle_vit.layers.channel_attention import GlobalContext, SqueezeExcitation
from paddle_vit.layers.conv2d_same import create_conv2d
from paddle_vit.layers.drop_path import DropPath
from paddle_vit.layers.linear import Linear
from paddle_vit.layers.norm_act import create_norm_act


def check_stride(stride: int, where: str) -> None:
    if stride not in (1, 2):
        raise ValueError(f"{where}: stride must be 1 or 2, got {stride}")


def make_se(se_layer: str, channels: int, rd_channels: int, act_layer: str) -> nn.Layer:
    """The channel attention of a block: ``'se'`` (SqueezeExcitation) or ``'gc'`` (GlobalContext);
    ``rd_channels == 0``: none."""
    if se_layer not in SE_LAYERS:
        raise ValueError(f"se_layer must be one of {SE_LAYERS}, got {se_layer!r}")
    if not rd_channels:
        return nn.Identity()
    if se_layer == "gc":
        return GlobalContext(channels, rd_channels, act_layer)
    return SqueezeExcitation(channels, rd_channels=rd_channels, act_layer=act_layer)


class _Residual(nn.Layer):
    """``x + drop_path(branch(x))`` when the shapes allow a shortcut, else ``branch(x)``."""

    def _init_residual(self, in_chs: int, out_chs: int, stride: int, skip: bool, drop_path: float,
                       norm_layer: str, bn_eps: float, bn_momentum: float, norm_group_size: int | None) -> None:
        check_stride(stride, type(self).__name__)
        self.in_chs, self.out_chs = in_chs, out_chs
        self.has_shortcut = skip and stride == 1 and in_chs == out_chs
        self.drop_path = DropPath(drop_path) if self.has_shortcut and drop_path > 0 else nn.Identity()
        self._norm = dict(kind=norm_layer, eps=bn_eps, momentum=bn_momentum, group_size=norm_group_size)

    def norm(self, channels: int, act: str | None) -> nn.Layer:
        return create_norm_act(num_features=channels, act=act, **self._norm)

    def branch(self, x: paddle.Tensor) -> paddle.Tensor:
        raise NotImplementedError

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        check_image(x, self.in_chs, None, type(self).__name__)
        y = self.branch(x)
        return x + self.drop_path(y) if self.has_shortcut else y


class ConvBNAct(_Residual):
    """k x k conv -> BN + activation (``act_layer=None``: none); a shortcut only with ``skip=True``."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 3, stride: int = 1, groups: int = 1,
                 act_layer: str | None = "silu", skip: bool = False, drop_path: float = 0.0, bn_eps: float = 1e-3,
                 bn_momentum: float = 0.1, pad_type: str = "", norm_layer: str = "batchnorm",
                 norm_group_size: int | None = None) -> None:
        super().__init__()
        self._init_residual(in_chs, out_chs, stride, skip, drop_path, norm_layer, bn_eps, bn_momentum, norm_group_size)
        self.conv = create_conv2d(in_chs, out_chs, kernel_size, stride, groups, pad_type=pad_type)
        self.bn1 = self.norm(out_chs, act_layer)

    def branch(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.bn1(self.conv(x))


class _SpaceToDepth:
    """The optional space-to-depth start of a block: returns the width after it."""

    def _init_s2d(self, s2d: int, in_chs: int, act_layer: str) -> int:
        if s2d not in (0, 1):
            raise ValueError(f"s2d must be 0 or 1, got {s2d}")
        self.s2d = s2d
        if not s2d:
            return in_chs
        self.conv_s2d = create_conv2d(in_chs, 4 * in_chs, 2, stride=2, pad_type="same")
        self.bn_s2d = self.norm(4 * in_chs, act_layer)
        return 4 * in_chs

    def space_to_depth(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.bn_s2d(self.conv_s2d(x)) if self.s2d else x


class DepthwiseSeparable(_SpaceToDepth, _Residual):
    """k x k depthwise -> BN + act -> SE -> 1x1 pointwise -> BN (+ act with ``pw_act``)."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 3, stride: int = 1, se_chs: int = 0,
                 act_layer: str = "silu", pw_act: bool = False, noskip: bool = False, drop_path: float = 0.0,
                 bn_eps: float = 1e-3, bn_momentum: float = 0.1, pad_type: str = "", pw_kernel_size=1,
                 groups: int | None = None, se_layer: str = "se", s2d: int = 0, dw_pad_type: str | None = None,
                 norm_layer: str = "batchnorm", norm_group_size: int | None = None) -> None:
        super().__init__()
        self._init_residual(in_chs, out_chs, stride, not noskip, drop_path, norm_layer, bn_eps, bn_momentum,
                            norm_group_size)
        width = self._init_s2d(s2d, in_chs, act_layer)
        self.conv_dw = create_conv2d(width, width, kernel_size, stride, width if groups is None else groups,
                                     pad_type=pad_type if dw_pad_type is None else dw_pad_type)
        self.bn1 = self.norm(width, act_layer)
        self.se = make_se(se_layer, width, se_chs, act_layer)
        self.conv_pw = create_conv2d(width, out_chs, pw_kernel_size, pad_type=pad_type)
        self.bn2 = self.norm(out_chs, act_layer if pw_act else None)

    def branch(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.se(self.bn1(self.conv_dw(self.space_to_depth(x))))
        return self.bn2(self.conv_pw(x))


class MBConv(_SpaceToDepth, _Residual):
    """MBConv (inverted residual): 1x1 expand to ``mid_chs`` (default ``make_divisible(in_chs *
    expand_ratio)``), k x k depthwise, SE (squeeze width ``se_chs``, default ``int(in_chs *
    se_ratio)`` of the block input width, as the seed), 1x1 linear projection."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size=3, stride: int = 1, expand_ratio: float = 4,
                 se_ratio: float = 0.25, drop_path: float = 0.0, bn_eps: float = 1e-3, bn_momentum: float = 0.1,
                 pad_type: str = "", mid_chs: int | None = None, se_chs: int | None = None, act_layer: str = "silu",
                 exp_kernel_size=1, pw_kernel_size=1, groups: int | None = None, noskip: bool = False,
                 se_layer: str = "se", s2d: int = 0, dw_pad_type: str | None = None, norm_layer: str = "batchnorm",
                 norm_group_size: int | None = None, num_experts: int = 0) -> None:
        super().__init__()
        self._init_residual(in_chs, out_chs, stride, not noskip, drop_path, norm_layer, bn_eps, bn_momentum,
                            norm_group_size)
        width = self._init_s2d(s2d, in_chs, act_layer)
        mid = make_divisible(width * expand_ratio) if mid_chs is None else mid_chs
        se = int(in_chs * se_ratio) if se_chs is None else se_chs
        conv = dict(pad_type=pad_type, num_experts=num_experts)
        self.conv_pw = create_conv2d(width, mid, exp_kernel_size, **conv)
        self.bn1 = self.norm(mid, act_layer)
        self.conv_dw = create_conv2d(mid, mid, kernel_size, stride, mid if groups is None else groups,
                                     pad_type=pad_type if dw_pad_type is None else dw_pad_type, num_experts=num_experts)
        self.bn2 = self.norm(mid, act_layer)
        self.se = make_se(se_layer, mid, se, act_layer)
        self.conv_pwl = create_conv2d(mid, out_chs, pw_kernel_size, **conv)
        self.bn3 = self.norm(out_chs, None)

    def branch(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.bn1(self.conv_pw(self.space_to_depth(x)))
        x = self.se(self.bn2(self.conv_dw(x)))
        return self.bn3(self.conv_pwl(x))


class CondConvMBConv(MBConv):
    """``MBConv`` with CondConv: ``routing_fn`` (Linear, ``in_chs -> num_experts``) of the pooled
    input, through a Sigmoid, mixes each conv's ``num_experts`` kernels per sample."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 3, stride: int = 1, expand_ratio: float = 4,
                 se_ratio: float = 0.25, drop_path: float = 0.0, bn_eps: float = 1e-3, bn_momentum: float = 0.1,
                 pad_type: str = "", num_experts: int = 4, **kwargs) -> None:
        if num_experts < 1:
            raise ValueError(f"CondConvMBConv needs num_experts >= 1, got {num_experts}")
        if kwargs.get("s2d"):
            raise ValueError("CondConvMBConv has no space-to-depth start")
        super().__init__(in_chs, out_chs, kernel_size, stride, expand_ratio, se_ratio, drop_path, bn_eps, bn_momentum,
                         pad_type, num_experts=num_experts, **kwargs)
        self.routing_fn = Linear(in_chs, num_experts)

    def branch(self, x: paddle.Tensor) -> paddle.Tensor:
        routing = F.sigmoid(self.routing_fn(F.adaptive_avg_pool2d(x, 1).flatten(1)))  # [B, num_experts]
        x = self.bn1(self.conv_pw(x, routing))
        x = self.se(self.bn2(self.conv_dw(x, routing)))
        return self.bn3(self.conv_pwl(x, routing))


class FusedMBConv(_Residual):
    """Fused-MBConv (edge residual): the k x k expand conv (to ``mid_chs``, default
    ``make_divisible(in_chs * expand_ratio)``) replaces MBConv's 1x1 expand + depthwise; optional SE;
    1x1 linear projection. (The seed's expansion-1 Fused-MBConv is a single conv: ``ConvBNAct``.)"""

    def __init__(self, in_chs: int, out_chs: int, kernel_size=3, stride: int = 1, expand_ratio: float = 4,
                 se_ratio: float = 0.0, drop_path: float = 0.0, bn_eps: float = 1e-3, bn_momentum: float = 0.1,
                 pad_type: str = "", mid_chs: int | None = None, se_chs: int | None = None, act_layer: str = "silu",
                 pw_kernel_size=1, groups: int = 1, noskip: bool = False, se_layer: str = "se",
                 norm_layer: str = "batchnorm", norm_group_size: int | None = None) -> None:
        super().__init__()
        self._init_residual(in_chs, out_chs, stride, not noskip, drop_path, norm_layer, bn_eps, bn_momentum,
                            norm_group_size)
        mid = make_divisible(in_chs * expand_ratio) if mid_chs is None else mid_chs
        se = int(in_chs * se_ratio) if se_chs is None else se_chs
        self.conv_exp = create_conv2d(in_chs, mid, kernel_size, stride, groups, pad_type=pad_type)
        self.bn1 = self.norm(mid, act_layer)
        self.se = make_se(se_layer, mid, se, act_layer)
        self.conv_pwl = create_conv2d(mid, out_chs, pw_kernel_size, pad_type=pad_type)
        self.bn2 = self.norm(out_chs, None)

    def branch(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.bn2(self.conv_pwl(self.se(self.bn1(self.conv_exp(x)))))
