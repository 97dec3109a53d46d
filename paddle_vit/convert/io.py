"""Reading and writing checkpoints safely: no file can run code, no output is ever half-written.

Reading (one ``read_checkpoint`` for every format):
- torch files: ``torch.load(weights_only=True)`` (torch >= 2.6 only: older versions could still run
  code, CVE-2025-32434), memory-mapped once every record matches its declared size (``pth``);
- ``.pdparams``: our own pickle interpreter, which builds plain containers and numeric arrays and
  nothing else, within a memory budget set by the file's size (``pdparams``, ``pickle_vm``);
- ``.safetensors``: holds no code; tensors are read on access.
Writing: into a file that appears at its destination only when complete, never over a file that
exists unless asked (``atomic``). Writers stream each array to disk without building the file in
memory, to a path or a file object; a failed write is one ``ConversionError`` naming the reason.
"""
from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Mapping

import numpy as np

from paddle_vit.convert.atomic import AtomicFile, atomic_output, check_output, temp_name
from paddle_vit.convert.core import ConversionError
from paddle_vit.convert.files import CONFIG_KEY, DDP_PREFIX, NESTED_KEYS, ParamState, check_file, checked_config, \
    contiguous, first_line, open_for_writing, os_reason
from paddle_vit.convert.pdparams import read_pdparams, write_pdparams
from paddle_vit.convert.pth import MIN_SAFE_TORCH, read_torch, storage_check, torch_is_safe, write_torch

TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")
PADDLE_SUFFIXES = (".pdparams",)
SAFETENSORS_SUFFIXES = (".safetensors",)
# numpy dtype -> safetensors dtype tag
_ST_DTYPES = {"float64": "F64", "float32": "F32", "float16": "F16", "int64": "I64", "int32": "I32",
              "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL"}


class SafetensorsState(Mapping):
    """The tensors of a ``.safetensors`` file, each read when first asked for; ``shapes``, ``dtypes``
    (safetensors tags: ``'F32'``, ``'F8_E4M3'``...) and ``metadata`` come from the header (validated by
    the safetensors library on open)."""

    def __init__(self, path: Path) -> None:
        from safetensors import safe_open
        try:
            self._file = safe_open(str(path), framework="pt")
            self.metadata: dict[str, str] = self._file.metadata() or {}
            slices = {k: self._file.get_slice(k) for k in self._file.keys()}
            self.shapes = {k: tuple(s.get_shape()) for k, s in slices.items()}
            self.dtypes = {k: s.get_dtype() for k, s in slices.items()}
        except Exception as exc:
            raise ConversionError(f"cannot read {path}", [
                f"not a readable safetensors file (truncated or corrupt header?): {type(exc).__name__}: "
                f"{first_line(exc)}"]) from None
        self.path = path
        try:
            self.config = checked_config(json.loads(self.metadata.get("config", "{}")), path)
        except json.JSONDecodeError:
            raise ConversionError(f"cannot read {path}", ["its 'config' metadata is not JSON"]) from None
        if not self.shapes:
            raise ConversionError(f"{path} is not a checkpoint", ["the safetensors file holds no tensors"])

    def __getitem__(self, key: str) -> Any:
        if key not in self.shapes:
            raise KeyError(key)
        try:
            return self._file.get_tensor(key)
        except Exception as exc:
            raise ConversionError(f"cannot read {self.path}", [
                f"tensor {key!r} is unreadable (truncated file?): {type(exc).__name__}: {first_line(exc)}"]) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.shapes)

    def __len__(self) -> int:
        return len(self.shapes)


def read_checkpoint(path: str | os.PathLike, fmt: str | os.PathLike | None = None
                    ) -> tuple[Mapping[str, Any], str]:
    """``(state_dict, layout)`` where layout is ``'paddle'`` (our Paddle keys and shapes) or ``'torch'``.
    The format comes from ``fmt``'s suffix (default: ``path``'s)."""
    path = Path(path)
    check_file(path)
    suffix = Path(fmt or path).suffix.lower()
    if suffix in TORCH_SUFFIXES:
        return read_torch(path), "torch"
    if suffix in PADDLE_SUFFIXES:
        return read_pdparams(path), "paddle"
    if suffix in SAFETENSORS_SUFFIXES:
        state = SafetensorsState(path)
        return state, "paddle" if state.metadata.get("format") == "paddle" else "torch"
    raise ConversionError(f"cannot read {path}", [f"unknown file type {suffix!r}; expected one of "
                                                  f"{TORCH_SUFFIXES + PADDLE_SUFFIXES + SAFETENSORS_SUFFIXES}"])


def write_safetensors(state: Mapping[str, np.ndarray], target: str | os.PathLike | BinaryIO,
                      metadata: Mapping[str, str] | None = None) -> None:
    """A ``.safetensors`` file written tensor by tensor (the library's ``save_file`` first builds
    a bytes copy of every tensor), to a path or a binary file object. Layout: 8-byte header length,
    JSON header, raw little-endian data."""
    header: dict[str, Any] = {"__metadata__": dict(metadata)} if metadata else {}
    arrays, offset = {}, 0
    for key, value in state.items():
        array = contiguous(value)
        tag = _ST_DTYPES.get(array.dtype.name)
        if tag is None:
            raise ConversionError(f"not writing {target}", [f"{key!r}: dtype {array.dtype} has no safetensors tag"])
        if array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("<"))
        header[key] = {"dtype": tag, "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
        arrays[key] = array
        offset += array.nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # the data starts 8-byte aligned
    with open_for_writing(target) as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for array in arrays.values():
            f.write(memoryview(array).cast("B") if array.size else b"")


def write_checkpoint(state: Mapping[str, np.ndarray], path: str | os.PathLike | BinaryIO, layout: str,
                     fmt: str | os.PathLike | None = None, config: Mapping | None = None) -> None:
    """Write ``state`` to ``path`` (or a binary file object) in the format that ``fmt``'s suffix
    names (default: ``path``'s; a temporary file is written in its destination's format).
    ``layout`` ('paddle' or 'torch') says whose keys it holds; safetensors metadata records it so
    that readers can tell. ``config``: constructor arguments the weights need (Paddle files record
    them; see ``paddle_vit.convert.pretrained``). A failed write (a full disk, no permission) is a ``ConversionError``
    naming ``fmt`` (or ``path``) and the reason."""
    suffix = check_destination(fmt or path, layout)
    try:
        if suffix in SAFETENSORS_SUFFIXES:
            meta = {"format": "paddle" if layout == "paddle" else "pt"}
            if config and layout == "paddle":
                meta["config"] = json.dumps(dict(config))
            write_safetensors(state, path, meta)
        elif suffix in PADDLE_SUFFIXES:
            write_pdparams(state, path, config if layout == "paddle" else None)
        else:
            write_torch(state, path)
    except OSError as exc:
        raise ConversionError(f"cannot write {fmt or path}", [os_reason(exc)]) from None


def check_destination(dst: str | os.PathLike, layout: str) -> str:
    """``dst``'s suffix, if it can hold a ``layout`` checkpoint; an error (before any work) if not."""
    if layout not in ("paddle", "torch"):
        raise ValueError(f"layout must be 'paddle' or 'torch', got {layout!r}")
    suffix = Path(dst).suffix.lower()
    allowed = (PADDLE_SUFFIXES if layout == "paddle" else TORCH_SUFFIXES) + SAFETENSORS_SUFFIXES
    if suffix not in allowed:
        raise ConversionError(f"not writing {dst}", [f"a {layout} checkpoint is written as one of {allowed}, "
                                                     f"not {suffix or 'a name without suffix'!r}"])
    return suffix


def save_paddle(state: Mapping[str, np.ndarray], dst: str | os.PathLike, force: bool = False,
                config: Mapping | None = None) -> None:
    """Write a Paddle state_dict to ``.pdparams`` or ``.safetensors`` (format=paddle), atomically:
    ``dst`` appears complete or not at all, and an existing ``dst`` is kept unless ``force``."""
    check_destination(dst, "paddle")
    with atomic_output(dst, force) as tmp:
        write_checkpoint(state, tmp, "paddle", fmt=dst, config=config)


__all__ = ["AtomicFile", "CONFIG_KEY", "DDP_PREFIX", "MIN_SAFE_TORCH", "NESTED_KEYS", "PADDLE_SUFFIXES", "ParamState", "SAFETENSORS_SUFFIXES",
           "SafetensorsState", "TORCH_SUFFIXES", "atomic_output", "check_destination", "check_output",
           "read_checkpoint", "read_pdparams", "read_torch", "save_paddle", "storage_check", "temp_name",
           "torch_is_safe", "write_checkpoint", "write_pdparams", "write_safetensors", "write_torch"]
