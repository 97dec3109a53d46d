"""Swin Transformer V2 (torch mirror of ``paddle_vit.models.swin_v2``; timm 1.0's structure and names)."""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from paddle_vit import swin_tables
from paddle_vit.checks import check_map, to_2tuple
from torch_ref.layers import DropPath, Linear, Mlp
from torch_ref.layers.weight_init import init_linear_and_norm
from torch_ref.models.swin import (ClassifierHead, ShiftedWindows, SwinPatchEmbed, check_window_input,
                                   merge_neighbours, window_rule_conflicts)
from torch_ref.registry import register_family

LOGIT_SCALE_MAX = math.log(1.0 / 0.01)
NORMALIZE_EPS = 1e-12


class WindowAttention(nn.Module):
    """Scaled cosine attention inside each window plus the continuous relative position bias."""

    def __init__(self, dim: int, window_size: int | Sequence[int], num_heads: int, qkv_bias: bool = True,
                 attn_drop: float = 0.0, proj_drop: float = 0.0,
                 pretrained_window_size: int | Sequence[int] = 0) -> None:
        super().__init__()
        if num_heads < 1 or dim < 1 or dim % num_heads:
            raise ValueError(f"dim must be a positive multiple of num_heads, got dim={dim}, num_heads={num_heads}")
        self.dim = dim
        self.window_size = to_2tuple(window_size, "window_size")
        self.window_area = self.window_size[0] * self.window_size[1]
        self.pretrained_window_size = swin_tables.pair(pretrained_window_size, "pretrained_window_size")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.logit_scale = nn.Parameter(torch.full((num_heads, 1, 1), math.log(10.0)))
        self.cpb_mlp = nn.Sequential(Linear(2, 512), nn.ReLU(), Linear(512, num_heads, bias=False))
        self.qkv = Linear(dim, dim * 3, bias=False)
        if qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.register_buffer("k_bias", torch.zeros(dim), persistent=False)
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias = self.k_bias = self.v_bias = None
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        coords = swin_tables.log_relative_coords(self.window_size, self.pretrained_window_size)
        self.register_buffer("relative_coords_table", torch.from_numpy(coords), persistent=False)
        index = swin_tables.relative_position_index(self.window_size)
        self.register_buffer("relative_position_index", torch.from_numpy(index.reshape(-1)), persistent=False)

    def qkv_bias(self) -> torch.Tensor | None:
        """``[3 * dim]``: ``q_bias``, zeros, ``v_bias`` (or ``None`` without biases)."""
        return None if self.q_bias is None else torch.cat((self.q_bias, self.k_bias, self.v_bias))

    def logit_scales(self) -> torch.Tensor:
        """``[num_heads, 1, 1]``: ``exp(min(logit_scale, log 100))``."""
        return torch.clamp(self.logit_scale, max=LOGIT_SCALE_MAX).exp()

    def relative_position_bias(self) -> torch.Tensor:
        """``[1, num_heads, N, N]``: ``16 * sigmoid`` of the MLP's table at each token pair's offset."""
        N = self.window_area
        table = self.cpb_mlp(self.relative_coords_table).view(-1, self.num_heads)
        bias = table[self.relative_position_index].view(N, N, self.num_heads).permute(2, 0, 1)
        return (16 * torch.sigmoid(bias)).unsqueeze(0)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, return_attn: bool = True
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x [B * nW, N, C]``, ``mask [nW, N, N]`` or ``None`` ->
        ``(out [B * nW, N, C], attn [B * nW, num_heads, N, N] if return_attn else None)``."""
        check_window_input(x, mask, self.dim, self.window_size, "WindowAttention")
        B_, N, C = x.shape
        qkv = F.linear(x, self.qkv.weight, self.qkv_bias())
        q, k, v = qkv.reshape(B_, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        attn = F.normalize(q, dim=-1, eps=NORMALIZE_EPS) @ F.normalize(k, dim=-1, eps=NORMALIZE_EPS).transpose(-2, -1)
        attn = attn * self.logit_scales() + self.relative_position_bias()
        if mask is not None:
            num_win = mask.shape[0]
            attn = attn.view(-1, num_win, self.num_heads, N, N) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, self.num_heads, N, N)
        attn = attn.softmax(dim=-1)
        out = (self.attn_drop(attn) @ v).transpose(1, 2).reshape(B_, N, C)
        return self.proj_drop(self.proj(out)), attn if return_attn else None


class SwinTransformerV2Block(ShiftedWindows):
    """``[B, H, W, C]`` -> ``[B, H, W, C]``: ``x + norm1(attn(x))`` over the (shifted) windows, then
    ``x + norm2(mlp(x))``."""

    def __init__(self, dim: int, input_resolution: int | Sequence[int], num_heads: int,
                 window_size: int | Sequence[int] = 7, shift_size: int | Sequence[int] = 0,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, proj_drop: float = 0.0, attn_drop: float = 0.0,
                 drop_path: float = 0.0, pretrained_window_size: int | Sequence[int] = 0,
                 window_rule: str = "timm") -> None:
        super().__init__()
        self.dim = dim
        self._setup_windows(input_resolution, window_size, shift_size, window_rule)
        self.attn = WindowAttention(dim, self.window_size, num_heads, qkv_bias, attn_drop, proj_drop,
                                    pretrained_window_size)
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.drop_path1 = DropPath(drop_path)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=proj_drop)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.drop_path2 = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_map(x, self.input_resolution, self.dim, "SwinTransformerV2Block")
        B, H, W, C = x.shape
        x = x + self.drop_path1(self.norm1(self._attn(x)))
        x = x.reshape(B, H * W, C)
        x = x + self.drop_path2(self.norm2(self.mlp(x)))
        return x.reshape(B, H, W, C)


class PatchMerging(nn.Module):
    """V2's merging: 2x2 neighbours concatenated -> Linear ``4C -> out_dim`` (no bias) -> LayerNorm(out_dim)."""

    def __init__(self, dim: int, out_dim: int | None = None,
                 input_resolution: int | Sequence[int] | None = None) -> None:
        super().__init__()
        self.dim = dim
        self.out_dim = out_dim or 2 * dim
        self.input_resolution = None if input_resolution is None else to_2tuple(input_resolution, "input_resolution")
        self.reduction = Linear(4 * dim, self.out_dim, bias=False)
        self.norm = nn.LayerNorm(self.out_dim, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_map(x, self.input_resolution, self.dim, "PatchMerging")
        return self.norm(self.reduction(merge_neighbours(x)))


class SwinTransformerV2Stage(nn.Module):
    """One stage: an optional ``PatchMerging`` first, then ``depth`` V2 blocks alternating regular
    and shifted windows. ``[B, H, W, dim]`` -> ``[B, H', W', out_dim]``."""

    def __init__(self, dim: int, out_dim: int, input_resolution: int | Sequence[int], depth: int, num_heads: int,
                 window_size: int | Sequence[int], downsample: bool = False, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, proj_drop: float = 0.0, attn_drop: float = 0.0,
                 drop_path: float | Sequence[float] = 0.0, pretrained_window_size: int | Sequence[int] = 0,
                 window_rule: str = "timm") -> None:
        super().__init__()
        if not downsample and dim != out_dim:
            raise ValueError(f"a stage without downsample keeps its width: dim {dim} != out_dim {out_dim}")
        self.input_resolution = to_2tuple(input_resolution, "input_resolution")
        self.output_resolution = (tuple((r + 1) // 2 for r in self.input_resolution) if downsample
                                  else self.input_resolution)
        window = to_2tuple(window_size, "window_size")
        shift = (window[0] // 2, window[1] // 2)
        rates = list(drop_path) if isinstance(drop_path, (list, tuple)) else [drop_path] * depth
        self.downsample = PatchMerging(dim, out_dim, self.input_resolution) if downsample else nn.Identity()
        self.blocks = nn.ModuleList([
            SwinTransformerV2Block(out_dim, self.output_resolution, num_heads, window, 0 if i % 2 == 0 else shift,
                                   mlp_ratio, qkv_bias, proj_drop, attn_drop, rates[i], pretrained_window_size,
                                   window_rule)
            for i in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        for block in self.blocks:
            x = block(x)
        return x


@register_family("swinv2")
class SwinTransformerV2(nn.Module):
    """``[B, in_chans, H, W]`` -> logits ``[B, num_classes]``; see ``paddle_vit.models.swin_v2``."""

    def __init__(self, img_size: int | Sequence[int] = 224, patch_size: int | Sequence[int] = 4,
                 in_chans: int = 3, num_classes: int = 1000, global_pool: str = "avg",
                 embed_dim: int = 96, depths: Sequence[int] = (2, 2, 6, 2),
                 num_heads: Sequence[int] = (3, 6, 12, 24),
                 window_size: int | Sequence[int] | Sequence[Sequence[int]] = 7, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, drop_rate: float = 0.0, proj_drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0, drop_path_rate: float = 0.1,
                 pretrained_window_sizes: Sequence[int | Sequence[int]] | None = None,
                 window_rule: str = "timm") -> None:
        super().__init__()
        swin_tables.check_config(global_pool, depths, num_heads, num_classes, window_rule)
        self.window_rule = window_rule
        windows = swin_tables.stage_windows(window_size, len(depths))
        pretrained = swin_tables.stage_pretrained_windows(
            (0,) * len(depths) if pretrained_window_sizes is None else pretrained_window_sizes, len(depths))
        self.num_classes = num_classes
        self.global_pool = global_pool
        self.num_layers = len(depths)
        self.embed_dim = embed_dim
        dims = [int(embed_dim * 2 ** i) for i in range(self.num_layers)]
        self.num_features = dims[-1]
        self.patch_embed = SwinPatchEmbed(img_size, patch_size, in_chans, embed_dim)
        resolutions = swin_tables.stage_resolutions(self.patch_embed.grid_size, self.num_layers)
        rates = swin_tables.drop_path_rates(drop_path_rate, depths)
        self.layers = nn.ModuleList([
            SwinTransformerV2Stage(dims[max(i - 1, 0)], dims[i], resolutions[max(i - 1, 0)], depths[i],
                                   num_heads[i], windows[i], downsample=i > 0, mlp_ratio=mlp_ratio,
                                   qkv_bias=qkv_bias, proj_drop=proj_drop_rate, attn_drop=attn_drop_rate,
                                   drop_path=rates[i], pretrained_window_size=pretrained[i], window_rule=window_rule)
            for i in range(self.num_layers)])
        self.norm = nn.LayerNorm(self.num_features, eps=1e-5)
        self.head = ClassifierHead(self.num_features, num_classes, drop_rate)
        init_linear_and_norm(self)
        for stage in self.layers:  # timm: every block starts as the identity (its post-norms scale by 0)
            for block in stage.blocks:
                for norm in (block.norm1, block.norm2):
                    nn.init.zeros_(norm.weight)
                    nn.init.zeros_(norm.bias)

    def window_rule_conflicts(self, rule: str) -> list[str]:
        """The blocks that would compute differently under window ``rule`` (see ``ShiftedWindows``)."""
        return window_rule_conflicts(self, rule)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` -> last stage after the final norm ``[B, h, w, num_features]``."""
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
