"""Vision Transformer (torch mirror of ``paddle_vit.models.vit``; timm's names and options)."""
from __future__ import annotations

import math
from functools import partial
from typing import Sequence

import torch
import torch.nn as nn

from paddle_vit.checks import patch_grid
from paddle_vit.vit_arch import BLOCK_FNS, vit_plan
from torch_ref.layers.attention_pool import AttentionPoolLatent
from torch_ref.layers.create_norm import create_norm
from torch_ref.layers.linear import Linear
from torch_ref.layers.patch_dropout import PatchDropout
from torch_ref.layers.patch_embed import PatchEmbed
from torch_ref.layers.pos_embed import resample_pos_embed
from torch_ref.layers.weight_init import init_linear_and_norm
from torch_ref.models.vit_blocks import BLOCKS, Block, DiffParallelScalingBlock, ParallelScalingBlock, ResPostBlock
from torch_ref.registry import register_family

assert tuple(BLOCKS) == BLOCK_FNS
__all__ = ["Block", "DiffParallelScalingBlock", "ParallelScalingBlock", "ResPostBlock", "VisionTransformer"]


@register_family("vit")
class VisionTransformer(nn.Module):
    """``[B, in_chans, H, W]`` -> logits ``[B, num_classes]`` (pooled features when ``num_classes=0``);
    the arguments are ``paddle_vit.models.vit.VisionTransformer``'s (timm's)."""

    def __init__(self, img_size: int | Sequence[int] = 224, patch_size: int | Sequence[int] = 16,
                 in_chans: int = 3, num_classes: int = 1000, global_pool: str = "token",
                 embed_dim: int = 768, depth: int = 12, num_heads: int = 12, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, qk_scale: float | None = None, drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0, drop_path_rate: float = 0.0, *, qk_norm: bool = False,
                 scale_attn_norm: bool = False, scale_mlp_norm: bool = False, proj_bias: bool = True,
                 init_values: float | None = None, class_token: bool = True, pos_embed: str = "learn",
                 no_embed_class: bool = False, reg_tokens: int = 0, pre_norm: bool = False, final_norm: bool = True,
                 fc_norm: bool | None = None, pool_include_prefix: bool = False, dynamic_img_size: bool = False,
                 dynamic_img_pad: bool = False, pos_drop_rate: float = 0.0, patch_drop_rate: float = 0.0,
                 proj_drop_rate: float = 0.0, fix_init: bool = False, embed_bias: bool | None = None,
                 embed_norm_layer: str | None = None, norm_layer: str = "layernorm", norm_eps: float = 1e-6,
                 act_layer: str = "gelu", block_fn: str = "Block", mlp_layer: str = "Mlp", attn_layer: str = "attn",
                 distilled: bool = False) -> None:
        super().__init__()
        norm = partial(create_norm, norm_layer, eps=norm_eps)
        grid = patch_grid(img_size, patch_size)[2]
        plan = vit_plan(num_patches=grid[0] * grid[1], embed_dim=embed_dim, depth=depth, num_heads=num_heads,
                        mlp_ratio=mlp_ratio, num_classes=num_classes, global_pool=global_pool, class_token=class_token,
                        reg_tokens=reg_tokens, no_embed_class=no_embed_class, pos_embed=pos_embed, pre_norm=pre_norm,
                        final_norm=final_norm, fc_norm=fc_norm, embed_bias=embed_bias, distilled=distilled,
                        norm_layer=norm_layer, embed_norm_layer=embed_norm_layer, act_layer=act_layer,
                        mlp_layer=mlp_layer, attn_layer=attn_layer, block_fn=block_fn, qk_scale=qk_scale,
                        scale_attn_norm=scale_attn_norm, scale_mlp_norm=scale_mlp_norm, fix_init=fix_init,
                        patch_drop_rate=patch_drop_rate, drop_path_rate=drop_path_rate)
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim,
                                      norm_layer=partial(create_norm, embed_norm_layer, eps=norm_eps)
                                      if embed_norm_layer else None,
                                      bias=plan.embed_bias,
                                      strict_img_size=not dynamic_img_size, dynamic_img_pad=dynamic_img_pad)
        self.num_classes = num_classes
        self.global_pool = global_pool
        self.embed_dim = self.num_features = embed_dim
        self.num_prefix_tokens = plan.num_prefix_tokens
        self.pos_prefix_tokens = plan.pos_prefix_tokens
        self.num_reg_tokens = reg_tokens
        self.has_class_token = class_token
        self.no_embed_class = no_embed_class
        self.pool_include_prefix = pool_include_prefix
        self.dynamic_img_size = dynamic_img_size
        self.distilled = distilled
        self.distilled_training = False

        self.cls_token = nn.Parameter(torch.empty(1, 1, embed_dim)) if class_token else None
        self.dist_token = nn.Parameter(torch.empty(1, 1, embed_dim)) if distilled else None
        self.reg_token = nn.Parameter(torch.empty(1, reg_tokens, embed_dim)) if reg_tokens else None
        self.pos_embed = nn.Parameter(torch.empty(1, plan.pos_embed_len, embed_dim)) if plan.pos_embed_len else None
        self.pos_drop = nn.Dropout(pos_drop_rate)
        self.patch_drop = PatchDropout(patch_drop_rate, self.num_prefix_tokens) if patch_drop_rate > 0 else None
        self.norm_pre = norm(embed_dim) if pre_norm else None
        block_cls = BLOCKS[block_fn]
        self.blocks = nn.ModuleList([
            block_cls(embed_dim, num_heads, mlp_ratio, qkv_bias, qk_scale, proj_drop_rate, attn_drop_rate, rate,
                      norm_eps, qk_norm=qk_norm, scale_attn_norm=scale_attn_norm, scale_mlp_norm=scale_mlp_norm,
                      proj_bias=proj_bias, init_values=init_values, act_layer=act_layer, norm_layer=norm_layer,
                      mlp_layer=mlp_layer, attn_layer=attn_layer, depth=i)
            for i, rate in enumerate(plan.drop_path)])
        self.norm = norm(embed_dim) if plan.norm else nn.Identity()
        self.attn_pool = (AttentionPoolLatent(embed_dim, num_heads, mlp_ratio, norm_layer=norm, act_layer=act_layer)
                          if global_pool == "map" else None)
        self.fc_norm = norm(embed_dim) if plan.fc_norm else nn.Identity()
        self.head_drop = nn.Dropout(drop_rate)
        self.head = Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        if distilled:
            self.head_dist = Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        for token in (self.cls_token, self.reg_token):
            if token is not None:
                nn.init.normal_(token, std=1e-6)
        for table in (self.dist_token, self.pos_embed):
            if table is not None:
                nn.init.trunc_normal_(table, std=0.02)
        init_linear_and_norm(self)
        for block in self.blocks:
            if isinstance(block, ResPostBlock):
                block.init_weights()
        if fix_init:
            with torch.no_grad():
                for i, block in enumerate(self.blocks):
                    for weight in (block.attn.proj.weight, block.mlp.fc2.weight):
                        weight.div_(math.sqrt(2.0 * (i + 1)))

    def set_distilled_training(self, enable: bool = True) -> None:
        """DeiT distillation: in training, ``forward`` returns ``(head logits, head_dist logits)``."""
        self.distilled_training = enable

    def _pos_embed(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Patch tokens ``[B, N, C]`` -> ``[B, prefix + N, C]`` (see the Paddle twin)."""
        prefix = [t.expand(x.shape[0], -1, -1) for t in (self.cls_token, self.dist_token, self.reg_token)
                  if t is not None]
        if self.pos_embed is None:
            return torch.cat(prefix + [x], dim=1) if prefix else x
        pos_embed = self.pos_embed
        if self.dynamic_img_size:
            grid = self.patch_embed.dynamic_feat_size(height, width)
            pos_embed = resample_pos_embed(pos_embed, grid, self.patch_embed.grid_size, self.pos_prefix_tokens)
        if self.no_embed_class:
            x = x + pos_embed
            return self.pos_drop(torch.cat(prefix + [x], dim=1) if prefix else x)
        x = torch.cat(prefix + [x], dim=1) if prefix else x
        return self.pos_drop(x + pos_embed)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` -> all tokens after the final norm ``[B, prefix + N, embed_dim]``."""
        # plain ints: under torch.jit.trace a size is a tensor, and the resampling weights are numpy's
        height, width = int(x.shape[2]), int(x.shape[3])
        x = self._pos_embed(self.patch_embed(x), height, width)
        if self.patch_drop is not None:
            x = self.patch_drop(x)
        if self.norm_pre is not None:
            x = self.norm_pre(x)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens ``[B, prefix + N, C]`` -> ``[B, C]`` by ``global_pool`` (``''``: unchanged)."""
        if self.attn_pool is not None:
            return self.attn_pool(x if self.pool_include_prefix else x[:, self.num_prefix_tokens:])
        if self.global_pool == "token":
            return x[:, 0]
        if not self.global_pool:
            return x
        x = x if self.pool_include_prefix else x[:, self.num_prefix_tokens:]
        if self.global_pool == "avg":
            return x.mean(dim=1)
        if self.global_pool == "max":
            return x.amax(dim=1)
        return 0.5 * (x.amax(dim=1) + x.mean(dim=1))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Tokens ``[B, prefix + N, C]`` -> logits ``[B, num_classes]`` (pooled ``[B, C]`` if ``pre_logits``)."""
        if self.distilled:
            x, x_dist = self.head_drop(x[:, 0]), self.head_drop(x[:, 1])
            if pre_logits:
                return (x + x_dist) / 2
            x, x_dist = self.head(x), self.head_dist(x_dist)
            if self.distilled_training and self.training:
                return x, x_dist
            return (x + x_dist) / 2
        x = self.head_drop(self.fc_norm(self.pool(x)))
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
