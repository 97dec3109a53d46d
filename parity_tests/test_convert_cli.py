"""``paddle-vit-convert`` end to end: every family and source layout through a real subprocess,
the round trip back to torch, verification that can fail, and the written files themselves."""
from __future__ import annotations

import io
import sys

import numpy as np
import paddle
import pytest
import torch

from convert_helpers import (ROOT, TINY, cli_args, tiny, folder_listing, run_cli, run_cli_process, source_params,
                             source_state)
from paddle_vit.convert import core
from paddle_vit.convert.cli import main
from paddle_vit.convert.io import read_checkpoint
from paddle_vit.convert.layouts import TORCHVISION_NAMES
from paddle_vit.convert.sources import build_source_model
from paddle_vit.parity import assert_close, tolerance
from paddle_vit.registry import create_model
from paddle_vit.variants import get_variant, list_models, model_kwargs

# Source file formats, cycled over the layouts so that each format is exercised end to end.
FORMATS = [(".pth", None), (".safetensors", None), (".bin", "model"), (".pt", "state_dict"), (".pth", "model_ema")]


def save_source(state: dict, path, nest: str | None = None) -> None:
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save({nest: state, "epoch": 7} if nest else state, path)


@pytest.mark.parametrize("family,source", source_params())
def test_cli_end_to_end(tmp_path, family, source):
    index = [p.values[:2] for p in source_params()].index((family, source))
    suffix, nest = FORMATS[index % len(FORMATS)]
    src = tmp_path / f"src{suffix}"
    save_source(source_state(family, source), src, nest)
    dst = tmp_path / ("out.safetensors" if index % 2 else "out.pdparams")
    # torch_ref is an alias of timm's layout: auto-detection says timm, so name it explicitly
    proc = run_cli_process(src, dst, *cli_args(family, source), "--source", "torch_ref" if source == "torch_ref" else "auto")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS" in proc.stdout and "Traceback" not in proc.stderr
    assert folder_listing(tmp_path) == sorted([src.name, dst.name])
    # what was written loads into our model and gives the source model's logits
    name, kwargs = tiny(family, source)
    model = create_model(name, pretrained=str(dst), **kwargs)
    ref = build_source_model(name, family, source, kwargs)
    ref.load_state_dict(source_state(family, source))
    x = np.random.default_rng(1).standard_normal([1, 3, kwargs.get("img_size", 224), kwargs.get("img_size", 224)]).astype(np.float32)
    with torch.no_grad():
        want = ref(torch.from_numpy(x)).numpy()
    assert_close(want, model(paddle.to_tensor(x)), tolerance("model"), f"logits of {dst.name}")


@pytest.mark.parametrize("family", sorted(TINY))
@pytest.mark.parametrize("via", [".pdparams", ".safetensors"])
def test_round_trip_is_bit_identical(tmp_path, family, via):
    src, mid, back = tmp_path / "src.pth", tmp_path / f"mid{via}", tmp_path / "back.pth"
    state = source_state(family, "torch_ref")
    torch.save(state, src)
    assert run_cli(src, mid, *cli_args(family), "--source", "torch_ref")[0] == 0
    code, out = run_cli("--to", "torch", mid, back, *cli_args(family))
    assert code == 0, out
    again = torch.load(back, weights_only=True)
    assert list(again) == list(state)
    for key, value in state.items():
        assert again[key].dtype == value.dtype and torch.equal(again[key], value), key


def test_round_trip_through_processes_and_tools_wrapper(tmp_path):
    family = "vit"
    src, mid, back = tmp_path / "src.pth", tmp_path / "mid.pdparams", tmp_path / "back.safetensors"
    state = source_state(family, "torch_ref")
    torch.save(state, src)
    first = run_cli_process(src, mid, *cli_args(family), "--quiet",
                            entry=[sys.executable, str(ROOT / "tools" / "convert_torch_to_paddle.py")])
    assert first.returncode == 0 and first.stdout == "", first.stdout + first.stderr
    second = run_cli_process("--to", "torch", mid, back, *cli_args(family))
    assert second.returncode == 0 and "PASS" in second.stdout, second.stdout + second.stderr
    from safetensors.torch import load_file
    again = load_file(str(back))
    assert again.keys() == state.keys() and all(torch.equal(again[k], state[k]) for k in state)


def test_pdparams_output_is_what_paddle_load_reads(tmp_path):
    src, dst = tmp_path / "src.pth", tmp_path / "out.pdparams"
    state = source_state("vit", "timm")
    torch.save(state, src)
    assert run_cli(src, dst, *cli_args("vit"), "--no-verify")[0] == 0
    loaded = paddle.load(str(dst))
    ours, _ = read_checkpoint(dst)
    assert loaded.keys() == ours.keys()
    for key in ours:
        np.testing.assert_array_equal(loaded[key].numpy(), ours[key])
    np.testing.assert_array_equal(ours["blocks.0.attn.qkv.weight"], state["blocks.0.attn.qkv.weight"].numpy().T)


def test_verification_catches_a_wrong_conversion(tmp_path, monkeypatch):
    src, dst = tmp_path / "src.pth", tmp_path / "out.pdparams"
    torch.save(source_state("vit", "timm"), src)
    real = core.apply_transform
    # a converter bug: the attention output projection gains 1 % of scale
    monkeypatch.setattr(core, "apply_transform", lambda a, t, m, s, *key: real(a, t, m, s, *key)
                        * (1.01 if len(s) == 2 and s[0] == s[1] else 1.0))
    code, out = run_cli(src, dst, *cli_args("vit"))
    assert code == 3 and "FAIL" in out and "does not reproduce" in out, out
    assert folder_listing(tmp_path) == ["src.pth"]
    # the same bug written without verification goes through: the check is what caught it
    assert run_cli(src, dst, *cli_args("vit"), "--no-verify")[0] == 0 and dst.exists()


def test_verification_refuses_all_zero_logits(tmp_path):
    state = source_state("vit", "timm")
    state["head.weight"].zero_()
    state["head.bias"].zero_()
    torch.save(state, tmp_path / "src.pth")
    code, out = run_cli(tmp_path / "src.pth", tmp_path / "out.pdparams", *cli_args("vit"))
    assert code == 3 and "all zero" in out and not (tmp_path / "out.pdparams").exists(), out


def test_existing_destination_kept_unless_force(tmp_path):
    src, dst = tmp_path / "src.pth", tmp_path / "out.pdparams"
    torch.save(source_state("vit", "timm"), src)
    dst.write_bytes(b"precious")
    code, out = run_cli(src, dst, *cli_args("vit"), "--no-verify")
    assert code == 1 and "--force" in out and dst.read_bytes() == b"precious"
    assert run_cli(src, dst, *cli_args("vit"), "--no-verify", "--force")[0] == 0
    assert read_checkpoint(dst)[1] == "paddle"
    assert folder_listing(tmp_path) == ["out.pdparams", "src.pth"]


def test_never_writes_over_its_input(tmp_path):
    src = tmp_path / "same.safetensors"
    save_source(source_state("vit", "timm"), src)
    before = src.read_bytes()
    code, out = run_cli(src, src, *cli_args("vit"), "--force")
    assert code == 1 and "input" in out and src.read_bytes() == before


def test_quiet_prints_nothing_on_success(tmp_path):
    torch.save(source_state("vit", "timm"), tmp_path / "src.pth")
    code, out = run_cli(tmp_path / "src.pth", tmp_path / "o.pdparams", *cli_args("vit"), "--quiet")
    assert code == 0 and out == ""


def test_resampled_position_embedding_verified(tmp_path):
    """A checkpoint at 32 px converted for 48 px: the torch side resamples with its own twin."""
    torch.save(source_state("vit", "torchvision"), tmp_path / "src.pth")
    code, out = run_cli(tmp_path / "src.pth", tmp_path / "o.pdparams", *cli_args("vit"), "--img-size", "48")
    assert code == 0 and "[1, 3, 48, 48]" in out and "PASS" in out, out


def test_list_models():
    code, out = run_cli("--list-models")
    assert code == 0
    listed = [line.split()[0] for line in out.splitlines()[1:]]
    assert listed == list_models()
    assert "vit_b_16" in out and run_cli("--list-models", "vit_base*")[1].count("\n") == 1 + len(list_models("vit_base*"))


def test_usage_errors_exit_2(tmp_path):
    assert run_cli(tmp_path / "a.pth")[0] == 2
    with pytest.raises(SystemExit) as exc:
        run_cli(tmp_path / "a.pth", tmp_path / "b.pdparams", "--model", "x", "--override", "no_equals_sign")
    assert exc.value.code == 2


@pytest.mark.parametrize("name,tv_name", sorted(TORCHVISION_NAMES.items()))
def test_torchvision_name_map(name, tv_name):
    """Our torchvision builder, given the variant's arguments, makes the named constructor's tensors."""
    import torchvision
    family = get_variant(name)[0]
    # only torchvision's ViT fixes its image size in the constructor
    extra = {"image_size": model_kwargs(name)[1]["img_size"]} if family == "vit" else {}
    with torch.device("meta"):
        ours = build_source_model(name, family, "torchvision", {}).state_dict()
        theirs = getattr(torchvision.models, tv_name)(**extra).state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}


@pytest.mark.full_size
def test_full_size_vit_base(tmp_path):
    from torch_ref.registry import create_model as torch_create
    torch.manual_seed(0)
    torch.save(torch_create("vit_base_patch16_224").state_dict(), tmp_path / "src.pth")
    code, out = run_cli(tmp_path / "src.pth", tmp_path / "out.pdparams", "--model", "vit_base_patch16_224",
                        "--source", "torch_ref")
    assert code == 0 and "[1, 1000]" in out and "PASS" in out, out


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_half_precision_sources(tmp_path, dtype, suffix):
    """fp16 / bf16 checkpoints are widened exactly to float32 (our models are fp32) and verified."""
    state = {k: v.to(dtype) for k, v in source_state("vit", "timm").items()}
    save_source(state, tmp_path / f"src{suffix}")
    code, out = run_cli(tmp_path / f"src{suffix}", tmp_path / "o.pdparams", *cli_args("vit"))
    assert code == 0 and "PASS" in out, out
    written, _ = read_checkpoint(tmp_path / "o.pdparams")
    np.testing.assert_array_equal(written["pos_embed"], state["pos_embed"].float().numpy())
    assert written["pos_embed"].dtype == np.float32


def test_source_model_that_rejects_the_checkpoint(tmp_path, monkeypatch):
    """If the source library's model does not take the checkpoint, nothing is written and it says why."""
    from paddle_vit.convert import sources
    torch.save(source_state("vit", "timm"), tmp_path / "src.pth")
    monkeypatch.setitem(sources.BUILDERS, ("*", "timm"), lambda name, kw: torch.nn.Linear(2, 2))
    code, out = run_cli(tmp_path / "src.pth", tmp_path / "o.pdparams", *cli_args("vit"))
    assert code == 1 and "does not take this checkpoint" in out and "Unexpected key(s)" in out, out
    assert folder_listing(tmp_path) == ["src.pth"]


def test_nested_and_ddp_prefixed_checkpoint(tmp_path):
    """{'state_dict': {'module.<key>': ...}} as a DistributedDataParallel training script saves it."""
    state = source_state("vit", "timm")
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "optimizer": {}}, tmp_path / "ddp.pth")
    code, out = run_cli(tmp_path / "ddp.pth", tmp_path / "o.pdparams", *cli_args("vit"))
    assert code == 0 and "PASS" in out, out


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("quiet", [False, True])
def test_progress_bar_only_on_a_terminal(tmp_path, monkeypatch, quiet):
    torch.save(source_state("vit", "timm"), tmp_path / "src.pth")
    args = [tmp_path / "src.pth", tmp_path / "o.pdparams", *cli_args("vit"), "--no-verify"] + (["--quiet"] if quiet else [])
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main([str(a) for a in args]) == 0
    assert ("converting" in terminal.getvalue()) is not quiet
    # not a terminal (a pipe, a log file): no bar at all
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert main([str(a) for a in args] + ["--force"]) == 0 and sys.stderr.getvalue() == ""
