"""Bad input to the converter: each case fails with its own clear message, exit status 1, no
traceback, and nothing written (no DST, no temporary file left beside it). Core-level checks
of ``ConversionError``: every problem of a checkpoint listed at once, with both shapes."""
from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from convert_helpers import TINY, cli_args, folder_listing, run_cli, run_cli_process, source_state
from paddle_vit.convert import ConversionError, convert_state_dict, detect_source, io as cio, plan_for
from paddle_vit.convert.layouts import get_layout
from paddle_vit.registry import create_model

MARKER = "CODE_RAN"


class _CreatesFile:
    """Unpickling this runs ``open(folder/CODE_RAN, 'w')``: the file appears iff code ran."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __reduce__(self):
        return (open, (str(self.folder / MARKER), "w"))


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict[str, Path]:
    """Valid checkpoints of the tiny ViT: torch .pth, torch .safetensors, Paddle .pdparams."""
    folder = tmp_path_factory.mktemp("good")
    state = source_state("vit", "timm")
    torch.save(state, folder / "good.pth")
    save_file(state, str(folder / "good.safetensors"))
    assert run_cli(folder / "good.pth", folder / "good.pdparams", *cli_args("vit"), "--no-verify")[0] == 0
    return {p.suffix: p for p in folder.iterdir()}


def _cut(suffix: str, fraction: float) -> Callable:
    def make(folder: Path, good: dict) -> Path:
        data = good[suffix].read_bytes()
        path = folder / f"cut{suffix}"
        path.write_bytes(data[:max(1, min(len(data) - 1, int(len(data) * fraction)))])
        return path
    return make


def _good(suffix: str) -> Callable:
    def make(folder: Path, good: dict) -> Path:
        return _copy(folder, good[suffix])
    return make


def _bytes(suffix: str, data: bytes) -> Callable:
    def make(folder: Path, good: dict) -> Path:
        path = folder / f"bad{suffix}"
        path.write_bytes(data)
        return path
    return make


def _torch_state(edit: Callable[[dict], dict], suffix: str = ".pth") -> Callable:
    def make(folder: Path, good: dict) -> Path:
        path = folder / f"edited{suffix}"
        torch.save(edit(source_state("vit", "timm")), path)
        return path
    return make


def _corrupt_header(folder: Path, good: dict) -> Path:
    data = bytearray(good[".safetensors"].read_bytes())
    data[12:20] = b"\xff\xfe{[}]\x00\x01"  # inside the JSON header
    path = folder / "header.safetensors"
    path.write_bytes(bytes(data))
    return path


def _directory(folder: Path, good: dict) -> Path:
    (folder / "dir.pth").mkdir()
    return folder / "dir.pth"


def _pickle_with_code(suffix: str, how: str) -> Callable:
    def make(folder: Path, good: dict) -> Path:
        path = folder / f"evil{suffix}"
        payload = {"blocks.0.norm1.weight": _CreatesFile(folder)}
        if how == "torch.save":
            torch.save(payload, path)
        else:
            with open(path, "wb") as f:
                pickle.dump(payload, f, protocol=int(how))
        return path
    return make


def _wrong_model(state: dict) -> dict:
    """The same architecture 48 wide instead of 32: a checkpoint of another model."""
    return {k: torch.randn(*[48 if s == 32 else s for s in v.shape]) for k, v in state.items()}


def _set(key: str, value: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[dict], dict]:
    def edit(state: dict) -> dict:
        state[key] = value(state[key])
        return state
    return edit


def _drop(key: str) -> Callable[[dict], dict]:
    def edit(state: dict) -> dict:
        del state[key]
        return state
    return edit


def _nan(t: torch.Tensor) -> torch.Tensor:
    t = t.clone()
    t.view(-1)[3] = float("nan")
    return t


# id: (make the bad SRC, extra CLI arguments, a fragment the message must hold)
CASES = {
    **{f"truncated-pth-{f}": (_cut(".pth", f), [], "truncated or corrupt") for f in (0.001, 0.3, 0.9, 1.0)},
    **{f"truncated-safetensors-{f}": (_cut(".safetensors", f), [], "truncated or corrupt") for f in (0.001, 0.3, 0.9, 1.0)},
    **{f"truncated-pdparams-{f}": (_cut(".pdparams", f), ["--to", "torch"], "truncated or corrupt") for f in (0.001, 0.3, 0.9, 1.0)},
    "random-pth": (_bytes(".pth", np.random.default_rng(0).bytes(4096)), [], "not a plain torch checkpoint"),
    "random-safetensors": (_bytes(".safetensors", np.random.default_rng(1).bytes(4096)), [], "not a readable safetensors"),
    "random-pdparams": (_bytes(".pdparams", np.random.default_rng(2).bytes(4096)), ["--to", "torch"], "not a readable .pdparams"),
    "empty-pth": (_bytes(".pth", b""), [], "the file is empty"),
    "empty-safetensors": (_bytes(".safetensors", b""), [], "the file is empty"),
    "unknown-suffix": (_bytes(".onnx", b"\x08\x01"), [], "unknown file type '.onnx'"),
    "directory": (_directory, [], "not a regular file"),
    "missing-file": (lambda folder, good: folder / "absent.pth", [], "no such file"),
    "corrupt-safetensors-header": (_corrupt_header, [], "corrupt header"),
    "code-torch.save": (_pickle_with_code(".pth", "torch.save"), [], "references io.open"),
    "code-pickle2-pth": (_pickle_with_code(".pth", "2"), [], "references io.open"),
    "code-pickle4-pth": (_pickle_with_code(".pth", "4"), [], "not a plain torch checkpoint"),
    "code-pdparams": (_pickle_with_code(".pdparams", "4"), ["--to", "torch"], "the file references io.open"),
    "not-a-dict": (_torch_state(lambda s: [1, 2, 3]), [], "is not a checkpoint"),
    "not-tensors": (_torch_state(lambda s: {"cls_token": 1, "pos_embed": "x"}), [], "holds a int, not a tensor"),
    "wrong-model": (_torch_state(_wrong_model), ["--source", "timm"],
                    "shape mismatch 'cls_token': checkpoint [1, 1, 48], model 'cls_token' needs [1, 1, 32]"),
    "missing-key": (_torch_state(_drop("head.bias")), [], "missing key 'head.bias' [10]"),
    "unexpected-key": (_torch_state(lambda s: {**s, "extra.weight": torch.ones(3)}), [], "unexpected key 'extra.weight' [3]"),
    "layout-unknown": (_torch_state(lambda s: {"x." + k: v for k, v in s.items()}), [], "cannot tell the source layout"),
    "layout-wrong": (lambda folder, good: _save(folder, source_state("vit", "torchvision")), ["--source", "timm"],
                     "looks like a torchvision checkpoint"),
    "layout-no-such-source": (_good(".pth"), ["--source", "keras"], "no 'keras' layout for the 'vit' family"),
    "integer-tensor": (_torch_state(_set("head.bias", lambda t: t.long())), [], "'head.bias' has dtype int64"),
    "nan-tensor": (_torch_state(_set("blocks.1.mlp.fc1.weight", _nan)), [], "'blocks.1.mlp.fc1.weight' holds NaN or Inf"),
    "paddle-file-to-paddle": (_good(".pdparams"), [], "already a Paddle checkpoint"),
    "torch-file-to-torch": (_good(".pth"), ["--to", "torch"], "is a torch checkpoint"),
    "unknown-model": (_good(".pth"), ["--model", "vit_tiny_patch61_224"], "did you mean vit_tiny_patch16_224"),
    "bad-override": (_good(".pth"), ["--override", "depht=2"], "unexpected keyword argument 'depht'"),
}


def _save(folder: Path, state: dict) -> Path:
    torch.save(state, folder / "other.pth")
    return folder / "other.pth"


def _copy(folder: Path, path: Path) -> Path:
    (folder / f"copy{path.suffix}").write_bytes(path.read_bytes())
    return folder / f"copy{path.suffix}"


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_fails_cleanly(tmp_path, good, case):
    make, extra, expected = CASES[case]
    src = make(tmp_path, good)
    reverse = "--to" in extra and extra[extra.index("--to") + 1] == "torch"
    dst = tmp_path / ("out.pth" if reverse else "out.pdparams")
    before = folder_listing(tmp_path)
    code, out = run_cli(src, dst, *cli_args("vit"), *extra)
    assert code == 1, out
    assert expected in out, out
    assert "Traceback" not in out and "nothing was written" in out
    assert folder_listing(tmp_path) == before  # no DST, no temporary file
    assert not (tmp_path / MARKER).exists()


@pytest.mark.parametrize("suffix,how", [(".pth", "torch.save"), (".pth", "2"), (".pdparams", "4")])
def test_malicious_pickle_would_run_code_but_does_not(tmp_path, suffix, how):
    path = _pickle_with_code(suffix, how)(tmp_path, {})
    # the payload is real: a plain unpickler creates the file (torch.save's zip holds a pickle too)
    if how == "torch.save":
        import zipfile
        with zipfile.ZipFile(path) as z:
            pickle.loads(z.read(next(n for n in z.namelist() if n.endswith("data.pkl"))))
    else:
        with open(path, "rb") as f:
            pickle.load(f)
    assert (tmp_path / MARKER).exists()
    (tmp_path / MARKER).unlink()
    with pytest.raises(ConversionError, match="refused to load"):
        cio.read_checkpoint(path)
    assert not (tmp_path / MARKER).exists()


def test_bad_input_in_a_fresh_process(tmp_path):
    """The installed entry point behaves like main(): status 1, one message, no traceback, no DST."""
    src = _pickle_with_code(".pth", "torch.save")(tmp_path, {})
    proc = run_cli_process(src, tmp_path / "out.pdparams", *cli_args("vit"))
    assert proc.returncode == 1 and "references io.open" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and folder_listing(tmp_path) == ["evil.pth"]


def test_old_torch_is_refused(tmp_path, good, monkeypatch):
    monkeypatch.setattr(torch, "__version__", "2.5.1+cpu")
    with pytest.raises(ConversionError, match="CVE-2025-32434"):
        cio.read_checkpoint(good[".pth"])


@pytest.mark.parametrize("version,safe", [("2.5.1", False), ("2.6.0", True), ("2.6.0+cu124", True),
                                          ("2.10.0a0", True), ("1.13.1", False)])
def test_torch_is_safe(version, safe):
    assert cio.torch_is_safe(version) is safe


@pytest.mark.parametrize("case", ["shapes", "nan-reverse"])
def test_reverse_direction_rejects_bad_paddle_weights(tmp_path, good, case):
    state = dict(cio.read_pdparams(good[".pdparams"]))
    if case == "shapes":
        state["head.weight"] = np.zeros((5, 5), np.float32)
        expected = "shape mismatch 'head.weight': file [5, 5], model needs [32, 10]"
    else:
        state["norm.weight"] = np.full_like(state["norm.weight"], np.inf)
        expected = "'norm.weight' holds NaN or Inf"
    cio.write_pdparams(state, tmp_path / "in.pdparams")
    code, out = run_cli("--to", "torch", tmp_path / "in.pdparams", tmp_path / "out.pth", *cli_args("vit"))
    assert code == 1 and expected in out and not (tmp_path / "out.pth").exists(), out


@pytest.mark.parametrize("dst,expected", [("out.txt", "written as one of"), ("no/such/dir/out.pdparams", "no such folder"),
                                          ("folder.pdparams", "is a directory")])
def test_bad_destination(tmp_path, good, dst, expected):
    if dst == "folder.pdparams":
        (tmp_path / dst).mkdir()
    before = folder_listing(tmp_path)
    code, out = run_cli(good[".pth"], tmp_path / dst, *cli_args("vit"))
    assert code == 1 and expected in out, out
    assert folder_listing(tmp_path) == before


# --- core: ConversionError lists every problem at once --------------------------------------
def _tiny_paddle():
    name, kwargs = TINY["vit"]
    return create_model(name, **kwargs)


def test_plan_lists_every_problem_with_both_shapes():
    state = {k: v for k, v in source_state("vit", "timm").items() if k != "norm.bias"}
    state["blocks.0.mlp.fc1.weight"] = torch.zeros(7, 32)
    state["blocks.0.attn.proj.weight"] = state["blocks.0.attn.proj.weight"][:, :31]
    state["stray"] = torch.zeros(2, 2)
    with pytest.raises(ConversionError) as exc:
        plan_for(state, _tiny_paddle(), "timm")
    problems = exc.value.problems
    assert len(problems) == 4, problems
    text = str(exc.value)
    assert "missing key 'norm.bias' [32]" in text
    assert "unexpected key 'stray' [2, 2]" in text
    assert ("shape mismatch 'blocks.0.mlp.fc1.weight': checkpoint [7, 32], model 'blocks.0.mlp.fc1.weight' "
            "needs [128, 32] (a Linear weight, stored [out, in] in torch)") in text
    assert "shape mismatch 'blocks.0.attn.proj.weight': checkpoint [32, 31]" in text


def test_convert_names_every_bad_tensor():
    state = source_state("vit", "timm")
    state["head.bias"] = state["head.bias"].to(torch.int32)
    state["cls_token"] = torch.full_like(state["cls_token"], float("inf"))
    with pytest.raises(ConversionError) as exc:
        convert_state_dict(state, _tiny_paddle(), "timm")
    assert sorted(exc.value.problems) == ["'cls_token' holds NaN or Inf values",
                                          "'head.bias' has dtype int32, expected a floating-point tensor "
                                          "(float16, bfloat16, float32, float64)"]


def test_detect_source_says_what_fits():
    with pytest.raises(ConversionError, match=r"layouts that fit: none; known: \['timm', 'torchvision'\]"):
        detect_source({"a.weight", "b.bias"}, "vit")
    assert detect_source(source_state("vit", "torchvision").keys(), "vit") == "torchvision"


def test_unknown_model_lists_close_matches():
    with pytest.raises(ValueError, match="did you mean vit_base_patch16_224"):
        create_model("vit_base_patch16_244")
    with pytest.raises(ValueError, match="no 'keras' layout"):
        get_layout("vit", "keras")


def test_error_list_is_capped_but_counted():
    err = ConversionError("x", [f"p{i}" for i in range(100)])
    assert "100 problem(s)" in str(err) and "... and 40 more" in str(err) and len(err.problems) == 100


# --- io: the streaming writers produce what the libraries read ---------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int64, np.bool_])
def test_safetensors_writer_matches_the_library(tmp_path, dtype):
    from safetensors.numpy import load_file
    rng = np.random.default_rng(0)
    state = {"a": (rng.standard_normal((3, 5)) * 10).astype(dtype), "empty": np.zeros((0, 4), dtype),
             "scalar": np.asarray(rng.standard_normal(), dtype), "t": rng.standard_normal((4, 6)).astype(dtype).T}
    cio.write_safetensors(state, tmp_path / "x.safetensors", {"format": "paddle"})
    back = load_file(str(tmp_path / "x.safetensors"))
    assert back.keys() == state.keys()
    for key, value in state.items():
        assert back[key].dtype == value.dtype and back[key].shape == value.shape
        np.testing.assert_array_equal(back[key], value)
    assert cio.read_checkpoint(tmp_path / "x.safetensors")[1] == "paddle"


def test_pdparams_reader_takes_paddle_save_output(tmp_path):
    import paddle
    model = _tiny_paddle()
    paddle.save(model.state_dict(), str(tmp_path / "m.pdparams"))   # with its name table
    state = cio.read_pdparams(tmp_path / "m.pdparams")
    assert state.keys() == model.state_dict().keys()
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(state[key], value.numpy())


def test_output_has_usual_permissions(tmp_path, good):
    assert run_cli(good[".pth"], tmp_path / "o.pdparams", *cli_args("vit"), "--no-verify")[0] == 0
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "o.pdparams").stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_transpose_paths_agree(dtype):
    from paddle_vit.convert.core import transpose
    a = np.random.default_rng(0).standard_normal((37, 53)).astype(dtype)
    frozen = a.copy()
    frozen.flags.writeable = False  # read-only (a memory-mapped file): torch's path, only read
    swapped = a.astype(a.dtype.newbyteorder(">"))  # non-native byte order: numpy's path
    for source in (a, frozen, swapped):
        got = transpose(source)
        assert got.flags.c_contiguous and got.dtype == source.dtype
        np.testing.assert_array_equal(got, a.T)
