"""The converter's output cannot clobber, cannot be left half-written, and fails in words (issue 15, item 4).

- a DST that appears while the converter runs is kept (the converter fails), and of two converters
  started on one DST exactly one writes it;
- a kill at any moment (SIGKILL, SIGTERM, SIGHUP) leaves neither DST nor a temporary file;
- any legal DST name works (temporary names fit NAME_MAX), a too-long one is refused in words;
- a full disk (a real one: a 64 KiB tmpfs in a private mount namespace, and /dev/full) and a
  read-only file system are one clear message, exit 1, nothing left behind.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from convert_helpers import ROOT, cli_args, folder_listing, run_cli, source_state
from paddle_vit.convert import ConversionError
from paddle_vit.convert import io as cio
from paddle_vit.convert.atomic import AtomicFile, atomic_output, temp_name


@pytest.fixture(scope="module")
def src_pth(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("src") / "src.pth"
    torch.save(source_state("vit", "timm"), path)
    return path


@pytest.fixture(scope="module")
def src_pdparams(tmp_path_factory, src_pth) -> Path:
    path = tmp_path_factory.mktemp("srcp") / "src.pdparams"
    assert run_cli(src_pth, path, *cli_args("vit"), "--no-verify")[0] == 0
    return path


def _src(tmp_path: Path, original: Path) -> Path:
    copy = tmp_path / original.name
    shutil.copyfile(original, copy)
    return copy


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")


# --- a DST that appears meanwhile is kept ---------------------------------------------------------
@pytest.mark.parametrize("direction", ["to-paddle", "to-torch"])
def test_dst_that_appears_during_verification_is_kept(tmp_path, src_pth, src_pdparams, direction, monkeypatch):
    """While converter A verifies its output, converter B writes DST. A must fail and keep B's file
    (the old code replaced it silently: one conversion's output lost, both exit 0)."""
    from paddle_vit.convert import verify
    src = _src(tmp_path, src_pth if direction == "to-paddle" else src_pdparams)
    dst = tmp_path / ("out.pdparams" if direction == "to-paddle" else "out.pth")
    extra = [] if direction == "to-paddle" else ["--to", "torch"]
    real = verify.compare_logits
    written: list[bytes] = []

    def second_converter_first(*args, **kwargs):
        if not written:  # converter B, run to completion in the middle of A's verification
            code, out = run_cli(src, dst, *cli_args("vit"), *extra, "--no-verify")
            assert code == 0, out
            written.append(dst.read_bytes())
        return real(*args, **kwargs)

    monkeypatch.setattr(verify, "compare_logits", second_converter_first)
    code, out = run_cli(src, dst, *cli_args("vit"), *extra)
    assert code == 1 and "appeared while the output was being written" in out and "Traceback" not in out, out
    assert dst.read_bytes() == written[0]
    assert folder_listing(tmp_path) == sorted([src.name, dst.name])


def test_two_converters_on_one_dst_one_wins(tmp_path, src_pth):
    """Started together (real processes): exactly one writes DST; the other exits 1 saying why."""
    src = _src(tmp_path, src_pth)
    dst = tmp_path / "out.pdparams"
    cmd = [sys.executable, "-m", "paddle_vit.convert", str(src), str(dst), *cli_args("vit")]
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read().decode()) for p in procs]
    assert sorted(code for code, _ in results) == [0, 1], results
    loser = next(err for code, err in results if code == 1)
    assert ("appeared while the output was being written" in loser or "the file exists" in loser), loser
    assert "Traceback" not in loser and folder_listing(tmp_path) == ["out.pdparams", "src.pth"]
    assert cio.read_checkpoint(dst)[1] == "paddle"


# --- a kill at any moment leaves nothing ----------------------------------------------------------
_BLOCKED_IN_VERIFICATION = """
import sys
from paddle_vit.convert import cli, verify
real = verify.compare_logits
def blocked(*args, **kwargs):
    print("WRITTEN", flush=True)   # the output is complete in its temporary file; now wait
    sys.stdin.read()
    return real(*args, **kwargs)
verify.compare_logits = blocked
sys.exit(cli.main(sys.argv[1:]))
"""

_BLOCKED_MID_WRITE = """
import sys
from paddle_vit.convert.atomic import AtomicFile
out = AtomicFile(sys.argv[1], anonymous=sys.argv[2] == "anonymous")
with open(out.path, "wb") as f:
    f.write(b"x" * (1 << 20))
    f.flush()
    print("WRITTEN", out.anonymous, flush=True)   # half a file: now wait
    sys.stdin.read()
out.commit()
"""


def _kill_when_written(cmd: list[str], sig: int) -> tuple[int, str]:
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    line = proc.stdout.readline().decode()
    if "WRITTEN" not in line:
        proc.kill()
        raise AssertionError(f"the child did not get to the write: {line!r} {proc.stderr.read().decode()[-2000:]}")
    proc.send_signal(sig)
    code = proc.wait(timeout=60)
    proc.stdin.close()
    return code, line


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_killed_converter_leaves_nothing(tmp_path, src_pth, sig):
    """Killed after the output is written, while it is verified: no DST and no temporary file (the
    old code left a hidden temporary file the size of the checkpoint)."""
    src = _src(tmp_path, src_pth)
    code, _ = _kill_when_written([sys.executable, "-c", _BLOCKED_IN_VERIFICATION, str(src),
                                  str(tmp_path / "out.pdparams"), *cli_args("vit")], sig)
    assert code == -sig
    assert folder_listing(tmp_path) == ["src.pth"]


@pytest.mark.parametrize("mode,sig", [("anonymous", signal.SIGKILL), ("named", signal.SIGTERM),
                                      ("named", signal.SIGHUP), ("named", signal.SIGINT)],
                         ids=["anonymous-SIGKILL", "named-SIGTERM", "named-SIGHUP", "named-SIGINT"])
def test_killed_mid_write_leaves_nothing(tmp_path, mode, sig):
    """Half-written: the anonymous file (Linux O_TMPFILE) vanishes even on SIGKILL; the named
    temporary file of other systems is removed on SIGTERM, SIGHUP and SIGINT."""
    code, line = _kill_when_written([sys.executable, "-c", _BLOCKED_MID_WRITE, str(tmp_path / "out.pdparams"),
                                     mode], sig)
    assert line.split()[1] == str(mode == "anonymous")
    assert code != 0 and folder_listing(tmp_path) == []


# --- names ------------------------------------------------------------------------------------------
def _name(n_bytes: int, char: str = "a") -> str:
    stem = (n_bytes - len(".pdparams")) // len(char.encode())
    return char * stem + ".pdparams"


@pytest.mark.parametrize("name,force", [(_name(242), False), (_name(255), False), (_name(255, "é"), False),
                                        (_name(255), True)], ids=["242-bytes", "255-bytes", "255-bytes-utf8",
                                                                  "255-bytes-force"])
def test_any_legal_dst_name_is_written(tmp_path, src_pth, name, force):
    """Names of 242-255 bytes failed before: the temporary name was 14 bytes longer than DST's."""
    assert len(os.fsencode(name)) <= 255
    src = _src(tmp_path, src_pth)
    if force:
        (tmp_path / name).write_bytes(b"old")
    code, out = run_cli(src, tmp_path / name, *cli_args("vit"), "--no-verify", *(["--force"] if force else []))
    assert code == 0, out
    assert folder_listing(tmp_path) == sorted(["src.pth", name])
    assert cio.read_checkpoint(tmp_path / name)[1] == "paddle"


def test_too_long_dst_name_is_refused_in_words(tmp_path, src_pth):
    code, out = run_cli(_src(tmp_path, src_pth), tmp_path / _name(256), *cli_args("vit"))
    assert code == 1 and "the file name is 256 bytes long; this file system allows 255" in out, out
    assert folder_listing(tmp_path) == ["src.pth"]


@pytest.mark.parametrize("char", ["a", "é", "語"])
def test_temporary_names_fit_name_max(tmp_path, char):
    for n in range(1, 256):
        name = char * (n // len(char.encode())) or "a"
        temp = temp_name(tmp_path / name, 255)
        assert len(os.fsencode(temp)) <= 255 and temp.startswith("." + name[:1]) and temp.endswith(".tmp")


@pytest.mark.parametrize("anonymous", [True, False], ids=["anonymous", "named"])
def test_atomic_output_both_ways(tmp_path, anonymous):
    """Each mechanism on its own: the file appears complete; an error in the block leaves nothing;
    an existing DST is kept without force and replaced with it; a DST that appears meanwhile is kept."""
    dst = tmp_path / _name(255)
    with pytest.raises(RuntimeError):
        with atomic_output(dst, anonymous=anonymous) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("a failed verification")
    assert folder_listing(tmp_path) == []
    with atomic_output(dst, anonymous=anonymous) as tmp:
        tmp.write_bytes(b"first")
        assert (str(tmp).startswith("/proc/self/fd/")) == anonymous
    assert dst.read_bytes() == b"first"
    with pytest.raises(ConversionError, match="the file exists"):
        with atomic_output(dst, anonymous=anonymous):
            pass
    with atomic_output(dst, force=True, anonymous=anonymous) as tmp:
        tmp.write_bytes(b"second")
    assert dst.read_bytes() == b"second"
    other = tmp_path / "other.pdparams"
    with pytest.raises(ConversionError, match="appeared while"):
        with atomic_output(other, anonymous=anonymous) as tmp:
            tmp.write_bytes(b"mine")
            other.write_bytes(b"theirs")
    assert other.read_bytes() == b"theirs" and folder_listing(tmp_path) == sorted([dst.name, other.name])


def test_named_fallback_restores_signal_handlers(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    out = AtomicFile(tmp_path / "x.pdparams", anonymous=False)
    assert signal.getsignal(signal.SIGTERM) is not before
    out.discard()
    assert signal.getsignal(signal.SIGTERM) is before and folder_listing(tmp_path) == []


# --- full disks and read-only file systems -----------------------------------------------------------
def _state() -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in source_state("vit", "timm").items()}


@pytest.mark.parametrize("suffix,layout", [(".pdparams", "paddle"), (".safetensors", "paddle"), (".pth", "torch")])
@pytest.mark.parametrize("target", ["path", "file-object"])
def test_dev_full_is_one_clear_error(suffix, layout, target):
    """/dev/full fails every write with ENOSPC: a path, or an open file (the old torch writer raised
    a RuntimeError without an errno, which the CLI showed as a traceback)."""
    state = _state()
    with pytest.raises(ConversionError, match=r"No space left on device \(ENOSPC\)") as err:
        if target == "path":
            cio.write_checkpoint(state, "/dev/full", layout, fmt=f"out{suffix}")
        else:
            with open("/dev/full", "wb", buffering=0) as f:  # unbuffered: every write meets the full disk
                cio.write_checkpoint(state, f, layout, fmt=f"out{suffix}")
    assert f"cannot write out{suffix}" in str(err.value)


def _namespace_problem() -> str | None:
    """Why a private tmpfs cannot be mounted here (None if it can)."""
    if shutil.which("unshare") is None:
        return "no unshare(1) to make a private mount namespace"
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True, text=True, check=False)
    return None if probe.returncode == 0 else f"cannot mount a tmpfs in a user namespace: {probe.stderr.strip()}"


NAMESPACE_PROBLEM = _namespace_problem()
_ON_SMALL_FS = r"""
mount -t tmpfs -o "$1" tmpfs "$2" || exit 99
shift 2
"$@"
echo "RC=$?"
echo "LEFT=[$(ls -A "$OUTDIR")]"
"""


@pytest.mark.skipif(NAMESPACE_PROBLEM is not None, reason=str(NAMESPACE_PROBLEM))
@pytest.mark.parametrize("direction,options,expected", [
    ("to-paddle", "size=64k", "No space left on device (ENOSPC)"),
    ("to-torch", "size=64k", "No space left on device (ENOSPC)"),
    ("to-paddle", "ro", "Read-only file system (EROFS)"),
])
def test_full_or_read_only_file_system(tmp_path, src_pth, src_pdparams, direction, options, expected):
    """A real file system too small for the output (a 64 KiB tmpfs; the tiny ViT is ~120 KiB) or
    mounted read-only, in a private mount namespace: exit 1, the reason in words, no traceback,
    nothing left on it."""
    src = _src(tmp_path, src_pth if direction == "to-paddle" else src_pdparams)
    outdir = tmp_path / "small"
    outdir.mkdir()
    dst = outdir / ("out.pdparams" if direction == "to-paddle" else "out.pth")
    extra = [] if direction == "to-paddle" else ["--to", "torch"]
    cmd = ["unshare", "-rm", "bash", "-c", _ON_SMALL_FS, "bash", options, str(outdir),
           sys.executable, "-m", "paddle_vit.convert", str(src), str(dst), *cli_args("vit"), *extra]
    proc = subprocess.run(cmd, cwd=ROOT, env=dict(_env(), OUTDIR=str(outdir)), capture_output=True, text=True,
                          timeout=300, check=False)
    assert "RC=1" in proc.stdout and "LEFT=[]" in proc.stdout, (proc.stdout, proc.stderr[-3000:])
    assert expected in proc.stderr and f"cannot write {dst}" in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "nothing was written" in proc.stderr
