"""ViT source layouts: timm's (ours) and torchvision's."""
from __future__ import annotations

from paddle_vit.convert.layouts.base import POS_EMBED, Layout, Rule, register_layout

register_layout(Layout(
    family="vit", source="timm", passthrough=True,
    rules=(Rule(r"pos_embed", r"pos_embed", POS_EMBED),),
    # any timm ViT: with or without a class token, with any block (blocks.0.attn.qkv or blocks.0.in_proj)
    signature=(r"patch_embed\.proj\.weight", r"blocks\.0\..*"),
    notes="timm's VisionTransformer and DeiT's VisionTransformerDistilled; our names are timm's, so only "
          "pos_embed may need resampling (timm's antialiased bicubic; timm resizes FlexiViT and RADIO "
          "checkpoints bilinearly instead, so those match timm only at their own grid).",
))

register_layout(Layout(
    family="vit", source="torchvision",
    rules=(
        Rule(r"class_token", r"cls_token"),
        Rule(r"conv_proj\.(weight|bias)", r"patch_embed.proj.\1"),
        Rule(r"encoder\.pos_embedding", r"pos_embed", POS_EMBED),
        Rule(r"encoder\.layers\.encoder_layer_(\d+)\.ln_1\.(weight|bias)", r"blocks.\1.norm1.\2"),
        # in_proj packs q, k, v along dim 0 in that order, exactly as timm's qkv does.
        Rule(r"encoder\.layers\.encoder_layer_(\d+)\.self_attention\.in_proj_(weight|bias)", r"blocks.\1.attn.qkv.\2"),
        Rule(r"encoder\.layers\.encoder_layer_(\d+)\.self_attention\.out_proj\.(weight|bias)", r"blocks.\1.attn.proj.\2"),
        Rule(r"encoder\.layers\.encoder_layer_(\d+)\.ln_2\.(weight|bias)", r"blocks.\1.norm2.\2"),
        Rule(r"encoder\.layers\.encoder_layer_(\d+)\.mlp\.(?:0|linear_1)\.(weight|bias)", r"blocks.\1.mlp.fc1.\2"),
        Rule(r"encoder\.layers\.encoder_layer_(\d+)\.mlp\.(?:3|linear_2)\.(weight|bias)", r"blocks.\1.mlp.fc2.\2"),
        Rule(r"encoder\.ln\.(weight|bias)", r"norm.\1"),
        Rule(r"heads\.head\.(weight|bias)", r"head.\1"),
    ),
    signature=(r"conv_proj\.weight", r"encoder\.layers\.encoder_layer_0\..*"),
    notes="torchvision.models.vit_*; LayerNorm eps 1e-6 as ours. heads.pre_logits (representation "
          "layer) is not supported and fails as an unmapped key.",
))



# Our variant -> the torchvision constructor of the same architecture (``torchvision.models.<name>``,
# built with ``image_size`` = the variant's); merged into ``layouts.TORCHVISION_NAMES``.
# timm's vit_large_patch32_224 and vit_huge_patch14_224 default to no head (num_classes=0), torchvision's
# to 1000 classes: under torchvision's own names (the zoo's ALIASES) they build torchvision's tensors.
TORCHVISION_NAMES = {
    "vit_base_patch16_224": "vit_b_16", "vit_base_patch16_384": "vit_b_16",
    "vit_base_patch32_224": "vit_b_32", "vit_base_patch32_384": "vit_b_32",
    "vit_large_patch16_224": "vit_l_16", "vit_large_patch16_384": "vit_l_16",
    **{name: name for name in ("vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32", "vit_h_14")},
}
