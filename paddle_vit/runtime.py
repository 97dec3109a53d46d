"""CPU runtime defaults for Paddle, whatever the import order (framework-free until Paddle is loaded).

Two settings decide much of Paddle's CPU speed:

* **Math threads.** Paddle sets ``OMP_NUM_THREADS=1`` at import unless it is set. Before Paddle
  loads we set the variable to the number of cores; once Paddle is loaded and has pinned itself
  to 1 thread without the user asking (the variable was not in the process's environment when
  it started), we call ``paddle.base.core.set_num_threads`` instead, which changes OpenMP's and
  MKL's thread count at any time.
* **MKL's code path.** Paddle bundles MKL 2019, which on AMD CPUs takes its generic (SSE)
  kernels unless ``MKL_DEBUG_CPU_TYPE`` names the kernels it would pick on an Intel CPU with the
  same instructions: ``7`` (AVX-512, Skylake-X set) where the CPU has AVX-512 F, CD, BW, DQ and
  VL (Zen 4 and later), else ``5`` (AVX2). Measured on a Zen 5 vCPU, one ``[1576, 384] x
  [384, 1536]`` GEMM, 2 threads: generic 21 ms, ``5`` 9.3 ms, ``7`` 5.6 ms (torch 2.14: 8.6 ms).
  Set only on AMD CPUs; newer MKL versions, such as the one inside PyTorch, ignore it.

When MKL reads ``MKL_DEBUG_CPU_TYPE`` (measured with MKL's own ``mkl_serv_get_cpu_type``, the
code path its GEMMs dispatch to): not when Paddle is imported, but at the first MKL call that
dispatches by CPU — the first GEMM (a matmul, a Linear, an eager convolution). Elementwise
Paddle ops do not trigger it. The choice is then cached for the whole process, every thread
included, and later changes of the variable are ignored. So setting the variable after
``import paddle`` still works as long as no GEMM has run; ``configure_cpu`` then also asks MKL
for its code path at once, which fixes the choice before anything else can. Where an MKL call
already ran, it is too late: one warning names the variable and the fix.

Whatever the user has set (either variable in the environment) is left alone;
``PADDLE_VIT_CPU_DEFAULTS=0`` turns all of this off.
"""
from __future__ import annotations

import ctypes
import functools
import os
import sys
import warnings
from pathlib import Path

# MKL's AVX-512 code path (MKL_DEBUG_CPU_TYPE=7) uses these; without all of them it would fault.
AVX512_SKX = frozenset({"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"})
OPT_OUT = "PADDLE_VIT_CPU_DEFAULTS"

_set_by_us: dict[str, str] = {}   # what configure_cpu put into os.environ (not the user's choice)
_warned = False


def _cpu_flags() -> tuple[str, set[str]]:
    """``(vendor_id, flags)`` of the first CPU from ``/proc/cpuinfo``; empty where unknown."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "", set()
    vendor, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "vendor_id" and not vendor:
            vendor = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
        if vendor and flags:
            break
    return vendor, flags


def cpu_defaults() -> dict[str, str]:
    """The variables ``configure_cpu`` would set on this machine (before user choices)."""
    defaults = {"OMP_NUM_THREADS": str(os.cpu_count() or 1)}
    vendor, flags = _cpu_flags()
    if vendor == "AuthenticAMD":
        if AVX512_SKX <= flags:
            defaults["MKL_DEBUG_CPU_TYPE"] = "7"
        elif "avx2" in flags:
            defaults["MKL_DEBUG_CPU_TYPE"] = "5"
    return defaults


def _initial_environment() -> set[str] | None:
    """Names in the environment the process started with (``/proc/self/environ`` is not changed by
    ``os.environ`` assignments, so Paddle's own ``OMP_NUM_THREADS=1`` is not in it); ``None`` where
    the system does not tell."""
    try:
        raw = Path("/proc/self/environ").read_bytes()
    except OSError:
        return None
    return {entry.split(b"=", 1)[0].decode(errors="replace") for entry in raw.split(b"\0") if entry}


def user_choice(name: str) -> bool:
    """Whether the user (not Paddle, not us) chose ``name``."""
    if name not in os.environ or _set_by_us.get(name) == os.environ[name]:
        return False
    if name == "OMP_NUM_THREADS" and "paddle" in sys.modules:
        started_with = _initial_environment()
        # Paddle writes "1" when the variable was unset; only the starting environment tells them apart.
        return started_with is None or name in started_with or os.environ[name] != "1"
    return True


def bundled_mkl() -> ctypes.CDLL | None:
    """Paddle's bundled MKL (the library its CPU GEMMs call), or ``None`` (another Paddle build)."""
    paddle = sys.modules.get("paddle")
    return None if paddle is None else _load_mkl(str(Path(paddle.__file__).parent / "libs" / "libmklml_intel.so"))


@functools.lru_cache(maxsize=None)
def _load_mkl(path_name: str) -> ctypes.CDLL | None:
    path = Path(path_name)
    try:
        return ctypes.CDLL(str(path)) if path.is_file() else None
    except OSError:
        return None


def mkl_code_path() -> int | None:
    """The CPU type MKL dispatches its kernels to (0: generic, 5: AVX2, 7: AVX-512, ...), fixing
    it now if no MKL call has yet; ``None`` without Paddle's bundled MKL."""
    mkl = bundled_mkl()
    return None if mkl is None else int(mkl.mkl_serv_get_cpu_type())


def configure_cpu() -> dict[str, str]:
    """Apply each of ``cpu_defaults()`` that the user has not chosen and that can still take
    effect; return what was set now. Safe to call any number of times (``import paddle_vit`` and
    ``create_model`` call it)."""
    if os.environ.get(OPT_OUT, "1") == "0":
        return {}
    chosen = {k: v for k, v in cpu_defaults().items() if not user_choice(k) and os.environ.get(k) != v}
    if "paddle" not in sys.modules:  # both are read later: by Paddle at import, by MKL at its first GEMM
        os.environ.update(chosen)
        _set_by_us.update(chosen)
        return chosen
    done = {}
    if "OMP_NUM_THREADS" in chosen:
        from paddle.base import core
        core.set_num_threads(int(chosen["OMP_NUM_THREADS"]))
        done["OMP_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = chosen["OMP_NUM_THREADS"]
        _set_by_us["OMP_NUM_THREADS"] = chosen["OMP_NUM_THREADS"]
    want = cpu_defaults().get("MKL_DEBUG_CPU_TYPE")
    if want is not None and not user_choice("MKL_DEBUG_CPU_TYPE"):
        if os.environ.get("MKL_DEBUG_CPU_TYPE") != want:
            done["MKL_DEBUG_CPU_TYPE"] = os.environ["MKL_DEBUG_CPU_TYPE"] = want
            _set_by_us["MKL_DEBUG_CPU_TYPE"] = want
        got = mkl_code_path()
        if got is not None and str(got) != want:
            _warn_too_late(want, got)
            done.pop("MKL_DEBUG_CPU_TYPE", None)
    return done


def _warn_too_late(want: str, got: int) -> None:
    global _warned
    if _warned:
        return
    _warned = True
    warnings.warn(
        f"Paddle's MKL already runs its CPU-type-{got} kernels (generic on AMD: several times slower "
        f"GEMMs), because an MKL call ran before paddle_vit was imported; MKL_DEBUG_CPU_TYPE={want} "
        f"would select this CPU's kernels, but MKL reads it only once. Fix: set MKL_DEBUG_CPU_TYPE={want} "
        "in the environment before starting Python, or import paddle_vit before running any Paddle "
        "operation.", RuntimeWarning, stacklevel=3)
