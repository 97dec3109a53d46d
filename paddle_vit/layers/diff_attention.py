"""Differential attention (Ye et al., 2024, "Differential Transformer"), with timm's names.

Each head's query and key are split in two halves of ``head_dim = dim / heads / 2``; the head's
weights are ``softmax(q1 k1^T s) - lambda * softmax(q2 k2^T s)`` over values of width ``2 head_dim``,
``lambda = exp(lambda_q1 . lambda_k1) - exp(lambda_q2 . lambda_k2) + lambda_init`` (learned; the
init depends on the block's depth), and the output is RMS-normalised (``sub_norm``) and scaled by
``1 - lambda_init``.
"""
from __future__ import annotations

from functools import partial
from typing import Callable

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from paddle_vit.checks import check_tokens
from paddle_vit.layers.create_norm import RmsNorm, create_norm
from paddle_vit.layers.linear import Linear
from paddle_vit.vit_arch import diff_lambda_init

NormFactory = Callable[[int], nn.Layer]


def add_lambda_params(layer: nn.Layer, head_dim: int, depth: int) -> None:
    """``lambda_q1, lambda_k1, lambda_q2, lambda_k2`` ``[head_dim]`` ~ N(0, 0.1), ``sub_norm`` and
    ``lambda_init`` on ``layer`` (timm's names, on the attention module itself)."""
    for name in ("lambda_q1", "lambda_k1", "lambda_q2", "lambda_k2"):
        setattr(layer, name, layer.create_parameter([head_dim], default_initializer=nn.initializer.Normal(0.0, 0.1)))
    layer.sub_norm = RmsNorm(2 * head_dim, eps=1e-5)
    layer.lambda_init = diff_lambda_init(depth)


def differential_attention(layer: nn.Layer, q: paddle.Tensor, k: paddle.Tensor, v: paddle.Tensor,
                           num_heads: int, scale: float, attn_drop: nn.Layer) -> tuple[paddle.Tensor, paddle.Tensor]:
    """``q, k [B, 2H, N, D]``, ``v [B, H, N, 2D]`` -> ``(out [B, N, H * 2D], attn [B, H, N, N])``
    with ``layer``'s lambda parameters and ``sub_norm`` (see ``add_lambda_params``)."""
    B, _, N, _ = q.shape
    lam = (paddle.exp((layer.lambda_q1 * layer.lambda_k1).sum()) - paddle.exp((layer.lambda_q2 * layer.lambda_k2).sum())
           + layer.lambda_init)
    attn = F.softmax(paddle.matmul(q, k, transpose_y=True) * scale, axis=-1)          # [B, 2H, N, N]
    attn = attn_drop(attn).reshape([B, num_heads, 2, N, N])
    attn = attn[:, :, 0] - lam * attn[:, :, 1]                                       # [B, H, N, N]
    out = layer.sub_norm(paddle.matmul(attn, v)) * (1.0 - layer.lambda_init)       # [B, H, N, 2D]
    return out.transpose([0, 2, 1, 3]).reshape([B, N, num_heads * v.shape[-1]]), attn


class DiffAttention(nn.Layer):
    """Differential multi-head self-attention over ``[B, N, C]`` (timm's ``DiffAttention``):
    ``qkv`` -> halves of each head -> two softmax maps, their weighted difference -> ``sub_norm``
    -> ``norm`` (``scale_norm``) -> ``proj``. ``C`` must be divisible by ``2 * num_heads``."""

    def __init__(self, embed_dim: int, num_heads: int = 8, qkv_bias: bool = False, qk_norm: bool = False,
                 scale_norm: bool = False, proj_bias: bool = True, attention_dropout: float = 0.0,
                 dropout: float = 0.0, norm_layer: NormFactory | None = None, depth: int = 0) -> None:
        super().__init__()
        if embed_dim % (2 * num_heads):
            raise ValueError(f"DiffAttention needs embed_dim ({embed_dim}) divisible by 2 * num_heads ({2 * num_heads})")
        norm_layer = norm_layer or partial(create_norm, "rmsnorm")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.head_dim = embed_dim // num_heads // 2
        self.scale = self.head_dim ** -0.5
        self.qk_norm, self.scale_norm = qk_norm, scale_norm
        self.qkv = Linear(embed_dim, embed_dim * 3, bias_attr=None if qkv_bias else False)
        self.q_norm = norm_layer(self.head_dim) if qk_norm else nn.Identity()
        self.k_norm = norm_layer(self.head_dim) if qk_norm else nn.Identity()
        self.attn_drop = nn.Dropout(attention_dropout)
        self.norm = norm_layer(embed_dim) if scale_norm else nn.Identity()
        self.proj = Linear(embed_dim, embed_dim, bias_attr=None if proj_bias else False)
        self.proj_drop = nn.Dropout(dropout)
        add_lambda_params(self, self.head_dim, depth)

    def forward(self, x: paddle.Tensor, return_attn: bool = True) -> tuple[paddle.Tensor, paddle.Tensor | None]:
        """``x [B, N, C]`` -> ``(out [B, N, C], differential weights [B, H, N, N] or None)``."""
        check_tokens(x, self.embed_dim, "DiffAttention")
        B, N, _ = x.shape
        q, k, v = paddle.chunk(self.qkv(x), 3, axis=-1)
        q = q.reshape([B, N, 2 * self.num_heads, self.head_dim]).transpose([0, 2, 1, 3])
        k = k.reshape([B, N, 2 * self.num_heads, self.head_dim]).transpose([0, 2, 1, 3])
        v = v.reshape([B, N, self.num_heads, 2 * self.head_dim]).transpose([0, 2, 1, 3])
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        out, attn = differential_attention(self, q, k, v, self.num_heads, self.scale, self.attn_drop)
        if self.scale_norm:
            out = self.norm(out)
        return self.proj_drop(self.proj(out)), attn if return_attn else None
