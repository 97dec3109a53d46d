"""CPU runtime defaults for Paddle, chosen before Paddle is imported (framework-free).

Two environment variables decide much of Paddle's CPU speed and are read only once, when
Paddle (and its bundled MKL) loads:

* ``OMP_NUM_THREADS``: Paddle pins it to 1 at import unless it is set; we set it to the
  number of cores, so that Paddle uses the same threads as PyTorch does by default.
* ``MKL_DEBUG_CPU_TYPE=5``: Paddle bundles MKL 2019, which on AMD CPUs falls back to its
  generic (SSE) kernels; this variable makes it take the AVX2 kernels it would pick on an
  Intel CPU (GEMM about 2x faster). We set it only on AMD CPUs with AVX2; newer MKL versions,
  such as the one inside PyTorch, ignore it.

Either is left alone when the user has set it, and neither is touched once Paddle is imported
(too late to matter, and changing it then would only mislead).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path


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
    if vendor == "AuthenticAMD" and "avx2" in flags:
        defaults["MKL_DEBUG_CPU_TYPE"] = "5"
    return defaults


def configure_cpu() -> dict[str, str]:
    """Set each of ``cpu_defaults()`` that the user has not set; return the ones set now.

    A no-op once ``paddle`` is imported.
    """
    if "paddle" in sys.modules:
        return {}
    chosen = {k: v for k, v in cpu_defaults().items() if k not in os.environ}
    os.environ.update(chosen)
    return chosen
