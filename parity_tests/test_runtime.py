"""The CPU defaults paddle_vit sets before Paddle loads (``paddle_vit.runtime``)."""
from __future__ import annotations

import os
import sys

import pytest

import paddle_vit.runtime as runtime


@pytest.mark.parametrize("vendor,flags,expect_mkl", [
    ("AuthenticAMD", {"avx2", "fma"}, True),
    ("AuthenticAMD", {"avx"}, False),         # no AVX2 kernels to force
    ("GenuineIntel", {"avx2", "avx512f"}, False),  # MKL already picks its best kernels on Intel
    ("", set(), False),                        # unknown CPU: leave MKL alone
])
def test_cpu_defaults(monkeypatch, vendor, flags, expect_mkl):
    monkeypatch.setattr(runtime, "_cpu_flags", lambda: (vendor, flags))
    defaults = runtime.cpu_defaults()
    assert defaults["OMP_NUM_THREADS"].isdigit() and int(defaults["OMP_NUM_THREADS"]) >= 1
    assert (defaults.get("MKL_DEBUG_CPU_TYPE") == "5") == expect_mkl


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
