"""Image -> patch tokens (torch mirror of ``paddle_vit.layers.patch_embed``)."""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from paddle_vit.checks import check_image, patch_grid
from paddle_vit.vit_arch import dynamic_grid


class PatchEmbed(nn.Module):
    """``[B, in_chans, H, W]`` -> ``[B, N, embed_dim]`` with a Conv2d of kernel = stride = patch
    (``strict_img_size``, ``dynamic_img_pad``, ``bias``, ``norm_layer`` as in ``paddle_vit``)."""

    def __init__(self, img_size: int | Sequence[int] = 224, patch_size: int | Sequence[int] = 16,
                 in_chans: int = 3, embed_dim: int = 768, norm_layer: Callable[[int], nn.Module] | None = None,
                 bias: bool = True, strict_img_size: bool = True, dynamic_img_pad: bool = False) -> None:
        super().__init__()
        self.img_size, self.patch_size, self.grid_size = patch_grid(img_size, patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.in_chans = in_chans
        self.embed_dim = embed_dim
        self.strict_img_size, self.dynamic_img_pad = strict_img_size, dynamic_img_pad
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=self.patch_size, stride=self.patch_size, bias=bias)
        # applied only when given here: SwinPatchEmbed sets a norm of its own and applies it itself
        self.embed_norm = norm_layer is not None
        self.norm = norm_layer(embed_dim) if norm_layer is not None else nn.Identity()

    def dynamic_feat_size(self, height: int, width: int) -> tuple[int, int]:
        """The patch grid ``(gh, gw)`` of an ``H x W`` image."""
        return dynamic_grid(height, width, self.patch_size, self.dynamic_img_pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image(x, self.in_chans, self.img_size if self.strict_img_size else None, "PatchEmbed")
        if not self.strict_img_size:
            gh, gw = self.dynamic_feat_size(x.shape[2], x.shape[3])
            pad_h, pad_w = gh * self.patch_size[0] - x.shape[2], gw * self.patch_size[1] - x.shape[3]
            if pad_h or pad_w:
                x = F.pad(x, (0, pad_w, 0, pad_h))
        x = self.proj(x).flatten(2).transpose(1, 2)  # [B, N, C]
        return self.norm(x) if self.embed_norm else x


def prepend_cls_token(x: torch.Tensor, cls_token: torch.Tensor, pos_embed: torch.Tensor) -> torch.Tensor:
    """``[B, N, C]`` -> ``[B, 1 + N, C]``: class token first, then the position embedding added."""
    return torch.cat([cls_token.expand(x.shape[0], -1, -1), x], dim=1) + pos_embed


class PatchEmbedding(nn.Module):
    """Patches + learnable class token + learnable position embedding + dropout:
    ``[B, C_in, H, W]`` -> ``[B, 1 + N, embed_dim]``."""

    def __init__(self, image_size: int | Sequence[int], patch_size: int | Sequence[int],
                 in_channels: int, embed_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(image_size, patch_size, in_channels, embed_dim)
        self.cls_token = nn.Parameter(torch.empty(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.empty(1, 1 + self.patch_embed.num_patches, embed_dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.pos_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pos_drop(prepend_cls_token(self.patch_embed(x), self.cls_token, self.pos_embed))
