"""Hostile and odd checkpoint files, assembled by hand for the reader tests (no framework needed).

``Pickle`` writes a pickle opcode by opcode (names as in ``pickletools``), so a test can build the
exact stream an attacker would: a dtype mutated after use, an array over a negative offset, a memo
index of 2**27. ``write_zip`` writes a torch-style zip (every record 64-byte aligned, as
``torch.save`` does) from records that a test has edited.
"""
from __future__ import annotations

import struct
import zipfile
from pathlib import Path
from typing import Iterable


class Pickle:
    """A pickle stream built opcode by opcode; every method returns ``self`` so calls chain."""

    def __init__(self, protocol: int | None = 4) -> None:
        self.parts: list[bytes] = [b"\x80" + bytes([protocol])] if protocol is not None else []

    def raw(self, data: bytes) -> "Pickle":
        self.parts.append(data)
        return self

    def data(self) -> bytes:
        return b"".join(self.parts)

    def write(self, path: Path) -> Path:
        path.write_bytes(self.data())
        return path

    # --- values -----------------------------------------------------------------------------
    def none(self) -> "Pickle":
        return self.raw(b"N")

    def bool(self, value: bool) -> "Pickle":
        return self.raw(b"\x88" if value else b"\x89")

    def int(self, value: int) -> "Pickle":
        if -2**31 <= value < 2**31:
            return self.raw(b"J" + struct.pack("<i", value))
        body = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
        return self.raw(b"\x8a" + bytes([len(body)]) + body)

    def float(self, value: float) -> "Pickle":
        return self.raw(b"G" + struct.pack(">d", value))

    def str(self, text: str) -> "Pickle":
        body = text.encode("utf-8", "surrogatepass")
        return self.raw(b"X" + struct.pack("<I", len(body)) + body)

    def bytes(self, body: bytes) -> "Pickle":
        return self.raw(b"B" + struct.pack("<I", len(body)) + body)

    def bytes8(self, body: bytes, declared: int | None = None) -> "Pickle":
        return self.raw(b"\x8e" + struct.pack("<Q", len(body) if declared is None else declared) + body)

    def bytearray8(self, body: bytes) -> "Pickle":
        return self.raw(b"\x96" + struct.pack("<Q", len(body)) + body)

    # --- containers ---------------------------------------------------------------------------
    def mark(self) -> "Pickle":
        return self.raw(b"(")

    def tuple(self, n: int | None = None) -> "Pickle":
        """TUPLE1..3 for n in 1..3, EMPTY_TUPLE for 0, TUPLE (from the last MARK) for None."""
        return self.raw({None: b"t", 0: b")", 1: b"\x85", 2: b"\x86", 3: b"\x87"}[n])

    def list(self) -> "Pickle":
        return self.raw(b"]")

    def append(self) -> "Pickle":
        return self.raw(b"a")

    def dict(self) -> "Pickle":
        return self.raw(b"}")

    def setitem(self) -> "Pickle":
        return self.raw(b"s")

    def setitems(self) -> "Pickle":
        return self.raw(b"u")

    # --- memo, objects ------------------------------------------------------------------------
    def put(self, index: int) -> "Pickle":
        return self.raw(b"r" + struct.pack("<I", index))

    def get(self, index: int) -> "Pickle":
        return self.raw(b"j" + struct.pack("<I", index))

    def global_(self, module: str, name: str) -> "Pickle":
        return self.raw(b"c" + f"{module}\n{name}\n".encode())

    def reduce(self) -> "Pickle":
        return self.raw(b"R")

    def build(self) -> "Pickle":
        return self.raw(b"b")

    def stop(self) -> "Pickle":
        return self.raw(b".")

    # --- numpy, as numpy pickles it -------------------------------------------------------------
    def dtype(self, code: str, state: tuple | None = None) -> "Pickle":
        """``numpy.dtype(code)`` with its ``__setstate__``; ``state`` (default: a plain scalar
        type's) is written with ``value``."""
        self.global_("numpy", "dtype").str(code).bool(False).bool(True).tuple(3).reduce()
        if state is None:
            state = (3, "<" if code[0] in "fiuc" and code[1:] != "1" else "|", None, None, None, -1, -1, 0)
        return self.value(state).build()

    def value(self, obj: object) -> "Pickle":
        """A plain value: None, bool, int, float, str, bytes, tuple, list or str-keyed dict."""
        if obj is None:
            return self.none()
        if isinstance(obj, bool):
            return self.bool(obj)
        if isinstance(obj, int):
            return self.int(obj)
        if isinstance(obj, float):
            return self.float(obj)
        if isinstance(obj, str):
            return self.str(obj)
        if isinstance(obj, bytes):
            return self.bytes(obj)
        if isinstance(obj, tuple):
            self.mark()
            for item in obj:
                self.value(item)
            return self.tuple()
        if isinstance(obj, list):
            self.list()
            for item in obj:
                self.value(item).append()
            return self
        if isinstance(obj, dict):
            self.dict()
            for key, item in obj.items():
                self.value(key).value(item).setitem()
            return self
        raise TypeError(f"no pickle value for {type(obj).__name__}")

    def reconstruct(self, shape: tuple[int, ...], code: str, raw: bytes | None, fortran: bool = False,
                    module: str = "numpy._core.multiarray") -> "Pickle":
        """An array as numpy pickles it for protocols 2-4: ``_reconstruct(ndarray, (0,), b'b')``
        then ``BUILD (1, shape, dtype, is_fortran, raw)``; ``raw=None`` leaves out the BUILD."""
        self.global_(module, "_reconstruct").global_("numpy", "ndarray").int(0).tuple(1).bytes(b"b")
        self.tuple(3).reduce()
        if raw is None:
            return self
        self.mark().int(1).value(tuple(shape)).dtype(code).bool(fortran).bytes(raw).tuple()
        return self.build()

    def frombuffer(self, raw: bytes, code: str, shape: tuple[int, ...], order: str = "C") -> "Pickle":
        """An array as numpy pickles it for protocol 5: ``_frombuffer(buf, dtype, shape, order)``."""
        self.global_("numpy._core.numeric", "_frombuffer").mark().bytearray8(raw).dtype(code)
        return self.value(tuple(shape)).str(order).tuple().reduce()

    def state_dict(self, entries: Iterable[tuple[str, "callable"]]) -> "Pickle":
        """``{key: value}`` where each value is written by ``write(self)``."""
        self.dict()
        for key, write in entries:
            self.str(key)
            write(self)
            self.setitem()
        return self


def write_zip(path: Path, records: Iterable[tuple[str, bytes]], compression: int = zipfile.ZIP_STORED) -> Path:
    """A zip of ``records`` laid out as ``torch.save`` lays it out: each stored record's data starts
    on a 64-byte boundary (torch's memory-mapped reader expects it), via a padding extra field."""
    with open(path, "wb") as f, zipfile.ZipFile(f, "w", compression=compression) as out:
        for name, data in records:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = compression
            if compression == zipfile.ZIP_STORED:
                start = f.tell() + 30 + len(name.encode()) + 4  # local header, name, extra-field header
                pad = -start % 64
                info.extra = b"\xff\xff" + struct.pack("<H", pad) + b"Z" * pad
            out.writestr(info, data)
    return path


def zip_records(path: Path) -> list[tuple[str, bytes]]:
    """Every record of a zip, in order, as ``(name, data)``."""
    with zipfile.ZipFile(path) as z:
        return [(info.filename, z.read(info.filename)) for info in z.infolist()]


# --- fresh interpreters: a crash (SIGSEGV) fails the test instead of killing pytest ----------------
ROOT = Path(__file__).resolve().parent.parent


def run_python(code: str, *args: object, timeout: float = 300, stdin: bytes | None = None):
    """``python -c code args`` in a fresh process from the repository root: ``CompletedProcess``
    (``returncode`` is ``-11`` for a SIGSEGV)."""
    import os
    import subprocess
    import sys
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=ROOT, env=env, input=stdin,
                          capture_output=True, timeout=timeout, check=False)


# Reads each of argv[1:] with read_checkpoint, each in a child forked after the imports, and prints
# one JSON line per file: what happened, the child's RSS when it started and its peak RSS after
# reading (its own ru_maxrss: a forked child's peak starts at its RSS at the fork, so the imports'
# transient peak is not in it). RLIMIT_AS (3 GiB above what was mapped) only keeps a regression from
# taking the machine: the assertion is on the measured peak, far below it.
MEASURE_READ = r"""
import json, os, resource, sys
from paddle_vit.convert.core import ConversionError
from paddle_vit.convert.io import read_checkpoint
page = os.sysconf("SC_PAGE_SIZE")
statm = lambda: [int(x) * page for x in open("/proc/self/statm").read().split()[:2]]

def child(path, write_end):
    vm, rss = statm()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    resource.setrlimit(resource.RLIMIT_AS, (vm + (3 << 30), resource.RLIM_INFINITY))
    try:
        read_checkpoint(path)
        outcome, message = "loaded", ""
    except ConversionError as exc:
        outcome, message = "refused", str(exc)
    except MemoryError as exc:
        outcome, message = "MemoryError", repr(exc)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    os.write(write_end, json.dumps({"outcome": outcome, "message": message, "rss": rss,
                                    "peak_before": peak_before, "peak": peak}).encode())

for path in sys.argv[1:]:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        child(path, write_end)
        os._exit(0)
    os.close(write_end)
    report = b""
    while chunk := os.read(read_end, 1 << 16):
        report += chunk
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    print(report.decode() if report else json.dumps({"outcome": f"the child died (wait status {status})"}))
"""


def measure_reads(paths: list[Path]) -> list[dict]:
    """Read each of ``paths`` with ``read_checkpoint`` in a process forked from one fresh interpreter:
    per file, the outcome, the message and the RSS figures (see ``MEASURE_READ``)."""
    import json
    proc = run_python(MEASURE_READ, *paths)
    lines = proc.stdout.decode().strip().splitlines()
    assert proc.returncode == 0 and len(lines) == len(paths), (proc.returncode, proc.stderr.decode()[-2000:])
    return [json.loads(line) for line in lines]
