"""torch -> Paddle weight conversion: layouts as data (``layouts``), the planner (``core``), safe I/O (``io``:
readers that run no code, ``atomic`` output that appears complete or not at all)."""
from __future__ import annotations

import os
import warnings

with warnings.catch_warnings():  # Paddle warns on import that ccache (a compiler cache) is missing
    warnings.filterwarnings("ignore", message="No ccache found")
    import paddle.nn as nn

from paddle_vit.convert.core import (ConversionError, Route, check_paddle_state, convert_state_dict, detect_source,
                                     export_state_dict, load_state_dict_strict, plan, plan_for, target_spec)
from paddle_vit.convert.io import atomic_output, read_checkpoint, save_paddle, write_checkpoint
from paddle_vit.convert.layouts import LAYOUTS, Layout, Rule, get_layout


def load_pretrained(model: nn.Layer, path: str | os.PathLike, source: str = "auto") -> None:
    """Load ``path`` into ``model``: a Paddle file as is, a torch checkpoint converted from
    ``source`` layout. All or nothing: every key, shape, dtype and value is checked first (one
    ``ConversionError`` lists every problem), and on any error the model keeps its weights."""
    state, layout = read_checkpoint(path)
    if layout == "torch":
        state = convert_state_dict(state, model, source)
    load_state_dict_strict(model, state)


__all__ = ["ConversionError", "Route", "Layout", "Rule", "LAYOUTS", "atomic_output", "check_paddle_state",
           "convert_state_dict", "detect_source", "export_state_dict", "get_layout", "load_pretrained",
           "load_state_dict_strict", "plan", "plan_for", "read_checkpoint", "save_paddle", "target_spec",
           "write_checkpoint"]
