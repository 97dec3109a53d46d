"""torch_ref for torch deployers: ``torch.jit.trace`` and ``torch.export.export`` (with a dynamic batch
dimension) of one tiny model per registered family, plus the options whose graphs differ (ViT's
LayerScale, register tokens, attention pooling, distillation token, dynamic image size, differential
attention; Swin on padded windows; EfficientNet's TF "SAME" padding, CondConv and MixNet blocks) and the
SpatialTransformer, give eager's output at other batch sizes than the one captured, also after a save
and a load. ``torch.jit.script`` fails for every family (README, "TorchScript / torch.export"); the
test asserts that it still fails where the README says it does, so the README cannot drift."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

from harness import randomize_
from paddle_vit.parity import assert_close
from paddle_vit.parity.tolerances import POLICY
from paddle_vit.variants import VARIANTS
from test_export import EFFNET_SMALL
from torch_ref.random_weights import well_conditioned_
from vit_zoo_helpers import randomize_vit_, shrunk

TOL = POLICY["graph_capture"]
ROOT = Path(__file__).resolve().parents[1]
# two stages (shifted and unshifted blocks, a patch merging): the capture's cost grows with the blocks
SWIN_TINY = dict(img_size=(32, 48), window_size=4, embed_dim=16, depths=(2, 2), num_heads=(1, 2))


def _firsts() -> dict[str, str]:
    """The first row of each family's table (as test_onnx), every registered family covered."""
    import torch_ref.models  # noqa: F401  (registers the families)
    from torch_ref.registry import FAMILIES
    firsts: dict[str, str] = {}
    for name, (family, _) in VARIANTS.items():
        firsts.setdefault(family, name)
    assert set(firsts) == set(FAMILIES), f"families without a variant or a class: {set(firsts) ^ set(FAMILIES)}"
    return firsts


FIRSTS = _firsts()
# case id -> (variant, overrides); "stn": the SpatialTransformer layer (no registry family)
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    **{family: (name, {}) for family, name in sorted(FIRSTS.items())},
    "vit-layerscale": ("vit_small_patch14_dinov2", {}),
    "vit-reg-tokens": ("vit_small_patch14_reg4_dinov2", {}),
    "vit-map-head": ("vit_base_patch16_siglip_224", {}),
    "vit-dist-token": ("deit_tiny_distilled_patch16_224", {}),
    "vit-dynamic-img-size": ("test_vit2", {}),
    "vit-diff-parallel": ("vit_dpwee_patch16_reg1_gap_256", {}),
    "swin-padded-windows": ("swin_tiny_patch4_window7_224", dict(img_size=(40, 56))),
    "efficientnet-same-padding": ("tf_efficientnetv2_s", {}),
    "efficientnet-condconv": ("tf_efficientnet_cc_b0_4e", {}),
    "efficientnet-mixnet": ("mixnet_s", {}),
    "stn": ("", {}),
}

# The first construct ``torch.jit.script`` rejects in each family (README, "TorchScript / torch.export"):
# (file, line, what TorchScript says). Fix one and the next blocker shows: then update the README and this.
NOT_SCRIPTABLE: dict[str, tuple[str, str]] = {
    "vit": ("paddle_vit/checks.py", "Unknown type constructor Sequence"),
    "swin": ("torch_ref/models/swin.py", "'Tensor' object has no attribute or method 'forward'"),
    "swinv2": ("torch_ref/models/swin.py", "'Tensor' object has no attribute or method 'forward'"),
    "efficientnet": ("torch_ref/layers/norm_act.py", "'Tensor' object has no attribute or method 'forward'"),
    "stn": ("paddle_vit/checks.py", "Unknown type constructor Sequence"),
}


def build(case: str) -> tuple[torch.nn.Module, tuple[int, int]]:
    """The case's tiny torch_ref model (eval mode, random non-trivial weights) and its input size."""
    from torch_ref.layers.stn import SpatialTransformer
    from torch_ref.registry import create_model
    name, extra = CASES[case]
    if case == "stn":
        model = randomize_(SpatialTransformer(3, out_size=(12, 10)))
        return model.eval(), (16, 20)
    family = VARIANTS[name][0]
    if family == "vit":
        model = randomize_vit_(create_model(name, **shrunk(name, **extra)))
        h, w = model.patch_embed.img_size
        return model.eval(), ((h + 2 * model.patch_embed.patch_size[0], w) if model.dynamic_img_size else (h, w))
    kwargs = {**(EFFNET_SMALL if family == "efficientnet" else SWIN_TINY), **extra}
    model = create_model(name, num_classes=7, **kwargs)
    model = well_conditioned_(model) if family == "efficientnet" else randomize_(model)
    size = kwargs["img_size"]
    return model.eval(), (size, size) if isinstance(size, int) else tuple(size)


def _inputs(size: tuple[int, int]) -> dict[int, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {b: torch.randn(b, 3, *size, generator=g) for b in (2, 1, 3)}


def _check(model: torch.nn.Module, captured: Any, xs: dict[int, torch.Tensor], where: str) -> None:
    for b, x in xs.items():
        with torch.no_grad():
            assert_close(model(x), captured(x), TOL, f"{where}, batch {b}")


@pytest.mark.parametrize("case", list(CASES))
def test_trace_matches_eager(case, tmp_path):
    """Traced at batch 2; batch 1 and 3 too, after ``torch.jit.save`` + ``torch.jit.load``."""
    model, size = build(case)
    xs = _inputs(size)
    with warnings.catch_warnings():  # TracerWarning: Python-side shape checks become constants of the trace
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(model, xs[2])
    torch.jit.save(traced, tmp_path / "model.pt")
    _check(model, traced, xs, f"{case}: torch.jit.trace")
    _check(model, torch.jit.load(tmp_path / "model.pt"), xs, f"{case}: torch.jit.load")


@pytest.mark.parametrize("case", list(CASES))
def test_export_matches_eager(case, tmp_path):
    """``torch.export.export`` with a dynamic batch; batch 1, 2 and 3; one case per family also after
    ``torch.export.save`` + ``load`` (seconds per Swin: the load re-traces)."""
    model, size = build(case)
    xs = _inputs(size)
    program = torch.export.export(model, (xs[2],), dynamic_shapes=({0: torch.export.Dim("batch")},))
    _check(model, program.module(), xs, f"{case}: torch.export")
    if case in FIRSTS or case == "stn":
        torch.export.save(program, tmp_path / "model.pt2")
        _check(model, torch.export.load(tmp_path / "model.pt2").module(), xs, f"{case}: torch.export.load")


_SCRIPT = """
import json, sys, warnings
warnings.simplefilter("ignore")
import torch
import test_torchscript as T
model, _ = T.build(sys.argv[1])
try:
    torch.jit.script(model)
    print(json.dumps(None))
except Exception as e:
    lines = [l for l in str(e).splitlines() if l.strip()]
    where = next((l.split('"')[1] for l in lines if l.strip().startswith('File "')), "")
    print(json.dumps([type(e).__name__, lines[0] if lines else "", where]))
"""


@pytest.mark.parametrize("family", list(NOT_SCRIPTABLE))
def test_script_fails_where_the_readme_says(family):
    """In a fresh interpreter each (a failed compile leaves half-made classes behind, and the next model
    sharing them fails with "Can't redefine method" instead of its own reason)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "parity_tests")]),
           "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", _SCRIPT, family], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result is not None, (f"torch.jit.script({family}) now works: update README's 'TorchScript / "
                                "torch.export' paragraph and test the scripted module against eager here")
    kind, message, where = result
    path, reason = NOT_SCRIPTABLE[family]
    assert kind == "RuntimeError" and reason in message and where.endswith(path), (
        f"torch.jit.script({family}) now stops elsewhere: {kind}: {message} at {where}; README's "
        f"'TorchScript / torch.export' paragraph says {reason!r} in {path}: update both")
