"""The variant tables, one file of data per family (framework-free, read by both trees).

Each module defines ``FAMILY`` (the family name ``create_model`` builds) and ``VARIANTS``
(variant name -> constructor arguments, timm's names). ``paddle_vit.variants`` registers them.
"""
from paddle_vit.zoo import efficientnet, swin, swin_v2, vit

TABLES = (vit, swin, efficientnet, swin_v2)
