"""Channel and spatial attention on feature maps ``[B, C, H, W]``: SE, global context, ECA and CBAM.

Each returns its input reweighted, same shape: a gate in (0, 1) per channel (SE, ECA, CBAM's
first half) or per position (CBAM's second half), multiplied into ``x``.
"""
from __future__ import annotations

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from paddle_vit.checks import check_image
from paddle_vit.conv_arith import eca_kernel_size
from paddle_vit.layers.activations import create_act


def global_avg_pool(x: paddle.Tensor) -> paddle.Tensor:
    """``[B, C, H, W]`` -> ``[B, C, 1, 1]``, the mean over ``H, W``.

    A pooling op rather than ``x.mean(axis=[2, 3])``: Paddle Inference runs the reduction
    through oneDNN's generic reduce, ~30x slower than its pooling kernel (EfficientNetV2-S,
    batch 8: 39 % of the whole run went to ``mean``).
    """
    return F.adaptive_avg_pool2d(x, 1)


class SqueezeExcitation(nn.Layer):
    """Squeeze-and-Excitation as in EfficientNet (timm's names): global average ->
    1x1 ``conv_reduce`` -> activation -> 1x1 ``conv_expand`` -> Sigmoid gate per channel.

    ``channels`` is the width being gated (an MBConv's expanded width); the squeeze width is
    ``int(in_chs * se_ratio)`` of the *block input* width ``in_chs`` (``channels`` if not given),
    or ``rd_channels`` when given (the MBConv builder computes it as timm does). The activation is
    the block's (SiLU in EfficientNet, ReLU in MixNet's early stages).
    """

    def __init__(self, channels: int, se_ratio: float = 0.25, in_chs: int | None = None,
                 rd_channels: int | None = None, act_layer: str = "silu") -> None:
        super().__init__()
        if rd_channels is None:
            rd_channels = int((channels if in_chs is None else in_chs) * se_ratio)
        if rd_channels < 1:
            raise ValueError(f"squeeze width int({in_chs or channels} * se_ratio={se_ratio}) must be >= 1")
        self.channels = channels
        self.conv_reduce = nn.Conv2D(channels, rd_channels, 1)
        self.act1 = create_act(act_layer)
        self.conv_expand = nn.Conv2D(rd_channels, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        check_image(x, self.channels, None, "SqueezeExcitation")
        s = global_avg_pool(x)
        return x * self.gate(self.conv_expand(self.act1(self.conv_reduce(s))))


class ConvMlp(nn.Layer):
    """``[B, C, H, W]`` -> ``[B, out, H, W]``: 1x1 ``fc1`` -> ``norm`` (LayerNorm over channels) ->
    activation -> 1x1 ``fc2`` (timm's ``ConvMlp`` with ``LayerNorm2d``, as ``GlobalContext`` uses it)."""

    def __init__(self, channels: int, hidden: int, act_layer: str = "relu") -> None:
        super().__init__()
        from paddle_vit.layers.norm_act import LayerNorm2d
        self.fc1 = nn.Conv2D(channels, hidden, 1)
        self.norm = LayerNorm2d(hidden)
        self.act = create_act(act_layer)
        self.fc2 = nn.Conv2D(hidden, channels, 1)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.fc2(self.act(self.norm(self.fc1(x))))


class GlobalContext(nn.Layer):
    """Global-context attention (Cao et al., 2019; timm's ``GlobalContext``, scale fusion): a 1x1
    ``conv_attn`` scores every position, their softmax pools ``x`` to one context vector per
    sample, and ``mlp_scale`` of it gates the channels through a Sigmoid."""

    def __init__(self, channels: int, rd_channels: int, act_layer: str = "relu") -> None:
        super().__init__()
        if rd_channels < 1:
            raise ValueError(f"GlobalContext: rd_channels must be >= 1, got {rd_channels}")
        self.channels = channels
        self.conv_attn = nn.Conv2D(channels, 1, 1)
        self.mlp_scale = ConvMlp(channels, rd_channels, act_layer)
        self.gate = nn.Sigmoid()

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        check_image(x, self.channels, None, "GlobalContext")
        B, C, H, W = x.shape
        attn = F.softmax(self.conv_attn(x).reshape([B, 1, H * W]), axis=-1)           # [B, 1, HW]
        context = paddle.matmul(x.reshape([B, C, H * W]), attn, transpose_y=True)       # [B, C, 1]
        return x * self.gate(self.mlp_scale(context.reshape([B, C, 1, 1])))


class ECA(nn.Layer):
    """Efficient Channel Attention (Wang et al., 2020): global average -> 1-D conv of size ``k``
    across neighbouring channels (no dimensionality reduction) -> Sigmoid gate per channel.
    ``k`` follows ECA-Net's rule from the channel count unless ``kernel_size`` is given."""

    def __init__(self, channels: int, kernel_size: int | None = None, gamma: float = 2.0, beta: float = 1.0) -> None:
        super().__init__()
        k = eca_kernel_size(channels, gamma, beta) if kernel_size is None else kernel_size
        if k < 1 or k % 2 == 0:
            raise ValueError(f"ECA kernel_size must be a positive odd number, got {k}")
        self.channels, self.kernel_size = channels, k
        self.conv = nn.Conv1D(1, 1, k, padding=(k - 1) // 2, bias_attr=False)
        self.gate = nn.Sigmoid()

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        check_image(x, self.channels, None, "ECA")
        b, c = x.shape[0], x.shape[1]
        y = self.conv(global_avg_pool(x).reshape([b, 1, c]))      # [B, 1, C]: channels as a sequence
        return x * self.gate(y).reshape([b, c, 1, 1])


class ChannelAttention(nn.Layer):
    """CBAM's channel half: the shared MLP ``fc1 -> ReLU -> fc2`` (1x1 convs) on the average- and the
    max-pooled descriptor, summed, Sigmoid gate per channel."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        if reduction < 1:
            raise ValueError(f"reduction must be >= 1, got {reduction}")
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Conv2D(channels, hidden, 1, bias_attr=False)
        self.act = nn.ReLU()
        self.fc2 = nn.Conv2D(hidden, channels, 1, bias_attr=False)
        self.gate = nn.Sigmoid()

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        avg = self.fc2(self.act(self.fc1(global_avg_pool(x))))
        mx = self.fc2(self.act(self.fc1(F.adaptive_max_pool2d(x, 1))))
        return x * self.gate(avg + mx)


class SpatialAttention(nn.Layer):
    """CBAM's spatial half: channel-wise mean and max stacked ``[B, 2, H, W]`` (mean first) ->
    ``kernel_size`` conv to one map -> Sigmoid gate per position."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"spatial kernel_size must be a positive odd number, got {kernel_size}")
        self.conv = nn.Conv2D(2, 1, kernel_size, padding=(kernel_size - 1) // 2, bias_attr=False)
        self.gate = nn.Sigmoid()

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        s = paddle.concat([x.mean(axis=1, keepdim=True), x.amax(axis=1, keepdim=True)], axis=1)
        return x * self.gate(self.conv(s))


class CBAM(nn.Layer):
    """Convolutional Block Attention Module (Woo et al., 2018): channel attention, then spatial."""

    def __init__(self, channels: int, reduction: int = 16, spatial_kernel_size: int = 7) -> None:
        super().__init__()
        self.channels = channels
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(spatial_kernel_size)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        check_image(x, self.channels, None, "CBAM")
        return self.spatial(self.channel(x))

