"""Swin source layouts: timm's (ours) and torchvision's."""
from __future__ import annotations

from paddle_vit.convert.layouts.base import Layout, Rule, register_layout

# Our Swin names are timm 1.0's (layers.N.downsample at the start of stages 1..3, head.fc).
# relative_position_index and attn_mask are rebuilt from the config, never read: they are
# non-persistent in timm 1.0, but older timm and the original Swin code saved them.
SWIN_REBUILT = (r".*\.relative_position_index", r".*\.attn_mask")

register_layout(Layout(
    family="swin", source="timm", rules=(), passthrough=True, ignore=SWIN_REBUILT,
    signature=(r"patch_embed\.proj\.weight", r"layers\.0\.blocks\.0\.attn\.relative_position_bias_table"),
    notes="timm's SwinTransformer (1.0 layout). A checkpoint for another window size would need its "
          "bias tables resized: not supported, it fails as a shape mismatch.",
))

# torchvision: features.0 = patch embedding (conv, permute, norm); features.1/3/5/7 = the blocks of
# stages 0..3; features.2/4/6 = the PatchMerging that starts stages 1..3.
_TV_STAGES = ((1, 0), (3, 1), (5, 2), (7, 3))
_TV_MERGES = ((2, 1), (4, 2), (6, 3))
register_layout(Layout(
    family="swin", source="torchvision",
    rules=(
        Rule(r"features\.0\.0\.(weight|bias)", r"patch_embed.proj.\1"),
        Rule(r"features\.0\.2\.(weight|bias)", r"patch_embed.norm.\1"),
        *(Rule(rf"features\.{f}\.(\d+)\.mlp\.0\.(weight|bias)", rf"layers.{s}.blocks.\1.mlp.fc1.\2")
          for f, s in _TV_STAGES),
        *(Rule(rf"features\.{f}\.(\d+)\.mlp\.3\.(weight|bias)", rf"layers.{s}.blocks.\1.mlp.fc2.\2")
          for f, s in _TV_STAGES),
        # norm1, norm2, attn.qkv (q, k, v packed along dim 0 as timm), attn.proj, the bias table
        *(Rule(rf"features\.{f}\.(\d+)\.((?:norm1|norm2|attn\.qkv|attn\.proj)\.(?:weight|bias)"
               rf"|attn\.relative_position_bias_table)", rf"layers.{s}.blocks.\1.\2")
          for f, s in _TV_STAGES),
        *(Rule(rf"features\.{f}\.(norm\.weight|norm\.bias|reduction\.weight)", rf"layers.{s}.downsample.\1")
          for f, s in _TV_MERGES),
        Rule(r"norm\.(weight|bias)", r"norm.\1"),
        Rule(r"head\.(weight|bias)", r"head.fc.\1"),
    ),
    ignore=SWIN_REBUILT,
    signature=(r"features\.0\.0\.weight", r"features\.1\.0\.attn\.relative_position_bias_table"),
    notes="torchvision.models.swin_t/s/b (v1; the v2 models have other tensors and fail as unmapped "
          "keys). torchvision pads before the cyclic shift and never shrinks a window; timm shifts "
          "first and shrinks windows to small maps. Both agree whenever every stage's map is a "
          "multiple of the window (224 px with window 7: 56, 28, 14, 7), which is where the "
          "converted logits match.",
))



# Our variant -> torchvision's constructor of the same architecture (see layouts.TORCHVISION_NAMES).
TORCHVISION_NAMES = {
    "swin_tiny_patch4_window7_224": "swin_t", "swin_small_patch4_window7_224": "swin_s",
    "swin_base_patch4_window7_224": "swin_b",
}
