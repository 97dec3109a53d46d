"""Image -> patch tokens, and the seed's PatchEmbedding (tokens + class token + position embedding)."""
from __future__ import annotations

from typing import Sequence

import paddle
import paddle.nn as nn

from paddle_vit.checks import check_image, patch_grid


class PatchEmbed(nn.Layer):
    """``[B, in_chans, H, W]`` -> ``[B, N, embed_dim]`` with a Conv2D of kernel = stride = patch.

    ``N = (H / ph) * (W / pw)``; non-square images and patches are allowed. The image must be
    exactly ``img_size`` (the position embedding of the model depends on the grid).
    """

    def __init__(self, img_size: int | Sequence[int] = 224, patch_size: int | Sequence[int] = 16,
                 in_chans: int = 3, embed_dim: int = 768) -> None:
        super().__init__()
        self.img_size, self.patch_size, self.grid_size = patch_grid(img_size, patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.in_chans = in_chans
        self.embed_dim = embed_dim
        self.proj = nn.Conv2D(in_chans, embed_dim, kernel_size=self.patch_size, stride=self.patch_size)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        check_image(x, self.in_chans, self.img_size, "PatchEmbed")
        x = self.proj(x)  # [B, C, gh, gw]
        return x.flatten(2).transpose([0, 2, 1])  # [B, N, C]


def prepend_cls_token(x: paddle.Tensor, cls_token: paddle.Tensor, pos_embed: paddle.Tensor
                      ) -> paddle.Tensor:
    """``[B, N, C]`` -> ``[B, 1 + N, C]``: class token first, then the position embedding added."""
    cls = cls_token.expand([x.shape[0], -1, -1])
    return paddle.concat([cls, x], axis=1) + pos_embed


class PatchEmbedding(nn.Layer):
    """The seed's patch embedding: patches, a learnable class token, a learnable position
    embedding and dropout. ``[B, C_in, H, W]`` -> ``[B, 1 + N, embed_dim]``.

    (``VisionTransformer`` keeps ``cls_token``/``pos_embed`` at its top level, as timm does,
    and shares ``prepend_cls_token`` with this layer.)
    """

    def __init__(self, image_size: int | Sequence[int], patch_size: int | Sequence[int],
                 in_channels: int, embed_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(image_size, patch_size, in_channels, embed_dim)
        tn = nn.initializer.TruncatedNormal(std=0.02)
        self.cls_token = self.create_parameter([1, 1, embed_dim], default_initializer=tn)
        self.pos_embed = self.create_parameter([1, 1 + self.patch_embed.num_patches, embed_dim],
                                               default_initializer=tn)
        self.pos_drop = nn.Dropout(dropout)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.pos_drop(prepend_cls_token(self.patch_embed(x), self.cls_token, self.pos_embed))
