"""Pretrained tags (``<arch>.<tag>``) as data: where a variant's weights live and how to feed them.

Every variant table ``paddle_vit/zoo/<name>.py`` has a generated companion ``<name>_tags.py``
(``python tools/gen_pretrained_tags.py``) holding, per tag, timm's pretrained config (Hugging Face
Hub repo and file, ``num_classes``, ``input_size``, ``mean``, ``std``, ``crop_pct``, ``crop_mode``,
``interpolation``, licence) or, for ``<arch>.tv_<weights>``, the numbers of torchvision's weights
enum and its transform. This module reads them; it imports no framework and no timm.

A bare arch name means timm's default tag (its first; it has weights whenever any timm tag of the
arch has). ``pretrained=True`` on an arch whose timm tags have no weights takes the first
torchvision tag of the arch, if any.
"""
from __future__ import annotations

import difflib
import fnmatch
import importlib
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import Any, Mapping

# timm's defaults where a model has no pretrained config at all (timm.data.constants)
IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)
DEFAULT_CROP_PCT = 0.875
DEFAULT_CROP_MODE = "center"
DEFAULT_INTERPOLATION = "bicubic"
SOURCES = ("timm", "torchvision")


@dataclass(frozen=True)
class TagRow:
    """One pretrained tag: where its weights are and the preprocessing it was trained with."""
    name: str                                   # '<arch>.<tag>'
    source: str                                 # 'timm' or 'torchvision': whose checkpoint layout
    num_classes: int                            # classifier width (0: no classifier)
    input_size: tuple[int, int, int]            # (C, H, W)
    interpolation: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_pct: float
    crop_mode: str
    fixed_input_size: bool = False              # the model is built for input_size (timm sets img_size)
    test_input_size: tuple[int, int, int] | None = None
    test_crop_pct: float | None = None
    hf_hub_id: str | None = None                # 'org/name' or 'org/name@revision'
    hf_hub_filename: str | None = None          # None: timm's default (model.safetensors, else pytorch_model.bin)
    url: str | None = None                      # direct download (torchvision's; timm's original location)
    torchvision_weights: str | None = None      # e.g. 'ViT_B_16_Weights.IMAGENET1K_V1'
    license: str | None = None

    @property
    def arch(self) -> str:
        return self.name.partition(".")[0]

    @property
    def tag(self) -> str:
        return self.name.partition(".")[2]

    @property
    def has_weights(self) -> bool:
        return bool(self.hf_hub_id or self.url)

    def data_config(self, use_test_size: bool = False) -> dict[str, Any]:
        """timm's ``resolve_data_config`` keys for this tag."""
        size = self.test_input_size if use_test_size and self.test_input_size else self.input_size
        crop = self.test_crop_pct if use_test_size and self.test_crop_pct else self.crop_pct
        return dict(input_size=tuple(size), interpolation=self.interpolation, mean=tuple(self.mean),
                    std=tuple(self.std), crop_pct=crop, crop_mode=self.crop_mode)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FIELDS = tuple(f.name for f in fields(TagRow))


def row_from_data(name: str, data: Mapping[str, Any]) -> TagRow:
    """A ``TagRow`` from one entry of a ``*_tags.py`` file; unknown or missing fields are errors."""
    unknown = set(data) - set(FIELDS)
    if unknown:
        raise ValueError(f"tag {name!r}: unknown fields {sorted(unknown)}; known: {FIELDS}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    row = TagRow(name=name, **values)
    if row.source not in SOURCES:
        raise ValueError(f"tag {name!r}: source must be one of {SOURCES}, got {row.source!r}")
    return row


@dataclass(frozen=True)
class TagTables:
    rows: dict[str, TagRow]           # every tag, with or without weights
    defaults: dict[str, str]          # arch -> timm's default tag name ('<arch>.<tag>')
    not_in_timm: tuple[str, ...]      # registered variants timm does not know


@lru_cache(maxsize=1)
def tables() -> TagTables:
    """Every ``paddle_vit/zoo/<table>_tags.py``, merged. A table without a tags file has no tags."""
    from paddle_vit.zoo import TABLES
    rows: dict[str, TagRow] = {}
    defaults: dict[str, str] = {}
    not_in_timm: list[str] = []
    for table in TABLES:
        module_name = f"{table.__name__}_tags"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        for name, data in module.TAGS.items():
            if name in rows:
                raise ValueError(f"pretrained tag {name!r} is declared twice")
            rows[name] = row_from_data(name, data)
        defaults.update({arch: f"{arch}.{tag}" for arch, tag in module.DEFAULT_TAGS.items()})
        not_in_timm += list(getattr(module, "NOT_IN_TIMM", ()))
    return TagTables(rows, defaults, tuple(sorted(not_in_timm)))


def split_name(name: str) -> tuple[str, str]:
    """``'arch.tag'`` -> ``('arch', 'tag')``; a bare arch -> ``('arch', '')`` (timm's rule)."""
    arch, _, tag = name.partition(".")
    return arch, tag


def tags_of(arch: str, pretrained_only: bool = True) -> list[TagRow]:
    """The tags of ``arch``: timm's default first, then the rest sorted."""
    rows = [r for r in tables().rows.values() if r.arch == arch and (r.has_weights or not pretrained_only)]
    default = tables().defaults.get(arch)
    return sorted(rows, key=lambda r: (r.name != default, r.name))


def get_tag(name: str, pretrained: bool = False) -> TagRow | None:
    """The tag row ``name`` stands for: ``'arch.tag'`` exactly; a bare arch -> its default tag (with
    ``pretrained``: the default tag with weights). ``None`` if the arch has no such row. An
    unknown tag of an arch is an error naming the arch's tags."""
    arch, tag = split_name(name)
    t = tables()
    if tag:
        row = t.rows.get(name)
        if row is None:
            known = [r.name for r in tags_of(arch, pretrained_only=False)]
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
            hint = (f"; did you mean {', '.join(close)}?" if close else "") + (
                f" Tags of {arch}: {', '.join(known)}" if known else f" {arch!r} has no pretrained tags")
            raise ValueError(f"unknown pretrained tag {name!r}{hint}")
        return row
    default = t.rows.get(t.defaults.get(arch, ""))
    if not pretrained or (default is not None and default.has_weights):
        return default
    with_weights = tags_of(arch)
    return with_weights[0] if with_weights else None


def pretrained_row(name: str) -> TagRow:
    """The tag with weights that ``create_model(name, pretrained=True)`` loads; an error if none."""
    row = get_tag(name, pretrained=True)
    if row is not None and row.has_weights:
        return row
    arch = split_name(name)[0]
    if row is not None:
        raise ValueError(f"{row.name!r} has no pretrained weights (timm publishes none for it); "
                         f"tags with weights: {', '.join(r.name for r in tags_of(arch)) or 'none'}")
    family_hint = ", ".join(list_pretrained(f"{arch.split('_')[0]}*")[:8])
    raise ValueError(f"{arch!r} has no pretrained tags" + (f"; some that do: {family_hint}" if family_hint else "")
                     + "; pass a checkpoint file instead: create_model(name, pretrained='path/to/file')")


def _matches(name: str, pattern: str) -> bool:
    # timm expands a filter without a tag to also match every tag of the arch ('vit_*' -> 'vit_*.*')
    return fnmatch.fnmatch(name, pattern) or ("." not in pattern and fnmatch.fnmatch(name, pattern + ".*"))


def list_pretrained(pattern: str = "*") -> list[str]:
    """Sorted ``'<arch>.<tag>'`` names with weights whose arch is a registered variant."""
    from paddle_vit.variants import VARIANTS
    return sorted(r.name for r in tables().rows.values()
                  if r.has_weights and r.arch in VARIANTS and _matches(r.name, pattern))


def model_defaults(row: TagRow | None) -> dict[str, Any]:
    """Constructor arguments a tag sets unless the caller does (timm's rule): ``num_classes``, and
    ``img_size`` for models with a fixed input size."""
    if row is None:
        return {}
    out: dict[str, Any] = {"num_classes": row.num_classes}
    if row.fixed_input_size:
        h, w = row.input_size[1:]
        out["img_size"] = h if h == w else (h, w)
    return out


def model_tag(name: str, pretrained: bool) -> tuple[str, TagRow | None]:
    """``(arch, tag row)`` that ``create_model(name, pretrained=...)`` builds: the arch must be a
    registered variant; with ``pretrained`` the tag must have weights (else a ``ValueError`` naming
    the tags that do)."""
    from paddle_vit.variants import get_variant
    arch = split_name(name)[0]
    get_variant(arch)  # an unknown arch fails here, with its close matches
    return arch, (pretrained_row(name) if pretrained else get_tag(name))


def check_head(row: TagRow, kwargs: Mapping[str, Any]) -> None:
    """``pretrained=True`` loads the tag's classifier as it is: ``num_classes`` must be the tag's."""
    if kwargs.get("num_classes", row.num_classes) != row.num_classes:
        raise ValueError(f"{row.name!r} has a {row.num_classes}-class classifier "
                         f"{'(none: a feature extractor) ' if row.num_classes == 0 else ''}and "
                         f"num_classes={kwargs['num_classes']} would leave it unloaded; keep the tag's num_classes "
                         "(replacing the head for fine-tuning is not done by create_model)")
