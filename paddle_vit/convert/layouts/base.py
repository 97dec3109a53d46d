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
# Swin V1 [(2S-1)^2, heads] table of a square S x S window: resized for the target layer's window as
# timm's checkpoint filter does (resample.resize_rel_pos_bias_table); index and masks are rebuilt.
REL_POS_BIAS = "rel_pos_bias_table"
# One third of a packed [3C] q|k|v bias: the q part and the v part (torchvision's Swin V2 packs
# them with a k part it zeroes in every forward; timm keeps q_bias and v_bias apart).
Q_OF_QKV = "q_of_qkv"
V_OF_QKV = "v_of_qkv"
TRANSFORMS = (NONE, POS_EMBED, REL_POS_BIAS, Q_OF_QKV, V_OF_QKV)

# torch BatchNorm buffer -> Paddle BatchNorm buffer; applied after the layout's own rules.
# (A BatchNorm converted on its own has the bare keys ``running_mean``, hence the optional prefix.)
FRAMEWORK_RENAMES = ((r"^(.*\.)?running_mean$", r"\1_mean"), (r"^(.*\.)?running_var$", r"\1_variance"))
# torch-only bookkeeping that has no Paddle counterpart (Paddle BN counts no batches).
FRAMEWORK_IGNORE = (r"(.*\.)?num_batches_tracked$",)


@dataclass(frozen=True)
class Rule:
    """Source keys matching ``pattern`` (a full-match regex) become ``re.sub(pattern, target, key)``.
    ``also``: more ``(target, transform)`` pairs fed from the same source tensor (a packed tensor
    split between several of ours)."""
    pattern: str
    target: str
    transform: str = NONE
    also: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        for transform in (self.transform, *(t for _, t in self.also)):
            if transform not in TRANSFORMS:
                raise ValueError(f"unknown transform {transform!r}; known: {TRANSFORMS}")


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
    # source modules (regex on the module name) that own the tensors of one of our layers but compute
    # something else (torchvision's Swin attention also shifts and partitions the map): the
    # layer-by-layer diff leaves them unpaired instead of comparing unlike outputs
    layerwise_skip: tuple[str, ...] = ()
    # Swin: the rule by which the source fits windows to maps they do not divide, where a model's
    # default could silently differ ('torchvision'); such a model is refused (``window_rule_conflicts``)
    window_rule: str | None = None

    def map_key(self, key: str) -> tuple[str, str] | None:
        """``(target key, transform)`` for a source key (its first target), or ``None`` if it is
        ignored. Raises ``KeyError`` for a key that no rule maps."""
        targets = self.targets(key)
        return targets[0] if targets else None

    def targets(self, key: str) -> list[tuple[str, str]]:
        """Every ``(target key, transform)`` a source key feeds (``[]`` if it is ignored).
        Raises ``KeyError`` for a key that no rule maps."""
        if any(re.fullmatch(p, key) for p in self.ignore + FRAMEWORK_IGNORE):
            return []
        for rule in self.rules:
            if re.fullmatch(rule.pattern, key):
                return [(_framework_rename(re.sub(rule.pattern, target, key)), transform)
                        for target, transform in ((rule.target, rule.transform), *rule.also)]
        if self.passthrough:
            return [(_framework_rename(key), NONE)]
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
