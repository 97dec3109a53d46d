"""Output that appears complete or not at all, and never replaces a file it was not told to.

    with atomic_output(dst, force=False) as tmp:   # tmp: a path to write to, and to read back
        write_checkpoint(state, tmp, layout, fmt=dst)
        verify(tmp)                                 # an exception anywhere in here: no dst
    # dst now holds exactly what was written and checked

Anyone who writes a file that must not be seen half-written (the converter, a download cache)
can use ``atomic_output`` or ``AtomicFile``; every ``OSError`` they meet comes back as one
``ConversionError`` naming ``dst`` and the reason (``No space left on device (ENOSPC)``).

How (and what is guaranteed):

- Linux, where the file system has ``O_TMPFILE``: ``tmp`` is ``/proc/self/fd/N``, an anonymous
  file in ``dst``'s folder. It gets a name only at the end, by ``linkat(2)``, which fails if
  ``dst`` exists: a ``dst`` that appeared meanwhile (a second converter, a user) is kept and this
  one fails. A process killed at any moment, ``SIGKILL`` included, leaves nothing: the kernel frees
  a file that has no name when its last descriptor closes. With ``force`` the file is linked under
  a temporary name and renamed over ``dst`` (two system calls with SIGTERM/SIGHUP/SIGINT blocked
  between them; only a SIGKILL in that instant would leave the temporary name).
- Elsewhere: ``tmp`` is a hidden file ``.<dst name>.<random>.tmp`` beside ``dst``, created
  exclusively, removed on any error and on SIGTERM, SIGHUP and SIGINT (not on SIGKILL, which no
  process can catch), and put in place by ``link(2)`` (fails if ``dst`` exists) or, with
  ``force``, by ``rename(2)``.
- Temporary names are shortened to fit the folder's NAME_MAX (255 bytes on most file systems)
  for any legal ``dst`` name.
- The data is fsync'ed before it gets its name, and the folder after, so a crash of the machine
  leaves either the old state or the complete file.
"""
from __future__ import annotations

import errno
import os
import secrets
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from paddle_vit.convert.core import ConversionError
from paddle_vit.convert.files import os_reason

DEFAULT_NAME_MAX = 255
# Errors of open(O_TMPFILE) that mean "not supported here" (fall back to a named file), not a real failure.
_NO_TMPFILE = {errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT, errno.ENOTSUP}
# Errors of link(2) that mean the file system has no hard links.
_NO_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS}
_CLEANUP_SIGNALS = tuple(getattr(signal, s) for s in ("SIGTERM", "SIGHUP", "SIGINT") if hasattr(signal, s))


def name_max(folder: Path) -> int:
    """The longest file name (in bytes) that ``folder``'s file system allows."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return DEFAULT_NAME_MAX


def temp_name(dst: Path, limit: int | None = None) -> str:
    """``.<dst name>.<8 random hex>.tmp``, the name cut (at a character boundary) to fit ``limit`` bytes."""
    limit = name_max(dst.parent) if limit is None else limit
    tail = f".{secrets.token_hex(4)}.tmp"
    room = limit - 1 - len(tail)
    name = dst.name
    while name and len(os.fsencode(name)) > room:
        name = name[:-1]
    return f".{name}{tail}"


class AtomicFile:
    """A file that appears at ``dst`` complete, or not at all. ``path`` is where to write it (and read
    it back); ``commit()`` puts it in place, ``discard()`` drops it. ``anonymous``: use ``O_TMPFILE``
    (``None``: where the system has it; ``False``: always a named temporary file)."""

    def __init__(self, dst: str | os.PathLike, force: bool = False, anonymous: bool | None = None) -> None:
        self.dst = Path(dst)
        self.force = force
        self.folder = self.dst.parent
        self._fd: int | None = None
        self._temp: str | None = None   # the named temporary file, if one exists now
        self._dir_fd = _open_dir(self.folder)
        try:
            if anonymous is not False and hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd"):
                self._fd = self._open_anonymous()
            if self._fd is None:
                self._temp = temp_name(self.dst)
                self._fd = os.open(self.folder / self._temp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
                _register(self.folder / self._temp)
        except BaseException:
            self.discard()
            raise
        self.anonymous = self._temp is None
        self.path = Path(f"/proc/self/fd/{self._fd}") if self.anonymous else self.folder / self._temp

    def _open_anonymous(self) -> int | None:
        try:
            return os.open(self.folder, os.O_TMPFILE | os.O_RDWR, 0o666)
        except OSError as exc:
            if exc.errno in _NO_TMPFILE:
                return None
            raise

    def commit(self) -> None:
        """Put the file in place: ``dst`` must not exist unless ``force``."""
        if self._fd is None:
            raise ValueError("commit() after the file was committed or discarded")
        os.fsync(self._fd)
        if self.anonymous:
            self._commit_anonymous()
        else:
            self._commit_named()
        self.discard()
        if self._dir_fd is not None:
            try:
                os.fsync(self._dir_fd)
            except OSError:  # some file systems cannot sync a folder; the data itself is synced
                pass

    def _commit_anonymous(self) -> None:
        source = f"/proc/self/fd/{self._fd}"
        if not self.force:
            self._link(source, self.dst.name)
            return
        with _signals_blocked():
            name = temp_name(self.dst)
            self._link(source, name)
            self._temp = name
            self._rename(name)
            self._temp = None

    def _commit_named(self) -> None:
        assert self._temp is not None
        if self.force:
            with _signals_blocked():
                self._rename(self._temp)
                _unregister(self.folder / self._temp)
                self._temp = None
            return
        try:
            self._link(self._temp, self.dst.name)
        except OSError as exc:
            if exc.errno not in _NO_LINKS:
                raise
            if os.path.lexists(self.dst):  # no hard links here: check, then rename (not atomic)
                raise _appeared(self.dst) from None
            self._rename(self._temp)
            _unregister(self.folder / self._temp)
            self._temp = None

    def _link(self, source: str, name: str) -> None:
        try:
            os.link(source, name if self._dir_fd is not None else self.folder / name,
                    src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd, follow_symlinks=True)
        except FileExistsError:
            if name == self.dst.name:
                raise _appeared(self.dst) from None
            raise

    def _rename(self, name: str) -> None:
        if self._dir_fd is not None:
            os.replace(name, self.dst.name, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)
        else:
            os.replace(self.folder / name, self.dst)

    def discard(self) -> None:
        """Drop the file (if not committed) and release what it holds; safe to call twice."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._temp is not None:
            try:
                os.unlink(self.folder / self._temp)
            except FileNotFoundError:
                pass
            _unregister(self.folder / self._temp)
            self._temp = None
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None


def _appeared(dst: Path) -> ConversionError:
    return ConversionError(f"not writing {dst}", [
        "the file appeared while the output was being written (another converter, or another program?); "
        "it is kept as it is: pass --force to replace it"])


def _open_dir(folder: Path) -> int | None:
    if not hasattr(os, "O_DIRECTORY") or os.link not in os.supports_dir_fd:
        return None
    return os.open(folder, os.O_RDONLY | os.O_DIRECTORY)


@contextmanager
def _signals_blocked() -> Iterator[None]:
    """SIGTERM, SIGHUP and SIGINT wait until the block is done (delivered right after it)."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _CLEANUP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


# --- named temporary files are removed on SIGTERM/SIGHUP/SIGINT ------------------------------------
_LIVE: set[Path] = set()
_PREVIOUS: dict[int, Any] = {}
_LOCK = threading.Lock()


def _register(path: Path) -> None:
    with _LOCK:
        _LIVE.add(path)
        if threading.current_thread() is not threading.main_thread() or _PREVIOUS:
            return
        for sig in _CLEANUP_SIGNALS:
            try:
                _PREVIOUS[sig] = signal.signal(sig, _on_signal)
            except (ValueError, OSError):
                pass


def _unregister(path: Path) -> None:
    with _LOCK:
        _LIVE.discard(path)
        if _LIVE or threading.current_thread() is not threading.main_thread():
            return
        for sig, previous in list(_PREVIOUS.items()):
            try:
                signal.signal(sig, previous)
            except (ValueError, OSError, TypeError):
                pass
            del _PREVIOUS[sig]


def _on_signal(sig: int, frame: Any) -> None:
    for path in list(_LIVE):
        try:
            os.unlink(path)
        except OSError:
            pass
    _LIVE.clear()
    previous = _PREVIOUS.pop(sig, signal.SIG_DFL)
    for other, handler in list(_PREVIOUS.items()):
        signal.signal(other, handler)
    _PREVIOUS.clear()
    signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
    if callable(previous):
        previous(sig, frame)   # e.g. Python's SIGINT handler: KeyboardInterrupt
    elif previous != signal.SIG_IGN:
        os.kill(os.getpid(), sig)  # the default action (terminate), with the signal's exit status


# --- the checks and the context manager ----------------------------------------------------------
def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(dst: str | os.PathLike, force: bool = False, inputs: Iterable[str | os.PathLike] = ()) -> None:
    """Fail (before any work) if ``dst`` may not be written: one of ``inputs``, a directory, an
    existing file without ``force``, a name longer than the file system allows, or in a folder
    that does not exist. ``atomic_output`` checks again when it puts the file in place."""
    dst = Path(dst)
    try:
        for src in inputs:
            if _same_file(Path(src), dst) or Path(src).resolve() == dst.resolve():
                raise ConversionError(f"not writing {dst}",
                                      ["it is the input file; the converter never writes over its input"])
        if not dst.parent.is_dir():
            raise ConversionError(f"not writing {dst}", [f"no such folder {dst.parent}"])
        limit = name_max(dst.parent)
        if len(os.fsencode(dst.name)) > limit:
            raise ConversionError(f"not writing {dst}", [
                f"the file name is {len(os.fsencode(dst.name))} bytes long; this file system allows {limit}"])
        if dst.is_dir():
            raise ConversionError(f"not writing {dst}", ["it is a directory"])
        if os.path.lexists(dst) and not force:
            raise ConversionError(f"not writing {dst}", ["the file exists; pass --force to replace it"])
    except OSError as exc:
        raise ConversionError(f"not writing {dst}", [os_reason(exc)]) from None


@contextmanager
def atomic_output(dst: str | os.PathLike, force: bool = False, inputs: Iterable[str | os.PathLike] = (),
                  anonymous: bool | None = None) -> Iterator[Path]:
    """Yield a path to write; if the block succeeds, the file appears at ``dst`` (which must not
    exist unless ``force``); if it raises, or the process is killed, nothing appears and nothing is
    left behind (see the module docstring for how, per system). ``check_output`` says what is refused."""
    check_output(dst, force, inputs)
    try:
        out = AtomicFile(dst, force, anonymous)
    except OSError as exc:
        raise ConversionError(f"cannot write {dst}", [os_reason(exc)]) from None
    try:
        yield out.path
        out.commit()
    except OSError as exc:
        out.discard()
        raise ConversionError(f"cannot write {dst}", [os_reason(exc)]) from None
    except BaseException:
        out.discard()
        raise
