"""Attention pooling with a learned latent query (timm's ``AttentionPoolLatent``, SigLIP's 'map' head)."""
from __future__ import annotations

from typing import Callable

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from paddle_vit.checks import check_tokens
from paddle_vit.layers.linear import Linear
from paddle_vit.layers.mlp import Mlp

NormFactory = Callable[[int], nn.Layer]


class AttentionPoolLatent(nn.Layer):
    """Tokens ``[B, N, C]`` -> pooled ``[B, C]``: ``latent_len`` learned queries (``latent``,
    through ``q``) attend over the tokens (``kv``), then ``proj``, a residual MLP
    (``x + mlp(norm(x))``) and, for ``pool_type='token'``, the first latent."""

    def __init__(self, in_features: int, num_heads: int = 8, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 latent_len: int = 1, norm_layer: NormFactory | None = None, act_layer: str = "gelu",
                 pool_type: str = "token", drop: float = 0.0) -> None:
        super().__init__()
        if in_features % num_heads:
            raise ValueError(f"AttentionPoolLatent needs in_features ({in_features}) divisible by num_heads ({num_heads})")
        if pool_type not in ("token", "avg", ""):
            raise ValueError(f"pool_type={pool_type!r} is not supported; allowed: ['token', 'avg', '']")
        self.in_features, self.num_heads, self.latent_len, self.pool = in_features, num_heads, latent_len, pool_type
        self.head_dim = in_features // num_heads
        self.scale = self.head_dim ** -0.5
        self.latent = self.create_parameter([1, latent_len, in_features],
                                            default_initializer=nn.initializer.TruncatedNormal(std=in_features ** -0.5))
        bias = None if qkv_bias else False
        self.q = Linear(in_features, in_features, bias_attr=bias)
        self.kv = Linear(in_features, in_features * 2, bias_attr=bias)
        self.proj = Linear(in_features, in_features)
        self.proj_drop = nn.Dropout(drop)
        self.norm = norm_layer(in_features) if norm_layer is not None else nn.Identity()
        self.mlp = Mlp(in_features, int(in_features * mlp_ratio), act_layer=act_layer)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        """``x [B, N, C]`` -> ``[B, C]`` (``[B, latent_len, C]`` when ``pool_type=''``)."""
        check_tokens(x, self.in_features, "AttentionPoolLatent")
        B, N, C = x.shape
        H, D, L = self.num_heads, self.head_dim, self.latent_len
        # The query does not depend on the batch: [1, H, L, D], broadcast in the matmuls.
        q = self.q(self.latent).reshape([1, L, H, D]).transpose([0, 2, 1, 3])
        k, v = self.kv(x).reshape([B, N, 2, H, D]).transpose([2, 0, 3, 1, 4]).unbind(axis=0)  # [B, H, N, D]
        attn = F.softmax(paddle.matmul(q, k, transpose_y=True) * self.scale, axis=-1)          # [B, H, L, N]
        x = paddle.matmul(attn, v).transpose([0, 2, 1, 3]).reshape([B, L, C])
        x = self.proj_drop(self.proj(x))
        x = x + self.mlp(self.norm(x))
        if self.pool == "token":
            return x[:, 0]
        return x.mean(axis=1) if self.pool == "avg" else x
