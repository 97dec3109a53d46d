"""A pickle interpreter that builds plain data and nothing else (framework-free).

``pickle.load`` calls whatever a stream names. Restricting ``find_class`` to a few numpy names is
not enough: those callables can themselves be driven into harm (a dtype ``__setstate__`` applied
after an array uses the dtype turns file bytes into object pointers; ``ndarray(buffer, offset<0)``
reads the process's heap), and the C unpickler allocates what the stream declares (a memo index
of 2**29 costs 8 GiB before anything is refused). This interpreter executes the opcodes itself:

- values: None, bool, int, float, str, bytes (zero-copy views of the input), tuple, list, dict;
- GLOBAL / STACK_GLOBAL push a ``Symbol``, an inert (module, name) pair: nothing is imported or
  called, ever;
- REDUCE, BUILD, persistent IDs and item assignment are handed to a ``Policy``, which decides what
  (if anything) they build from symbols and plain values — ``pdparams.NumpyPolicy`` builds checked
  numeric arrays, ``pth.StorageScan`` only records the storages a torch pickle declares;
- every other opcode (sets, INST/OBJ/NEWOBJ, extensions, out-of-band buffers) is refused;
- everything it allocates (objects, memo entries, stack slots) is charged against a budget that
  the caller derives from the input's size, and every length it reads is checked against the bytes
  that remain, so no stream can make it allocate more than a small multiple of its own size.
"""
from __future__ import annotations

import struct
import sys
from dataclasses import dataclass
from typing import Any, Callable

# Opcodes (pickletools' names) this interpreter executes; any other is refused by name.
_OPCODE_NAMES = {
    b"(": "MARK", b".": "STOP", b"0": "POP", b"1": "POP_MARK", b"2": "DUP", b"F": "FLOAT", b"I": "INT",
    b"J": "BININT", b"K": "BININT1", b"L": "LONG", b"M": "BININT2", b"N": "NONE", b"P": "PERSID",
    b"Q": "BINPERSID", b"R": "REDUCE", b"S": "STRING", b"T": "BINSTRING", b"U": "SHORT_BINSTRING",
    b"V": "UNICODE", b"X": "BINUNICODE", b"a": "APPEND", b"b": "BUILD", b"c": "GLOBAL", b"d": "DICT",
    b"}": "EMPTY_DICT", b"e": "APPENDS", b"g": "GET", b"h": "BINGET", b"i": "INST", b"j": "LONG_BINGET",
    b"l": "LIST", b"]": "EMPTY_LIST", b"o": "OBJ", b"p": "PUT", b"q": "BINPUT", b"r": "LONG_BINPUT",
    b"s": "SETITEM", b"t": "TUPLE", b")": "EMPTY_TUPLE", b"u": "SETITEMS", b"G": "BINFLOAT",
    b"\x80": "PROTO", b"\x81": "NEWOBJ", b"\x82": "EXT1", b"\x83": "EXT2", b"\x84": "EXT4",
    b"\x85": "TUPLE1", b"\x86": "TUPLE2", b"\x87": "TUPLE3", b"\x88": "NEWTRUE", b"\x89": "NEWFALSE",
    b"\x8a": "LONG1", b"\x8b": "LONG4", b"B": "BINBYTES", b"C": "SHORT_BINBYTES",
    b"\x8c": "SHORT_BINUNICODE", b"\x8d": "BINUNICODE8", b"\x8e": "BINBYTES8", b"\x8f": "EMPTY_SET",
    b"\x90": "ADDITEMS", b"\x91": "FROZENSET", b"\x92": "NEWOBJ_EX", b"\x93": "STACK_GLOBAL",
    b"\x94": "MEMOIZE", b"\x95": "FRAME", b"\x96": "BYTEARRAY8", b"\x97": "NEXT_BUFFER",
    b"\x98": "READONLY_BUFFER",
}
HIGHEST_PROTOCOL = 5
MAX_LINE = 4096          # text arguments (GLOBAL names, INT/FLOAT literals)
MAX_LONG_BYTES = 1024    # LONG1/LONG4 bodies: no plain-data file needs a longer integer
# Charges, in bytes of Python memory, for what the interpreter keeps (CPython 3.11, 64-bit).
_SLOT = 8                # one reference: a stack slot, a list or tuple item
_MEMO_ENTRY = 104        # a dict entry plus its int key
_VIEW = sys.getsizeof(memoryview(b""))


class Refused(Exception):
    """The stream is not one the reader admits. ``kind``: ``'code'`` (it names something to call or
    import), ``'data'`` (well-formed, but not the plain data the policy admits: a structured dtype,
    an array without data), ``'corrupt'`` (malformed or truncated) or ``'limit'`` (it would allocate
    beyond the budget its size allows); ``str()`` says what and where."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind


@dataclass(frozen=True)
class Symbol:
    """What GLOBAL pushes: the name of a global, never the global itself."""
    module: str
    name: str

    def __str__(self) -> str:
        return f"{self.module}.{self.name}"


class Pending:
    """An object a policy builds in two steps (REDUCE, then BUILD). The interpreter records the
    memo slots it is stored in, so that the finished object can take its place there."""

    def __init__(self) -> None:
        self.memo_slots: list[int] = []


class Policy:
    """What a reader admits beyond plain data. The defaults refuse everything; a subclass
    overrides the hooks it needs. Hooks raise ``Refused`` to stop the load."""

    def find(self, symbol: Symbol) -> Any:
        raise Refused("code", f"the stream references {symbol}")

    def reduce(self, func: Any, args: tuple) -> Any:
        raise Refused("code", f"the stream calls {func}")

    def build(self, obj: Any, state: Any) -> Any:
        """The object that replaces ``obj`` (on the stack and in the memo), or ``obj`` itself."""
        raise Refused("code", f"the stream sets the state of a {type(obj).__name__}")

    def persistent(self, pid: Any) -> Any:
        raise Refused("code", "the stream loads a persistent object")

    def setitem(self, target: Any, key: Any, value: Any) -> None:
        if type(target) is not dict:
            raise Refused("code", f"the stream assigns items of a {type(target).__name__}")
        if type(key) is not str:  # str hashes are randomised: no crafted collisions
            raise Refused("data", f"a dict key is a {type(key).__name__}, not a string")
        target[key] = value

    def append(self, target: Any, value: Any) -> None:
        if type(target) is not list:
            raise Refused("code", f"the stream appends to a {type(target).__name__}")
        target.append(value)

    def finish(self, result: Any) -> Any:
        return result


class _Machine:
    def __init__(self, data: Any, policy: Policy, budget: int) -> None:
        self.data = data                      # bytes or mmap: has .find for text arguments
        self.view = memoryview(data).cast("B")
        self.end = len(self.view)
        self.pos = 0
        self.policy = policy
        self.budget = budget
        self.stack: list[Any] = []
        self.marks: list[int] = []
        self.memo: dict[int, Any] = {}

    # --- reading arguments -------------------------------------------------------------------
    def charge(self, cost: int) -> None:
        self.budget -= cost
        if self.budget < 0:
            raise Refused("limit", f"the stream builds more than its size allows (at byte {self.pos})")

    def take(self, n: int) -> memoryview:
        if n < 0 or n > self.end - self.pos:
            raise Refused("corrupt", f"at byte {self.pos}: {n} bytes declared, {self.end - self.pos} left (truncated?)")
        chunk = self.view[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def line(self) -> str:
        stop = self.data.find(b"\n", self.pos, min(self.end, self.pos + MAX_LINE))
        if stop < 0:
            raise Refused("corrupt", f"at byte {self.pos}: a text argument without its newline")
        text = bytes(self.view[self.pos:stop])
        self.pos = stop + 1
        try:
            return text.decode("ascii")
        except UnicodeDecodeError:
            raise Refused("corrupt", f"at byte {self.pos}: a text argument that is not ASCII") from None

    # --- the stack -----------------------------------------------------------------------------
    def push(self, obj: Any, cost: int = 0) -> None:
        self.charge(cost + _SLOT)
        self.stack.append(obj)

    def pop(self) -> Any:
        if len(self.stack) <= (self.marks[-1] if self.marks else 0):
            raise Refused("corrupt", f"at byte {self.pos}: the stack is empty")
        return self.stack.pop()

    def top(self) -> Any:
        if len(self.stack) <= (self.marks[-1] if self.marks else 0):
            raise Refused("corrupt", f"at byte {self.pos}: the stack is empty")
        return self.stack[-1]

    def pop_mark(self) -> list[Any]:
        if not self.marks:
            raise Refused("corrupt", f"at byte {self.pos}: no MARK to close")
        start = self.marks.pop()
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def put(self, index: int) -> None:
        obj = self.top()
        if index not in self.memo:
            self.charge(_MEMO_ENTRY)
        self.memo[index] = obj
        if isinstance(obj, Pending):
            obj.memo_slots.append(index)

    def get(self, index: int) -> None:
        if index not in self.memo:
            raise Refused("corrupt", f"at byte {self.pos}: memo entry {index} was never stored")
        self.push(self.memo[index])

    def replace(self, old: Any, new: Any) -> None:
        """``old`` (the object on top) becomes ``new``, in the memo slots that hold it too."""
        self.stack[-1] = new
        for index in getattr(old, "memo_slots", ()):
            if self.memo.get(index) is old:
                self.memo[index] = new

    # --- running ---------------------------------------------------------------------------------
    def run(self) -> Any:
        ops = _OPS
        while self.pos < self.end:
            code = self.view[self.pos:self.pos + 1].tobytes()
            self.pos += 1
            op = ops.get(code)
            if op is None:
                name = _OPCODE_NAMES.get(code)
                what = f"opcode {name}" if name else f"unknown opcode {code!r}"
                kind = "code" if name in _CODE_OPCODES else "corrupt"
                raise Refused(kind, f"at byte {self.pos - 1}: {what}, which a file of plain data does not use")
            if op is _STOP:
                result = self.pop()
                return self.policy.finish(result)
            op(self)
        raise Refused("corrupt", "the stream ends before its STOP opcode (truncated?)")


def _new_str(m: _Machine, raw: memoryview) -> None:
    try:
        text = str(raw, "utf-8", "surrogatepass")
    except UnicodeDecodeError:
        raise Refused("corrupt", f"at byte {m.pos}: a string that is not UTF-8") from None
    m.push(text, sys.getsizeof(text))


def _new_bytes(m: _Machine, raw: memoryview) -> None:
    m.push(raw, _VIEW)


def _new_int(m: _Machine, value: int) -> None:
    m.push(value, sys.getsizeof(value))


def _long(m: _Machine, n: int) -> None:
    if n > MAX_LONG_BYTES:
        raise Refused("corrupt", f"at byte {m.pos}: a {n}-byte integer")
    _new_int(m, int.from_bytes(m.take(n), "little", signed=True))


def _text_int(m: _Machine) -> None:
    text = m.line()
    if text in ("00", "01"):  # protocol 0 booleans
        m.push(text == "01")
        return
    try:
        _new_int(m, int(text.rstrip("L")))
    except ValueError:
        raise Refused("corrupt", f"at byte {m.pos}: {text[:40]!r} is not an integer") from None


def _text_float(m: _Machine) -> None:
    text = m.line()
    try:
        m.push(float(text), 24)
    except ValueError:
        raise Refused("corrupt", f"at byte {m.pos}: {text[:40]!r} is not a number") from None


def _tuple(m: _Machine, items: list[Any]) -> None:
    m.push(tuple(items), 40 + _SLOT * len(items))


def _tuple_n(n: int) -> Callable[[_Machine], None]:
    def op(m: _Machine) -> None:
        items = [m.pop() for _ in range(n)][::-1]
        _tuple(m, items)
    return op


def _setitems(m: _Machine, target: Any, items: list[Any]) -> None:
    if len(items) % 2:
        raise Refused("corrupt", f"at byte {m.pos}: an odd number of items for a dict")
    for i in range(0, len(items), 2):
        m.charge(3 * _SLOT)
        m.policy.setitem(target, items[i], items[i + 1])


def _appends(m: _Machine, target: Any, items: list[Any]) -> None:
    for item in items:
        m.charge(_SLOT)
        m.policy.append(target, item)


def _symbol(m: _Machine, module: Any, name: Any) -> None:
    if type(module) is not str or type(name) is not str:
        raise Refused("corrupt", f"at byte {m.pos}: a global named by non-strings")
    m.push(m.policy.find(Symbol(module, name)), 64)


def _stack_global(m: _Machine) -> None:
    name = m.pop()
    module = m.pop()
    _symbol(m, module, name)


def _reduce(m: _Machine) -> None:
    args = m.pop()
    func = m.pop()
    if type(args) is not tuple:
        raise Refused("corrupt", f"at byte {m.pos}: REDUCE arguments that are not a tuple")
    m.push(m.policy.reduce(func, args), 64)


def _build(m: _Machine) -> None:
    state = m.pop()
    obj = m.top()
    new = m.policy.build(obj, state)
    if new is not obj:
        m.charge(128)
        m.replace(obj, new)


def _persistent(m: _Machine) -> None:
    pid = m.pop()
    m.push(m.policy.persistent(pid), 64)


def _proto(m: _Machine) -> None:
    version = m.take(1)[0]
    if version > HIGHEST_PROTOCOL:
        raise Refused("corrupt", f"pickle protocol {version} (this reader knows up to {HIGHEST_PROTOCOL})")


def _frame(m: _Machine) -> None:
    size = m.unpack("<Q")
    if size > m.end - m.pos:
        raise Refused("corrupt", f"at byte {m.pos}: a frame of {size} bytes, {m.end - m.pos} left (truncated?)")


def _mark(m: _Machine) -> None:
    m.charge(_SLOT)
    m.marks.append(len(m.stack))


def _pop(m: _Machine) -> None:
    if m.stack and len(m.stack) > (m.marks[-1] if m.marks else 0):
        m.stack.pop()
    else:
        m.pop_mark()  # POP with nothing above the mark discards the mark (as pickle does)


def _dict_from_mark(m: _Machine) -> None:
    items = m.pop_mark()
    d: dict = {}
    m.push(d, 64)
    _setitems(m, d, items)


def _list_from_mark(m: _Machine) -> None:
    items = m.pop_mark()
    m.push([], 56)
    _appends(m, m.stack[-1], items)


def _setitem(m: _Machine) -> None:
    value = m.pop()
    key = m.pop()
    _setitems(m, m.top(), [key, value])


def _setitems_op(m: _Machine) -> None:
    items = m.pop_mark()
    _setitems(m, m.top(), items)


def _append(m: _Machine) -> None:
    value = m.pop()
    _appends(m, m.top(), [value])


def _appends_op(m: _Machine) -> None:
    items = m.pop_mark()
    _appends(m, m.top(), items)


def _memoize(m: _Machine) -> None:
    m.put(len(m.memo))


def _text_put(m: _Machine) -> None:
    text = m.line()
    if not text.isdigit():
        raise Refused("corrupt", f"at byte {m.pos}: memo index {text[:40]!r}")
    m.put(int(text))


def _text_get(m: _Machine) -> None:
    text = m.line()
    if not text.isdigit():
        raise Refused("corrupt", f"at byte {m.pos}: memo index {text[:40]!r}")
    m.get(int(text))


def _global(m: _Machine) -> None:
    module = m.line()
    name = m.line()
    _symbol(m, module, name)


def _STOP(m: _Machine) -> None:  # noqa: N802  (a sentinel: run() stops here)
    raise AssertionError("STOP is handled by run()")


_OPS: dict[bytes, Callable[[_Machine], None]] = {
    b"\x80": _proto, b"\x95": _frame, b".": _STOP, b"(": _mark, b"0": _pop, b"1": lambda m: m.pop_mark(),
    b"2": lambda m: m.push(m.top()),
    b"N": lambda m: m.push(None), b"\x88": lambda m: m.push(True), b"\x89": lambda m: m.push(False),
    b"I": _text_int, b"L": _text_int, b"J": lambda m: _new_int(m, m.unpack("<i")),
    b"K": lambda m: _new_int(m, m.take(1)[0]), b"M": lambda m: _new_int(m, m.unpack("<H")),
    b"\x8a": lambda m: _long(m, m.take(1)[0]), b"\x8b": lambda m: _long(m, m.unpack("<i")),
    b"F": _text_float, b"G": lambda m: m.push(m.unpack(">d"), 24),
    b"X": lambda m: _new_str(m, m.take(m.unpack("<I"))), b"\x8c": lambda m: _new_str(m, m.take(m.take(1)[0])),
    b"\x8d": lambda m: _new_str(m, m.take(m.unpack("<Q"))),
    b"B": lambda m: _new_bytes(m, m.take(m.unpack("<I"))), b"C": lambda m: _new_bytes(m, m.take(m.take(1)[0])),
    b"\x8e": lambda m: _new_bytes(m, m.take(m.unpack("<Q"))), b"\x96": lambda m: _new_bytes(m, m.take(m.unpack("<Q"))),
    b")": lambda m: _tuple(m, []), b"t": lambda m: _tuple(m, m.pop_mark()),
    b"\x85": _tuple_n(1), b"\x86": _tuple_n(2), b"\x87": _tuple_n(3),
    b"]": lambda m: m.push([], 56), b"l": _list_from_mark, b"a": _append, b"e": _appends_op,
    b"}": lambda m: m.push({}, 64), b"d": _dict_from_mark, b"s": _setitem, b"u": _setitems_op,
    b"p": _text_put, b"q": lambda m: m.put(m.take(1)[0]), b"r": lambda m: m.put(m.unpack("<I")),
    b"\x94": _memoize, b"g": _text_get, b"h": lambda m: m.get(m.take(1)[0]), b"j": lambda m: m.get(m.unpack("<I")),
    b"c": _global, b"\x93": _stack_global, b"R": _reduce, b"b": _build, b"Q": _persistent,
}
# Refused opcodes that construct or call objects (the others are text forms nobody writes since Python 2).
_CODE_OPCODES = {"INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "EXT1", "EXT2", "EXT4", "PERSID", "NEXT_BUFFER",
                 "READONLY_BUFFER", "EMPTY_SET", "ADDITEMS", "FROZENSET"}


def load(data: Any, policy: Policy, budget: int) -> Any:
    """Run the pickle in ``data`` (bytes or an mmap) under ``policy``, allocating at most about
    ``budget`` bytes of Python objects besides ``data`` itself. Raises ``Refused``; never anything
    else for any input (an unexpected error inside is reported as a corrupt stream)."""
    try:
        return _Machine(data, policy, budget).run()
    except Refused:
        raise
    except MemoryError:
        raise Refused("limit", "out of memory while reading the stream") from None
    except Exception as exc:  # a policy's or numpy's complaint about a malformed value
        raise Refused("corrupt", f"{type(exc).__name__}: {exc}"[:300]) from None
