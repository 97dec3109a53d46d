"""Reading and writing checkpoints safely: no file can run code, no output is ever half-written.

Reading: torch files go through ``torch.load(weights_only=True)`` (torch >= 2.6 only: older
versions could still run code, CVE-2025-32434); ``.pdparams`` files through a restricted
unpickler of our own (``paddle.load`` would unpickle anything); ``.safetensors`` holds no code.
Writing: to a temporary file beside the destination, renamed into place only when complete.
Both sides work tensor by tensor: zip ``.pth`` files are memory-mapped, safetensors tensors are
read on access, and writers stream each array to disk without building the file in memory.
"""
from __future__ import annotations

import json
import os
import pickle
import re
import struct
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np

from paddle_vit.convert.core import ConversionError

TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")
PADDLE_SUFFIXES = (".pdparams",)
SAFETENSORS_SUFFIXES = (".safetensors",)
# Training scripts nest the weights; the first of these keys that holds a dict is taken.
NESTED_KEYS = ("state_dict", "model", "model_ema", "state_dict_ema", "module")
DDP_PREFIX = "module."
MIN_SAFE_TORCH = (2, 6)
# What a .pdparams file may reference: numpy arrays (protocol <= 4 via _reconstruct, protocol 5
# via _frombuffer), dtypes, ordered dicts. Each only builds an array or a container.
_PDPARAMS_GLOBALS = {
    ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.numeric", "_frombuffer"), ("numpy.core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict"),
}
# The constructor arguments a Paddle file's weights need (paddle_vit.convert.pretrained): a plain
# dict of numbers and strings, in a .pdparams beside Paddle's own "StructuredToParameterName@@"
# entry, in safetensors metadata as JSON.
CONFIG_KEY = "paddle_vit_config@@"
# numpy dtype -> safetensors dtype tag
_ST_DTYPES = {"float64": "F64", "float32": "F32", "float16": "F16", "int64": "I64", "int32": "I32",
              "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL"}


def _contiguous(value: Any) -> np.ndarray:
    """A C-contiguous array, keeping 0-d arrays 0-d (``np.ascontiguousarray`` makes them 1-d)."""
    array = np.asarray(value)
    return array if array.flags.c_contiguous else array.copy(order="C")


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _PDPARAMS_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed in a parameter file")


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ConversionError(f"cannot read {path}", ["no such file"])
    if not path.is_file():
        raise ConversionError(f"cannot read {path}", ["not a regular file (a directory?)"])
    if path.stat().st_size == 0:
        raise ConversionError(f"cannot read {path}", ["the file is empty"])


def _unnest(obj: Any, path: Path) -> dict[str, Any]:
    if isinstance(obj, dict):
        for key in NESTED_KEYS:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(k, str) for k in obj):
        raise ConversionError(f"{path} is not a checkpoint",
                              [f"expected a state_dict (str -> tensor), possibly under one of {NESTED_KEYS}; "
                               f"found {type(obj).__name__}" + (" (empty)" if isinstance(obj, dict) and not obj else "")])
    if all(k.startswith(DDP_PREFIX) for k in obj):  # saved from a DistributedDataParallel wrapper
        obj = {k[len(DDP_PREFIX):]: v for k, v in obj.items()}
    return obj


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def torch_is_safe(version: str) -> bool:
    """Whether this torch's ``weights_only=True`` can be trusted with a hostile file (>= 2.6)."""
    parts = []
    for piece in version.split("+")[0].split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts) >= MIN_SAFE_TORCH


def read_torch(path: Path) -> dict[str, Any]:
    """A torch ``.pth`` state_dict, read with ``weights_only=True``: a pickle that would run code is
    refused. Zip files (``torch.save`` since 1.6) are memory-mapped, so tensors are paged in on use."""
    import torch
    if not torch_is_safe(torch.__version__):
        raise ConversionError(f"refused to load {path}", [
            f"torch {torch.__version__} can run code from a crafted file even with weights_only=True "
            "(CVE-2025-32434); install torch >= 2.6 or convert from a .safetensors file"])
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as exc:
        raise ConversionError(f"refused to load {path}", [_weights_only_refusal(str(exc))]) from None
    except Exception as exc:  # truncated zip, random bytes, wrong format
        raise ConversionError(f"cannot read {path}", [
            f"not a readable torch checkpoint (truncated or corrupt?): {type(exc).__name__}: {_first_line(exc)}"]) from None
    return _unnest(obj, path)


def _weights_only_refusal(message: str) -> str:
    """What torch's weights-only unpickler stopped at, in one line."""
    found = re.search(r"Unsupported global: GLOBAL (\S+)", message)
    if found:
        return (f"the file references {found.group(1)}, which is not a tensor type: unpickling it could run code, "
                "so it is not loaded (a checkpoint holds tensors only; safetensors cannot hold code at all)")
    found = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n\n|$)", message, re.S)
    detail = " ".join(found.group(1).split())[:200] if found else _first_line(Exception(message))
    return (f"not a plain torch checkpoint: the weights-only unpickler stopped at '{detail}' "
            "(random bytes, or a pickle of objects other than tensors; neither is loaded)")


def read_pdparams(path: Path) -> dict[str, Any]:
    """A ``paddle.save`` state_dict, through an unpickler that admits numpy arrays only
    (``paddle.load`` would unpickle anything)."""
    try:
        with open(path, "rb") as f:
            obj = _NumpyOnlyUnpickler(f).load()
    except pickle.UnpicklingError as exc:
        if "is not allowed" not in str(exc):
            raise ConversionError(f"cannot read {path}", [
                f"not a readable .pdparams file (truncated or corrupt?): {_first_line(exc)}"]) from None
        raise ConversionError(f"refused to load {path}", [
            f"the file is not a plain parameter file and could run code when unpickled ({exc})"]) from None
    except Exception as exc:
        raise ConversionError(f"cannot read {path}", [
            f"not a readable .pdparams file (truncated or corrupt?): {type(exc).__name__}: {_first_line(exc)}"]) from None
    obj = _unnest(obj, path)
    obj.pop("StructuredToParameterName@@", None)
    config = _checked_config(obj.pop(CONFIG_KEY, {}), path)
    if "UnpackBigParamInfor@@" in obj:
        raise ConversionError(f"cannot read {path}", ["parameters split by paddle.save(protocol<4) are not "
                                                      "supported; save again with protocol 4"])
    bad = [k for k, v in obj.items() if not isinstance(v, np.ndarray) or v.dtype == object]
    if bad:
        raise ConversionError(f"{path} is not a parameter file", [f"{k!r} is not a numeric array" for k in bad])
    return ParamState(obj, config)


class ParamState(dict):
    """A Paddle state_dict read from a file, with the constructor arguments it records (``config``)."""

    def __init__(self, state: dict, config: dict | None = None) -> None:
        super().__init__(state)
        self.config = dict(config or {})


def _checked_config(config: Any, path: Path) -> dict:
    ok = isinstance(config, dict) and all(
        isinstance(k, str) and (v is None or isinstance(v, (bool, int, float, str))) for k, v in config.items())
    if not ok:
        raise ConversionError(f"cannot read {path}", [f"its {CONFIG_KEY!r} entry is not a dict of numbers and strings"])
    return config


class SafetensorsState(Mapping):
    """The tensors of a ``.safetensors`` file, each read when first asked for; ``shapes`` and
    ``metadata`` come from the header (validated by the safetensors library on open)."""

    def __init__(self, path: Path) -> None:
        from safetensors import safe_open
        try:
            self._file = safe_open(str(path), framework="pt")
            self.metadata: dict[str, str] = self._file.metadata() or {}
            self.shapes = {k: tuple(self._file.get_slice(k).get_shape()) for k in self._file.keys()}
        except Exception as exc:
            raise ConversionError(f"cannot read {path}", [
                f"not a readable safetensors file (truncated or corrupt header?): {type(exc).__name__}: "
                f"{_first_line(exc)}"]) from None
        self.path = path
        try:
            self.config = _checked_config(json.loads(self.metadata.get("config", "{}")), path)
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
                f"tensor {key!r} is unreadable (truncated file?): {type(exc).__name__}: {_first_line(exc)}"]) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.shapes)

    def __len__(self) -> int:
        return len(self.shapes)


def read_checkpoint(path: str | os.PathLike, fmt: str | os.PathLike | None = None
                    ) -> tuple[Mapping[str, Any], str]:
    """``(state_dict, layout)`` where layout is ``'paddle'`` (our Paddle keys and shapes) or ``'torch'``.
    The format comes from ``fmt``'s suffix (default: ``path``'s)."""
    path = Path(path)
    _check_file(path)
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


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(dst: str | os.PathLike, force: bool = False, inputs: Iterable[str | os.PathLike] = ()) -> None:
    """Fail if ``dst`` may not be written: one of ``inputs``, a directory, an existing file without
    ``force``, or in a folder that does not exist."""
    dst = Path(dst)
    for src in inputs:
        if _same_file(Path(src), dst) or Path(src).resolve() == dst.resolve():
            raise ConversionError(f"not writing {dst}", ["it is the input file; the converter never writes over its input"])
    if dst.is_dir():
        raise ConversionError(f"not writing {dst}", ["it is a directory"])
    if dst.exists() and not force:
        raise ConversionError(f"not writing {dst}", ["the file exists; pass --force to replace it"])
    if not dst.parent.is_dir():
        raise ConversionError(f"not writing {dst}", [f"no such folder {dst.parent}"])


@contextmanager
def atomic_output(dst: str | os.PathLike, force: bool = False,
                  inputs: Iterable[str | os.PathLike] = ()) -> Iterator[Path]:
    """Yield a temporary path beside ``dst``; it is renamed onto ``dst`` only if the block succeeds
    (write it and check it inside the block). See ``check_output`` for what is refused."""
    check_output(dst, force, inputs)
    dst = Path(dst)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_pdparams(state: Mapping[str, np.ndarray], path: str | os.PathLike, config: Mapping | None = None) -> None:
    """A dict of arrays as ``paddle.load`` reads it. Pickle protocol 5 lets every array be written
    straight from its buffer; ``paddle.save`` (protocol 4) would first copy the whole checkpoint."""
    out: dict[str, Any] = {k: _contiguous(v) for k, v in state.items()}
    if config:
        out[CONFIG_KEY] = dict(config)
    with open(path, "wb") as f:
        pickle.Pickler(f, protocol=5).dump(out)


def write_safetensors(state: Mapping[str, np.ndarray], path: str | os.PathLike,
                      metadata: Mapping[str, str] | None = None) -> None:
    """A ``.safetensors`` file written tensor by tensor (the library's ``save_file`` first builds
    a bytes copy of every tensor). Layout: 8-byte header length, JSON header, raw little-endian data."""
    header: dict[str, Any] = {"__metadata__": dict(metadata)} if metadata else {}
    arrays, offset = {}, 0
    for key, value in state.items():
        array = _contiguous(value)
        tag = _ST_DTYPES.get(array.dtype.name)
        if tag is None:
            raise ConversionError(f"not writing {path}", [f"{key!r}: dtype {array.dtype} has no safetensors tag"])
        if array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("<"))
        header[key] = {"dtype": tag, "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
        arrays[key] = array
        offset += array.nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for array in arrays.values():
            f.write(memoryview(array).cast("B") if array.size else b"")


def write_torch(state: Mapping[str, np.ndarray], path: str | os.PathLike) -> None:
    """A torch state_dict file (``torch.save``), tensors sharing the arrays' memory."""
    import torch
    torch.save({k: torch.from_numpy(_contiguous(v)) for k, v in state.items()}, str(path))


def write_checkpoint(state: Mapping[str, np.ndarray], path: str | os.PathLike, layout: str,
                     fmt: str | os.PathLike | None = None, config: Mapping | None = None) -> None:
    """Write ``state`` in the format that ``fmt``'s suffix names (default: ``path``'s; a temporary
    file is written in its destination's format). ``layout`` ('paddle' or 'torch') says whose keys
    it holds; safetensors metadata records it so that readers can tell. ``config``: constructor
    arguments the weights need (Paddle files record them; see ``paddle_vit.convert.pretrained``)."""
    suffix = check_destination(fmt or path, layout)
    if suffix in SAFETENSORS_SUFFIXES:
        meta = {"format": "paddle" if layout == "paddle" else "pt"}
        if config and layout == "paddle":
            meta["config"] = json.dumps(dict(config))
        write_safetensors(state, path, meta)
    elif suffix in PADDLE_SUFFIXES:
        write_pdparams(state, path, config)
    else:
        write_torch(state, path)


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
    """Write a Paddle state_dict to ``.pdparams`` or ``.safetensors`` (format=paddle), atomically."""
    check_destination(dst, "paddle")
    with atomic_output(dst, force) as tmp:
        write_checkpoint(state, tmp, "paddle", fmt=dst, config=config)
