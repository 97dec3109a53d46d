"""EfficientNet source layouts: timm's (ours) and torchvision's."""
from __future__ import annotations

import re

from paddle_vit.convert.layouts.base import Layout, Rule, register_layout

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



# Our variant -> torchvision's constructor of the same architecture (see layouts.TORCHVISION_NAMES).
TORCHVISION_NAMES = {
    "efficientnetv2_s": "efficientnet_v2_s", "efficientnetv2_m": "efficientnet_v2_m",
    "efficientnetv2_l": "efficientnet_v2_l",
}
