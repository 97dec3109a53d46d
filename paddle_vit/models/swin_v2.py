"""Swin Transformer V2 (Liu et al., 2022) with timm 1.0's structure and parameter names.

What changes from V1 (``paddle_vit.models.swin``, whose window machinery, patch embedding and head
are reused): scaled cosine attention (``cos(q, k) * exp(min(logit_scale, log 100))``, a learned
scale per head) instead of ``q k^T / sqrt(d)``; a continuous position bias ``16 * sigmoid(cpb_mlp(c))``
from a small MLP over log-spaced relative coordinates (``swin_tables.log_relative_coords``,
normalised by ``pretrained_window_size`` where a checkpoint was trained at another window)
instead of a learned table; the post-norm residual ``x + norm(f(x))``; patch merging that reduces
first and normalises after. q and v have biases, k has none (timm's ``q_bias``, ``v_bias`` and a
zero, non-persistable ``k_bias``).
"""
from __future__ import annotations

import math
from typing import Sequence

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from paddle_vit import swin_tables
from paddle_vit.checks import check_map, to_2tuple
from paddle_vit.layers import DropPath, Linear, Mlp
from paddle_vit.layers.attention import token_major
from paddle_vit.layers.weight_init import init_linear_and_norm
from paddle_vit.models.swin import (ClassifierHead, ShiftedWindows, SwinPatchEmbed, check_window_input,
                                    merge_neighbours, window_rule_conflicts)
from paddle_vit.registry import register_family

# timm and torchvision clamp the learned log-scale at log(1 / 0.01): the logits of a head are at most 100 * cos.
LOGIT_SCALE_MAX = math.log(1.0 / 0.01)
NORMALIZE_EPS = 1e-12  # F.normalize's: a zero vector stays zero


class WindowAttention(nn.Layer):
    """Scaled cosine attention inside each window plus the continuous relative position bias.

    ``[B * nW, N, C]`` -> ``[B * nW, N, C]`` (``N = Mh * Mw``); ``head_dim = dim // num_heads``.
    """

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
        self.logit_scale = self.create_parameter(
            [num_heads, 1, 1], default_initializer=nn.initializer.Constant(math.log(10.0)))
        self.cpb_mlp = nn.Sequential(Linear(2, 512), nn.ReLU(), Linear(512, num_heads, bias_attr=False))
        self.qkv = Linear(dim, dim * 3, bias_attr=False)
        if qkv_bias:
            zeros = nn.initializer.Constant(0.0)
            self.q_bias = self.create_parameter([dim], default_initializer=zeros)
            self.register_buffer("k_bias", paddle.zeros([dim]), persistable=False)
            self.v_bias = self.create_parameter([dim], default_initializer=zeros)
        else:
            self.q_bias = self.k_bias = self.v_bias = None
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        coords = swin_tables.log_relative_coords(self.window_size, self.pretrained_window_size)
        self.register_buffer("relative_coords_table", paddle.to_tensor(coords), persistable=False)
        index = swin_tables.relative_position_index(self.window_size)
        self.register_buffer("relative_position_index", paddle.to_tensor(index.reshape(-1)), persistable=False)

    def qkv_bias(self) -> paddle.Tensor | None:
        """``[3 * dim]``: ``q_bias``, zeros, ``v_bias`` (or ``None`` without biases)."""
        return None if self.q_bias is None else paddle.concat([self.q_bias, self.k_bias, self.v_bias])

    def logit_scales(self) -> paddle.Tensor:
        """``[num_heads, 1, 1]``: ``exp(min(logit_scale, log 100))``."""
        return paddle.exp(paddle.clip(self.logit_scale, max=LOGIT_SCALE_MAX))

    def relative_position_bias(self) -> paddle.Tensor:
        """``[1, num_heads, N, N]``: ``16 * sigmoid`` of the MLP's table at each token pair's offset."""
        N = self.window_area
        table = 16.0 * F.sigmoid(self.cpb_mlp(self.relative_coords_table).reshape([-1, self.num_heads]))
        bias = paddle.index_select(table, self.relative_position_index, axis=0)   # sigmoid commutes with the gather
        return bias.reshape([N, N, self.num_heads]).transpose([2, 0, 1]).unsqueeze(0)

    def forward(self, x: paddle.Tensor, mask: paddle.Tensor | None = None, return_attn: bool = True
                ) -> tuple[paddle.Tensor, paddle.Tensor | None]:
        """``x [B * nW, N, C]``, ``mask [nW, N, N]`` (additive, or ``None``) ->
        ``(out [B * nW, N, C], attn [B * nW, num_heads, N, N] if return_attn else None)``."""
        check_window_input(x, mask, self.dim, self.window_size, "WindowAttention")
        B_, N, C = x.shape
        H = self.num_heads

        def add_bias_and_mask(logits: paddle.Tensor) -> paddle.Tensor:  # [B_, heads, N, N]
            bias = self.relative_position_bias()
            if mask is None:
                return logits + bias
            logits = logits.reshape([-1, mask.shape[0], H, N, N]) + (bias + mask.unsqueeze(1))
            return logits.reshape([-1, H, N, N])

        if token_major(self.qkv, self.proj):  # hooked sublayers, or a static graph (see token_major)
            # as timm: the biases go into the projection (F.linear), the qkv layer itself is not called
            qkv = F.linear(x, self.qkv.weight, self.qkv_bias())
            q, k, v = qkv.reshape([B_, N, 3, H, self.head_dim]).transpose([2, 0, 3, 1, 4]).unbind(axis=0)
            q = F.normalize(q, axis=-1, epsilon=NORMALIZE_EPS)
            k = F.normalize(k, axis=-1, epsilon=NORMALIZE_EPS)
            logits = paddle.matmul(q, k, transpose_y=True) * self.logit_scales()
            attn = F.softmax(add_bias_and_mask(logits), axis=-1)
            out = paddle.matmul(self.attn_drop(attn), v).transpose([0, 2, 1, 3]).reshape([B_, N, C])
            out = self.proj_drop(self.proj(out))
        else:
            out, attn = cosine_feature_major_attention(x, self.qkv.weight, self.qkv_bias(), self.proj,
                                                       H, self.logit_scales(), self.attn_drop, self.proj_drop,
                                                       add_bias_and_mask)
        return out, attn if return_attn else None


def _channel_norms(t: paddle.Tensor) -> paddle.Tensor:
    """``[B, H, D, N]`` -> ``max(|t|_2 over D, eps)``, ``[B, H, 1, N]``."""
    # clipped before the root (sqrt(max(s, eps^2)) = max(sqrt(s), eps)): sqrt's gradient at 0 is inf
    return t.square().sum(axis=2, keepdim=True).clip(min=NORMALIZE_EPS ** 2).sqrt()


def cosine_feature_major_attention(x: paddle.Tensor, qkv_weight: paddle.Tensor, qkv_bias: paddle.Tensor | None,
                                   proj: nn.Linear, num_heads: int, scales: paddle.Tensor, attn_drop: nn.Layer,
                                   proj_drop: nn.Layer, add_to_logits
                                   ) -> tuple[paddle.Tensor, paddle.Tensor]:
    """Eager CPU path of V2's attention, ``x [B, N, C]`` -> ``(out [B, N, C], attn [B, H, N, N])``:
    the layout of ``paddle_vit.layers.attention.feature_major_attention`` (tokens on the last axis
    of q, k, v, so head splits are free reshapes), with q and k L2-normalised over each head's
    channels and the per-head ``scales [H, 1, 1]`` applied to q rather than to the larger logits."""
    B, N, C = x.shape
    H, D = num_heads, C // num_heads
    qkv_t = paddle.matmul(qkv_weight, x, transpose_x=True, transpose_y=True)   # [B, 3C, N]
    if qkv_bias is not None:
        qkv_t.add_(qkv_bias.unsqueeze(-1))  # in place: matmul's backward does not need its output
    q_t, k_t, v_t = (t.reshape([B, H, D, N]) for t in paddle.split(qkv_t.reshape([B, 3, H, D, N]), 3, axis=1))
    # x / max(|x|, eps) as F.normalize, but as one multiply by a [B, H, 1, N] factor: Paddle's
    # p_norm and broadcast divide over a middle axis took 30 % of the eager pass (Swin V2-T, batch 8)
    q_t = q_t * (scales / _channel_norms(q_t))   # scaled here: [B, H, D, N] < [B, H, N, N]
    k_t = k_t * (1.0 / _channel_norms(k_t))
    logits = paddle.matmul(q_t, k_t, transpose_x=True)                                     # [B, H, N, N]
    attn = F.softmax(add_to_logits(logits), axis=-1)
    out_t = paddle.matmul(v_t, attn_drop(attn), transpose_y=True)                          # [B, H, D, N]
    out = paddle.matmul(out_t.reshape([B, C, N]), proj.weight, transpose_x=True)           # [B, N, C]
    return proj_drop(out.add_(proj.bias)), attn


class SwinTransformerV2Block(ShiftedWindows):
    """``[B, H, W, C]`` -> ``[B, H, W, C]``: post-norm residuals, ``x + norm1(attn(x))`` over the
    (shifted) windows, then ``x + norm2(mlp(x))``. Windows, shift, mask and padding as in V1
    (``paddle_vit.models.swin.ShiftedWindows``)."""

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
        self.norm1 = nn.LayerNorm(dim, epsilon=1e-5)
        self.drop_path1 = DropPath(drop_path)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=proj_drop)
        self.norm2 = nn.LayerNorm(dim, epsilon=1e-5)
        self.drop_path2 = DropPath(drop_path)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        check_map(x, self.input_resolution, self.dim, "SwinTransformerV2Block")
        B, H, W, C = x.shape
        x = x + self.drop_path1(self.norm1(self._attn(x)))
        x = x.reshape([B, H * W, C])
        x = x + self.drop_path2(self.norm2(self.mlp(x)))
        return x.reshape([B, H, W, C])


class PatchMerging(nn.Layer):
    """V2's merging: ``[B, H, W, C]`` -> 2x2 neighbours concatenated (V1's order and odd-side padding)
    -> Linear ``4C -> out_dim`` without bias -> LayerNorm(out_dim): ``[B, ceil(H/2), ceil(W/2), out_dim]``."""

    def __init__(self, dim: int, out_dim: int | None = None,
                 input_resolution: int | Sequence[int] | None = None) -> None:
        super().__init__()
        self.dim = dim
        self.out_dim = out_dim or 2 * dim
        self.input_resolution = None if input_resolution is None else to_2tuple(input_resolution, "input_resolution")
        self.reduction = Linear(4 * dim, self.out_dim, bias_attr=False)
        self.norm = nn.LayerNorm(self.out_dim, epsilon=1e-5)
        order = None if self.input_resolution is None else swin_tables.merge_order(self.input_resolution)
        self.register_buffer("merge_order", None if order is None else paddle.to_tensor(order), persistable=False)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        check_map(x, self.input_resolution, self.dim, "PatchMerging")
        return self.norm(self.reduction(merge_neighbours(x, self.merge_order)))


class SwinTransformerV2Stage(nn.Layer):
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
        self.blocks = nn.LayerList([
            SwinTransformerV2Block(out_dim, self.output_resolution, num_heads, window, 0 if i % 2 == 0 else shift,
                                   mlp_ratio, qkv_bias, proj_drop, attn_drop, rates[i], pretrained_window_size,
                                   window_rule)
            for i in range(depth)])

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.downsample(x)
        for block in self.blocks:
            x = block(x)
        return x


@register_family("swinv2")
class SwinTransformerV2(nn.Layer):
    """``[B, in_chans, H, W]`` -> logits ``[B, num_classes]`` (pooled ``[B, num_features]`` when
    ``num_classes=0``). ``img_size`` may be ``(H, W)``; the input must have exactly that size.
    ``window_size``: an int or ``(h, w)`` for every stage, or one per stage; ``pretrained_window_sizes``:
    one per stage (``None``: all 0, each stage normalising its coordinates by its own window)."""

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
        self.layers = nn.LayerList([
            SwinTransformerV2Stage(dims[max(i - 1, 0)], dims[i], resolutions[max(i - 1, 0)], depths[i],
                                   num_heads[i], windows[i], downsample=i > 0, mlp_ratio=mlp_ratio,
                                   qkv_bias=qkv_bias, proj_drop=proj_drop_rate, attn_drop=attn_drop_rate,
                                   drop_path=rates[i], pretrained_window_size=pretrained[i], window_rule=window_rule)
            for i in range(self.num_layers)])
        self.norm = nn.LayerNorm(self.num_features, epsilon=1e-5)
        self.head = ClassifierHead(self.num_features, num_classes, drop_rate)
        init_linear_and_norm(self)
        zeros = nn.initializer.Constant(0.0)
        for stage in self.layers:  # timm: every block starts as the identity (its post-norms scale by 0)
            for block in stage.blocks:
                for norm in (block.norm1, block.norm2):
                    zeros(norm.weight)
                    zeros(norm.bias)

    def window_rule_conflicts(self, rule: str) -> list[str]:
        """The blocks that would compute differently under window ``rule`` (see ``ShiftedWindows``)."""
        return window_rule_conflicts(self, rule)

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        """``[B, C, H, W]`` -> last stage after the final norm ``[B, H/32, W/32, num_features]``
        (``/32`` for patch 4 and four stages, rounded up)."""
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)

    def forward_head(self, x: paddle.Tensor, pre_logits: bool = False) -> paddle.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.forward_head(self.forward_features(x))
