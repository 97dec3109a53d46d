"""The Vision Transformer's encoder blocks (timm's ``block_fn``), all on tokens ``[B, N, dim]``.

``Block`` (pre-norm, the default), ``ResPostBlock`` (norms after each branch), and the parallel
blocks of ViT-22B, where attention and MLP read the same normalised input through one fused input
projection: ``ParallelScalingBlock`` and its differential-attention variant
``DiffParallelScalingBlock``. All take the same arguments (timm's names), so the model builds
whichever ``block_fn`` names.
"""
from __future__ import annotations

from functools import partial

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from paddle_vit.layers.attention import Attention
from paddle_vit.layers.activations import create_act
from paddle_vit.layers.create_norm import create_norm
from paddle_vit.layers.diff_attention import DiffAttention, add_lambda_params, differential_attention
from paddle_vit.layers.drop_path import DropPath
from paddle_vit.layers.layer_scale import LayerScale
from paddle_vit.layers.linear import Linear
from paddle_vit.layers.mlp import NormFactory, create_mlp


def create_attn(attn_layer: str, dim: int, num_heads: int, qkv_bias: bool, qk_scale: float | None, qk_norm: bool,
                scale_norm: bool, proj_bias: bool, attn_drop: float, proj_drop: float, norm_layer: NormFactory,
                depth: int) -> nn.Layer:
    """timm's ``attn_layer``: ``'attn'`` (``Attention``) or ``'diff'`` (``DiffAttention``)."""
    if attn_layer == "diff":
        return DiffAttention(dim, num_heads, qkv_bias, qk_norm, scale_norm, proj_bias, attn_drop, proj_drop,
                             norm_layer, depth)
    return Attention(dim, num_heads, qkv_bias, qk_scale, proj_drop, attn_drop, qk_norm=qk_norm, scale_norm=scale_norm,
                     proj_bias=proj_bias, norm_layer=norm_layer)


class Block(nn.Layer):
    """Pre-norm encoder block: ``x + ls1(attn(norm1(x)))``, then ``x + ls2(mlp(norm2(x)))``.

    ``init_values`` (LayerScale, ``ls1.gamma``/``ls2.gamma``) off when ``None`` or 0; ``drop`` is
    timm's ``proj_drop``; ``eps`` the norms' epsilon; the other keywords are timm's ``Block``'s.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 qk_scale: float | None = None, drop: float = 0.0, attn_drop: float = 0.0,
                 drop_path: float = 0.0, eps: float = 1e-6, *, qk_norm: bool = False, scale_attn_norm: bool = False,
                 scale_mlp_norm: bool = False, proj_bias: bool = True, init_values: float | None = None,
                 act_layer: str = "gelu", norm_layer: str = "layernorm", mlp_layer: str = "Mlp",
                 attn_layer: str = "attn", depth: int = 0) -> None:
        super().__init__()
        norm = partial(create_norm, norm_layer, eps=eps)
        self.norm1 = norm(dim)
        self.attn = create_attn(attn_layer, dim, num_heads, qkv_bias, qk_scale, qk_norm, scale_attn_norm, proj_bias,
                                attn_drop, drop, norm, depth)
        self.layer_scale = bool(init_values)  # LayerScale off: ls1/ls2 are not even called
        self.ls1 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.drop_path1 = DropPath(drop_path)
        self.norm2 = norm(dim)
        self.mlp = create_mlp(mlp_layer, dim, int(dim * mlp_ratio), act_layer, norm if scale_mlp_norm else None,
                              proj_bias, drop)
        self.ls2 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.drop_path2 = DropPath(drop_path)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.attn(self.norm1(x), return_attn=False)[0]
        x = x + self.drop_path1(self.ls1(y) if self.layer_scale else y)
        y = self.mlp(self.norm2(x))
        return x + self.drop_path2(self.ls2(y) if self.layer_scale else y)


class ResPostBlock(nn.Layer):
    """Post-norm residual block: ``x + norm1(attn(x))``, then ``x + norm2(mlp(x))``; with
    ``init_values`` the two norms' scales start at that value (timm's LayerScale-like init)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 qk_scale: float | None = None, drop: float = 0.0, attn_drop: float = 0.0,
                 drop_path: float = 0.0, eps: float = 1e-6, *, qk_norm: bool = False, scale_attn_norm: bool = False,
                 scale_mlp_norm: bool = False, proj_bias: bool = True, init_values: float | None = None,
                 act_layer: str = "gelu", norm_layer: str = "layernorm", mlp_layer: str = "Mlp",
                 attn_layer: str = "attn", depth: int = 0) -> None:
        super().__init__()
        norm = partial(create_norm, norm_layer, eps=eps)
        self.init_values = init_values
        self.attn = create_attn(attn_layer, dim, num_heads, qkv_bias, qk_scale, qk_norm, scale_attn_norm, proj_bias,
                                attn_drop, drop, norm, depth)
        self.norm1 = norm(dim)
        self.drop_path1 = DropPath(drop_path)
        self.mlp = create_mlp(mlp_layer, dim, int(dim * mlp_ratio), act_layer, norm if scale_mlp_norm else None,
                              proj_bias, drop)
        self.norm2 = norm(dim)
        self.drop_path2 = DropPath(drop_path)

    def init_weights(self) -> None:
        """The norms' scales start at ``init_values`` (called after the model's own init)."""
        if self.init_values is not None:
            for norm in (self.norm1, self.norm2):
                nn.initializer.Constant(self.init_values)(norm.weight)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = x + self.drop_path1(self.norm1(self.attn(x, return_attn=False)[0]))
        return x + self.drop_path2(self.norm2(self.mlp(x)))


class _ParallelBase(nn.Layer):
    """What both parallel blocks share: ``in_norm`` -> ``in_proj`` to ``[mlp, q, k, v]`` (plus
    ``mlp_bias`` when ``in_proj`` has no bias), the MLP's activation and dropout, LayerScale ``ls``
    (on whenever ``init_values`` is not None, as timm) and drop path."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, drop: float, attn_drop: float,
                 drop_path: float, eps: float, qk_norm: bool, init_values: float | None, act_layer: str,
                 norm_layer: str, head_dim: int) -> None:
        super().__init__()
        norm = partial(create_norm, norm_layer, eps=eps)
        self.dim, self.num_heads, self.head_dim = dim, num_heads, head_dim
        self.scale = head_dim ** -0.5
        self.mlp_hidden = int(mlp_ratio * dim)
        self.in_norm = norm(dim)
        self.in_proj = Linear(dim, self.mlp_hidden + 3 * dim, bias_attr=None if qkv_bias else False)
        # the MLP's fc1 bias lives in in_proj's bias when there is one
        self.mlp_bias = None if qkv_bias else self.create_parameter(
            [self.mlp_hidden], default_initializer=nn.initializer.Constant(0.0))
        self.qk_norm = qk_norm
        self.q_norm = norm(head_dim) if qk_norm else nn.Identity()
        self.k_norm = norm(head_dim) if qk_norm else nn.Identity()
        self.attn_drop = nn.Dropout(attn_drop)
        self.mlp_drop = nn.Dropout(drop)
        self.mlp_act = create_act(act_layer)
        self.ls = LayerScale(dim, init_values) if init_values is not None else nn.Identity()
        self.drop_path = DropPath(drop_path)

    def _in(self, x: paddle.Tensor) -> tuple[paddle.Tensor, paddle.Tensor, paddle.Tensor, paddle.Tensor]:
        """``x [B, N, dim]`` -> ``x_mlp [B, N, hidden]`` (activated, dropped), ``q, k, v [B, N, dim]``."""
        x_mlp, q, k, v = paddle.split(self.in_proj(self.in_norm(x)), [self.mlp_hidden, self.dim, self.dim, self.dim],
                                      axis=-1)
        if self.mlp_bias is not None:
            x_mlp = x_mlp + self.mlp_bias
        return self.mlp_drop(self.mlp_act(x_mlp)), q, k, v

    def _heads(self, t: paddle.Tensor, heads: int, width: int, norm: nn.Layer | None = None) -> paddle.Tensor:
        """``[B, N, heads * width]`` -> ``[B, heads, N, width]`` (normalised over ``width`` first with ``qk_norm``)."""
        t = t.reshape([t.shape[0], t.shape[1], heads, width])
        if norm is not None and self.qk_norm:
            t = norm(t)
        return t.transpose([0, 2, 1, 3])


class ParallelScalingBlock(_ParallelBase):
    """ViT-22B's parallel block: ``x + ls(attn_out_proj(attn) + mlp_out_proj(mlp))``, attention
    and MLP on the same ``in_norm(x)`` (timm's names; ``fuse_out_proj`` is not supported)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 qk_scale: float | None = None, drop: float = 0.0, attn_drop: float = 0.0,
                 drop_path: float = 0.0, eps: float = 1e-6, *, qk_norm: bool = False, scale_attn_norm: bool = False,
                 scale_mlp_norm: bool = False, proj_bias: bool = True, init_values: float | None = None,
                 act_layer: str = "gelu", norm_layer: str = "layernorm", mlp_layer: str = "Mlp",
                 attn_layer: str = "attn", depth: int = 0) -> None:
        super().__init__(dim, num_heads, mlp_ratio, qkv_bias, drop, attn_drop, drop_path, eps, qk_norm, init_values,
                         act_layer, norm_layer, dim // num_heads)
        bias = None if proj_bias else False
        self.attn_out_proj = Linear(dim, dim, bias_attr=bias)
        self.mlp_out_proj = Linear(self.mlp_hidden, dim, bias_attr=bias)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        B, N, C = x.shape
        x_mlp, q, k, v = self._in(x)
        q, k = self._heads(q, self.num_heads, self.head_dim, self.q_norm), self._heads(k, self.num_heads, self.head_dim, self.k_norm)
        attn = self.attn_drop(F.softmax(paddle.matmul(q, k, transpose_y=True) * self.scale, axis=-1))
        x_attn = paddle.matmul(attn, self._heads(v, self.num_heads, self.head_dim)).transpose([0, 2, 1, 3]).reshape([B, N, C])
        return x + self.drop_path(self.ls(self.attn_out_proj(x_attn) + self.mlp_out_proj(x_mlp)))


class DiffParallelScalingBlock(_ParallelBase):
    """The parallel block with differential attention (``lambda_*``, ``sub_norm``, see
    ``layers.diff_attention``) and one output projection ``out_proj`` of ``[attn, mlp]``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 qk_scale: float | None = None, drop: float = 0.0, attn_drop: float = 0.0,
                 drop_path: float = 0.0, eps: float = 1e-6, *, qk_norm: bool = False, scale_attn_norm: bool = False,
                 scale_mlp_norm: bool = False, proj_bias: bool = True, init_values: float | None = None,
                 act_layer: str = "gelu", norm_layer: str = "layernorm", mlp_layer: str = "Mlp",
                 attn_layer: str = "attn", depth: int = 0) -> None:
        super().__init__(dim, num_heads, mlp_ratio, qkv_bias, drop, attn_drop, drop_path, eps, qk_norm, init_values,
                         act_layer, norm_layer, dim // num_heads // 2)
        add_lambda_params(self, self.head_dim, depth)
        self.out_proj = Linear(dim + self.mlp_hidden, dim, bias_attr=None if proj_bias else False)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x_mlp, q, k, v = self._in(x)
        H, D = self.num_heads, self.head_dim
        q, k = self._heads(q, 2 * H, D, self.q_norm), self._heads(k, 2 * H, D, self.k_norm)
        x_attn, _ = differential_attention(self, q, k, self._heads(v, H, 2 * D), H, self.scale, self.attn_drop)
        return x + self.drop_path(self.ls(self.out_proj(paddle.concat([x_attn, x_mlp], axis=-1))))


BLOCKS = {"Block": Block, "ResPostBlock": ResPostBlock, "ParallelScalingBlock": ParallelScalingBlock,
          "DiffParallelScalingBlock": DiffParallelScalingBlock}
