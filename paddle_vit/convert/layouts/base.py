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
- a flat block number: a rule target ``@N.rest`` (``FLAT_BLOCK``) names the model's N-th block, in
  the order of its ``flat_blocks`` (``blocks.{stage}.{index}``), for sources that number blocks
  1, 2, 3, ... across stages (efficientnet-pytorch's ``_blocks.N``).

A rule can depend on the other keys of the checkpoint (``when`` / ``unless``: keys that must /
must not exist, written with the rule's groups), for sources whose blocks of different kinds share
one naming scheme (torchvision numbers the layers of an MBConv and of a Fused-MBConv alike).
A layout may also declare ``config``: constructor arguments its checkpoints need because its
library builds the model so (torchvision's EfficientNetV2 uses BatchNorm eps 1e-3), per variant;
``create_model`` builds the model with them (see ``paddle_vit.convert.pretrained``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

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
FLAT_BLOCK = "@"          # target prefix "@N": the model's N-th block (``model.flat_blocks[N]``)

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
    when: tuple[str, ...] = ()     # keys (regex templates with the pattern's groups) that must exist
    unless: tuple[str, ...] = ()   # ... that must not exist

    def __post_init__(self) -> None:
        for transform in (self.transform, *(t for _, t in self.also)):
            if transform not in TRANSFORMS:
                raise ValueError(f"unknown transform {transform!r}; known: {TRANSFORMS}")

    def applies(self, match: re.Match, present: Callable[[str], bool] | None) -> bool:
        """Whether the rule maps this key: ``present(regex)`` says if the checkpoint has a matching key."""
        if not (self.when or self.unless):
            return True
        if present is None:
            raise ValueError(f"rule {self.pattern!r} depends on the other keys of the checkpoint; pass them")
        return all(present(match.expand(t)) for t in self.when) and not any(present(match.expand(t)) for t in self.unless)


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
    config: dict = field(default_factory=dict)  # variant -> constructor arguments its checkpoints need

    def map_key(self, key: str, present: Callable[[str], bool] | None = None,
                flat_blocks: list[str] | None = None) -> tuple[str, str] | None:
        """``(target key, transform)`` for a source key (its first target), or ``None`` if it is
        ignored. Raises ``KeyError`` for a key that no rule maps. See ``targets``."""
        targets = self.targets(key, present, flat_blocks)
        return targets[0] if targets else None

    def targets(self, key: str, present: Callable[[str], bool] | None = None,
                flat_blocks: list[str] | None = None) -> list[tuple[str, str]]:
        """Every ``(target key, transform)`` a source key feeds (``[]`` if it is ignored; several
        where a packed tensor is split). ``present``: whether the checkpoint has a key matching a
        regex (for rules with ``when`` / ``unless``, see ``key_mapper``); ``flat_blocks``: the model's
        block prefixes in order (for ``@N`` targets). Raises ``KeyError`` for a key that no rule maps
        (or whose flat block number the model does not have)."""
        if any(re.fullmatch(p, key) for p in self.ignore + FRAMEWORK_IGNORE):
            return []
        for rule in self.rules:
            match = re.fullmatch(rule.pattern, key)
            if match and rule.applies(match, present):
                return [(_framework_rename(_flat_block(match.expand(target), flat_blocks, key)), transform)
                        for target, transform in ((rule.target, rule.transform), *rule.also)]
        if self.passthrough:
            return [(_framework_rename(key), NONE)]
        raise KeyError(key)

    def key_mapper(self, keys: Iterable[str], model: Any = None) -> Callable[[str], list[tuple[str, str]]]:
        """``targets`` bound to a checkpoint's keys and a target model (its ``flat_blocks``, if any)."""
        keys, blocks, seen = tuple(keys), getattr(model, "flat_blocks", None), {}

        def present(regex: str) -> bool:  # each condition, once per checkpoint
            if regex not in seen:
                compiled = re.compile(regex)
                seen[regex] = any(compiled.fullmatch(k) for k in keys)
            return seen[regex]
        return lambda key: self.targets(key, present, blocks)

    def config_for(self, variant: str | None) -> dict:
        """The constructor arguments a checkpoint of this layout needs for ``variant`` (often none)."""
        return dict(self.config.get(variant, {})) if variant else {}

    def matches(self, keys: set[str]) -> bool:
        return bool(self.signature) and all(any(re.fullmatch(s, k) for k in keys) for s in self.signature)


def _flat_block(target: str, flat_blocks: list[str] | None, key: str) -> str:
    if not target.startswith(FLAT_BLOCK):
        return target
    number, _, rest = target[len(FLAT_BLOCK):].partition(".")
    if flat_blocks is None or not number.isdigit() or int(number) >= len(flat_blocks):
        raise KeyError(key)  # the model has no such block: reported as an unmapped key
    return f"{flat_blocks[int(number)]}.{rest}"


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
