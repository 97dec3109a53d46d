"""Multi-head self-attention (torch mirror of ``paddle_vit.layers.attention``)."""
from __future__ import annotations

from functools import partial
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from paddle_vit.checks import check_tokens
from torch_ref.layers.create_norm import create_norm
from torch_ref.layers.linear import Linear

NormFactory = Callable[[int], nn.Module]


class Attention(nn.Module):
    """Multi-head self-attention over tokens ``[B, N, C]``; ``head_dim = int(embed_dim / num_heads)``.
    timm's ``qk_norm``, ``scale_norm`` and ``proj_bias``; ``norm_layer`` a factory ``dim -> module``."""

    def __init__(self, embed_dim: int, num_heads: int, qkv_bias: bool = True,
                 qk_scale: float | None = None, dropout: float = 0.0,
                 attention_dropout: float = 0.0, qk_norm: bool = False, scale_norm: bool = False,
                 proj_bias: bool = True, norm_layer: NormFactory | None = None) -> None:
        super().__init__()
        if num_heads < 1:
            raise ValueError(f"num_heads must be >= 1, got {num_heads}")
        if embed_dim < num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be >= num_heads ({num_heads})")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = int(embed_dim / num_heads)
        self.all_head_dim = self.head_dim * num_heads
        self.scale = self.head_dim ** -0.5 if qk_scale is None else qk_scale
        norm_layer = norm_layer or partial(create_norm, "layernorm")
        self.qkv = Linear(embed_dim, self.all_head_dim * 3, bias=qkv_bias)
        self.q_norm = norm_layer(self.head_dim) if qk_norm else nn.Identity()
        self.k_norm = norm_layer(self.head_dim) if qk_norm else nn.Identity()
        self.attn_drop = nn.Dropout(attention_dropout)
        self.norm = norm_layer(self.all_head_dim) if scale_norm else nn.Identity()
        self.proj = Linear(self.all_head_dim, embed_dim, bias=proj_bias)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, return_attn: bool = True
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x [B, N, C]`` -> ``(out [B, N, C], attn [B, H, N, N] or None)``."""
        check_tokens(x, self.embed_dim, "Attention")
        B, N, _ = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each [B, H, N, D]
        q, k = self.q_norm(q), self.k_norm(k)
        if return_attn:
            attn = (q @ k.transpose(-2, -1) * self.scale).softmax(dim=-1)
            weights = attn
            out = self.attn_drop(attn) @ v
        else:
            weights = None
            p = self.attn_drop.p if self.training else 0.0
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=p, scale=self.scale)
        out = self.norm(out.transpose(1, 2).reshape(B, N, self.all_head_dim))
        return self.proj_drop(self.proj(out)), weights
