"""Differential attention (torch mirror of ``paddle_vit.layers.diff_attention``; timm's names)."""
from __future__ import annotations

from functools import partial
from typing import Callable

import torch
import torch.nn as nn

from paddle_vit.checks import check_tokens
from paddle_vit.vit_arch import diff_lambda_init
from torch_ref.layers.create_norm import RmsNorm, create_norm
from torch_ref.layers.linear import Linear

NormFactory = Callable[[int], nn.Module]


def add_lambda_params(layer: nn.Module, head_dim: int, depth: int) -> None:
    """``lambda_q1, lambda_k1, lambda_q2, lambda_k2`` ``[head_dim]`` ~ N(0, 0.1), ``sub_norm``, ``lambda_init``."""
    for name in ("lambda_q1", "lambda_k1", "lambda_q2", "lambda_k2"):
        setattr(layer, name, nn.Parameter(torch.randn(head_dim) * 0.1))
    layer.sub_norm = RmsNorm(2 * head_dim, eps=1e-5)
    layer.lambda_init = diff_lambda_init(depth)


def differential_attention(layer: nn.Module, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                           num_heads: int, scale: float, attn_drop: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """``q, k [B, 2H, N, D]``, ``v [B, H, N, 2D]`` -> ``(out [B, N, H * 2D], attn [B, H, N, N])``."""
    B, _, N, _ = q.shape
    lam = (torch.exp((layer.lambda_q1 * layer.lambda_k1).sum()) - torch.exp((layer.lambda_q2 * layer.lambda_k2).sum())
           + layer.lambda_init)
    attn = (q @ k.transpose(-2, -1) * scale).softmax(dim=-1)
    attn = attn_drop(attn).reshape(B, num_heads, 2, N, N)
    attn = attn[:, :, 0] - lam * attn[:, :, 1]
    out = layer.sub_norm(attn @ v) * (1.0 - layer.lambda_init)
    return out.transpose(1, 2).reshape(B, N, -1), attn


class DiffAttention(nn.Module):
    """Differential multi-head self-attention over ``[B, N, C]`` (timm's ``DiffAttention``)."""

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
        self.qkv = Linear(embed_dim, embed_dim * 3, bias=qkv_bias)
        self.q_norm = norm_layer(self.head_dim) if qk_norm else nn.Identity()
        self.k_norm = norm_layer(self.head_dim) if qk_norm else nn.Identity()
        self.attn_drop = nn.Dropout(attention_dropout)
        self.norm = norm_layer(embed_dim) if scale_norm else nn.Identity()
        self.proj = Linear(embed_dim, embed_dim, bias=proj_bias)
        self.proj_drop = nn.Dropout(dropout)
        add_lambda_params(self, self.head_dim, depth)

    def forward(self, x: torch.Tensor, return_attn: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x [B, N, C]`` -> ``(out [B, N, C], differential weights [B, H, N, N] or None)``."""
        check_tokens(x, self.embed_dim, "DiffAttention")
        B, N, _ = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q = q.reshape(B, N, 2 * self.num_heads, self.head_dim).transpose(1, 2)
        k = k.reshape(B, N, 2 * self.num_heads, self.head_dim).transpose(1, 2)
        v = v.reshape(B, N, self.num_heads, 2 * self.head_dim).transpose(1, 2)
        q, k = self.q_norm(q), self.k_norm(k)
        out, attn = differential_attention(self, q, k, v, self.num_heads, self.scale, self.attn_drop)
        return self.proj_drop(self.proj(self.norm(out))), attn if return_attn else None
