"""Generate the pretrained-tag tables (``paddle_vit/zoo/<table>_tags.py``) and the ImageNet-1k
class names (``paddle_vit/data/imagenet_classes.py``) from the installed timm and torchvision.

For every registered variant (``paddle_vit.variants``), grouped by the zoo table that declares it:
- every timm tag of the arch with timm's pretrained config (Hugging Face Hub repo and file,
  num_classes, input_size, mean, std, crop_pct, crop_mode, interpolation, licence, ...);
- where a torchvision layout of the variant exists (``paddle_vit.convert.layouts.TORCHVISION_NAMES``),
  every weights enum of that torchvision constructor (for a variant with a fixed input size, those
  whose crop size is the variant's image size),
  as ``<arch>.tv_<enum member>`` with its transform's numbers (crop_pct chosen so that timm's
  ``floor(size / crop_pct)`` is torchvision's resize size exactly).

Deterministic (sorted, fixed field order) and idempotent: a file is rewritten only when its text
changes. Families and variants it has not seen are handled the same way (a new zoo table gets its
own tags file). ``--check`` writes nothing and exits 1 if any file would change.

    PYTHONPATH=$PWD python tools/gen_pretrained_tags.py [--check]
"""
from __future__ import annotations

import argparse
import math
import pprint
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from paddle_vit.pretrained import FIELDS, TagRow  # noqa: E402

REQUIRED = ("source", "num_classes", "input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")
DEFAULTS = {f: getattr(TagRow, f, None) for f in FIELDS if f not in REQUIRED and f != "name"}


def _plain(value: Any) -> Any:
    """Tuples of plain Python numbers/strings (timm sometimes holds lists or numpy scalars)."""
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    if hasattr(value, "item"):
        return value.item()
    return None if value == "" else value  # timm writes '' for "no url"


def timm_tags(arch: str) -> tuple[dict[str, dict[str, Any]], str | None]:
    """Every timm tag of ``arch`` (name -> row data) and timm's default tag name; ``({}, None)`` if
    timm does not know the arch."""
    import timm
    from timm.models import get_pretrained_cfg
    if not timm.is_model(arch):
        return {}, None
    default = get_pretrained_cfg(arch)
    rows = {}
    for name in timm.list_models(arch, include_tags=True):
        if name.partition(".")[0] != arch:
            continue
        if "." not in name:
            raise SystemExit(f"timm registers {arch!r} with an empty tag; paddle_vit's tags are '<arch>.<tag>'")
        cfg = get_pretrained_cfg(name)
        url = cfg.url[0] if isinstance(cfg.url, (tuple, list)) else cfg.url
        rows[name] = dict(
            source="timm", num_classes=cfg.num_classes, input_size=cfg.input_size, interpolation=cfg.interpolation,
            mean=cfg.mean, std=cfg.std, crop_pct=cfg.crop_pct, crop_mode=cfg.crop_mode,
            fixed_input_size=bool(cfg.fixed_input_size), test_input_size=cfg.test_input_size,
            test_crop_pct=cfg.test_crop_pct, hf_hub_id=cfg.hf_hub_id, hf_hub_filename=cfg.hf_hub_filename,
            url=url, license=cfg.license)
    if default is None or default.tag is None:
        return rows, None
    return rows, f"{arch}.{default.tag}"


def crop_pct_for(crop: int, resize: int) -> float:
    """The crop_pct nearest ``crop / resize`` for which timm's ``floor(crop / crop_pct) == resize``."""
    pct = crop / resize
    for _ in range(64):
        got = math.floor(crop / pct)
        if got == resize:
            return pct
        pct = math.nextafter(pct, 0.0 if got < resize else 2.0)
    raise SystemExit(f"no crop_pct gives resize {resize} for crop {crop}")


def torchvision_tags(arch: str, kwargs: dict[str, Any], fixed_input_size: bool) -> dict[str, dict[str, Any]]:
    """``<arch>.tv_<weights>`` rows for the torchvision weights of the variant's architecture; where
    the variant fixes its input size (ViT, Swin), only those whose crop is that size."""
    from torchvision.models import get_model_weights
    from paddle_vit.convert.layouts import TORCHVISION_NAMES
    tv_name = TORCHVISION_NAMES.get(arch)
    if tv_name is None:
        return {}
    size = kwargs.get("img_size", 224)
    rows = {}
    for weights in get_model_weights(tv_name):
        t = weights.transforms()
        crop, resize = t.crop_size[0], t.resize_size[0]
        if fixed_input_size and (size, size) != (crop, crop) and size != (crop, crop):
            continue
        rows[f"{arch}.tv_{weights.name.lower()}"] = dict(
            source="torchvision", num_classes=len(weights.meta["categories"]), input_size=(3, crop, crop),
            interpolation=t.interpolation.value, mean=tuple(t.mean), std=tuple(t.std),
            crop_pct=crop_pct_for(crop, resize), crop_mode="center", fixed_input_size=fixed_input_size,
            url=weights.url, torchvision_weights=f"{type(weights).__name__}.{weights.name}",
            license=weights.meta.get("license"))
    return rows


def compute() -> dict[str, dict[str, Any]]:
    """Table module name (``paddle_vit.zoo.vit``) -> its ``TAGS``, ``DEFAULT_TAGS``, ``NOT_IN_TIMM``."""
    from paddle_vit.zoo import TABLES
    out = {}
    for table in TABLES:
        tags: dict[str, dict[str, Any]] = {}
        defaults: dict[str, str] = {}
        not_in_timm = []
        for arch in sorted(table.VARIANTS):
            rows, default = timm_tags(arch)
            if not rows:
                not_in_timm.append(arch)
            if default is not None:
                defaults[arch] = default.partition(".")[2]
            fixed = rows[default]["fixed_input_size"] if default in rows else False
            rows.update(torchvision_tags(arch, table.VARIANTS[arch], fixed))
            tags.update(rows)
        out[table.__name__] = dict(
            TAGS={name: _row_data(tags[name]) for name in sorted(tags)},
            DEFAULT_TAGS=dict(sorted(defaults.items())), NOT_IN_TIMM=tuple(not_in_timm))
    return out


def _row_data(data: dict[str, Any]) -> dict[str, Any]:
    """Fields in ``TagRow`` order; optional fields at their default left out."""
    row = {}
    for field in FIELDS[1:]:
        value = _plain(data.get(field))
        if field in REQUIRED or value != DEFAULTS[field]:
            row[field] = value
    return row


def _versions() -> str:
    import timm
    import torchvision
    return f"timm {timm.__version__} and torchvision {torchvision.__version__.split('+')[0]}"


def render(table: str, data: dict[str, Any]) -> str:
    """The text of ``<table>_tags.py``: one line per tag."""
    zoo_file = table.replace(".", "/") + ".py"
    lines = [f'"""Pretrained tags of the variants in ``{zoo_file}``: generated by',
             f"``python tools/gen_pretrained_tags.py`` from {_versions()}. Do not edit by hand;",
             'read by ``paddle_vit.pretrained`` (field meanings: ``paddle_vit.pretrained.TagRow``)."""',
             "from __future__ import annotations", "", "from typing import Any", "",
             "# '<arch>.<tag>' -> where the weights are and how to feed them",
             "TAGS: dict[str, dict[str, Any]] = {"]
    lines += [f"    {name!r}: {row!r}," for name, row in data["TAGS"].items()]
    lines += ["}", "", "# arch -> timm's default tag (its first; the one a bare arch name means)",
              "DEFAULT_TAGS: dict[str, str] = {"]
    lines += [f"    {arch!r}: {tag!r}," for arch, tag in data["DEFAULT_TAGS"].items()]
    lines += ["}", "", "# registered variants that timm does not know (no timm tags)",
              "NOT_IN_TIMM: tuple[str, ...] = " + pprint.pformat(data["NOT_IN_TIMM"], width=100, compact=True), ""]
    return "\n".join(lines)


def imagenet_classes_text() -> str:
    """``paddle_vit/data/imagenet_classes.py``: index -> (WordNet synset, torchvision's short name)."""
    from timm.data import ImageNetInfo
    from torchvision.models._meta import _IMAGENET_CATEGORIES
    info = ImageNetInfo()
    if info.num_classes() != 1000 or len(_IMAGENET_CATEGORIES) != 1000:
        raise SystemExit("expected 1000 ImageNet-1k classes from timm and torchvision")
    lines = ['"""ImageNet-1k class index -> (WordNet synset id, short name, description): generated by',
             f"``python tools/gen_pretrained_tags.py`` from {_versions()} (synsets and descriptions",
             'timm\'s, short names torchvision\'s; two short names repeat: crane, maillot). Do not edit by hand."""',
             "from __future__ import annotations", "",
             "IMAGENET1K_CLASSES: tuple[tuple[str, str, str], ...] = ("]
    for i in range(1000):
        entry = (info.index_to_label_name(i), _IMAGENET_CATEGORIES[i], info.index_to_description(i))
        lines.append(f"    {entry!r},")
    lines += [")", ""]
    return "\n".join(lines)


def outputs() -> dict[Path, str]:
    """Every generated file and the text it should have."""
    files = {ROOT / (table.replace(".", "/") + "_tags.py"): render(table, data) for table, data in compute().items()}
    files[ROOT / "paddle_vit" / "data" / "imagenet_classes.py"] = imagenet_classes_text()
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        current = path.read_text() if path.exists() else None
        if current == text:
            print(f"up to date  {path.relative_to(ROOT)}")
            continue
        stale.append(path)
        if args.check:
            print(f"OUT OF DATE {path.relative_to(ROOT)}")
        else:
            from paddle_vit.convert.io import atomic_output
            with atomic_output(path, force=True) as tmp:
                tmp.write_text(text)
            print(f"written     {path.relative_to(ROOT)} ({text.count(chr(10))} lines)")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
