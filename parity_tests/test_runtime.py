"""The CPU defaults paddle_vit applies (``paddle_vit.runtime``), for every import order.

The subprocess tests observe what the defaults are for: the code path MKL dispatches its GEMMs to
(MKL's own ``mkl_serv_get_cpu_type``, read after a GEMM has run) and the OpenMP/MKL thread count
Paddle's kernels use (``omp_get_max_threads``), not the environment variables.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import paddle_vit.runtime as runtime

ROOT = Path(__file__).resolve().parent.parent
SKX = {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}
WANT_MKL = runtime.cpu_defaults().get("MKL_DEBUG_CPU_TYPE")
CORES = os.cpu_count() or 1


@pytest.mark.parametrize("vendor,flags,expect_mkl", [
    ("AuthenticAMD", {"avx2", "fma"}, "5"),
    ("AuthenticAMD", {"avx2"} | SKX, "7"),                # Zen 4/5: MKL's AVX-512 kernels
    ("AuthenticAMD", {"avx2", "avx512f", "avx512cd"}, "5"),  # partial AVX-512: AVX2 only
    ("AuthenticAMD", {"avx"}, None),          # no AVX2 kernels to force
    ("GenuineIntel", {"avx2"} | SKX, None),   # MKL already picks its best kernels on Intel
    ("", set(), None),                        # unknown CPU: leave MKL alone
])
def test_cpu_defaults(monkeypatch, vendor, flags, expect_mkl):
    monkeypatch.setattr(runtime, "_cpu_flags", lambda: (vendor, flags))
    defaults = runtime.cpu_defaults()
    assert defaults["OMP_NUM_THREADS"].isdigit() and int(defaults["OMP_NUM_THREADS"]) >= 1
    assert defaults.get("MKL_DEBUG_CPU_TYPE") == expect_mkl


# One Python process per import order. PROBE runs a GEMM and reports MKL's code path and the
# thread count Paddle's kernels get, plus any warning paddle_vit gave.
PROBE = textwrap.dedent("""
    import ctypes, json, os, warnings
    warnings.simplefilter("always")
    caught = []
    warnings.showwarning = lambda message, *a, **k: caught.append(str(message))
    {steps}
    import paddle
    paddle.matmul(paddle.ones([64, 64]), paddle.ones([64, 64])).numpy()
    libs = os.path.join(os.path.dirname(paddle.__file__), "libs")
    mkl = ctypes.CDLL(os.path.join(libs, "libmklml_intel.so"))
    omp = ctypes.CDLL(os.path.join(libs, "libiomp5.so"))
    print(json.dumps({{"mkl": mkl.mkl_serv_get_cpu_type(), "threads": omp.omp_get_max_threads(),
                      "warnings": [w for w in caught if "MKL_DEBUG_CPU_TYPE" in w]}}))
""")
ORDERS = {
    "paddle_vit first": "import paddle_vit\nimport paddle",
    "paddle first": "import paddle\nimport paddle_vit",
    "paddle first, create_model": "import paddle\nimport paddle_vit\n"
                                  "paddle_vit.create_model('vit_tiny_patch16_224', depth=1)",
}
TOO_LATE = "import paddle\npaddle.matmul(paddle.ones([4, 4]), paddle.ones([4, 4]))\nimport paddle_vit"


def probe(steps: str, **env: str) -> dict:
    base = {k: v for k, v in os.environ.items()
            if k not in ("OMP_NUM_THREADS", "MKL_DEBUG_CPU_TYPE", "PADDLE_VIT_CPU_DEFAULTS")}
    code = PROBE.format(steps=steps)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**base, "PYTHONPATH": str(ROOT), **env}, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_paddle_alone_is_slow_here():
    """Without paddle_vit, Paddle runs 1 thread and (on AMD) MKL's generic kernels: what the defaults fix."""
    got = probe("")
    assert got["threads"] == 1
    if WANT_MKL is not None:
        assert str(got["mkl"]) != WANT_MKL


@pytest.mark.parametrize("order", list(ORDERS))
def test_defaults_take_effect_in_any_import_order(order):
    got = probe(ORDERS[order])
    assert got["threads"] == CORES, f"{order}: Paddle's kernels run {got['threads']} threads, not {CORES}"
    assert got["warnings"] == []
    if WANT_MKL is None:
        pytest.skip("this CPU needs no MKL_DEBUG_CPU_TYPE (not AMD, or no AVX2): only threads checked")
    assert str(got["mkl"]) == WANT_MKL, f"{order}: MKL dispatches to CPU type {got['mkl']}, not {WANT_MKL}"


def test_too_late_warns_once_naming_the_variable_and_the_fix():
    if WANT_MKL is None:
        pytest.skip("this CPU needs no MKL_DEBUG_CPU_TYPE (not AMD, or no AVX2)")
    got = probe(TOO_LATE + "\npaddle_vit.create_model('vit_tiny_patch16_224', depth=1)")
    assert str(got["mkl"]) != WANT_MKL           # MKL had already chosen: nothing can change it now
    assert got["threads"] == CORES               # threads can still be set
    assert len(got["warnings"]) == 1, got["warnings"]
    assert f"MKL_DEBUG_CPU_TYPE={WANT_MKL}" in got["warnings"][0] and "before starting Python" in got["warnings"][0]


@pytest.mark.parametrize("order", ["paddle_vit first", "paddle first"])
def test_user_values_are_kept(order):
    mkl = "5" if WANT_MKL == "7" else "7" if WANT_MKL == "5" else None
    env = {"OMP_NUM_THREADS": "1", **({"MKL_DEBUG_CPU_TYPE": mkl} if mkl else {})}
    got = probe(ORDERS[order], **env)
    assert got["threads"] == 1 and got["warnings"] == []
    if mkl is not None:
        assert str(got["mkl"]) == mkl


def test_opt_out():
    got = probe(ORDERS["paddle first"], **{"PADDLE_VIT_CPU_DEFAULTS": "0"})
    assert got["threads"] == 1
