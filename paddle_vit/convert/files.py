"""What every checkpoint reader and writer shares: the input file's checks, the state_dict nested
inside a training checkpoint, one-line error texts, and writing to a path or a file object."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import numpy as np

from paddle_vit.convert.core import ConversionError

# Training scripts nest the weights; the first of these keys that holds a dict is taken.
NESTED_KEYS = ("state_dict", "model", "model_ema", "state_dict_ema", "module")
DDP_PREFIX = "module."
# The constructor arguments a Paddle file's weights need (paddle_vit.convert.pretrained): a plain
# dict of numbers and strings, in a .pdparams beside Paddle's own "StructuredToParameterName@@"
# entry, in safetensors metadata as JSON.
CONFIG_KEY = "paddle_vit_config@@"


class ParamState(dict):
    """A Paddle state_dict read from a file, with the constructor arguments it records (``config``)."""

    def __init__(self, state: dict, config: dict | None = None) -> None:
        super().__init__(state)
        self.config = dict(config or {})


def checked_config(config: Any, path: Path) -> dict:
    """A file's recorded constructor arguments, if they are a dict of numbers and strings."""
    ok = isinstance(config, dict) and all(
        isinstance(k, str) and (v is None or isinstance(v, (bool, int, float, str))) for k, v in config.items())
    if not ok:
        raise ConversionError(f"cannot read {path}", [f"its {CONFIG_KEY!r} entry is not a dict of numbers and strings"])
    return config


def check_file(path: Path) -> None:
    """An error unless ``path`` is a non-empty regular file."""
    try:
        if not path.exists():
            raise ConversionError(f"cannot read {path}", ["no such file"])
        if not path.is_file():
            raise ConversionError(f"cannot read {path}", ["not a regular file (a directory?)"])
        if path.stat().st_size == 0:
            raise ConversionError(f"cannot read {path}", ["the file is empty"])
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ConversionError(f"cannot read {path}", [os_reason(exc)]) from None


def unnest(obj: Any, path: Path) -> dict[str, Any]:
    """The state_dict (str -> value) in ``obj``, found under ``NESTED_KEYS`` if it is nested, with a
    ``DistributedDataParallel`` prefix removed."""
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


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def os_reason(exc: OSError) -> str:
    """An ``OSError`` in words: ``'No space left on device (ENOSPC)'``."""
    import errno
    name = errno.errorcode.get(exc.errno or 0)
    text = exc.strerror or first_line(exc)
    return f"{text} ({name})" if name else text


def contiguous(value: Any) -> np.ndarray:
    """A C-contiguous array, keeping 0-d arrays 0-d (``np.ascontiguousarray`` makes them 1-d)."""
    array = np.asarray(value)
    return array if array.flags.c_contiguous else array.copy(order="C")


@contextmanager
def open_for_writing(target: str | os.PathLike | BinaryIO) -> Iterator[BinaryIO]:
    """``target`` as a binary file to write: a path is opened (and closed, its buffer flushed, so that
    a full disk is reported here); a file object is used as it is and flushed."""
    if hasattr(target, "write"):
        yield target  # type: ignore[misc]
        target.flush()  # type: ignore[union-attr]
        return
    with open(target, "wb") as f:
        yield f
