"""The converter's source models are built with the source's own arguments: ours are timm's, except
for the EfficientNet family, whose builder calls timm's generators (timm's EfficientNet takes no
``img_size``: any input size works, and the verification runs at the size asked for)."""
from __future__ import annotations

import pytest
import torch

from convert_helpers import TINY, run_cli, source_state
from harness import randomize_
from paddle_vit.convert.core import ConversionError
from paddle_vit.convert.sources import build_source_model
from paddle_vit.variants import get_variant

timm = pytest.importorskip("timm", reason="timm not installed (the timm source model)")


@pytest.mark.parametrize("family", sorted(TINY))
def test_timm_source_model_at_another_size(family):
    """An ``--img-size`` override builds timm's model of every family, in timm's terms."""
    name, kwargs = TINY[family]
    size = 48
    model = build_source_model(name, family, "timm", {**kwargs, "img_size": size})
    out = model(torch.zeros(1, 3, size, size))
    assert out.shape == (1, kwargs["num_classes"])


def test_convert_tf_efficientnetv2_at_another_size(tmp_path):
    """``paddle-vit-convert SRC DST --model tf_efficientnetv2_s --source timm --img-size N`` used to fail
    its verification: EfficientNet.__init__() got an unexpected keyword argument 'img_size'."""
    torch.save(source_state("efficientnet", "timm"), tmp_path / "src.pth")
    code, out = run_cli(tmp_path / "src.pth", tmp_path / "out.pdparams", "--model", "tf_efficientnetv2_s",
                        "--source", "timm", "--img-size", "72", "--num-classes", "10",
                        "--override", "depth_multiplier=0.25")
    assert code == 0, out
    assert "timm vs paddle_vit, random batch [1, 3, 72, 72]" in out and "PASS" in out


def test_an_argument_timm_fixes_is_refused_by_name():
    assert get_variant("tf_efficientnetv2_s")[0] == "efficientnet"
    with pytest.raises(ConversionError, match=r"no counterpart to \['stem_size'\]"):
        build_source_model("tf_efficientnetv2_s", "efficientnet", "timm", {"stem_size": 16, "img_size": 64})


@pytest.mark.full_size
def test_the_issues_command_full_size(tmp_path):
    """The full tf_efficientnetv2_s at 300 px, from a timm-layout checkpoint (torch_ref's twin with
    perturbed weights: well-conditioned, unlike timm's own init perturbed, see tolerances)."""
    import torch_ref
    torch.manual_seed(0)
    torch.save(randomize_(torch_ref.create_model("tf_efficientnetv2_s")).state_dict(), tmp_path / "src.pth")
    code, out = run_cli(tmp_path / "src.pth", tmp_path / "out.pdparams", "--model", "tf_efficientnetv2_s",
                        "--source", "timm", "--img-size", "300")
    assert code == 0, out
    assert "[1, 3, 300, 300]" in out and "PASS" in out
