"""``.pdparams`` files (``paddle.save``'s pickles) read without running a line of their code.

``paddle.load`` unpickles anything. This reader runs the pickle on ``pickle_vm`` with a policy
that admits numpy arrays by construction: it knows how numpy writes an array (protocols 2-4:
``_reconstruct(ndarray, (0,), b'b')`` then ``BUILD (1, shape, dtype, fortran, raw)``; protocol 5:
``_frombuffer(raw, dtype, shape, order)``; a scalar: ``scalar(dtype, raw)``; a dtype:
``dtype(code, False, True)`` then ``BUILD (3, byteorder, None, None, None, -1, -1, 0)``), and
builds each one itself from checked pieces:

- a dtype is one of the plain numeric kinds (float, signed and unsigned int, bool); structured,
  object, void, string, complex and datetime dtypes are refused, and a dtype takes its state once
  (a second BUILD, which is how a crafted file turns bytes into object pointers, is refused);
- an array is a view of the file's own bytes whose length must equal shape x itemsize, built only
  once its data has been given (an array never given data is refused, not left uninitialised);
- nothing from numpy is looked up by name or called with the stream's arguments.

Besides arrays it builds dicts, lists, tuples, strings and numbers; ``paddle.save``'s other
constructs are decoded the same way: ``OrderedDict()`` (a dict), ``tuple([...])`` (how it saves a
Tensor nested in a dict: ``(name, array)``), ``_codecs.encode(text, 'latin1')`` and ``bytes()``
(protocol 2's bytes), and the table of a parameter it split into slices (protocols 2 and 3, over 2**30 bytes).
The file is memory-mapped; arrays are read-only views of it.
"""
from __future__ import annotations

import mmap
import pickle
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from paddle_vit.convert.core import ConversionError
from paddle_vit.convert.files import CONFIG_KEY, ParamState, checked_config, contiguous, open_for_writing, os_reason, unnest
from paddle_vit.convert.pickle_vm import Pending, Policy, Refused, Symbol, load

# What the names in a paddle.save pickle mean here (numpy 1.x wrote numpy.core, 2.x numpy._core;
# protocol 2 names builtins __builtin__). Each maps to a builder below, never to the global itself.
_MEANINGS = {
    **{(f"numpy.{core}.multiarray", "_reconstruct"): "reconstruct" for core in ("core", "_core")},
    **{(f"numpy.{core}.multiarray", "scalar"): "scalar" for core in ("core", "_core")},
    **{(f"numpy.{core}.numeric", "_frombuffer"): "frombuffer" for core in ("core", "_core")},
    ("numpy", "ndarray"): "ndarray", ("numpy", "dtype"): "dtype",
    ("collections", "OrderedDict"): "ordered_dict",
    ("builtins", "tuple"): "tuple", ("__builtin__", "tuple"): "tuple",
    ("_codecs", "encode"): "encode", ("builtins", "bytes"): "bytes", ("__builtin__", "bytes"): "bytes",
}
# Plain numeric type codes as numpy's dtype pickle names them: float, int, uint, bool.
_PLAIN_CODE = re.compile(r"(f[248]|[iu][1248]|b1)")
_KIND_NAMES = {"V": "a structured or void", "O": "an object", "U": "a string", "S": "a bytes", "c": "a complex",
               "M": "a datetime", "m": "a timedelta", "f": "an extended-precision float"}
MAX_NDIM = 64
# The interpreter may allocate this much Python memory besides the mapped file (see pickle_vm).
BUDGET_BASE = 16 << 20
BUDGET_PER_BYTE = 16
SPLIT_TABLE = "UnpackBigParamInfor@@"  # typos: disable-line  (paddle's spelling)
NAME_TABLE = "StructuredToParameterName@@"


class _Meaning:
    """A global the policy knows: inert until REDUCE hands it to its builder."""

    def __init__(self, symbol: Symbol, meaning: str) -> None:
        self.symbol = symbol
        self.meaning = meaning

    def __repr__(self) -> str:
        return str(self.symbol)


class _PendingDtype(Pending):
    def __init__(self, code: str) -> None:
        super().__init__()
        self.code = code


class _PendingArray(Pending):
    """``_reconstruct``'s result: no memory yet; BUILD gives it shape, dtype and data."""


class NumpyPolicy(Policy):
    """Admits plain containers and numeric numpy arrays, built by the rules in the module docstring."""

    def __init__(self) -> None:
        self.unbuilt = 0  # pending dtypes and arrays not yet given their state

    def find(self, symbol: Symbol) -> Any:
        meaning = _MEANINGS.get((symbol.module, symbol.name))
        if meaning is None:
            raise Refused("code", f"the file references {symbol}, which is not part of a numpy array or a "
                                  "plain container: unpickling it could run code")
        return _Meaning(symbol, meaning)

    def reduce(self, func: Any, args: tuple) -> Any:
        if not isinstance(func, _Meaning):
            raise Refused("code", f"the file calls a {type(func).__name__}, which is not a known constructor")
        return getattr(self, f"_{func.meaning}")(args)

    def build(self, obj: Any, state: Any) -> Any:
        if isinstance(obj, _PendingDtype):
            self.unbuilt -= 1
            return _finish_dtype(obj.code, state)
        if isinstance(obj, _PendingArray):
            self.unbuilt -= 1
            return _finish_array(state)
        if type(obj) is dict and (state is None or type(state) is dict):  # OrderedDict attributes: dropped
            return obj
        if isinstance(obj, np.dtype):
            raise Refused("code", "a dtype is given its state a second time (after arrays may use it): a crafted "
                                  "file does this to turn array bytes into object pointers")
        raise Refused("code", f"the file sets the state of a {type(obj).__name__}")

    def finish(self, result: Any) -> Any:
        if self.unbuilt:
            raise Refused("data", f"{self.unbuilt} array(s) or dtype(s) are created but never given their data "
                                     "(an uninitialised array is not loaded)")
        return result

    # --- builders, one per meaning ---------------------------------------------------------------
    def _dtype(self, args: tuple) -> _PendingDtype:
        if len(args) != 3 or type(args[0]) is not str or not all(type(a) in (bool, int) for a in args[1:]):
            raise Refused("data", f"numpy.dtype{_short(args)} is not a dtype as numpy pickles one")
        code = args[0]
        if not _PLAIN_CODE.fullmatch(code):
            kind = _KIND_NAMES.get(code[:1], "an unknown")
            raise Refused("data", f"dtype {code!r} is {kind} dtype; a parameter file holds plain numbers only "
                                     "(float, int, uint, bool)")
        self.unbuilt += 1
        return _PendingDtype(code)

    def _reconstruct(self, args: tuple) -> _PendingArray:
        if (len(args) != 3 or not _is(args[0], "ndarray") or args[1] != (0,)
                or not _is_bytes(args[2]) or bytes(args[2]) != b"b"):
            raise Refused("data", f"_reconstruct{_short(args)} is not an array as numpy pickles one")
        self.unbuilt += 1
        return _PendingArray()

    def _frombuffer(self, args: tuple) -> np.ndarray:
        if len(args) != 4 or not _is_bytes(args[0]) or args[3] not in ("C", "F"):
            raise Refused("data", f"_frombuffer{_short(args)} is not an array as numpy pickles one")
        return _array(args[0], args[1], args[2], args[3] == "F")

    def _scalar(self, args: tuple) -> np.ndarray:
        if len(args) != 2 or not isinstance(args[0], np.dtype) or not _is_bytes(args[1]):
            raise Refused("data", f"scalar{_short(args)} is not a numpy scalar as numpy pickles one")
        return _array(args[1], args[0], (), False)

    def _ordered_dict(self, args: tuple) -> dict:
        if args:
            raise Refused("data", "OrderedDict called with arguments")
        return {}

    def _tuple(self, args: tuple) -> tuple:
        if len(args) != 1 or type(args[0]) not in (tuple, list):
            raise Refused("data", f"tuple{_short(args)} is not a tuple of a sequence")
        return tuple(args[0])

    def _encode(self, args: tuple) -> bytes:
        if len(args) != 2 or type(args[0]) is not str or args[1] not in ("latin1", "latin-1"):
            raise Refused("data", f"_codecs.encode{_short(args)} is not protocol 2's way of writing bytes")
        try:
            return args[0].encode("latin1")
        except UnicodeEncodeError:
            raise Refused("data", "protocol 2 bytes that are not latin-1") from None

    def _bytes(self, args: tuple) -> bytes:
        if args:  # protocol 2 writes b"" as bytes(); anything else as _codecs.encode
            raise Refused("data", f"bytes{_short(args)} is not protocol 2's way of writing b''")
        return b""

    def _ndarray(self, args: tuple) -> Any:
        raise Refused("code", "numpy.ndarray is called directly (with a buffer and an offset it can read any of "
                              "the process's memory); numpy never pickles an array that way")


def _is(obj: Any, meaning: str) -> bool:
    return isinstance(obj, _Meaning) and obj.meaning == meaning


def _is_bytes(obj: Any) -> bool:
    return type(obj) in (bytes, memoryview)


def _short(obj: Any) -> str:
    """``obj`` in at most 80 characters, bytes views shown as bytes."""
    def show(x: Any, depth: int = 0) -> str:
        if type(x) is memoryview:
            x = x[:32].tobytes()
        if type(x) is tuple and depth < 3:
            return "(" + ", ".join(show(i, depth + 1) for i in x[:8]) + ("," if len(x) == 1 else "") + ")"
        return repr(x)[:60]
    text = show(obj)
    return text if len(text) <= 80 else text[:77] + "..."


def _finish_dtype(code: str, state: Any) -> np.dtype:
    """numpy's dtype state for a plain type: (3, byteorder, None, None, None, -1, -1, 0), or version 4
    with a ninth item (metadata) that is None or empty."""
    ok = (type(state) is tuple and len(state) in (8, 9) and state[0] == (3 if len(state) == 8 else 4)
          and state[1] in ("<", ">", "|", "=") and state[2:5] == (None, None, None) and state[5:8] == (-1, -1, 0)
          and (len(state) == 8 or state[8] in (None, {})))
    if not ok:
        raise Refused("data", f"the state {_short(state) if type(state) is tuple else type(state).__name__} of "
                                 f"dtype {code!r} is not that of a plain numeric dtype (fields, subarrays, flags?)")
    dtype = np.dtype(code)
    if dtype.itemsize > 1:
        if state[1] == "|":
            raise Refused("data", f"dtype {code!r} with byte order '|' (that is for one-byte types)")
        dtype = dtype.newbyteorder(state[1])
    return dtype


def _finish_array(state: Any) -> np.ndarray:
    """numpy's array state: (1, shape, dtype, is_fortran, raw) or, before version 1, without the 1."""
    if type(state) is tuple and len(state) == 5 and state[0] == 1:
        state = state[1:]
    if type(state) is not tuple or len(state) != 4 or type(state[2]) not in (bool, int):
        raise Refused("data", "an array state that is not (version, shape, dtype, is_fortran, data)")
    shape, dtype, fortran, raw = state
    if type(raw) is list:
        raise Refused("data", "an array whose data is a list of objects (an object array)")
    return _array(raw, dtype, shape, bool(fortran))


def _array(raw: Any, dtype: Any, shape: Any, fortran: bool) -> np.ndarray:
    """A read-only array over ``raw`` (the file's bytes), after checking every piece."""
    if not isinstance(dtype, np.dtype):  # only _finish_dtype makes these
        what = "a dtype that was never given its state" if isinstance(dtype, _PendingDtype) else type(dtype).__name__
        raise Refused("data", f"an array whose dtype is {what}")
    if (type(shape) is not tuple or len(shape) > MAX_NDIM
            or not all(type(d) is int and 0 <= d < 2**62 for d in shape)):
        raise Refused("data", f"an array shape {_short(shape) if type(shape) is tuple else type(shape).__name__} "
                                 f"that is not up to {MAX_NDIM} non-negative integers")
    if not _is_bytes(raw):
        raise Refused("data", f"an array whose data is a {type(raw).__name__}, not bytes")
    count = 1
    for d in shape:
        count *= d
    if count * dtype.itemsize != len(raw):
        raise Refused("data", f"an array of shape {list(shape)} and dtype {dtype} needs "
                                 f"{count * dtype.itemsize} bytes; the file gives {len(raw)}")
    flat = np.frombuffer(raw, dtype=dtype, count=count)
    flat.flags.writeable = False
    return flat.reshape(shape, order="F" if fortran else "C")


def budget_for(size: int) -> int:
    """How much Python memory the interpreter may allocate for a stream of ``size`` bytes."""
    return BUDGET_BASE + BUDGET_PER_BYTE * size


def read_pdparams(path: Path) -> ParamState:
    """A ``paddle.save`` state_dict (or one nested under ``NESTED_KEYS``): read-only arrays over the
    memory-mapped file. Refuses, with one ``ConversionError``, any stream that is not plain data."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            try:
                data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError):  # a file system that cannot map files: read it instead
                data = f.read()
    except OSError as exc:
        raise ConversionError(f"cannot read {path}", [os_reason(exc)]) from None
    try:
        obj = load(data, NumpyPolicy(), budget_for(len(data)))
    except Refused as exc:
        if exc.kind in ("code", "data"):
            raise ConversionError(f"refused to load {path}", [
                f"not a plain parameter file: {exc} (nothing was run; a .pdparams file that paddle.save wrote "
                "holds arrays and containers only)"]) from None
        if exc.kind == "limit":
            raise ConversionError(f"refused to load {path}", [
                f"{exc}: a {len(data)}-byte file may build at most {budget_for(len(data))} bytes of objects "
                "(a parameter file is mostly array data, which is read in place)"]) from None
        raise ConversionError(f"cannot read {path}", [
            f"not a readable .pdparams file (truncated or corrupt?): {exc}"]) from None
    return _parameters(obj, path)


def _parameters(obj: Any, path: Path) -> ParamState:
    """The state_dict in ``obj`` with paddle.save's own packaging undone (``paddle.load`` does the same):
    name table dropped, ``(name, array)`` tensors unwrapped, split parameters joined."""
    state = unnest(obj, path)
    state.pop(NAME_TABLE, None)
    config = checked_config(state.pop(CONFIG_KEY, {}), path)
    state = {k: v[1] if _is_saved_tensor(v) else v for k, v in state.items()}
    if SPLIT_TABLE in state:
        state = _join_slices(state, path)
    bad = [f"{k!r} holds a {type(v).__name__}, not a numeric array" for k, v in state.items()
           if not isinstance(v, np.ndarray)]
    if bad:
        raise ConversionError(f"{path} is not a parameter file", bad)
    return ParamState(state, config)


def _is_saved_tensor(value: Any) -> bool:
    """How ``paddle.save`` writes a Tensor inside a nested dict: ``(tensor.name, array)``."""
    return type(value) is tuple and len(value) == 2 and type(value[0]) is str and isinstance(value[1], np.ndarray)


def _join_slices(state: dict[str, Any], path: Path) -> dict[str, Any]:
    """Parameters ``paddle.save(protocol=2 or 3)`` split into 1-D slices ``key@@.0``, ``key@@.1``...
    with ``{key: {"OriginShape": shape, "slices": [names]}}`` under ``SPLIT_TABLE``: joined again."""
    table = state.pop(SPLIT_TABLE)
    problems: list[str] = []
    if type(table) is not dict:
        raise ConversionError(f"cannot read {path}", [f"{SPLIT_TABLE} is a {type(table).__name__}, not a table"])
    for key, info in table.items():
        names = info.get("slices") if type(info) is dict else None
        shape = info.get("OriginShape") if type(info) is dict else None
        if (type(names) is not list or not names or not all(type(n) is str for n in names)
                or type(shape) not in (tuple, list) or not all(type(d) is int and d >= 0 for d in shape)):
            problems.append(f"{key!r}: its slice table is not {{'OriginShape': shape, 'slices': [names]}}")
            continue
        parts = [state.get(n) for n in names]
        if not all(isinstance(p, np.ndarray) and p.ndim == 1 and p.dtype == parts[0].dtype for p in parts):
            problems.append(f"{key!r}: its slices {names[:3]}... are missing or not 1-D arrays of one dtype")
            continue
        if sum(p.size for p in parts) != int(np.prod(shape, dtype=object)):
            problems.append(f"{key!r}: its slices hold {sum(p.size for p in parts)} values, shape {list(shape)} "
                            f"needs {int(np.prod(shape, dtype=object))}")
            continue
        for n in names:
            del state[n]
        state[key] = np.concatenate(parts).reshape(tuple(shape))
    if problems:
        raise ConversionError(f"cannot read {path}", problems)
    return state


def write_pdparams(state: Mapping[str, np.ndarray], target: Any, config: Mapping | None = None) -> None:
    """A dict of arrays as ``paddle.load`` reads it, to a path or a binary file object, with the
    constructor arguments ``config`` under ``CONFIG_KEY`` if given. Pickle protocol 5 lets every
    array be written straight from its buffer; ``paddle.save`` (protocol 4) would first copy the
    whole checkpoint."""
    out: dict[str, Any] = {k: contiguous(v) for k, v in state.items()}
    if config:
        out[CONFIG_KEY] = dict(config)
    with open_for_writing(target) as f:
        pickle.Pickler(f, protocol=5).dump(out)
