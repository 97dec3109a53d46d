"""Shared by the EfficientNet tests."""
from __future__ import annotations

import pytest


def skip_unless_selected(request: pytest.FixtureRequest) -> None:
    """The zoo's many full-size models run only when asked for (``-m full_size``): the default run keeps
    the family's one full-size model (EfficientNetV2-S at 384 px) and tests the rest at reduced width."""
    expr = request.config.getoption("markexpr") or ""
    if "full_size" not in expr or "not full_size" in expr:
        pytest.skip("full-size zoo model: select with -m full_size")
