"""Multi-head self-attention, as in the seed tutorial's Paddle ``Attention`` class."""
from __future__ import annotations

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from paddle_vit.checks import check_tokens


class Attention(nn.Layer):
    """Multi-head self-attention over tokens ``[B, N, C]``.

    ``head_dim = int(embed_dim / num_heads)``; like the source, ``embed_dim`` need not be
    divisible by ``num_heads`` (``qkv`` then produces ``3 * head_dim * num_heads`` features
    and ``proj`` maps them back to ``embed_dim``).
    """

    def __init__(self, embed_dim: int, num_heads: int, qkv_bias: bool = True,
                 qk_scale: float | None = None, dropout: float = 0.0,
                 attention_dropout: float = 0.0) -> None:
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
        self.qkv = nn.Linear(embed_dim, self.all_head_dim * 3,
                             bias_attr=None if qkv_bias else False)
        self.attn_drop = nn.Dropout(attention_dropout)
        self.proj = nn.Linear(self.all_head_dim, embed_dim)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: paddle.Tensor, return_attn: bool = True
                ) -> tuple[paddle.Tensor, paddle.Tensor | None]:
        """``x [B, N, C]`` -> ``(out [B, N, C], attn [B, H, N, N] or None)``.

        ``return_attn=False`` takes the fused scaled-dot-product kernel and returns
        ``None`` for the weights; both paths compute the same function.
        """
        check_tokens(x, self.embed_dim, "Attention")
        B, N, _ = x.shape
        # [B, N, 3, H, D]: q, k, v are the three chunks of the last axis, as in the source.
        qkv = self.qkv(x).reshape([B, N, 3, self.num_heads, self.head_dim])
        q, k, v = qkv.unbind(axis=2)  # each [B, N, H, D]
        if return_attn:
            q, k, v = (t.transpose([0, 2, 1, 3]) for t in (q, k, v))  # [B, H, N, D]
            attn = F.softmax(paddle.matmul(q, k, transpose_y=True) * self.scale, axis=-1)
            weights = attn
            out = paddle.matmul(self.attn_drop(attn), v).transpose([0, 2, 1, 3])
        else:
            # Paddle's fused kernel takes [B, N, H, D] directly: no transposes needed.
            weights = None
            p = self.attn_drop.p if self.training else 0.0
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=p, training=self.training,
                                                 scale=self.scale)
        out = self.proj_drop(self.proj(out.reshape([B, N, self.all_head_dim])))
        return out, weights
