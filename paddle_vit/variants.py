"""Model variants as data, shared by both trees.

A variant is a family name plus the constructor arguments of that family's class,
exactly as timm names them; the tables themselves are data, one file per family, in
``paddle_vit.zoo``. This module imports no framework, so ``torch_ref``
reads the same table as ``paddle_vit`` and the two can never drift apart.
"""
from __future__ import annotations

import difflib
import fnmatch
from typing import Any

VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {}
# Another library's name for a variant (a table's ``ALIASES``, e.g. torchvision's ``vit_h_14``):
# alias -> (the variant, the arguments in which the alias differs). Registered as variants too.
ALIASES: dict[str, tuple[str, dict[str, Any]]] = {}


def register_variant(name: str, family: str, **kwargs: Any) -> None:
    """Declare ``name`` as ``family(**kwargs)``; names are unique across families."""
    if name in VARIANTS:
        raise ValueError(f"model variant {name!r} is registered twice")
    VARIANTS[name] = (family, dict(kwargs))


def list_models(pattern: str = "*", pretrained: bool = False) -> list[str]:
    """Sorted variant names matching a shell-style ``pattern`` (e.g. ``'vit_*'``); with
    ``pretrained=True`` the pretrained tags instead (``'<arch>.<tag>'``, as timm lists them).
    A pattern without a tag matches every tag of the archs it matches."""
    if pretrained:
        from paddle_vit.pretrained import list_pretrained
        return list_pretrained(pattern)
    return sorted(n for n in VARIANTS if fnmatch.fnmatch(n, pattern))


def get_variant(name: str) -> tuple[str, dict[str, Any]]:
    """``(family, kwargs)`` of a variant; an unknown name lists the close matches."""
    try:
        family, kwargs = VARIANTS[name]
    except KeyError:
        close = difflib.get_close_matches(name, VARIANTS, n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see list_models()"
        raise ValueError(f"unknown model {name!r}{hint}") from None
    return family, dict(kwargs)


def model_kwargs(name: str, num_classes: int | None = None, img_size: Any = None,
                 **overrides: Any) -> tuple[str, dict[str, Any]]:
    """Family and final constructor arguments: the variant's, then what its pretrained tag sets
    (``'<arch>.<tag>'``, or timm's default tag for a bare arch: ``num_classes``, a fixed
    ``img_size``), then the caller's overrides."""
    from paddle_vit.pretrained import get_tag, model_defaults, split_name
    family, kwargs = get_variant(split_name(name)[0])
    kwargs.update(model_defaults(get_tag(name)))
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if img_size is not None:
        kwargs["img_size"] = img_size
    kwargs.update(overrides)
    return family, kwargs


def canonical_name(name: str) -> tuple[str, dict[str, Any]]:
    """``(variant name, extra arguments)``: an alias resolved (see ``ALIASES``), any other name as is."""
    target, extra = ALIASES.get(name, (name, {}))
    return target, dict(extra)


def _register_tables() -> None:
    from paddle_vit.zoo import TABLES
    for table in TABLES:
        for name, kwargs in table.VARIANTS.items():
            register_variant(name, table.FAMILY, **kwargs)
        for alias, (target, extra) in getattr(table, "ALIASES", {}).items():
            register_variant(alias, table.FAMILY, **{**table.VARIANTS[target], **extra})
            ALIASES[alias] = (target, dict(extra))


_register_tables()
