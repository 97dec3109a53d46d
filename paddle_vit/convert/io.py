"""Reading and writing checkpoints safely: no file can run code, no output is ever half-written."""
from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from paddle_vit.convert.core import ConversionError

TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")
PADDLE_SUFFIXES = (".pdparams",)
SAFETENSORS_SUFFIXES = (".safetensors",)
# Training scripts nest the weights; the first of these keys that holds a dict is taken.
NESTED_KEYS = ("state_dict", "model", "model_ema", "state_dict_ema", "module")
# What a .pdparams file written by paddle.save may reference: numpy arrays and nothing else.
_PDPARAMS_GLOBALS = {
    ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict"),
}


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
                               f"found {type(obj).__name__}"])
    return obj


def read_torch(path: Path) -> dict[str, Any]:
    """A torch ``.pth`` state_dict, read with ``weights_only=True``: a pickle that would run code is refused."""
    import torch
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConversionError(f"refused to load {path}", [
            "the file holds Python objects other than tensors, which could run code when unpickled "
            f"(torch.load weights_only=True said: {first[:300]})"]) from None
    except Exception as exc:  # truncated zip, random bytes, wrong format
        raise ConversionError(f"cannot read {path}", [f"not a readable torch checkpoint "
                                                      f"(truncated or corrupt?): {type(exc).__name__}: {str(exc)[:300]}"]) from None
    return _unnest(obj, path)


def read_pdparams(path: Path) -> dict[str, Any]:
    """A ``paddle.save`` state_dict, through an unpickler that admits numpy arrays only
    (``paddle.load`` would unpickle anything)."""
    try:
        with open(path, "rb") as f:
            obj = _NumpyOnlyUnpickler(f).load()
    except pickle.UnpicklingError as exc:
        raise ConversionError(f"refused to load {path}", [
            f"the file is not a plain parameter file and could run code when unpickled ({exc})"]) from None
    except Exception as exc:
        raise ConversionError(f"cannot read {path}", [f"not a readable .pdparams file (truncated or corrupt?): "
                                                      f"{type(exc).__name__}: {str(exc)[:300]}"]) from None
    obj = _unnest(obj, path)
    obj.pop("StructuredToParameterName@@", None)
    bad = [k for k, v in obj.items() if not isinstance(v, np.ndarray) or v.dtype == object]
    if bad:
        raise ConversionError(f"{path} is not a parameter file", [f"{k!r} is not a numeric array" for k in bad])
    return obj


def read_safetensors(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """Tensors and metadata of a ``.safetensors`` file (a format that cannot hold code)."""
    from safetensors import safe_open
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise ConversionError(f"cannot read {path}", [f"not a readable safetensors file (truncated or corrupt header?): "
                                                      f"{type(exc).__name__}: {str(exc)[:300]}"]) from None
    if not state:
        raise ConversionError(f"{path} is not a checkpoint", ["the safetensors file holds no tensors"])
    return state, meta


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], str]:
    """``(state_dict, layout)`` where layout is ``'paddle'`` (our Paddle keys and shapes) or ``'torch'``."""
    path = Path(path)
    _check_file(path)
    suffix = path.suffix.lower()
    if suffix in TORCH_SUFFIXES:
        return read_torch(path), "torch"
    if suffix in PADDLE_SUFFIXES:
        return read_pdparams(path), "paddle"
    if suffix in SAFETENSORS_SUFFIXES:
        state, meta = read_safetensors(path)
        return state, "paddle" if meta.get("format") == "paddle" else "torch"
    raise ConversionError(f"cannot read {path}", [f"unknown file type {suffix!r}; expected one of "
                                                  f"{TORCH_SUFFIXES + PADDLE_SUFFIXES + SAFETENSORS_SUFFIXES}"])


@contextmanager
def atomic_output(dst: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``dst``; it is renamed onto ``dst`` only if the block succeeds.
    An existing ``dst`` is kept unless ``force``."""
    dst = Path(dst)
    if dst.exists() and not force:
        raise ConversionError(f"not writing {dst}", ["the file exists; pass --force to replace it"])
    if not dst.parent.is_dir():
        raise ConversionError(f"not writing {dst}", [f"no such folder {dst.parent}"])
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_paddle(state: dict[str, np.ndarray], dst: str | os.PathLike, force: bool = False) -> None:
    """Write a Paddle state_dict to ``.pdparams`` (paddle.save) or ``.safetensors`` (format=paddle), atomically."""
    dst = Path(dst)
    suffix = dst.suffix.lower()
    if suffix not in PADDLE_SUFFIXES + SAFETENSORS_SUFFIXES:
        raise ConversionError(f"not writing {dst}", [f"expected a .pdparams or .safetensors destination, got {suffix!r}"])
    with atomic_output(dst, force) as tmp:
        if suffix in SAFETENSORS_SUFFIXES:
            from safetensors.numpy import save_file
            save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, str(tmp), metadata={"format": "paddle"})
        else:
            import paddle
            paddle.save({k: np.asarray(v) for k, v in state.items()}, str(tmp))
