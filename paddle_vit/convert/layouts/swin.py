"""Swin source layouts (V1: family ``swin``, V2: family ``swinv2``): timm's (ours) and torchvision's."""
from __future__ import annotations

from paddle_vit.convert.layouts.base import Q_OF_QKV, REL_POS_BIAS, V_OF_QKV, Layout, Rule, register_layout

# Our Swin names are timm 1.0's (layers.N.downsample at the start of stages 1..3, head.fc).
# The index, the masks and V2's coordinate table are rebuilt from the config, never read: they are
# non-persistent in timm 1.0, but older timm, the original Swin code and torchvision save them.
SWIN_REBUILT = (r".*\.relative_position_index", r".*\.attn_mask")
SWIN_V2_REBUILT = SWIN_REBUILT + (r".*\.relative_coords_table",)

register_layout(Layout(
    family="swin", source="timm", passthrough=True, ignore=SWIN_REBUILT,
    rules=(Rule(r"(.*\.relative_position_bias_table)", r"\1", REL_POS_BIAS),),
    signature=(r"patch_embed\.proj\.weight", r"layers\.0\.blocks\.0\.attn\.relative_position_bias_table"),
    notes="timm's SwinTransformer (1.0 layout). A bias table made for another (square) window is resized "
          "for ours as timm's checkpoint filter does (BEiT's geometric grid, bilinear); index and masks "
          "are rebuilt, so a window-7 / 224 checkpoint loads at window 12 / 384.",
))

register_layout(Layout(
    family="swinv2", source="timm", passthrough=True, ignore=SWIN_V2_REBUILT, rules=(),
    signature=(r"patch_embed\.proj\.weight", r"layers\.0\.blocks\.0\.attn\.cpb_mlp\.0\.weight"),
    notes="timm's SwinTransformerV2 (1.0 layout, q_bias/v_bias). Its position bias is an MLP of the "
          "coordinates, so another window or resolution needs no tensor resized: pass the "
          "pretrained_window_sizes the checkpoint was trained with (the 12to16/12to24 variants do).",
))

# torchvision: features.0 = patch embedding (conv, permute, norm); features.1/3/5/7 = the blocks of
# stages 0..3; features.2/4/6 = the PatchMerging that starts stages 1..3.
_TV_STAGES = ((1, 0), (3, 1), (5, 2), (7, 3))
_TV_MERGES = ((2, 1), (4, 2), (6, 3))
# torchvision's attention module also pads, shifts and partitions the map: its output is a map,
# ours is windows, so the layer-by-layer diff compares the blocks around it instead.
_TV_LAYERWISE_SKIP = (r"features\.\d+\.\d+\.attn",)


def _torchvision_rules(attn_tensors: str, v2: bool) -> tuple[Rule, ...]:
    """torchvision's Swin keys -> ours; ``attn_tensors``: the attention tensors that keep their name."""
    rules = [
        Rule(r"features\.0\.0\.(weight|bias)", r"patch_embed.proj.\1"),
        Rule(r"features\.0\.2\.(weight|bias)", r"patch_embed.norm.\1"),
        *(Rule(rf"features\.{f}\.(\d+)\.mlp\.0\.(weight|bias)", rf"layers.{s}.blocks.\1.mlp.fc1.\2")
          for f, s in _TV_STAGES),
        *(Rule(rf"features\.{f}\.(\d+)\.mlp\.3\.(weight|bias)", rf"layers.{s}.blocks.\1.mlp.fc2.\2")
          for f, s in _TV_STAGES),
        *(Rule(rf"features\.{f}\.(\d+)\.((?:norm1|norm2|attn\.proj)\.(?:weight|bias)|{attn_tensors})",
               rf"layers.{s}.blocks.\1.\2") for f, s in _TV_STAGES),
        *(Rule(rf"features\.{f}\.(norm\.weight|norm\.bias|reduction\.weight)", rf"layers.{s}.downsample.\1")
          for f, s in _TV_MERGES),
        Rule(r"norm\.(weight|bias)", r"norm.\1"),
        Rule(r"head\.(weight|bias)", r"head.fc.\1"),
    ]
    if v2:  # q | k | v packed along dim 0, as timm's qkv weight; the k third of the bias is zeroed by torchvision
        rules += [Rule(rf"features\.{f}\.(\d+)\.attn\.qkv\.bias", rf"layers.{s}.blocks.\1.attn.q_bias", Q_OF_QKV,
                       also=((rf"layers.{s}.blocks.\1.attn.v_bias", V_OF_QKV),)) for f, s in _TV_STAGES]
    return tuple(rules)


register_layout(Layout(
    family="swin", source="torchvision",
    # norm1, norm2, attn.qkv (q, k, v packed along dim 0 as timm), attn.proj, the bias table
    rules=(*(Rule(rf"features\.{f}\.(\d+)\.attn\.relative_position_bias_table",
                  rf"layers.{s}.blocks.\1.attn.relative_position_bias_table", REL_POS_BIAS) for f, s in _TV_STAGES),
           *_torchvision_rules(r"attn\.qkv\.(?:weight|bias)", v2=False)),
    ignore=SWIN_REBUILT, layerwise_skip=_TV_LAYERWISE_SKIP, window_rule="torchvision",
    signature=(r"features\.0\.0\.weight", r"features\.1\.0\.attn\.relative_position_bias_table"),
    notes="torchvision.models.swin_t/s/b (V1; swin_v2_* is the swinv2 family). torchvision pads before "
          "the cyclic shift and never shrinks a window; timm shifts first and shrinks windows to small "
          "maps. Both agree wherever every stage's map is a multiple of the window (224 px with window "
          "7: 56, 28, 14, 7); elsewhere pass window_rule='torchvision' (a model computing by timm's rule "
          "there is refused). A bias table for another window is resized as for timm.",
))
register_layout(Layout(
    family="swinv2", source="torchvision",
    rules=_torchvision_rules(r"attn\.qkv\.weight|attn\.logit_scale|attn\.cpb_mlp\.0\.(?:weight|bias)"
                             r"|attn\.cpb_mlp\.2\.weight", v2=True),
    ignore=SWIN_V2_REBUILT, layerwise_skip=_TV_LAYERWISE_SKIP, window_rule="torchvision",
    signature=(r"features\.0\.0\.weight", r"features\.1\.0\.attn\.cpb_mlp\.0\.weight"),
    notes="torchvision.models.swin_v2_t/s/b = swinv2_{tiny,small,base}_window8_256. Its packed "
          "attn.qkv.bias becomes timm's q_bias and v_bias; its k third is zeroed by torchvision in every "
          "forward and is not carried. torchvision normalises the coordinates by the window itself "
          "(timm's pretrained_window_sizes=0), pads before the cyclic shift and never shrinks a window: "
          "the two agree where every stage map is a multiple of the window (256 px with window 8: 64, "
          "32, 16, 8, its own size); elsewhere pass window_rule='torchvision'.",
))


# Our variant -> torchvision's constructor of the same architecture (see layouts.TORCHVISION_NAMES).
TORCHVISION_NAMES = {
    "swin_tiny_patch4_window7_224": "swin_t", "swin_small_patch4_window7_224": "swin_s",
    "swin_base_patch4_window7_224": "swin_b",
    "swinv2_tiny_window8_256": "swin_v2_t", "swinv2_small_window8_256": "swin_v2_s",
    "swinv2_base_window8_256": "swin_v2_b",
}
