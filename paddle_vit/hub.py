"""``pretrained=True``: a tag's checkpoint fetched where its source keeps it, converted once.

Where the file comes from:
- a tag with a Hugging Face Hub repo (every timm tag with weights): ``huggingface_hub.hf_hub_download``,
  so its cache, ``HF_HOME`` / ``HF_HUB_CACHE``, ``HF_HUB_OFFLINE``, ``HF_ENDPOINT`` and tokens
  (``HF_TOKEN``, ``hf auth login``) work as for timm. Files are tried in timm's order: the
  safetensors file first (``model.safetensors``), then ``pytorch_model.bin``;
- a tag with only a URL (torchvision's weights): torch.hub's cache (``$TORCH_HOME/hub/checkpoints``),
  downloaded there with its hash checked when missing (not when ``HF_HUB_OFFLINE`` is set).

The converted Paddle file is kept in a cache of our own (``$PADDLE_VIT_CACHE``, else
``$XDG_CACHE_HOME/paddle_vit``, else ``~/.cache/paddle_vit``): ``converted/<tag>/<key>.pdparams``
beside a manifest ``<key>.json`` (key: tag + constructor arguments + converter format), written
after the file. An entry is used only if its manifest names the same source file (repo, commit,
blob, size) and the file has the recorded size and SHA-256; anything else (truncated, edited,
from another revision of the repo) is rebuilt, with a warning, and never loaded.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlparse

from paddle_vit.pretrained import TagRow

CACHE_ENV = "PADDLE_VIT_CACHE"
# Bump when the converted file for the same source and arguments can change.
CONVERTED_FORMAT = 1
HF_SAFE_WEIGHTS = "model.safetensors"
HF_WEIGHTS = "pytorch_model.bin"


class PretrainedUnavailable(ValueError):
    """A tag's checkpoint cannot be found or fetched; the message says where it looked and what to do."""


@dataclass(frozen=True)
class SourceFile:
    path: Path
    identity: dict[str, Any]   # what the converted cache entry must have been made from


def cache_dir() -> Path:
    """Where converted checkpoints are kept."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "paddle_vit"


def hf_candidates(filename: str | None) -> list[str]:
    """The files timm tries for a repo, in its order (a safetensors alternative first)."""
    filename = filename or HF_WEIGHTS
    if filename.endswith(".safetensors"):
        return [filename]
    if filename == HF_WEIGHTS:
        return [HF_SAFE_WEIGHTS, HF_WEIGHTS]
    if filename.endswith(".bin"):
        return [filename[:-4] + ".safetensors", filename]
    return [filename]


def _local_path_hint(row: TagRow, how: str, filename: str) -> str:
    return (f"{how} and pass the file instead: create_model({row.name!r}, pretrained='/path/to/{filename}') "
            f"or paddle-vit predict IMAGE --model {row.name} --checkpoint /path/to/{filename}")


def fetch_hf(row: TagRow) -> SourceFile:
    """The tag's file from the Hugging Face Hub (cache first, as ``huggingface_hub`` decides)."""
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)
    repo, _, revision = row.hf_hub_id.partition("@")
    files = hf_candidates(row.hf_hub_filename)
    problems = []
    cache_only = False  # once the Hub cannot be reached, the other candidates are looked up in the cache only
    for filename in files:
        try:
            path = Path(hf_hub_download(repo, filename, revision=revision or None, local_files_only=cache_only))
        except LocalEntryNotFoundError as exc:  # (a subclass of EntryNotFoundError: first)
            problems.append(f"{filename}: not in the cache, and it cannot be downloaded now ({_first_line(exc)})")
            cache_only = True
            continue
        except EntryNotFoundError:
            problems.append(f"{filename}: the repo has no such file")
            continue
        except GatedRepoError:
            raise PretrainedUnavailable(
                f"the Hugging Face repo {repo!r} of {row.name!r} is gated: accept its terms on the Hub and log in "
                "(`hf auth login`, or set HF_TOKEN)") from None
        except RepositoryNotFoundError:
            raise PretrainedUnavailable(
                f"the Hugging Face repo {repo!r} of {row.name!r} was not found at {constants.ENDPOINT} "
                "(private? log in with `hf auth login` or set HF_TOKEN; another hub? set HF_ENDPOINT)") from None
        except RevisionNotFoundError:
            raise PretrainedUnavailable(f"the Hugging Face repo {repo!r} has no revision {revision!r}") from None
        except (HfHubHTTPError, OSError) as exc:
            problems.append(f"{filename}: {type(exc).__name__}: {_first_line(exc)}")
            continue
        resolved = path.resolve()
        identity = {"kind": "huggingface", "repo": repo, "revision": revision or "main", "filename": filename,
                    "commit": path.parent.name, "blob": resolved.name, "size": resolved.stat().st_size}
        return SourceFile(path, identity)
    offline = " (HF_HUB_OFFLINE is set)" if constants.HF_HUB_OFFLINE else ""
    raise PretrainedUnavailable("\n  ".join([
        f"cannot get the weights of {row.name!r}: Hugging Face repo {repo!r}, file "
        f"{' or '.join(repr(f) for f in files)}, is not in the cache {constants.HF_HUB_CACHE}{offline}", *problems,
        _local_path_hint(row, f"download it where the Hub can be reached (`hf download {repo} {files[0]}`)", files[0])]))


def fetch_url(row: TagRow) -> SourceFile:
    """The tag's file from its URL, through torch.hub's cache (torchvision's weights)."""
    import torch.hub
    from huggingface_hub import constants
    name = os.path.basename(urlparse(row.url).path)
    if name.endswith(".npz"):
        raise PretrainedUnavailable(f"{row.name!r} has no Hugging Face repo and its original file {row.url} is a "
                                    "JAX .npz, which the converter does not read")
    path = Path(torch.hub.get_dir()) / "checkpoints" / name
    if not path.is_file():
        if constants.HF_HUB_OFFLINE:
            raise PretrainedUnavailable("\n  ".join([
                f"cannot get the weights of {row.name!r}: {path} is not there and HF_HUB_OFFLINE is set "
                f"(not downloading {row.url})", _local_path_hint(row, f"download {row.url}", name)]))
        found = torch.hub.HASH_REGEX.search(name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(row.url, str(path), found.group(1) if found else None, progress=True)
        except Exception as exc:  # no network, HTTP error, hash mismatch (the partial file is removed)
            raise PretrainedUnavailable("\n  ".join([
                f"cannot download the weights of {row.name!r} from {row.url} to {path}: "
                f"{type(exc).__name__}: {_first_line(exc)}", _local_path_hint(row, f"download {row.url}", name)])) from None
    stat = path.stat()
    return SourceFile(path, {"kind": "url", "url": row.url, "path": str(path), "size": stat.st_size,
                             "mtime_ns": stat.st_mtime_ns})


def fetch(row: TagRow) -> SourceFile:
    """The source checkpoint of a tag with weights."""
    if row.hf_hub_id:
        return fetch_hf(row)
    if row.url:
        return fetch_url(row)
    raise PretrainedUnavailable(f"{row.name!r} has no pretrained weights")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:240]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def entry_paths(row: TagRow, kwargs: Mapping[str, Any]) -> tuple[Path, Path]:
    """``(converted file, manifest)`` of the cache entry for a tag built with ``kwargs``."""
    key_data = {"format": CONVERTED_FORMAT, "tag": row.name, "kwargs": kwargs}
    key = hashlib.sha256(json.dumps(key_data, sort_keys=True, default=repr).encode()).hexdigest()[:16]
    folder = cache_dir() / "converted" / re.sub(r"[^A-Za-z0-9._-]", "_", row.name)
    return folder / f"{key}.pdparams", folder / f"{key}.json"


def check_entry(weights: Path, manifest: Path, source: SourceFile, kwargs: Mapping[str, Any]) -> str | None:
    """``None`` if the cache entry is complete and was made from ``source``; else why not."""
    if not manifest.exists() and not weights.exists():
        return "missing"
    try:
        info = json.loads(manifest.read_text())
    except (OSError, ValueError) as exc:
        return f"its manifest {manifest.name} is unreadable ({type(exc).__name__})"
    if not isinstance(info, dict):
        return f"its manifest {manifest.name} is not a JSON object"
    if info.get("format") != CONVERTED_FORMAT:
        return f"it was written by converter format {info.get('format')}, this is {CONVERTED_FORMAT}"
    old = info.get("source") if isinstance(info.get("source"), dict) else {}
    if old != source.identity:
        changed = [f"{k} {old.get(k)} -> {source.identity.get(k)}" for k in sorted(set(old) | set(source.identity))
                   if old.get(k) != source.identity.get(k)]
        return f"it was converted from another file ({'; '.join(changed)})"
    if info.get("kwargs") != json.loads(json.dumps(kwargs, sort_keys=True, default=repr)):
        return "it was converted for other constructor arguments"
    if not weights.is_file():
        return f"{weights.name} is missing"
    size = weights.stat().st_size
    if size != info.get("size"):
        return f"{weights.name} has {size} bytes, the manifest says {info.get('size')} (truncated?)"
    if _sha256(weights) != info.get("sha256"):
        return f"{weights.name} does not have the SHA-256 its manifest records (corrupt)"
    return None


def load_tag(model: Any, row: TagRow, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Load tag ``row``'s weights into ``model`` (built with ``kwargs``) from the converted cache,
    converting (and caching) first where the entry is missing, stale or corrupt. Returns what was
    done: ``source`` (the fetched file), ``cache`` (the converted file), ``from_cache``, ``rebuilt``
    (the reason an existing entry was replaced, or ``None``)."""
    from paddle_vit.convert import ConversionError, convert_state_dict, load_pretrained, load_state_dict_strict
    from paddle_vit.convert.io import atomic_output, read_checkpoint, write_checkpoint
    source = fetch(row)
    weights, manifest = entry_paths(row, kwargs)
    reason = check_entry(weights, manifest, source, kwargs)
    if reason is None:
        try:
            load_pretrained(model, weights)
            return {"source": str(source.path), "cache": str(weights), "from_cache": True, "rebuilt": None}
        except ConversionError as exc:  # hash matched but unreadable: rebuild all the same
            reason = f"{weights.name} is unreadable: {exc.problems[:1]}"
    rebuilt = None if reason == "missing" else reason
    if rebuilt:
        warnings.warn(f"paddle_vit: rebuilding the converted cache entry {weights} of {row.name}: {reason}",
                      stacklevel=3)
    state, layout = read_checkpoint(source.path)
    converted = convert_state_dict(state, model, row.source) if layout == "torch" else state
    load_state_dict_strict(model, converted)
    try:
        weights.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(weights, force=True) as tmp:
            write_checkpoint(converted, tmp, "paddle", fmt=weights)
        info = {"format": CONVERTED_FORMAT, "tag": row.name, "source": source.identity,
                "kwargs": json.loads(json.dumps(kwargs, sort_keys=True, default=repr)),
                "size": weights.stat().st_size, "sha256": _sha256(weights)}
        with atomic_output(manifest, force=True) as tmp:
            tmp.write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    except (OSError, ConversionError) as exc:  # a read-only cache costs a conversion next time, nothing else
        warnings.warn(f"paddle_vit: could not cache the converted weights in {weights.parent}: {exc}", stacklevel=3)
        return {"source": str(source.path), "cache": None, "from_cache": False, "rebuilt": rebuilt}
    return {"source": str(source.path), "cache": str(weights), "from_cache": False, "rebuilt": rebuilt}
