"""The Vision Transformer's options, checked once, framework-free, for both trees.

Every string option takes timm's names (``act_layer='quick_gelu'``, ``mlp_layer='SwiGLU'``,
``block_fn='ResPostBlock'``, ``attn_layer='diff'``, ...). ``vit_plan`` rejects a value the
family does not support, or a combination timm rejects, with a ``ValueError`` naming the option
and the allowed values, and derives what timm derives from them (prefix tokens, the length of
the position embedding, where the final norm goes, the patch embedding's bias, drop-path rates).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

GLOBAL_POOLS = ("", "token", "avg", "avgmax", "max", "map")
POS_EMBEDS = ("learn", "none")
NORM_LAYERS = ("layernorm", "rmsnorm")
ACT_LAYERS = ("gelu", "gelu_tanh", "quick_gelu", "silu", "relu", "sigmoid")
MLP_LAYERS = ("Mlp", "SwiGLU", "SwiGLUPacked", "GluMlp")
ATTN_LAYERS = ("attn", "diff")
BLOCK_FNS = ("Block", "ResPostBlock", "ParallelScalingBlock", "DiffParallelScalingBlock")
PARALLEL_BLOCKS = ("ParallelScalingBlock", "DiffParallelScalingBlock")
GATED_MLPS = ("SwiGLUPacked", "GluMlp")  # fc1 is split in two halves: the hidden width must be even


def choice(option: str, value: Any, allowed: Sequence[Any]) -> Any:
    """``value`` if it is one of ``allowed``; else a ``ValueError`` naming the option and the allowed values."""
    if value not in allowed:
        raise ValueError(f"{option}={value!r} is not supported; allowed: {list(allowed)}")
    return value


def drop_path_rates(rate: float, depth: int) -> list[float]:
    """Stochastic depth per block, growing linearly from 0 to ``rate`` (timm's rule)."""
    return [rate * i / max(depth - 1, 1) for i in range(depth)]


@dataclass(frozen=True)
class VitPlan:
    """What a ``VisionTransformer``'s options imply (as timm derives it)."""
    num_prefix_tokens: int       # class + distillation + register tokens, in front of the patch tokens
    pos_embed_len: int           # tokens of the learned position embedding (0: no position embedding)
    pos_prefix_tokens: int       # prefix tokens covered by the position embedding (0 with no_embed_class)
    norm: bool                   # final norm on all tokens, before pooling
    fc_norm: bool                # final norm after pooling
    embed_bias: bool             # the patch embedding's conv bias
    mlp_hidden: int              # MLP width of each block
    drop_path: list[float]


def vit_plan(*, num_patches: int, embed_dim: int, depth: int, num_heads: int, mlp_ratio: float, num_classes: int,
             global_pool: str, class_token: bool, reg_tokens: int, no_embed_class: bool, pos_embed: str,
             pre_norm: bool, final_norm: bool, fc_norm: bool | None, embed_bias: bool | None, distilled: bool,
             norm_layer: str, embed_norm_layer: str | None, act_layer: str, mlp_layer: str, attn_layer: str,
             block_fn: str, qk_scale: float | None, scale_attn_norm: bool, scale_mlp_norm: bool, fix_init: bool,
             patch_drop_rate: float, drop_path_rate: float) -> VitPlan:
    """Check a ``VisionTransformer``'s options (see the module doc) and derive its plan."""
    choice("global_pool", global_pool, GLOBAL_POOLS)
    choice("pos_embed", pos_embed, POS_EMBEDS)
    choice("norm_layer", norm_layer, NORM_LAYERS)
    choice("embed_norm_layer", embed_norm_layer, (None,) + NORM_LAYERS)
    choice("act_layer", act_layer, ACT_LAYERS)
    choice("mlp_layer", mlp_layer, MLP_LAYERS)
    choice("attn_layer", attn_layer, ATTN_LAYERS)
    choice("block_fn", block_fn, BLOCK_FNS)
    if depth < 1 or num_classes < 0 or reg_tokens < 0 or num_heads < 1:
        raise ValueError(f"need depth >= 1, num_heads >= 1, num_classes >= 0 and reg_tokens >= 0, got depth={depth}, "
                         f"num_heads={num_heads}, num_classes={num_classes}, reg_tokens={reg_tokens}")
    if not 0.0 <= patch_drop_rate < 1.0:
        raise ValueError(f"patch_drop_rate must be in [0, 1), got {patch_drop_rate}")
    if global_pool == "token" and not class_token:
        raise ValueError("global_pool='token' needs class_token=True; without a class token use global_pool in "
                         f"{[p for p in GLOBAL_POOLS if p != 'token']}")
    if distilled and (not class_token or global_pool != "token" or reg_tokens or no_embed_class or pos_embed != "learn"):
        raise ValueError("distilled=True (DeiT's distillation token and head) needs class_token=True, "
                         "global_pool='token', reg_tokens=0, no_embed_class=False and pos_embed='learn', got "
                         f"class_token={class_token}, global_pool={global_pool!r}, reg_tokens={reg_tokens}, "
                         f"no_embed_class={no_embed_class}, pos_embed={pos_embed!r}")
    if block_fn in PARALLEL_BLOCKS:
        if scale_attn_norm or scale_mlp_norm:
            raise ValueError(f"block_fn={block_fn!r} has no scale norms: needs scale_attn_norm=False and scale_mlp_norm=False")
        if mlp_layer != "Mlp" or attn_layer != "attn":
            raise ValueError(f"block_fn={block_fn!r} builds its own attention and MLP: needs mlp_layer='Mlp' and "
                             f"attn_layer='attn', got mlp_layer={mlp_layer!r}, attn_layer={attn_layer!r}")
    if block_fn in PARALLEL_BLOCKS or attn_layer == "diff":
        if embed_dim % num_heads:
            raise ValueError(f"block_fn={block_fn!r} / attn_layer={attn_layer!r} needs embed_dim ({embed_dim}) "
                             f"divisible by num_heads ({num_heads})")
    if block_fn in PARALLEL_BLOCKS and fix_init:
        raise ValueError(f"fix_init=True rescales attn.proj and mlp.fc2, which block_fn={block_fn!r} does not have")
    differential = attn_layer == "diff" or block_fn == "DiffParallelScalingBlock"
    if qk_scale is not None and (differential or block_fn in PARALLEL_BLOCKS):
        raise ValueError(f"qk_scale is supported with attn_layer='attn' in block_fn 'Block' or 'ResPostBlock' only, "
                         f"got attn_layer={attn_layer!r}, block_fn={block_fn!r}")
    if differential and embed_dim % (2 * num_heads):
        raise ValueError(f"differential attention splits each head in two: needs embed_dim ({embed_dim}) divisible "
                         f"by 2 * num_heads ({2 * num_heads})")
    mlp_hidden = int(embed_dim * mlp_ratio)
    if mlp_layer in GATED_MLPS and mlp_hidden % 2:
        raise ValueError(f"mlp_layer={mlp_layer!r} splits fc1 in two halves: needs an even hidden width, got "
                         f"int({embed_dim} * mlp_ratio={mlp_ratio}) = {mlp_hidden}")
    num_prefix = 2 if distilled else int(class_token) + reg_tokens
    use_fc_norm = global_pool in ("avg", "avgmax", "max") if fc_norm is None else bool(fc_norm)
    pos_len = 0 if pos_embed == "none" else num_patches + (0 if no_embed_class else num_prefix)
    return VitPlan(num_prefix_tokens=num_prefix, pos_embed_len=pos_len,
                   pos_prefix_tokens=0 if no_embed_class else num_prefix,
                   norm=final_norm and not use_fc_norm, fc_norm=final_norm and use_fc_norm,
                   embed_bias=(not pre_norm) if embed_bias is None else bool(embed_bias),
                   mlp_hidden=mlp_hidden, drop_path=drop_path_rates(drop_path_rate, depth))


def diff_lambda_init(depth_index: int) -> float:
    """Differential attention's ``lambda_init`` for the block at ``depth_index`` (0-based), as timm."""
    return 0.8 - 0.6 * math.exp(-0.3 * depth_index)


def dynamic_grid(height: int, width: int, patch: Sequence[int], pad: bool, where: str = "PatchEmbed") -> tuple[int, int]:
    """The patch grid of an image of any size (``dynamic_img_size``): with ``pad`` (``dynamic_img_pad``)
    the image is zero-padded bottom/right to a multiple of the patch, else each side must divide."""
    if pad:
        return -(-height // patch[0]), -(-width // patch[1])
    if height % patch[0] or width % patch[1]:
        raise ValueError(f"{where}: image size ({height}, {width}) is not divisible by the patch size {tuple(patch)}; "
                         "pass dynamic_img_pad=True to pad it")
    return height // patch[0], width // patch[1]
