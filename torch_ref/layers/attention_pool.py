"""Attention pooling with a learned latent query (torch mirror of ``paddle_vit.layers.attention_pool``)."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

from paddle_vit.checks import check_tokens
from torch_ref.layers.linear import Linear
from torch_ref.layers.mlp import Mlp

NormFactory = Callable[[int], nn.Module]


class AttentionPoolLatent(nn.Module):
    """Tokens ``[B, N, C]`` -> pooled ``[B, C]`` (timm's ``AttentionPoolLatent``, its names)."""

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
        self.latent = nn.Parameter(torch.empty(1, latent_len, in_features))
        nn.init.trunc_normal_(self.latent, std=in_features ** -0.5)
        self.q = Linear(in_features, in_features, bias=qkv_bias)
        self.kv = Linear(in_features, in_features * 2, bias=qkv_bias)
        self.proj = Linear(in_features, in_features)
        self.proj_drop = nn.Dropout(drop)
        self.norm = norm_layer(in_features) if norm_layer is not None else nn.Identity()
        self.mlp = Mlp(in_features, int(in_features * mlp_ratio), act_layer=act_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, N, C]`` -> ``[B, C]`` (``[B, latent_len, C]`` when ``pool_type=''``)."""
        check_tokens(x, self.in_features, "AttentionPoolLatent")
        B, N, C = x.shape
        H, D, L = self.num_heads, self.head_dim, self.latent_len
        q = self.q(self.latent).reshape(1, L, H, D).transpose(1, 2)
        k, v = self.kv(x).reshape(B, N, 2, H, D).permute(2, 0, 3, 1, 4).unbind(0)
        attn = (q @ k.transpose(-2, -1) * self.scale).softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, L, C)
        x = self.proj_drop(self.proj(x))
        x = x + self.mlp(self.norm(x))
        if self.pool == "token":
            return x[:, 0]
        return x.mean(dim=1) if self.pool == "avg" else x
