"""Channel and spatial attention on ``[B, C, H, W]``: SE, global context, ECA, CBAM
(torch mirror of ``paddle_vit.layers.channel_attention``)."""
from __future__ import annotations

import torch
import torch.nn as nn

from paddle_vit.checks import check_image
from paddle_vit.conv_arith import eca_kernel_size
from torch_ref.layers.activations import create_act


class SqueezeExcitation(nn.Module):
    """Global average -> 1x1 ``conv_reduce`` -> activation -> 1x1 ``conv_expand`` -> Sigmoid gate per
    channel; squeeze width ``rd_channels``, else ``int(in_chs * se_ratio)`` of the block input width."""

    def __init__(self, channels: int, se_ratio: float = 0.25, in_chs: int | None = None,
                 rd_channels: int | None = None, act_layer: str = "silu") -> None:
        super().__init__()
        if rd_channels is None:
            rd_channels = int((channels if in_chs is None else in_chs) * se_ratio)
        if rd_channels < 1:
            raise ValueError(f"squeeze width int({in_chs or channels} * se_ratio={se_ratio}) must be >= 1")
        self.channels = channels
        self.conv_reduce = nn.Conv2d(channels, rd_channels, 1)
        self.act1 = create_act(act_layer)
        self.conv_expand = nn.Conv2d(rd_channels, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image(x, self.channels, None, "SqueezeExcitation")
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.conv_expand(self.act1(self.conv_reduce(s))))


class ConvMlp(nn.Module):
    """1x1 ``fc1`` -> ``norm`` (LayerNorm over channels) -> activation -> 1x1 ``fc2``."""

    def __init__(self, channels: int, hidden: int, act_layer: str = "relu") -> None:
        super().__init__()
        from torch_ref.layers.norm_act import LayerNorm2d
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.norm = LayerNorm2d(hidden)
        self.act = create_act(act_layer)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.norm(self.fc1(x))))


class GlobalContext(nn.Module):
    """Softmax-pooled context through ``mlp_scale`` gates the channels (timm's ``GlobalContext``)."""

    def __init__(self, channels: int, rd_channels: int, act_layer: str = "relu") -> None:
        super().__init__()
        if rd_channels < 1:
            raise ValueError(f"GlobalContext: rd_channels must be >= 1, got {rd_channels}")
        self.channels = channels
        self.conv_attn = nn.Conv2d(channels, 1, 1)
        self.mlp_scale = ConvMlp(channels, rd_channels, act_layer)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image(x, self.channels, None, "GlobalContext")
        B, C, H, W = x.shape
        attn = torch.softmax(self.conv_attn(x).reshape(B, 1, H * W), dim=-1)
        context = x.reshape(B, C, H * W) @ attn.transpose(1, 2)
        return x * self.gate(self.mlp_scale(context.reshape(B, C, 1, 1)))


class ECA(nn.Module):
    """Global average -> 1-D conv of size ``k`` across channels -> Sigmoid gate per channel."""

    def __init__(self, channels: int, kernel_size: int | None = None, gamma: float = 2.0, beta: float = 1.0) -> None:
        super().__init__()
        k = eca_kernel_size(channels, gamma, beta) if kernel_size is None else kernel_size
        if k < 1 or k % 2 == 0:
            raise ValueError(f"ECA kernel_size must be a positive odd number, got {k}")
        self.channels, self.kernel_size = channels, k
        self.conv = nn.Conv1d(1, 1, k, padding=(k - 1) // 2, bias=False)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image(x, self.channels, None, "ECA")
        b, c = x.shape[0], x.shape[1]
        y = self.conv(x.mean((2, 3)).reshape(b, 1, c))
        return x * self.gate(y).reshape(b, c, 1, 1)


class ChannelAttention(nn.Module):
    """CBAM's channel half: shared MLP on average- and max-pooled descriptors, summed, Sigmoid."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        if reduction < 1:
            raise ValueError(f"reduction must be >= 1, got {reduction}")
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=False)
        self.act = nn.ReLU()
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=False)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True))))
        mx = self.fc2(self.act(self.fc1(x.amax((2, 3), keepdim=True))))
        return x * self.gate(avg + mx)


class SpatialAttention(nn.Module):
    """CBAM's spatial half: channel-wise mean and max (mean first) -> conv -> Sigmoid per position."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"spatial kernel_size must be a positive odd number, got {kernel_size}")
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=(kernel_size - 1) // 2, bias=False)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)
        return x * self.gate(self.conv(s))


class CBAM(nn.Module):
    """Channel attention, then spatial attention."""

    def __init__(self, channels: int, reduction: int = 16, spatial_kernel_size: int = 7) -> None:
        super().__init__()
        self.channels = channels
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(spatial_kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image(x, self.channels, None, "CBAM")
        return self.spatial(self.channel(x))
