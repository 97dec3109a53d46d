"""Source checkpoint layouts, declared as data: the machinery in ``base``, one file per family.

Importing this package registers every family's layouts. ``TORCHVISION_NAMES`` maps our variant
to the torchvision constructor of the same architecture (``torchvision.models.<name>``): shown by
``paddle-vit-convert --list-models``; the verification builds torchvision's class from our
arguments (see ``sources.py``), and a test checks that this gives the named constructor's tensors.
"""
from __future__ import annotations

from paddle_vit.convert.layouts.base import (ALIASES, FRAMEWORK_IGNORE, FRAMEWORK_RENAMES, LAYOUTS, MIRROR, NONE,
                                             POS_EMBED, Q_OF_QKV, REL_POS_BIAS, TRANSFORMS, V_OF_QKV, Layout, Rule,
                                             get_layout, register_layout, sources)
from paddle_vit.convert.layouts import efficientnet, swin, vit

TORCHVISION_NAMES: dict[str, str] = {**vit.TORCHVISION_NAMES, **swin.TORCHVISION_NAMES,
                                     **efficientnet.TORCHVISION_NAMES}

__all__ = ["ALIASES", "FRAMEWORK_IGNORE", "FRAMEWORK_RENAMES", "LAYOUTS", "MIRROR", "NONE", "POS_EMBED", "Q_OF_QKV",
           "REL_POS_BIAS", "TORCHVISION_NAMES", "TRANSFORMS", "V_OF_QKV", "Layout", "Rule", "get_layout",
           "register_layout", "sources"]
