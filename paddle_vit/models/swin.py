"""Swin Transformer (Liu et al., 2021) with timm 1.0's structure and parameter names.

Tokens stay channels-last ``[B, H, W, C]`` between blocks. Attention runs inside non-overlapping
``M x M`` windows (``WindowAttention``); every second block rolls the map by ``M // 2`` first so
that windows straddle the previous borders (``SwinTransformerBlock``). Stages 1..3 start with a
``PatchMerging`` (2x2 neighbours -> one token, channels doubled). The window index and shift mask
come from the framework-free ``paddle_vit.swin_tables``.
"""
from __future__ import annotations

from typing import Sequence

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from paddle_vit import swin_tables
from paddle_vit.checks import check_map, check_tokens, to_2tuple
from paddle_vit.layers import DropPath, Linear, Mlp, PatchEmbed
from paddle_vit.layers.attention import feature_major_attention, token_major
from paddle_vit.layers.weight_init import init_linear_and_norm
from paddle_vit.registry import register_family


def window_partition(x: paddle.Tensor, window: Sequence[int]) -> paddle.Tensor:
    """``[B, H, W, C]`` -> ``[B * nW, Mh, Mw, C]``, windows in row-major order per image
    (``H``, ``W`` multiples of the window)."""
    B, H, W, C = x.shape
    mh, mw = window
    x = x.reshape([B, H // mh, mh, W // mw, mw, C]).transpose([0, 1, 3, 2, 4, 5])
    return x.reshape([-1, mh, mw, C])


def window_reverse(windows: paddle.Tensor, window: Sequence[int], H: int, W: int) -> paddle.Tensor:
    """Inverse of ``window_partition``: ``[B * nW, Mh, Mw, C]`` -> ``[B, H, W, C]``."""
    mh, mw = window
    C = windows.shape[-1]
    x = windows.reshape([-1, H // mh, W // mw, mh, mw, C]).transpose([0, 1, 3, 2, 4, 5])
    return x.reshape([-1, H, W, C])


def pad_bottom_right(x: paddle.Tensor, pad_h: int, pad_w: int) -> paddle.Tensor:
    """Zero-pad ``[B, H, W, C]`` to ``[B, H + pad_h, W + pad_w, C]`` at the bottom and right."""
    # Not F.pad: Paddle Inference's oneDNN pad kernel fails on an NHWC map (pads the wrong axes, or
    # raises dnnl::error; found by test_export_swin). Concatenating zeros exports on every backend.
    # A pad longer than the map (torchvision's rule on a map smaller than the window) tiles one row.
    if pad_h:
        zeros = paddle.zeros_like(x[:, :pad_h]) if pad_h <= x.shape[1] else \
            paddle.zeros_like(x[:, :1]).tile([1, pad_h, 1, 1])
        x = paddle.concat([x, zeros], axis=1)
    if pad_w:
        zeros = paddle.zeros_like(x[:, :, :pad_w]) if pad_w <= x.shape[2] else \
            paddle.zeros_like(x[:, :, :1]).tile([1, 1, pad_w, 1])
        x = paddle.concat([x, zeros], axis=2)
    return x


def check_window_input(x: paddle.Tensor, mask: paddle.Tensor | None, dim: int, window: Sequence[int],
                       where: str) -> None:
    """Window attention's input: ``x [B * nW, Mh * Mw, dim]``, ``mask [nW, N, N]`` with ``nW`` dividing
    the batch (or ``None``); else a ValueError naming the expected shape."""
    check_tokens(x, dim, where)
    B_, N, _ = x.shape
    area = window[0] * window[1]
    if N != area:
        raise ValueError(f"{where}: expected {area} tokens per window (window {tuple(window)}), "
                         f"got shape {list(x.shape)}")
    if mask is not None:
        num_win = mask.shape[0]
        if list(mask.shape) != [num_win, N, N] or (isinstance(B_, int) and B_ % num_win):
            raise ValueError(f"{where}: mask must be [num_windows, {N}, {N}] with num_windows "
                             f"dividing the batch {B_}, got {list(mask.shape)}")


class WindowAttention(nn.Layer):
    """Multi-head self-attention inside each window, plus a learned relative position bias.

    ``relative_position_bias_table [(2Mh-1)(2Mw-1), num_heads]`` is indexed by the non-persistable
    buffer ``relative_position_index [N, N]`` (``N = Mh * Mw``).
    """

    def __init__(self, dim: int, num_heads: int, head_dim: int | None = None,
                 window_size: int | Sequence[int] = 7, qkv_bias: bool = True,
                 attn_drop: float = 0.0, proj_drop: float = 0.0) -> None:
        super().__init__()
        if num_heads < 1 or dim < 1:
            raise ValueError(f"need dim >= 1 and num_heads >= 1, got dim={dim}, num_heads={num_heads}")
        self.dim = dim
        self.window_size = to_2tuple(window_size, "window_size")
        self.window_area = self.window_size[0] * self.window_size[1]
        self.num_heads = num_heads
        self.head_dim = head_dim or dim // num_heads
        if self.head_dim < 1:
            raise ValueError(f"dim ({dim}) must be >= num_heads ({num_heads}) when head_dim is not given")
        attn_dim = self.head_dim * num_heads
        self.scale = self.head_dim ** -0.5
        table_rows = (2 * self.window_size[0] - 1) * (2 * self.window_size[1] - 1)
        self.relative_position_bias_table = self.create_parameter(
            [table_rows, num_heads], default_initializer=nn.initializer.TruncatedNormal(std=0.02))
        index = swin_tables.relative_position_index(self.window_size)
        self.register_buffer("relative_position_index", paddle.to_tensor(index.reshape(-1)), persistable=False)
        self.qkv = Linear(dim, attn_dim * 3, bias_attr=None if qkv_bias else False)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = Linear(attn_dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def relative_position_bias(self) -> paddle.Tensor:
        """``[1, num_heads, N, N]``: the table row of each token pair, heads first."""
        N = self.window_area
        bias = paddle.index_select(self.relative_position_bias_table, self.relative_position_index, axis=0)
        return bias.reshape([N, N, self.num_heads]).transpose([2, 0, 1]).unsqueeze(0)

    def forward(self, x: paddle.Tensor, mask: paddle.Tensor | None = None, return_attn: bool = True
                ) -> tuple[paddle.Tensor, paddle.Tensor | None]:
        """``x [B * nW, N, C]``, ``mask [nW, N, N]`` (additive, or ``None``) ->
        ``(out [B * nW, N, C], attn [B * nW, num_heads, N, N] if return_attn else None)``."""
        check_window_input(x, mask, self.dim, self.window_size, "WindowAttention")
        B_, N, _ = x.shape

        def add_bias_and_mask(logits: paddle.Tensor) -> paddle.Tensor:  # [B_, heads, N, N]
            bias = self.relative_position_bias()                                 # [1, heads, N, N]
            if mask is None:
                return logits + bias
            # bias + mask summed first ([nW, heads, N, N], small): one pass over the logits, not two
            logits = logits.reshape([-1, mask.shape[0], self.num_heads, N, N]) + (bias + mask.unsqueeze(1))
            return logits.reshape([-1, self.num_heads, N, N])

        if token_major(self.qkv, self.proj):  # hooked sublayers, or a static graph (see token_major)
            qkv = self.qkv(x).reshape([B_, N, 3, self.num_heads, self.head_dim]).transpose([2, 0, 3, 1, 4])
            q, k, v = qkv.unbind(axis=0)  # each [B_, heads, N, D]
            attn = F.softmax(add_bias_and_mask(paddle.matmul(q * self.scale, k, transpose_y=True)), axis=-1)
            out = paddle.matmul(self.attn_drop(attn), v).transpose([0, 2, 1, 3]).reshape([B_, N, -1])
            out = self.proj_drop(self.proj(out))
        else:
            out, attn = feature_major_attention(x, self.qkv, self.proj, self.num_heads, self.head_dim, self.scale,
                                                self.attn_drop, self.proj_drop, add_bias_and_mask)
        return out, attn if return_attn else None


class ShiftedWindows(nn.Layer):
    """The window machinery of a Swin block (V1 and V2): ``_attn(x)`` runs ``self.attn`` over the
    (shifted) windows of a ``[B, H, W, C]`` map and puts the result back in place.

    ``window_rule='timm'`` (the default; the original Swin's): the map is rolled by ``-shift``,
    padded at the bottom/right to a multiple of the window, attended window by window (with
    ``attn_mask`` keeping rolled-in tokens apart), then cropped and rolled back; a window at least
    as large as the map (per axis) shrinks to it and is not shifted. ``'torchvision'``: padded
    first, then rolled (and back), and a window is never shrunk (``swin_tables.window_and_shift``).
    The two agree wherever the map is a multiple of the window; there, roll + partition (and back)
    is one gather of whole tokens instead: ~8x faster on CPU than Paddle's copy of the 6-D
    transposed view.
    """

    def _setup_windows(self, input_resolution: int | Sequence[int], window_size: int | Sequence[int],
                       shift_size: int | Sequence[int], window_rule: str = "timm") -> None:
        """Sets ``input_resolution``, ``window_size``, ``shift_size`` (as used), ``window_rule``, the
        requested ``target_window``/``target_shift`` and the non-persistable buffers ``attn_mask``,
        ``window_order``, ``window_restore`` (``None`` where not needed)."""
        self.input_resolution = to_2tuple(input_resolution, "input_resolution")
        self.window_rule = window_rule
        self.target_window = swin_tables.pair(window_size, "window_size")
        self.target_shift = swin_tables.pair(shift_size, "shift_size")
        self.window_size, self.shift_size = swin_tables.window_and_shift(
            self.input_resolution, window_size, shift_size, window_rule)
        mask = swin_tables.shift_mask(self.input_resolution, self.window_size, self.shift_size)
        self.register_buffer("attn_mask", None if mask is None else paddle.to_tensor(mask), persistable=False)
        order = swin_tables.window_order(self.input_resolution, self.window_size, self.shift_size)
        self.register_buffer("window_order", None if order is None else paddle.to_tensor(order), persistable=False)
        self.register_buffer("window_restore", None if order is None else
                             paddle.to_tensor(swin_tables.inverse_order(order)), persistable=False)

    def _attn(self, x: paddle.Tensor) -> paddle.Tensor:
        B, H, W, C = x.shape
        if self.window_order is not None:
            windows = paddle.gather(x.reshape([B, H * W, C]), self.window_order, axis=1)
            windows = self.attn(windows.reshape([-1, self.window_size[0] * self.window_size[1], C]),
                                mask=self.attn_mask, return_attn=False)[0]
            return paddle.gather(windows.reshape([B, H * W, C]), self.window_restore, axis=1).reshape([B, H, W, C])
        (sh, sw), (mh, mw) = self.shift_size, self.window_size
        pad_h, pad_w = (mh - H % mh) % mh, (mw - W % mw) % mw
        pad_first = self.window_rule == "torchvision"
        if pad_first and (pad_h or pad_w):
            x = pad_bottom_right(x, pad_h, pad_w)
        if sh or sw:
            x = paddle.roll(x, shifts=(-sh, -sw), axis=(1, 2))
        if not pad_first and (pad_h or pad_w):
            x = pad_bottom_right(x, pad_h, pad_w)
        Hp, Wp = H + pad_h, W + pad_w
        windows = window_partition(x, self.window_size).reshape([-1, mh * mw, C])
        windows = self.attn(windows, mask=self.attn_mask, return_attn=False)[0]
        x = window_reverse(windows.reshape([-1, mh, mw, C]), self.window_size, Hp, Wp)
        if not pad_first:
            x = x[:, :H, :W, :]
        if sh or sw:
            x = paddle.roll(x, shifts=(sh, sw), axis=(1, 2))
        return x[:, :H, :W, :] if pad_first else x


class SwinTransformerBlock(ShiftedWindows):
    """``[B, H, W, C]`` -> ``[B, H, W, C]``: (shifted-)window attention and an MLP, pre-norm, residual
    (``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``); the windows as ``ShiftedWindows`` says."""

    def __init__(self, dim: int, input_resolution: int | Sequence[int], num_heads: int = 4,
                 head_dim: int | None = None, window_size: int | Sequence[int] = 7,
                 shift_size: int | Sequence[int] = 0, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 proj_drop: float = 0.0, attn_drop: float = 0.0, drop_path: float = 0.0,
                 window_rule: str = "timm") -> None:
        super().__init__()
        self.dim = dim
        self._setup_windows(input_resolution, window_size, shift_size, window_rule)
        self.norm1 = nn.LayerNorm(dim, epsilon=1e-5)
        self.attn = WindowAttention(dim, num_heads, head_dim, self.window_size, qkv_bias, attn_drop, proj_drop)
        self.drop_path1 = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, epsilon=1e-5)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=proj_drop)
        self.drop_path2 = DropPath(drop_path)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        check_map(x, self.input_resolution, self.dim, "SwinTransformerBlock")
        B, H, W, C = x.shape
        x = x + self.drop_path1(self._attn(self.norm1(x)))
        x = x.reshape([B, H * W, C])
        x = x + self.drop_path2(self.mlp(self.norm2(x)))
        return x.reshape([B, H, W, C])


def merge_neighbours(x: paddle.Tensor, merge_order: paddle.Tensor | None) -> paddle.Tensor:
    """``[B, H, W, C]`` -> ``[B, ceil(H/2), ceil(W/2), 4C]``: each 2x2 neighbourhood concatenated in
    the order (0,0), (1,0), (0,1), (1,1) (row, column offset); an odd side zero-padded first.
    ``merge_order`` (``swin_tables.merge_order`` of an even map): the same as one token gather."""
    B, H, W, C = x.shape
    if merge_order is not None:
        return paddle.gather(x.reshape([B, H * W, C]), merge_order, axis=1).reshape([B, H // 2, W // 2, 4 * C])
    if H % 2 or W % 2:
        x = pad_bottom_right(x, H % 2, W % 2)
        H, W = H + H % 2, W + W % 2
    # [B, H/2, 2(dy), W/2, 2(dx), C] -> [B, H/2, W/2, dx, dy, C]: dy varies fastest, as timm
    return x.reshape([B, H // 2, 2, W // 2, 2, C]).transpose([0, 1, 3, 4, 2, 5]).reshape([B, H // 2, W // 2, 4 * C])


class PatchMerging(nn.Layer):
    """``[B, H, W, C]`` -> ``[B, ceil(H/2), ceil(W/2), out_dim]``: each 2x2 neighbourhood concatenated
    to 4C in the order (0,0), (1,0), (0,1), (1,1) (row, column offset), LayerNorm, Linear without bias.
    An odd side is zero-padded at the bottom/right first, as timm and torchvision do."""

    def __init__(self, dim: int, out_dim: int | None = None,
                 input_resolution: int | Sequence[int] | None = None) -> None:
        super().__init__()
        self.dim = dim
        self.out_dim = out_dim or 2 * dim
        self.input_resolution = None if input_resolution is None else to_2tuple(input_resolution, "input_resolution")
        self.norm = nn.LayerNorm(4 * dim, epsilon=1e-5)
        self.reduction = Linear(4 * dim, self.out_dim, bias_attr=False)
        # With a known, even resolution the 2x2 concatenation is one gather of whole tokens.
        order = None if self.input_resolution is None else swin_tables.merge_order(self.input_resolution)
        self.register_buffer("merge_order", None if order is None else paddle.to_tensor(order), persistable=False)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        check_map(x, self.input_resolution, self.dim, "PatchMerging")
        return self.reduction(self.norm(merge_neighbours(x, self.merge_order)))


class BasicLayer(nn.Layer):
    """One stage: an optional ``PatchMerging`` (``downsample``, at the start as in timm 1.0), then
    ``depth`` blocks alternating regular and shifted windows. ``[B, H, W, dim]`` -> ``[B, H', W', out_dim]``."""

    def __init__(self, dim: int, out_dim: int, input_resolution: int | Sequence[int], depth: int,
                 downsample: bool = True, num_heads: int = 4, head_dim: int | None = None,
                 window_size: int | Sequence[int] = 7, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 proj_drop: float = 0.0, attn_drop: float = 0.0,
                 drop_path: float | Sequence[float] = 0.0, window_rule: str = "timm") -> None:
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
            SwinTransformerBlock(out_dim, self.output_resolution, num_heads, head_dim, window,
                                 0 if i % 2 == 0 else shift, mlp_ratio, qkv_bias, proj_drop, attn_drop, rates[i],
                                 window_rule)
            for i in range(depth)])

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.downsample(x)
        for block in self.blocks:
            x = block(x)
        return x


def window_rule_conflicts(model: nn.Layer, rule: str) -> list[str]:
    """One line per stage of ``model`` with blocks whose windows compute differently under ``rule``
    than under the model's own ``window_rule`` (a checkpoint whose source computes by ``rule`` would
    not give the source's logits there); ``[]`` where the two rules agree everywhere."""
    if rule == model.window_rule:
        return []
    stages: dict[str, list] = {}
    for name, block in model.named_sublayers():
        if isinstance(block, ShiftedWindows) and swin_tables.rules_differ(
                block.input_resolution, block.target_window, block.target_shift):
            stages.setdefault(name.rpartition(".blocks.")[0], []).append(block)
    return [f"{stage}: map {blocks[0].input_resolution}, window {blocks[0].target_window} ({len(blocks)} block(s)): "
            f"the {rule} rule computes these windows differently from this model's window_rule="
            f"{model.window_rule!r}; pass window_rule={rule!r}, or a window that divides every stage map"
            for stage, blocks in stages.items()]


class SwinPatchEmbed(PatchEmbed):
    """``PatchEmbed`` followed by a LayerNorm, channels-last: ``[B, C_in, H, W]`` -> ``[B, gh, gw, embed_dim]``."""

    def __init__(self, img_size: int | Sequence[int] = 224, patch_size: int | Sequence[int] = 4,
                 in_chans: int = 3, embed_dim: int = 96) -> None:
        super().__init__(img_size, patch_size, in_chans, embed_dim)
        self.norm = nn.LayerNorm(embed_dim, epsilon=1e-5)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        tokens = super().forward(x)  # [B, gh * gw, C], checked against img_size
        return self.norm(tokens.reshape([x.shape[0], self.grid_size[0], self.grid_size[1], self.embed_dim]))


class ClassifierHead(nn.Layer):
    """``[B, H, W, C]`` -> average over H, W -> dropout -> ``fc`` (timm's ``head.fc``)."""

    def __init__(self, in_features: int, num_classes: int, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.drop = nn.Dropout(drop_rate)
        self.fc = Linear(in_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: paddle.Tensor, pre_logits: bool = False) -> paddle.Tensor:
        x = self.drop(x.mean(axis=[1, 2]))
        return x if pre_logits else self.fc(x)


@register_family("swin")
class SwinTransformer(nn.Layer):
    """``[B, in_chans, H, W]`` -> logits ``[B, num_classes]`` (pooled ``[B, num_features]`` when
    ``num_classes=0``). ``img_size`` may be ``(H, W)``; the input must have exactly that size.
    ``window_size``: an int or ``(h, w)`` for every stage, or one per stage (timm's Swin-S3).
    ``window_rule``: ``'timm'`` or ``'torchvision'`` (how windows fit maps they do not divide,
    see ``ShiftedWindows``; torchvision's checkpoints at other sizes need ``'torchvision'``)."""

    def __init__(self, img_size: int | Sequence[int] = 224, patch_size: int | Sequence[int] = 4,
                 in_chans: int = 3, num_classes: int = 1000, global_pool: str = "avg",
                 embed_dim: int = 96, depths: Sequence[int] = (2, 2, 6, 2),
                 num_heads: Sequence[int] = (3, 6, 12, 24), head_dim: int | None = None,
                 window_size: int | Sequence[int] | Sequence[Sequence[int]] = 7, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, drop_rate: float = 0.0, proj_drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0, drop_path_rate: float = 0.1, window_rule: str = "timm") -> None:
        super().__init__()
        swin_tables.check_config(global_pool, depths, num_heads, num_classes, window_rule)
        windows = swin_tables.stage_windows(window_size, len(depths))
        self.window_rule = window_rule
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
            BasicLayer(dims[max(i - 1, 0)], dims[i], resolutions[max(i - 1, 0)], depths[i], downsample=i > 0,
                       num_heads=num_heads[i], head_dim=head_dim, window_size=windows[i],
                       mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, proj_drop=proj_drop_rate,
                       attn_drop=attn_drop_rate, drop_path=rates[i], window_rule=window_rule)
            for i in range(self.num_layers)])
        self.norm = nn.LayerNorm(self.num_features, epsilon=1e-5)
        self.head = ClassifierHead(self.num_features, num_classes, drop_rate)
        init_linear_and_norm(self)

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

