"""EfficientNetV2 variants (Tan & Le, 2021): the source's S/M/L stage tables."""
from __future__ import annotations

from typing import Any

FAMILY = "efficientnetv2"

# One row per stage: (block, repeats, kernel, stride, expand_ratio, out_chs, se_ratio);
# block 'fused' is Fused-MBConv (expansion 1: a single k x k conv), 'mbconv' is MBConv.
# The source's S/M/L tables (its in_c column is the previous row's out_c), which are
# timm's efficientnetv2_* / tf_efficientnetv2_* arch defs and torchvision's efficientnet_v2_*.
EFFNETV2_S = (("fused", 2, 3, 1, 1, 24, 0.0), ("fused", 4, 3, 2, 4, 48, 0.0), ("fused", 4, 3, 2, 4, 64, 0.0),
              ("mbconv", 6, 3, 2, 4, 128, 0.25), ("mbconv", 9, 3, 1, 6, 160, 0.25),
              ("mbconv", 15, 3, 2, 6, 256, 0.25))
EFFNETV2_M = (("fused", 3, 3, 1, 1, 24, 0.0), ("fused", 5, 3, 2, 4, 48, 0.0), ("fused", 5, 3, 2, 4, 80, 0.0),
              ("mbconv", 7, 3, 2, 4, 160, 0.25), ("mbconv", 14, 3, 1, 6, 176, 0.25),
              ("mbconv", 18, 3, 2, 6, 304, 0.25), ("mbconv", 5, 3, 1, 6, 512, 0.25))
EFFNETV2_L = (("fused", 4, 3, 1, 1, 32, 0.0), ("fused", 7, 3, 2, 4, 64, 0.0), ("fused", 7, 3, 2, 4, 96, 0.0),
              ("mbconv", 10, 3, 2, 4, 192, 0.25), ("mbconv", 19, 3, 1, 6, 224, 0.25),
              ("mbconv", 25, 3, 2, 6, 384, 0.25), ("mbconv", 7, 3, 1, 6, 640, 0.25))

VARIANTS: dict[str, dict[str, Any]] = {}
# BN eps 1e-3 (the source, torchvision and timm's tf_ weights); head dropout and the drop path
# rate 0.2 as in the source (drop path is only active in training).
for _name, _stages, _stem, _img, _drop in (("efficientnetv2_s", EFFNETV2_S, 24, 384, 0.2),
                                           ("efficientnetv2_m", EFFNETV2_M, 24, 480, 0.3),
                                           ("efficientnetv2_l", EFFNETV2_L, 32, 480, 0.4)):
    for _prefix, _pad in (("", ""), ("tf_", "same")):
        VARIANTS[_prefix + _name] = dict(stages=_stages, stem_size=_stem, img_size=_img, drop_rate=_drop,
                                         drop_path_rate=0.2, bn_eps=1e-3, pad_type=_pad)
