"""Tensor checks and all-or-nothing loading (issue 15, items 2 and 3).

Every tensor kind that torch or safetensors can hand us but that is not a dense float weight is
named in one ``ConversionError`` (never a ``TypeError`` from ``.numpy()``); values are checked as
they will be written (after the cast to float32, so a float64 1e300 is caught); Paddle-layout
inputs get the same checks; and nothing is loaded into a model until every tensor has passed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from convert_helpers import TINY, cli_args, folder_listing, run_cli, source_state
from paddle_vit.convert import ConversionError, load_pretrained
from paddle_vit.convert import io as cio
from paddle_vit.registry import create_model

NAME, KWARGS = TINY["vit"]
KEY = "pos_embed"  # sorts last among the tiny ViT's keys: the last tensor a loader reaches


def _tiny_model():
    return create_model(NAME, **KWARGS)


def _weights(model) -> dict[str, np.ndarray]:
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def _unchanged(before: dict, model) -> bool:
    return all(np.array_equal(before[k], v.numpy()) for k, v in model.state_dict().items())


# id: (the bad tensor made from the good one, a fragment of the message)
KINDS: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], str]] = {
    "float8_e4m3fn": (lambda t: t.to(torch.float8_e4m3fn), "has dtype float8_e4m3fn, expected a floating-point tensor"),
    "float8_e5m2": (lambda t: t.to(torch.float8_e5m2), "has dtype float8_e5m2"),
    "sparse_coo": (lambda t: t.to_sparse(), "is a sparse tensor (torch.sparse_coo)"),
    "sparse_csr": (lambda t: t.to_sparse_csr(), "is a sparse tensor (torch.sparse_csr)"),  # 2-D: on head.weight
    "meta": (lambda t: torch.empty(t.shape, device="meta"), "is a meta tensor: it has a shape but no values"),
    "quantized": (lambda t: torch.quantize_per_tensor(t, 0.01, 0, torch.qint8), "is a quantized tensor (torch.qint8)"),
    "nested": (lambda t: torch.nested.nested_tensor([t[0, :2], t[0, :3]]), "is a nested tensor"),
    "complex64": (lambda t: t.to(torch.complex64), "has dtype complex64"),
    "uint16": (lambda t: t.to(torch.uint16), "has dtype uint16"),
    "bool": (lambda t: t > 0, "has dtype bool"),
}


@pytest.mark.filterwarnings("ignore::UserWarning")  # torch warns that nested/sparse tensors are prototypes
@pytest.mark.parametrize("kind", list(KINDS))
def test_unusable_tensor_kind_is_named(tmp_path, kind):
    """A ``.pth`` with one unusable tensor: the CLI exits 1 naming the tensor and its kind, and
    ``create_model`` raises ``ConversionError`` (the old code: a TypeError/NotImplementedError/
    RuntimeError traceback)."""
    make, expected = KINDS[kind]
    key = "head.weight" if kind == "sparse_csr" else KEY
    state = source_state("vit", "timm")
    state[key] = make(state[key])
    src = tmp_path / "bad.pth"
    torch.save(state, src)
    before = folder_listing(tmp_path)
    code, out = run_cli(src, tmp_path / "out.pdparams", *cli_args("vit"))
    assert code == 1 and f"'{key}' {expected}" in out and "Traceback" not in out, out
    assert folder_listing(tmp_path) == before
    with pytest.raises(ConversionError, match=f"'{key}'"):
        create_model(NAME, pretrained=src, **KWARGS)


def test_float8_safetensors_is_named(tmp_path):
    state = {k: v.contiguous() for k, v in source_state("vit", "timm").items()}
    state[KEY] = state[KEY].to(torch.float8_e4m3fn)
    save_file(state, str(tmp_path / "bad.safetensors"))
    code, out = run_cli(tmp_path / "bad.safetensors", tmp_path / "out.pdparams", *cli_args("vit"))
    assert code == 1 and f"'{KEY}' has dtype float8_e4m3fn" in out and "Traceback" not in out, out


def test_float64_beyond_float32_is_caught_after_the_cast(tmp_path):
    """1e300 is finite in float64 and Inf in float32: the old check ran before the cast, wrote Inf,
    and the verification then called the NaN reference logits 'all zero'."""
    state = {k: v.double() for k, v in source_state("vit", "timm").items()}
    state["blocks.0.mlp.fc1.weight"][3, 5] = 1e300
    torch.save(state, tmp_path / "f64.pth")
    code, out = run_cli(tmp_path / "f64.pth", tmp_path / "out.pdparams", *cli_args("vit"))
    assert code == 1, out
    assert "'blocks.0.mlp.fc1.weight' holds values too large for float32 (up to 1e+300)" in out, out
    assert not (tmp_path / "out.pdparams").exists()


def test_float64_that_fits_converts(tmp_path):
    """The other side of the cast check: float64 weights within float32's range convert and verify."""
    state = {k: v.double() for k, v in source_state("vit", "timm").items()}
    torch.save(state, tmp_path / "f64.pth")
    code, out = run_cli(tmp_path / "f64.pth", tmp_path / "out.pdparams", *cli_args("vit"))
    assert code == 0 and "PASS" in out, out


def test_non_finite_reference_logits_are_called_so(tmp_path):
    """Weights finite in float32 whose forward pass overflows: the reference logits hold NaN/Inf, and
    the message says so (the old one said they were all zero)."""
    state = source_state("vit", "timm")
    state["norm.weight"] = torch.full_like(state["norm.weight"], 3e38)
    torch.save(state, tmp_path / "overflow.pth")
    code, out = run_cli(tmp_path / "overflow.pth", tmp_path / "out.pdparams", *cli_args("vit"))
    assert code == 3 and "logits hold NaN or Inf" in out and "all zero" not in out, out
    assert not (tmp_path / "out.pdparams").exists()


# --- Paddle-layout inputs get the same checks -----------------------------------------------------
def _paddle_state() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {k: (rng.standard_normal(v.shape) * 0.1 + 0.05).astype(np.float32)
            for k, v in _tiny_model().state_dict().items()}


def _nan(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.flat[1] = np.nan
    return a


PADDLE_CASES = {
    "pdparams-nan": (".pdparams", lambda a: _nan(a), f"'{KEY}' holds NaN or Inf values"),
    "pdparams-int64": (".pdparams", lambda a: a.astype(np.int64), f"'{KEY}' has dtype int64"),
    "pdparams-bool": (".pdparams", lambda a: a > 0, f"'{KEY}' has dtype bool"),
    "pdparams-float64-1e300": (".pdparams", lambda a: np.full(a.shape, 1e300), f"'{KEY}' holds values too large"),
    "safetensors-nan": (".safetensors", lambda a: _nan(a), f"'{KEY}' holds NaN or Inf values"),
    "safetensors-int32": (".safetensors", lambda a: torch.from_numpy(a).int(), f"'{KEY}' has dtype int32"),
    "safetensors-float8": (".safetensors", lambda a: torch.from_numpy(a).to(torch.float8_e5m2),
                           f"'{KEY}' has dtype float8_e5m2"),
}


def _write_paddle(path: Path, state: dict) -> Path:
    if path.suffix == ".pdparams":
        cio.write_pdparams({k: np.asarray(v) for k, v in state.items()}, path)
    else:
        save_file({k: torch.as_tensor(v).contiguous() for k, v in state.items()}, str(path), {"format": "paddle"})
    return path


@pytest.mark.parametrize("case", list(PADDLE_CASES))
def test_paddle_layout_tensors_are_checked_and_nothing_is_loaded(tmp_path, case):
    """A Paddle-layout file whose last tensor is unusable: ``load_pretrained`` raises one
    ``ConversionError`` and the model keeps every weight (the old code loaded NaN and int silently,
    and raised a TypeError for float8 after writing the tensors before it)."""
    suffix, edit, expected = PADDLE_CASES[case]
    state = _paddle_state()
    state[KEY] = edit(state[KEY])
    path = _write_paddle(tmp_path / f"bad{suffix}", state)
    model = _tiny_model()
    before = _weights(model)
    with pytest.raises(ConversionError) as err:
        load_pretrained(model, path)
    assert expected in str(err.value), str(err.value)
    assert _unchanged(before, model), "a failed load changed the model"
    code, out = run_cli("--to", "torch", path, tmp_path / "out.pth", *cli_args("vit"))
    assert code == 1 and expected in out and not (tmp_path / "out.pth").exists(), out


def test_every_bad_paddle_tensor_is_listed_at_once(tmp_path):
    state = _paddle_state()
    state["cls_token"] = _nan(state["cls_token"])
    state["head.bias"] = state["head.bias"].astype(np.int32)
    state[KEY] = np.full(state[KEY].shape, 1e300)
    model = _tiny_model()
    before = _weights(model)
    with pytest.raises(ConversionError) as err:
        load_pretrained(model, _write_paddle(tmp_path / "bad.pdparams", state))
    assert len(err.value.problems) == 3 and _unchanged(before, model), err.value.problems


def test_float16_and_float64_paddle_files_load_exactly(tmp_path):
    state = _paddle_state()
    for dtype in (np.float16, np.float64):
        model = _tiny_model()
        load_pretrained(model, _write_paddle(tmp_path / f"w_{np.dtype(dtype).name}.pdparams",
                                             {k: v.astype(dtype) for k, v in state.items()}))
        for key, value in model.state_dict().items():
            np.testing.assert_array_equal(value.numpy(), state[key].astype(dtype).astype(np.float32), err_msg=key)
