"""torch checkpoints (``.pth``, ``.pt``, ``.bin``, ``.ckpt``): read with ``torch.load(weights_only=True)``,
memory-mapped where every record has been checked against what the pickle declares.

``torch.load(mmap=True)`` maps the whole file and takes each storage as ``numel x itemsize``
bytes from where its record starts, without comparing that with the record's size: a crafted
zip whose pickle declares a storage larger than its record hands out the bytes of the next
record as weights (the plain loader refuses: "record size does not match"), and a deflated
record is handed out still compressed. So before mapping, ``storage_check`` runs the zip's
``data.pkl`` on ``pickle_vm`` (inert: it only records each persistent ID ``('storage', type,
key, location, numel)``) and compares every declaration with its stored record. A zip with a
compressed record, or a pickle this scan cannot vouch for, is read by ``torch.load`` without
mmap, which decompresses and checks sizes itself (and holds the checkpoint in memory, as
``torch.load`` does).
"""
from __future__ import annotations

import pickle
import re
import struct
import warnings
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from paddle_vit.convert.core import ConversionError
from paddle_vit.convert.files import contiguous, first_line, open_for_writing, unnest
from paddle_vit.convert.pdparams import budget_for
from paddle_vit.convert.pickle_vm import Policy, Refused, Symbol, load

MIN_SAFE_TORCH = (2, 6)
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., file name length, extra field length


def torch_is_safe(version: str) -> bool:
    """Whether this torch's ``weights_only=True`` can be trusted with a hostile file (>= 2.6)."""
    parts = []
    for piece in version.split("+")[0].split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts) >= MIN_SAFE_TORCH


class _Opaque:
    """Whatever a torch pickle builds: the scan does not need it."""


_OPAQUE = _Opaque()


class StorageScan(Policy):
    """Records the storages a torch pickle declares; builds nothing (every call is opaque)."""

    def __init__(self) -> None:
        self.storages: list[tuple[str, str, int]] = []  # (key, storage type name, numel)

    def find(self, symbol: Symbol) -> Any:
        return symbol

    def reduce(self, func: Any, args: tuple) -> Any:
        return _OPAQUE

    def build(self, obj: Any, state: Any) -> Any:
        return obj

    def setitem(self, target: Any, key: Any, value: Any) -> None:
        pass

    def append(self, target: Any, value: Any) -> None:
        pass

    def persistent(self, pid: Any) -> Any:
        typename = bytes(pid[0]).decode("ascii", "replace") if type(pid) is tuple and pid and \
            type(pid[0]) is memoryview else (pid[0] if type(pid) is tuple and pid else None)
        if (type(pid) is not tuple or len(pid) != 5 or typename != "storage" or not isinstance(pid[1], Symbol)
                or type(pid[2]) is not str or type(pid[4]) is not int or pid[4] < 0):
            raise Refused("corrupt", "a persistent ID that is not ('storage', type, key, location, numel)")
        self.storages.append((pid[2], pid[1].name, pid[4]))
        return _OPAQUE


def _itemsize(storage_type: str) -> int | None:
    """Bytes per element of a pickled storage type (``FloatStorage``: 4), as ``torch.load`` reads it."""
    import torch
    if storage_type == "UntypedStorage":
        return 1
    try:
        return torch.serialization.StorageType(storage_type).dtype.itemsize
    except (KeyError, AttributeError):
        return None


def storage_check(path: Path) -> bool:
    """Whether ``torch.load(path, mmap=True)`` reads exactly the bytes the pickle declares: every
    declared storage has a stored (uncompressed) record of exactly ``numel x itemsize`` bytes inside
    the file. ``False``: read without mmap (torch checks sizes itself). Raises ``ConversionError``
    listing every record whose size differs from its declaration."""
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            names = [i.filename for i in infos]
            if len({n.lower() for n in names}) != len(names) or not names or "/" not in names[0]:
                return False  # duplicate or odd names: let torch's own reader judge, without mmap
            prefix = names[0].split("/", 1)[0]
            by_name = {i.filename: i for i in infos}
            pkl = by_name.get(f"{prefix}/data.pkl")
            if pkl is None or any(i.compress_type != zipfile.ZIP_STORED for i in infos):
                return False
            data = z.read(pkl)
        with open(path, "rb") as f:
            offsets = {i.filename: _data_offset(f, i) for i in infos}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, struct.error, NotImplementedError):
        return False  # torch.load reports what is wrong with the zip
    scan = StorageScan()
    try:
        load(data, scan, budget_for(len(data)))
    except Refused:
        return False
    problems = []
    for key, storage_type, numel in scan.storages:
        itemsize = _itemsize(storage_type)
        if itemsize is None:
            return False
        info = by_name.get(f"{prefix}/data/{key}")
        if info is None:
            problems.append(f"storage {key!r} is declared in data.pkl but the zip has no record data/{key}")
            continue
        want = numel * itemsize
        if info.file_size != want:
            problems.append(f"record data/{key} holds {info.file_size} bytes; data.pkl declares {numel} x "
                            f"{storage_type.removesuffix('Storage')} = {want} bytes (torch.load without mmap "
                            "refuses it too: record size does not match)")
        elif offsets[info.filename] is None or offsets[info.filename] + want > size:
            problems.append(f"record data/{key} lies outside the file (truncated?)")
    if problems:
        raise ConversionError(f"cannot read {path}", problems)
    return True


def _data_offset(f: Any, info: zipfile.ZipInfo) -> int | None:
    f.seek(info.header_offset)
    header = f.read(_LOCAL_HEADER.size)
    if len(header) < _LOCAL_HEADER.size:
        return None
    signature, name_len, extra_len = _LOCAL_HEADER.unpack(header)
    if signature != b"PK\x03\x04":
        return None
    return info.header_offset + _LOCAL_HEADER.size + name_len + extra_len


def read_torch(path: Path) -> dict[str, Any]:
    """A torch ``.pth`` state_dict, read with ``weights_only=True``: a pickle that would run code is
    refused. Zip files whose records all match their declarations are memory-mapped (tensors are
    paged in on use); others are read into memory by ``torch.load``, which checks them."""
    import torch
    if not torch_is_safe(torch.__version__):
        raise ConversionError(f"refused to load {path}", [
            f"torch {torch.__version__} can run code from a crafted file even with weights_only=True "
            "(CVE-2025-32434); install torch >= 2.6 or convert from a .safetensors file"])
    mapped = zipfile.is_zipfile(path) and storage_check(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=mapped)
    except pickle.UnpicklingError as exc:
        raise ConversionError(f"refused to load {path}", [_weights_only_refusal(str(exc))]) from None
    except Exception as exc:  # truncated zip, random bytes, wrong format, record size mismatch
        raise ConversionError(f"cannot read {path}", [
            f"not a readable torch checkpoint (truncated or corrupt?): {type(exc).__name__}: {first_line(exc)}"]) from None
    return unnest(obj, path)


def _weights_only_refusal(message: str) -> str:
    """What torch's weights-only unpickler stopped at, in one line."""
    found = re.search(r"Unsupported global: GLOBAL (\S+)", message)
    if found:
        return (f"the file references {found.group(1)}, which is not a tensor type: unpickling it could run code, "
                "so it is not loaded (a checkpoint holds tensors only; safetensors cannot hold code at all)")
    found = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n\n|$)", message, re.S)
    detail = " ".join(found.group(1).split())[:200] if found else first_line(Exception(message))
    return (f"not a plain torch checkpoint: the weights-only unpickler stopped at '{detail}' "
            "(random bytes, or a pickle of objects other than tensors; neither is loaded)")


def write_torch(state: Mapping[str, np.ndarray], target: Any) -> None:
    """A torch state_dict file (``torch.save``), tensors sharing the arrays' memory, to a path or a
    binary file object. Through a Python file, so that a failed write is an ``OSError`` with its
    errno (torch's own file writer reports a full disk as a ``RuntimeError`` without one)."""
    import torch
    with warnings.catch_warnings():  # read-only arrays (a memory-mapped input): torch.save only reads them
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        tensors = {k: torch.from_numpy(contiguous(v)) for k, v in state.items()}
    with open_for_writing(target) as f:
        try:
            torch.save(tensors, f)
        except RuntimeError as exc:  # torch's zip writer fails again on closing, hiding the OSError
            cause = exc.__context__
            while cause is not None and not isinstance(cause, OSError):
                cause = cause.__context__
            if cause is None:
                raise
            raise cause from None
