"""Image -> patch tokens (torch mirror of ``paddle_vit.layers.patch_embed``)."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from paddle_vit.checks import check_image, patch_grid


class PatchEmbed(nn.Module):
    """``[B, in_chans, H, W]`` -> ``[B, N, embed_dim]`` with a Conv2d of kernel = stride = patch."""

    def __init__(self, img_size: int | Sequence[int] = 224, patch_size: int | Sequence[int] = 16,
                 in_chans: int = 3, embed_dim: int = 768) -> None:
        super().__init__()
        self.img_size, self.patch_size, self.grid_size = patch_grid(img_size, patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.in_chans = in_chans
        self.embed_dim = embed_dim
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=self.patch_size, stride=self.patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image(x, self.in_chans, self.img_size, "PatchEmbed")
        return self.proj(x).flatten(2).transpose(1, 2)  # [B, N, C]


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
