"""Vision Transformer (Dosovitskiy et al., 2021) with timm's parameter names."""
from __future__ import annotations

from typing import Sequence

import paddle
import paddle.nn as nn

from paddle_vit.layers import Attention, DropPath, Linear, Mlp, PatchEmbed, prepend_cls_token
from paddle_vit.layers.weight_init import init_linear_and_norm
from paddle_vit.registry import register_family


class Block(nn.Layer):
    """Pre-norm encoder block on ``[B, N, dim]``: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 qk_scale: float | None = None, drop: float = 0.0, attn_drop: float = 0.0,
                 drop_path: float = 0.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, epsilon=eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, qk_scale=qk_scale,
                              dropout=drop, attention_dropout=attn_drop)
        self.drop_path1 = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, epsilon=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)
        self.drop_path2 = DropPath(drop_path)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = x + self.drop_path1(self.attn(self.norm1(x), return_attn=False)[0])
        return x + self.drop_path2(self.mlp(self.norm2(x)))


@register_family("vit")
class VisionTransformer(nn.Layer):
    """``[B, in_chans, H, W]`` -> logits ``[B, num_classes]`` (pooled features when ``num_classes=0``).

    ``global_pool='token'`` classifies the class token after the final norm; ``'avg'`` averages
    the patch tokens and normalises them with ``fc_norm`` (timm's rule for the two).
    """

    def __init__(self, img_size: int | Sequence[int] = 224, patch_size: int | Sequence[int] = 16,
                 in_chans: int = 3, num_classes: int = 1000, global_pool: str = "token",
                 embed_dim: int = 768, depth: int = 12, num_heads: int = 12, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, qk_scale: float | None = None, drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        if global_pool not in ("token", "avg"):
            raise ValueError(f"global_pool must be 'token' or 'avg', got {global_pool!r}")
        if depth < 1 or num_classes < 0:
            raise ValueError(f"need depth >= 1 and num_classes >= 0, got depth={depth}, num_classes={num_classes}")
        self.num_classes = num_classes
        self.global_pool = global_pool
        self.embed_dim = self.num_features = embed_dim
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        self.cls_token = self.create_parameter([1, 1, embed_dim], default_initializer=nn.initializer.Normal(std=1e-6))
        self.pos_embed = self.create_parameter([1, 1 + self.patch_embed.num_patches, embed_dim],
                                               default_initializer=nn.initializer.TruncatedNormal(std=0.02))
        self.pos_drop = nn.Dropout(drop_rate)
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]  # linear 0 -> rate
        self.blocks = nn.LayerList([
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, qk_scale, drop_rate, attn_drop_rate, r)
            for r in rates])
        use_fc_norm = global_pool == "avg"
        self.norm = nn.Identity() if use_fc_norm else nn.LayerNorm(embed_dim, epsilon=1e-6)
        self.fc_norm = nn.LayerNorm(embed_dim, epsilon=1e-6) if use_fc_norm else nn.Identity()
        self.head_drop = nn.Dropout(drop_rate)
        self.head = Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        init_linear_and_norm(self)

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        """``[B, C, H, W]`` -> all tokens after the final norm ``[B, 1 + N, embed_dim]``."""
        x = self.pos_drop(prepend_cls_token(self.patch_embed(x), self.cls_token, self.pos_embed))
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def forward_head(self, x: paddle.Tensor, pre_logits: bool = False) -> paddle.Tensor:
        """Tokens ``[B, 1 + N, C]`` -> logits ``[B, num_classes]`` (pooled ``[B, C]`` if ``pre_logits``)."""
        x = x[:, 1:].mean(axis=1) if self.global_pool == "avg" else x[:, 0]
        x = self.head_drop(self.fc_norm(x))
        return x if pre_logits else self.head(x)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.forward_head(self.forward_features(x))
