"""The CPU defaults paddle_vit sets before Paddle loads (``paddle_vit.runtime``)."""
from __future__ import annotations

import os
import sys

import pytest

import paddle_vit.runtime as runtime


SKX = {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}


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


def test_configure_cpu_keeps_user_choice(monkeypatch):
    monkeypatch.setattr(runtime, "_cpu_flags", lambda: ("AuthenticAMD", {"avx2"}))
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("MKL_DEBUG_CPU_TYPE", raising=False)
    monkeypatch.delitem(sys.modules, "paddle")  # as if Paddle were not loaded yet
    assert runtime.configure_cpu() == {"MKL_DEBUG_CPU_TYPE": "5"}
    assert os.environ["OMP_NUM_THREADS"] == "7" and os.environ["MKL_DEBUG_CPU_TYPE"] == "5"


def test_configure_cpu_is_a_no_op_once_paddle_is_loaded(monkeypatch):
    import paddle  # noqa: F401  (loaded: too late for either variable)
    monkeypatch.delenv("MKL_DEBUG_CPU_TYPE", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert runtime.configure_cpu() == {}
    assert "MKL_DEBUG_CPU_TYPE" not in os.environ and "OMP_NUM_THREADS" not in os.environ
