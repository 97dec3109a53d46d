"""Shared by the ViT tests: one variant per option group, the shrunk configuration every ViT test
builds, and random weights that make every ViT tensor matter."""
from __future__ import annotations

from typing import Any

import torch

from harness import randomize_
from paddle_vit.variants import get_variant

# One variant per option group of the ViT family (what the zoo's rows turn on), with the
# overrides that turn on what no pretrained architecture uses.
OPTION_GROUPS: dict[str, tuple[str, dict[str, Any]]] = {
    "plain (augreg)": ("vit_tiny_patch16_224", {}),
    "qkv_bias=False": ("vit_base_patch16_224_miil", {}),
    "LayerScale (DINOv2)": ("vit_small_patch14_dinov2", {}),
    "register tokens, no_embed_class": ("vit_small_patch14_reg4_dinov2", {}),
    "no_embed_class + LayerScale (DeiT III)": ("deit3_small_patch16_224", {}),
    "no class token + map head (SigLIP)": ("vit_base_patch16_siglip_224", {}),
    "map head over the prefix too": ("test_vit3", {}),
    "avg pool, no fc_norm, gelu_tanh (SigLIP gap)": ("vit_base_patch32_siglip_gap_256", {}),
    "avg pool + fc_norm, register tokens": ("vit_medium_patch16_reg4_gap_256", {}),
    "quick_gelu + pre-norm, eps 1e-5, no patch bias (CLIP)": ("vit_base_patch16_clip_quickgelu_224", {}),
    "SwiGLU + RMSNorm + embed norm, no biases (AIMv2)": ("aimv2_large_patch14_224", {}),
    "SwiGLUPacked (DINOv2 giant)": ("vit_giant_patch14_dinov2", {}),
    "distillation token (DeiT)": ("deit_tiny_distilled_patch16_224", {}),
    "dynamic image size": ("test_vit2", {}),
    "no final norm (RADIO)": ("vit_base_patch16_radio_v3", {}),
    "scale norms, class token + avg (BEiT-3)": ("beit3_base_patch16_224", {}),
    "ResPostBlock": ("vit_base_patch16_rpn_224", {}),
    "ParallelScalingBlock": ("vit_pwee_patch16_reg1_gap_256", {}),
    "DiffParallelScalingBlock": ("vit_dpwee_patch16_reg1_gap_256", {}),
    "DiffAttention": ("vit_dwee_patch16_reg1_gap_256", {}),
    "qk_norm, proj_bias=False, avgmax": ("vit_tiny_patch16_224", dict(qk_norm=True, proj_bias=False, global_pool="avgmax")),
    "max pool over the prefix, no pos_embed": ("vit_tiny_patch16_224", dict(global_pool="max", pool_include_prefix=True,
                                                                            pos_embed="none")),
}
GROUP_IDS = list(OPTION_GROUPS)


def shrunk(name: str, **extra: Any) -> dict[str, Any]:
    """Overrides that make any ViT variant cheap: depth <= 2, width 32 with 2 heads, 7 classes and a
    2 x 3 patch grid (non-square; a learned position embedding takes any grid)."""
    kwargs = get_variant(name)[1]
    p = kwargs["patch_size"]
    p = (p, p) if isinstance(p, int) else tuple(p)
    return {"depth": min(2, kwargs["depth"]), "embed_dim": 32, "num_heads": 2, "num_classes": 7,
            "img_size": (2 * p[0], 3 * p[1]), **extra}


def randomize_vit_(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """``randomize_`` (every tensor perturbed: biases != 0, norm scales != 1, tokens and position
    embeddings random), then Linear weights at fan-in scale (``N(0, 1/fan_in)``: pre-activations of
    order 1, where GELU and its tanh approximation, or a wrong activation, differ measurably; at
    timm's 0.02 they are ~0.3 and differ by ~1e-5) and LayerScale gammas in [0.5, 1.5] (near their
    1e-5 init a residual branch would hardly reach the output, and a wrong branch could pass)."""
    randomize_(module, seed)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, m in module.named_modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) / m.weight.shape[1] ** 0.5)
        for name, p in module.named_parameters():
            if name.endswith("gamma"):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
    return module


def norm_eps(module: Any) -> dict[str, float]:
    """Every norm layer's epsilon by module name, in either framework (timm's, torch's and Paddle's
    LayerNorm, RmsNorm): a wrong eps hardly shows in the outputs, so it is compared directly."""
    named = module.named_modules() if hasattr(module, "named_modules") else module.named_sublayers()
    out = {}
    for name, m in named:
        for attr in ("eps", "_epsilon"):
            value = getattr(m, attr, None)
            if isinstance(value, float) and "norm" in type(m).__name__.lower():
                out[name] = value
    return out
