"""Image -> patch tokens, and the seed's PatchEmbedding (tokens + class token + position embedding)."""
from __future__ import annotations

from typing import Callable, Sequence

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from paddle_vit.checks import check_image, patch_grid
from paddle_vit.vit_arch import dynamic_grid


class PatchEmbed(nn.Layer):
    """``[B, in_chans, H, W]`` -> ``[B, N, embed_dim]`` with a Conv2D of kernel = stride = patch.

    ``N = (H / ph) * (W / pw)``; non-square images and patches are allowed. The image must be
    exactly ``img_size`` (the position embedding of the model depends on the grid) unless
    ``strict_img_size=False`` (timm's ``dynamic_img_size``: any size divisible by the patch, or any
    size at all with ``dynamic_img_pad``, which zero-pads bottom/right). ``bias``: the conv's bias;
    ``norm_layer``: a factory ``dim -> layer`` for a norm of the tokens (timm's ``embed_norm_layer``).
    """

    def __init__(self, img_size: int | Sequence[int] = 224, patch_size: int | Sequence[int] = 16,
                 in_chans: int = 3, embed_dim: int = 768, norm_layer: Callable[[int], nn.Layer] | None = None,
                 bias: bool = True, strict_img_size: bool = True, dynamic_img_pad: bool = False) -> None:
        super().__init__()
        self.img_size, self.patch_size, self.grid_size = patch_grid(img_size, patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.in_chans = in_chans
        self.embed_dim = embed_dim
        self.strict_img_size, self.dynamic_img_pad = strict_img_size, dynamic_img_pad
        self.proj = nn.Conv2D(in_chans, embed_dim, kernel_size=self.patch_size, stride=self.patch_size,
                              bias_attr=None if bias else False)
        # applied only when given here: SwinPatchEmbed sets a norm of its own and applies it itself
        self.embed_norm = norm_layer is not None
        self.norm = norm_layer(embed_dim) if norm_layer is not None else nn.Identity()

    def dynamic_feat_size(self, height: int, width: int) -> tuple[int, int]:
        """The patch grid ``(gh, gw)`` of an ``H x W`` image (see the class doc)."""
        return dynamic_grid(height, width, self.patch_size, self.dynamic_img_pad)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        check_image(x, self.in_chans, self.img_size if self.strict_img_size else None, "PatchEmbed")
        if not self.strict_img_size:
            gh, gw = self.dynamic_feat_size(x.shape[2], x.shape[3])
            pad_h, pad_w = gh * self.patch_size[0] - x.shape[2], gw * self.patch_size[1] - x.shape[3]
            if pad_h or pad_w:
                x = F.pad(x, [0, pad_w, 0, pad_h])
        x = self.proj(x)  # [B, C, gh, gw]
        x = x.flatten(2).transpose([0, 2, 1])  # [B, N, C]
        return self.norm(x) if self.embed_norm else x


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
