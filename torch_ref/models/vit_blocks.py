"""The Vision Transformer's encoder blocks (torch mirror of ``paddle_vit.models.vit_blocks``)."""
from __future__ import annotations

from functools import partial

import torch
import torch.nn as nn

from torch_ref.layers.attention import Attention
from torch_ref.layers.activations import create_act
from torch_ref.layers.create_norm import create_norm
from torch_ref.layers.diff_attention import DiffAttention, add_lambda_params, differential_attention
from torch_ref.layers.drop_path import DropPath
from torch_ref.layers.layer_scale import LayerScale
from torch_ref.layers.linear import Linear
from torch_ref.layers.mlp import NormFactory, create_mlp


def create_attn(attn_layer: str, dim: int, num_heads: int, qkv_bias: bool, qk_scale: float | None, qk_norm: bool,
                scale_norm: bool, proj_bias: bool, attn_drop: float, proj_drop: float, norm_layer: NormFactory,
                depth: int) -> nn.Module:
    """timm's ``attn_layer``: ``'attn'`` (``Attention``) or ``'diff'`` (``DiffAttention``)."""
    if attn_layer == "diff":
        return DiffAttention(dim, num_heads, qkv_bias, qk_norm, scale_norm, proj_bias, attn_drop, proj_drop,
                             norm_layer, depth)
    return Attention(dim, num_heads, qkv_bias, qk_scale, proj_drop, attn_drop, qk_norm=qk_norm, scale_norm=scale_norm,
                     proj_bias=proj_bias, norm_layer=norm_layer)


class Block(nn.Module):
    """Pre-norm encoder block: ``x + ls1(attn(norm1(x)))``, then ``x + ls2(mlp(norm2(x)))``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 qk_scale: float | None = None, drop: float = 0.0, attn_drop: float = 0.0,
                 drop_path: float = 0.0, eps: float = 1e-6, *, qk_norm: bool = False, scale_attn_norm: bool = False,
                 scale_mlp_norm: bool = False, proj_bias: bool = True, init_values: float | None = None,
                 act_layer: str = "gelu", norm_layer: str = "layernorm", mlp_layer: str = "Mlp",
                 attn_layer: str = "attn", depth: int = 0) -> None:
        super().__init__()
        norm = partial(create_norm, norm_layer, eps=eps)
        self.norm1 = norm(dim)
        self.attn = create_attn(attn_layer, dim, num_heads, qkv_bias, qk_scale, qk_norm, scale_attn_norm, proj_bias,
                                attn_drop, drop, norm, depth)
        self.ls1 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.drop_path1 = DropPath(drop_path)
        self.norm2 = norm(dim)
        self.mlp = create_mlp(mlp_layer, dim, int(dim * mlp_ratio), act_layer, norm if scale_mlp_norm else None,
                              proj_bias, drop)
        self.ls2 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.drop_path2 = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path1(self.ls1(self.attn(self.norm1(x), return_attn=False)[0]))
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))


class ResPostBlock(nn.Module):
    """Post-norm residual block: ``x + norm1(attn(x))``, then ``x + norm2(mlp(x))``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 qk_scale: float | None = None, drop: float = 0.0, attn_drop: float = 0.0,
                 drop_path: float = 0.0, eps: float = 1e-6, *, qk_norm: bool = False, scale_attn_norm: bool = False,
                 scale_mlp_norm: bool = False, proj_bias: bool = True, init_values: float | None = None,
                 act_layer: str = "gelu", norm_layer: str = "layernorm", mlp_layer: str = "Mlp",
                 attn_layer: str = "attn", depth: int = 0) -> None:
        super().__init__()
        norm = partial(create_norm, norm_layer, eps=eps)
        self.init_values = init_values
        self.attn = create_attn(attn_layer, dim, num_heads, qkv_bias, qk_scale, qk_norm, scale_attn_norm, proj_bias,
                                attn_drop, drop, norm, depth)
        self.norm1 = norm(dim)
        self.drop_path1 = DropPath(drop_path)
        self.mlp = create_mlp(mlp_layer, dim, int(dim * mlp_ratio), act_layer, norm if scale_mlp_norm else None,
                              proj_bias, drop)
        self.norm2 = norm(dim)
        self.drop_path2 = DropPath(drop_path)

    def init_weights(self) -> None:
        """The norms' scales start at ``init_values`` (called after the model's own init)."""
        if self.init_values is not None:
            for norm in (self.norm1, self.norm2):
                nn.init.constant_(norm.weight, self.init_values)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path1(self.norm1(self.attn(x, return_attn=False)[0]))
        return x + self.drop_path2(self.norm2(self.mlp(x)))


class _ParallelBase(nn.Module):
    """``in_norm`` -> ``in_proj`` to ``[mlp, q, k, v]`` (+ ``mlp_bias``), MLP activation, ``ls``, drop path."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, drop: float, attn_drop: float,
                 drop_path: float, eps: float, qk_norm: bool, init_values: float | None, act_layer: str,
                 norm_layer: str, head_dim: int) -> None:
        super().__init__()
        norm = partial(create_norm, norm_layer, eps=eps)
        self.dim, self.num_heads, self.head_dim = dim, num_heads, head_dim
        self.scale = head_dim ** -0.5
        self.mlp_hidden = int(mlp_ratio * dim)
        self.in_norm = norm(dim)
        self.in_proj = Linear(dim, self.mlp_hidden + 3 * dim, bias=qkv_bias)
        self.mlp_bias = None if qkv_bias else nn.Parameter(torch.zeros(self.mlp_hidden))
        self.q_norm = norm(head_dim) if qk_norm else nn.Identity()
        self.k_norm = norm(head_dim) if qk_norm else nn.Identity()
        self.attn_drop = nn.Dropout(attn_drop)
        self.mlp_drop = nn.Dropout(drop)
        self.mlp_act = create_act(act_layer)
        self.ls = LayerScale(dim, init_values) if init_values is not None else nn.Identity()
        self.drop_path = DropPath(drop_path)

    def _in(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        x_mlp, q, k, v = torch.split(self.in_proj(self.in_norm(x)), [self.mlp_hidden, self.dim, self.dim, self.dim], dim=-1)
        if self.mlp_bias is not None:
            x_mlp = x_mlp + self.mlp_bias
        return self.mlp_drop(self.mlp_act(x_mlp)), q, k, v

    @staticmethod
    def _heads(t: torch.Tensor, heads: int, width: int, norm: nn.Module | None = None) -> torch.Tensor:
        t = t.reshape(t.shape[0], t.shape[1], heads, width)
        if norm is not None:
            t = norm(t)
        return t.transpose(1, 2)


class ParallelScalingBlock(_ParallelBase):
    """ViT-22B's parallel block: ``x + ls(attn_out_proj(attn) + mlp_out_proj(mlp))``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 qk_scale: float | None = None, drop: float = 0.0, attn_drop: float = 0.0,
                 drop_path: float = 0.0, eps: float = 1e-6, *, qk_norm: bool = False, scale_attn_norm: bool = False,
                 scale_mlp_norm: bool = False, proj_bias: bool = True, init_values: float | None = None,
                 act_layer: str = "gelu", norm_layer: str = "layernorm", mlp_layer: str = "Mlp",
                 attn_layer: str = "attn", depth: int = 0) -> None:
        super().__init__(dim, num_heads, mlp_ratio, qkv_bias, drop, attn_drop, drop_path, eps, qk_norm, init_values,
                         act_layer, norm_layer, dim // num_heads)
        self.attn_out_proj = Linear(dim, dim, bias=proj_bias)
        self.mlp_out_proj = Linear(self.mlp_hidden, dim, bias=proj_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        x_mlp, q, k, v = self._in(x)
        q, k = self._heads(q, self.num_heads, self.head_dim, self.q_norm), self._heads(k, self.num_heads, self.head_dim, self.k_norm)
        attn = self.attn_drop((q @ k.transpose(-2, -1) * self.scale).softmax(dim=-1))
        x_attn = (attn @ self._heads(v, self.num_heads, self.head_dim)).transpose(1, 2).reshape(B, N, C)
        return x + self.drop_path(self.ls(self.attn_out_proj(x_attn) + self.mlp_out_proj(x_mlp)))


class DiffParallelScalingBlock(_ParallelBase):
    """The parallel block with differential attention and one output projection ``out_proj``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 qk_scale: float | None = None, drop: float = 0.0, attn_drop: float = 0.0,
                 drop_path: float = 0.0, eps: float = 1e-6, *, qk_norm: bool = False, scale_attn_norm: bool = False,
                 scale_mlp_norm: bool = False, proj_bias: bool = True, init_values: float | None = None,
                 act_layer: str = "gelu", norm_layer: str = "layernorm", mlp_layer: str = "Mlp",
                 attn_layer: str = "attn", depth: int = 0) -> None:
        super().__init__(dim, num_heads, mlp_ratio, qkv_bias, drop, attn_drop, drop_path, eps, qk_norm, init_values,
                         act_layer, norm_layer, dim // num_heads // 2)
        add_lambda_params(self, self.head_dim, depth)
        self.out_proj = Linear(dim + self.mlp_hidden, dim, bias=proj_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_mlp, q, k, v = self._in(x)
        H, D = self.num_heads, self.head_dim
        q, k = self._heads(q, 2 * H, D, self.q_norm), self._heads(k, 2 * H, D, self.k_norm)
        x_attn, _ = differential_attention(self, q, k, self._heads(v, H, 2 * D), H, self.scale, self.attn_drop)
        return x + self.drop_path(self.ls(self.out_proj(torch.cat([x_attn, x_mlp], dim=-1))))


BLOCKS = {"Block": Block, "ResPostBlock": ResPostBlock, "ParallelScalingBlock": ParallelScalingBlock,
          "DiffParallelScalingBlock": DiffParallelScalingBlock}
