"""EfficientNet-family source layouts: timm's (ours), torchvision's (EfficientNet B0-B7 and V2 S/M/L)
and efficientnet-pytorch's (``EfficientNet.from_name('efficientnet-b0')`` ..., and its Lite fork).

Each layout also declares the constructor arguments its library's builders use where they differ
from timm's model of the same name (``config``, per variant): torchvision builds EfficientNetV2 and
B5-B7 with BatchNorm eps 1e-3, timm's ``efficientnetv2_*`` and ``efficientnet_b5``.. use 1e-5.
``create_model(name, pretrained=...)`` builds the model with them, so neither source needs a flag
and a checkpoint never meets the wrong eps (see ``paddle_vit.convert.pretrained``).
"""
from __future__ import annotations

import re

from paddle_vit.convert.layouts.base import Layout, Rule, register_layout

register_layout(Layout(
    family="efficientnet", source="timm", passthrough=True, rules=(),
    signature=(r"conv_stem\.weight", r"blocks\.0\.0\..*"),
    notes="timm's EfficientNet (efficientnet, mobilenetv2, mixnet, ... of timm.models.efficientnet): our "
          "names and constructor arguments are timm's, including its BatchNorm eps per variant.",
))

_BN = r"(weight|bias|running_mean|running_var)"


def _torchvision_block_rules(stage: int) -> tuple[Rule, ...]:
    """torchvision's ``features.{stage}.j.block.*`` -> ``blocks.{stage - 1}.j.*``. Its blocks number their
    layers alike whatever their kind, so the kind is read from which layers a block has: an MBConv
    (``ir``) has ``block.3`` (expand, depthwise, SE, project); one without expansion (``ds``) stops at
    ``block.2`` (depthwise, SE, project); a Fused-MBConv (``er``) at ``block.1`` (expand, project); one
    with expansion 1 (``cn``) has ``block.0`` alone."""
    src, dst = rf"features\.{stage}\.(\d+)\.block", rf"blocks.{stage - 1}.\1"
    has = lambda n: rf"features\.{stage}\.\1\.block\.{n}\..*"  # noqa: E731
    kinds = (  # (layers, when, unless)
        ((("0.0", "conv_pw"), ("0.1", "bn1"), ("1.0", "conv_dw"), ("1.1", "bn2"), ("2.fc1", "se.conv_reduce"),
          ("2.fc2", "se.conv_expand"), ("3.0", "conv_pwl"), ("3.1", "bn3")), (has(3),), ()),
        ((("0.0", "conv_dw"), ("0.1", "bn1"), ("1.fc1", "se.conv_reduce"), ("1.fc2", "se.conv_expand"),
          ("2.0", "conv_pw"), ("2.1", "bn2")), (has(2),), (has(3),)),
        ((("0.0", "conv_exp"), ("0.1", "bn1"), ("1.0", "conv_pwl"), ("1.1", "bn2")), (has(1),), (has(2),)),
        ((("0.0", "conv"), ("0.1", "bn1")), (), (has(1),)),
    )
    return tuple(Rule(rf"{src}\.{re.escape(theirs)}\.{_BN}", rf"{dst}.{ours}.\2", when=when, unless=unless)
                 for layers, when, unless in kinds for theirs, ours in layers)


# torchvision's builders: B5-B7 with BatchNorm(eps=1e-3, momentum=0.01), V2 with BatchNorm(eps=1e-3),
# B0-B4 with torch's default BatchNorm (eps 1e-5, timm's too).
TORCHVISION_CONFIG = {
    **{f"efficientnet_b{i}": dict(bn_eps=1e-3, bn_momentum=0.01) for i in (5, 6, 7)},
    **{f"efficientnetv2_{s}": dict(bn_eps=1e-3) for s in "sml"},
}

register_layout(Layout(
    family="efficientnet", source="torchvision",
    rules=(
        Rule(r"features\.0\.0\.weight", r"conv_stem.weight"),
        Rule(rf"features\.0\.1\.{_BN}", r"bn1.\1"),
        *(rule for stage in range(1, 8) for rule in _torchvision_block_rules(stage)),
        # the head conv is the last ``features`` entry (8 in B0-B7, V2-M and V2-L, 7 in V2-S); the
        # stem and the stages are matched above
        Rule(r"features\.\d+\.0\.weight", r"conv_head.weight"),
        Rule(rf"features\.\d+\.1\.{_BN}", r"bn2.\1"),
        Rule(r"classifier\.1\.(weight|bias)", r"classifier.\1"),
    ),
    signature=(r"features\.0\.0\.weight", r"features\.1\.0\.block\.0\.0\.weight"),
    config=TORCHVISION_CONFIG,
    notes="torchvision.models.efficientnet_b0..b7 (our efficientnet_b0..b7: symmetric padding, SiLU) and "
          "efficientnet_v2_s/m/l (our efficientnetv2_s/m/l). Its B5-B7 and V2 use BatchNorm eps 1e-3, which "
          "the model is built with when such a checkpoint is loaded.",
))


def _effnet_pytorch_rules() -> tuple[Rule, ...]:
    """``_blocks.N`` is the N-th block of the whole network (``@N``). A block with ``_expand_conv``
    is an MBConv (ir); one without is depthwise-separable (ds): its ``_bn1`` and ``_project_conv``
    are our ds block's ``bn1`` and ``conv_pw``, an MBConv's ``bn2`` and ``conv_pwl``."""
    blk = r"_blocks\.(\d+)"
    expand = (r"_blocks\.\1\._expand_conv\.weight",)
    return (
        Rule(rf"{blk}\._expand_conv\.weight", r"@\1.conv_pw.weight"),
        Rule(rf"{blk}\._bn0\.{_BN}", r"@\1.bn1.\2"),
        Rule(rf"{blk}\._depthwise_conv\.weight", r"@\1.conv_dw.weight"),
        Rule(rf"{blk}\._bn1\.{_BN}", r"@\1.bn2.\2", when=expand),
        Rule(rf"{blk}\._bn1\.{_BN}", r"@\1.bn1.\2", unless=expand),
        Rule(rf"{blk}\._se_reduce\.(weight|bias)", r"@\1.se.conv_reduce.\2"),
        Rule(rf"{blk}\._se_expand\.(weight|bias)", r"@\1.se.conv_expand.\2"),
        Rule(rf"{blk}\._project_conv\.weight", r"@\1.conv_pwl.weight", when=expand),
        Rule(rf"{blk}\._project_conv\.weight", r"@\1.conv_pw.weight", unless=expand),
        Rule(rf"{blk}\._bn2\.{_BN}", r"@\1.bn3.\2", when=expand),
        Rule(rf"{blk}\._bn2\.{_BN}", r"@\1.bn2.\2", unless=expand),
    )


# Our variant -> (package, model name) of the efficientnet-pytorch builder of the same network.
EFFICIENTNET_PYTORCH_NAMES = {
    **{f"tf_efficientnet_b{i}": ("efficientnet_pytorch", f"efficientnet-b{i}") for i in range(9)},
    "tf_efficientnet_l2": ("efficientnet_pytorch", "efficientnet-l2"),
    **{f"tf_efficientnet_lite{i}": ("efficientnet_lite_pytorch", f"efficientnet-lite{i}") for i in range(5)},
}

register_layout(Layout(
    family="efficientnet", source="efficientnet_pytorch",
    rules=(
        Rule(r"_conv_stem\.weight", r"conv_stem.weight"),
        Rule(rf"_bn0\.{_BN}", r"bn1.\1"),
        *_effnet_pytorch_rules(),
        Rule(r"_conv_head\.weight", r"conv_head.weight"),
        Rule(rf"_bn1\.{_BN}", r"bn2.\1"),
        Rule(r"_fc\.(weight|bias)", r"classifier.\1"),
    ),
    signature=(r"_conv_stem\.weight", r"_blocks\.0\._depthwise_conv\.weight"),
    # both packages build with BatchNorm(eps=1e-3, momentum=1 - 0.99): timm's tf_ eps, a slower momentum
    config={name: dict(bn_momentum=0.01) for name in EFFICIENTNET_PYTORCH_NAMES},
    notes="pip efficientnet-pytorch (EfficientNet.from_name('efficientnet-b0'), ...: our tf_efficientnet_b0..b8, l2) "
          "and its Lite fork efficientnet-lite-pytorch (efficientnet-lite0..4: our tf_efficientnet_lite0..4). "
          "Their TF SAME padding is computed for one image size; ours for every input, the same at that size.",
))


# Our variant -> torchvision's constructor of the same architecture (see layouts.TORCHVISION_NAMES).
TORCHVISION_NAMES = {
    **{f"efficientnet_b{i}": f"efficientnet_b{i}" for i in range(8)},
    "efficientnetv2_s": "efficientnet_v2_s", "efficientnetv2_m": "efficientnet_v2_m",
    "efficientnetv2_l": "efficientnet_v2_l",
}
