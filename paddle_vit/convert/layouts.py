"""Source checkpoint layouts, declared as data.

A layout says how the keys of one foreign state_dict become the keys of our models:
an ordered list of rename rules (first match wins) plus, where a tensor needs more than
a rename, a transform kind. Read by the converter and by the tests alike.

What is *not* declared here because it follows from our model, not from the source:
- ``linear``: a tensor landing in a Paddle ``nn.Linear`` weight is transposed
  (torch stores ``[out, in]``, Paddle ``[in, out]``). Conv weights, LayerNorm weights,
  tokens and tables keep their layout. The kind comes from the target layer's type,
  never from a name or from a tensor being 2-D.
- the torch -> Paddle BatchNorm buffer names (``running_mean`` -> ``_mean``,
  ``running_var`` -> ``_variance``), see ``FRAMEWORK_RENAMES``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

# Transform kinds a rule may ask for (besides the target-derived ``linear``).
NONE = "none"
POS_EMBED = "pos_embed"   # learned [1, prefix + gh*gw, C]: resampled bicubically if the grid differs
TRANSFORMS = (NONE, POS_EMBED)

# torch BatchNorm buffer -> Paddle BatchNorm buffer; applied after the layout's own rules.
# (A BatchNorm converted on its own has the bare keys ``running_mean``, hence the optional prefix.)
FRAMEWORK_RENAMES = ((r"^(.*\.)?running_mean$", r"\1_mean"), (r"^(.*\.)?running_var$", r"\1_variance"))
# torch-only bookkeeping that has no Paddle counterpart (Paddle BN counts no batches).
FRAMEWORK_IGNORE = (r"(.*\.)?num_batches_tracked$",)


@dataclass(frozen=True)
class Rule:
    """Source keys matching ``pattern`` (a full-match regex) become ``re.sub(pattern, target, key)``."""
    pattern: str
    target: str
    transform: str = NONE

    def __post_init__(self) -> None:
        if self.transform not in TRANSFORMS:
            raise ValueError(f"unknown transform {self.transform!r}; known: {TRANSFORMS}")


@dataclass(frozen=True)
class Layout:
    """How one source (``timm``, ``torchvision``, ...) lays out one model family."""
    family: str
    source: str
    rules: tuple[Rule, ...]
    passthrough: bool = False           # unmatched keys keep their name (layouts that mirror ours)
    ignore: tuple[str, ...] = ()        # source keys carried nowhere on purpose (rebuilt buffers)
    signature: tuple[str, ...] = ()     # keys (regex) whose presence identifies this source
    notes: str = ""

    def map_key(self, key: str) -> tuple[str, str] | None:
        """``(target key, transform)`` for a source key, or ``None`` if it is ignored.
        Raises ``KeyError`` for a key that no rule maps."""
        if any(re.fullmatch(p, key) for p in self.ignore + FRAMEWORK_IGNORE):
            return None
        for rule in self.rules:
            if re.fullmatch(rule.pattern, key):
                return _framework_rename(re.sub(rule.pattern, rule.target, key)), rule.transform
        if self.passthrough:
            return _framework_rename(key), NONE
        raise KeyError(key)

    def matches(self, keys: set[str]) -> bool:
        return bool(self.signature) and all(any(re.fullmatch(s, k) for k in keys) for s in self.signature)


def _framework_rename(key: str) -> str:
    for pattern, target in FRAMEWORK_RENAMES:
        key = re.sub(pattern, target, key)
    return key


LAYOUTS: dict[tuple[str, str], Layout] = {}
# Sources whose layout is ours by construction: torch_ref mirrors timm's names.
ALIASES = {"torch_ref": "timm"}


def register_layout(layout: Layout) -> Layout:
    LAYOUTS[(layout.family, layout.source)] = layout
    return layout


def sources(family: str) -> list[str]:
    return sorted(s for f, s in LAYOUTS if f == family)


# For modules outside the registry (single layers): torch_ref's names are ours, only the
# framework-level transforms apply.
MIRROR = Layout(family="*", source="torch_ref", rules=(), passthrough=True,
                notes="any torch_ref module -> its paddle_vit twin")


def get_layout(family: str | None, source: str) -> Layout:
    if family is None:
        if source not in ("torch_ref", "auto"):
            raise ValueError(f"a module outside the model registry converts only from torch_ref, not {source!r}")
        return MIRROR
    source = ALIASES.get(source, source)
    try:
        return LAYOUTS[(family, source)]
    except KeyError:
        raise ValueError(f"no {source!r} layout for the {family!r} family; known sources: "
                         f"{sources(family) + [a for a, s in ALIASES.items() if s in sources(family)]}") from None


# --- ViT -----------------------------------------------------------------------
register_layout(Layout(
    family="vit", source="timm", passthrough=True,
    rules=(Rule(r"pos_embed", r"pos_embed", POS_EMBED),),
    signature=(r"cls_token", r"blocks\.0\.attn\.qkv\.weight"),
    notes="timm's VisionTransformer; our names are timm's, so only pos_embed may need resampling.",
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


# --- Swin ----------------------------------------------------------------------
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


# --- EfficientNetV2 ------------------------------------------------------------------
register_layout(Layout(
    family="efficientnetv2", source="timm", passthrough=True, rules=(),
    signature=(r"conv_stem\.weight", r"blocks\.0\.0\.conv\.weight"),
    notes="timm's efficientnetv2_s/m/l and tf_efficientnetv2_s/m/l: our names are timm's. The tf_ "
          "weights need pad_type='same' (the tf_ variants); timm builds its non-tf efficientnetv2_* "
          "with BN eps 1e-5 (ours: 1e-3, the source's), so pass bn_eps=1e-5 for those.",
))

_BN = r"(weight|bias|running_mean|running_var)"


def _torchvision_stage_rules(stage: int) -> tuple[Rule, ...]:
    """torchvision's ``features.{stage}.j.block.*`` -> ``blocks.{stage - 1}.j.*``. Stage 1 is Fused-MBConv
    with expansion 1 (one conv), stages 2-3 Fused-MBConv, stages 4+ MBConv, in S, M and L alike."""
    src, dst = rf"features\.{stage}\.(\d+)\.block", rf"blocks.{stage - 1}.\1"
    if stage == 1:
        names = (("0.0", "conv"), ("0.1", "bn1"))
    elif stage <= 3:
        names = (("0.0", "conv_exp"), ("0.1", "bn1"), ("1.0", "conv_pwl"), ("1.1", "bn2"))
    else:
        names = (("0.0", "conv_pw"), ("0.1", "bn1"), ("1.0", "conv_dw"), ("1.1", "bn2"),
                 ("2.fc1", "se.conv_reduce"), ("2.fc2", "se.conv_expand"), ("3.0", "conv_pwl"), ("3.1", "bn3"))
    return tuple(Rule(rf"{src}\.{re.escape(theirs)}\.{_BN}", rf"{dst}.{ours}.\2") for theirs, ours in names)


register_layout(Layout(
    family="efficientnetv2", source="torchvision",
    rules=(
        Rule(r"features\.0\.0\.weight", r"conv_stem.weight"),
        Rule(rf"features\.0\.1\.{_BN}", r"bn1.\1"),
        *(rule for stage in range(1, 8) for rule in _torchvision_stage_rules(stage)),
        # the head conv is the last ``features`` entry (7 in S, 8 in M and L); stem and stages matched above
        Rule(r"features\.\d+\.0\.weight", r"conv_head.weight"),
        Rule(rf"features\.\d+\.1\.{_BN}", r"bn2.\1"),
        Rule(r"classifier\.1\.(weight|bias)", r"classifier.\1"),
    ),
    signature=(r"features\.0\.0\.weight", r"features\.1\.0\.block\.0\.0\.weight"),
    notes="torchvision.models.efficientnet_v2_s/m/l: symmetric padding and BN eps 1e-3, as our "
          "efficientnetv2_* variants (not tf_).",
))


# Our variant -> the torchvision constructor of the same architecture (``torchvision.models.<name>``,
# built with ``image_size`` = the variant's). Shown by ``paddle-vit-convert --list-models``; the
# verification builds torchvision's class from our arguments (see ``sources.py``), and a test checks
# that this gives the named constructor's tensors.
TORCHVISION_NAMES: dict[str, str] = {
    "vit_base_patch16_224": "vit_b_16", "vit_base_patch16_384": "vit_b_16",
    "vit_base_patch32_224": "vit_b_32", "vit_base_patch32_384": "vit_b_32",
    "vit_large_patch16_224": "vit_l_16", "vit_large_patch16_384": "vit_l_16",
    "swin_tiny_patch4_window7_224": "swin_t", "swin_small_patch4_window7_224": "swin_s",
    "swin_base_patch4_window7_224": "swin_b",
    "efficientnetv2_s": "efficientnet_v2_s", "efficientnetv2_m": "efficientnet_v2_m",
    "efficientnetv2_l": "efficientnet_v2_l",
}
