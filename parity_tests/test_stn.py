"""SpatialTransformer (seed 004, STN): forward and backward parity with torch for both
``align_corners`` and every padding mode, the identity initialisation, and bad input."""
from __future__ import annotations

import numpy as np
import paddle
import pytest
import torch

import paddle_vit.layers as PL
import torch_ref.layers as TL
from harness import check_parity, pair, random_input
from paddle_vit.parity import assert_close, error_stats, tolerance

MODES = ["zeros", "border", "reflection"]


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("padding_mode", MODES)
def test_forward_backward_parity(align_corners, padding_mode, device):
    """Random (non-identity) localisation weights: theta, the grid, the sampler and every gradient."""
    tm, pm, routes = pair(TL.SpatialTransformer, PL.SpatialTransformer, 3, align_corners=align_corners,
                          padding_mode=padding_mode, device=device)
    x = random_input([2, 3, 13, 17])
    check_parity(tm, pm, routes, [x], device=device)
    check_parity(tm, pm, routes, [x], call=lambda m, xs: m.localise(*xs), device=device, backward=False)


def _theta(batch: int) -> np.ndarray:
    """Zoom out 1.4x, rotate and shift: a good part of the grid falls outside the image."""
    rng = np.random.default_rng(3)
    out = []
    for _ in range(batch):
        a, s = rng.uniform(-0.6, 0.6), rng.uniform(1.2, 1.6)
        out.append([[s * np.cos(a), -s * np.sin(a), rng.uniform(-0.4, 0.4)],
                    [s * np.sin(a), s * np.cos(a), rng.uniform(-0.4, 0.4)]])
    return np.asarray(out, np.float32)


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("padding_mode", MODES)
@pytest.mark.parametrize("out_size", [None, (5, 8)])
def test_sampler_outside_the_image(align_corners, padding_mode, out_size):
    """``transform`` with a given theta that samples outside the image, where the padding modes
    differ: output and the gradients of input and theta."""
    tm, pm, routes = pair(TL.SpatialTransformer, PL.SpatialTransformer, 2, out_size=out_size,
                          align_corners=align_corners, padding_mode=padding_mode)
    check_parity(tm, pm, routes, [random_input([2, 2, 9, 11]), _theta(2)], call=lambda m, xs: m.transform(*xs))


def test_padding_modes_differ_there():
    """The previous test is not vacuous: outside the image, zeros, border and reflection disagree."""
    x, theta = torch.tensor(random_input([2, 2, 9, 11])), torch.tensor(_theta(2))
    outs = [TL.SpatialTransformer(2, padding_mode=m).transform(x, theta) for m in MODES]
    for i in range(3):
        for j in range(i + 1, 3):
            assert error_stats(outs[i], outs[j]).scaled > 1e-2, (MODES[i], MODES[j])


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("shape", [[2, 3, 8, 8], [1, 1, 7, 12], [3, 4, 16, 5]])
def test_identity_initialisation_returns_the_input(align_corners, shape):
    """Zero weight and identity bias in the last layer (the STN paper's start): output == input."""
    x = random_input(shape)
    torch.manual_seed(1)
    t_out = TL.SpatialTransformer(shape[1], align_corners=align_corners)(torch.tensor(x))
    p_out = PL.SpatialTransformer(shape[1], align_corners=align_corners)(paddle.to_tensor(x))
    for where, out in (("torch", t_out), ("paddle", p_out)):
        assert_close(x, out, tolerance("layer"), f"{where} identity STN")


@pytest.mark.filterwarnings("ignore:Default grid_sample and affine_grid behavior")
def test_default_follows_torch_not_paddle():
    """Paddle's affine_grid/grid_sample default to align_corners=True, torch's to False: ours is torch's."""
    assert PL.SpatialTransformer(3).align_corners is False and TL.SpatialTransformer(3).align_corners is False
    x, theta = torch.tensor(random_input([1, 1, 6, 6])), torch.tensor(_theta(1))
    torch_default = torch.nn.functional.grid_sample(x, torch.nn.functional.affine_grid(theta, [1, 1, 6, 6]))
    ours = PL.SpatialTransformer(1).transform(paddle.to_tensor(x.numpy()), paddle.to_tensor(theta.numpy()))
    assert_close(torch_default, ours, tolerance("layer"), "torch's default semantics")
    paddle_default = paddle.nn.functional.grid_sample(
        paddle.to_tensor(x.numpy()), paddle.nn.functional.affine_grid(paddle.to_tensor(theta.numpy()), [1, 1, 6, 6]))
    assert error_stats(torch_default, paddle_default).scaled > 1e-2  # the difference is real


@pytest.mark.parametrize("cls", [PL.SpatialTransformer, TL.SpatialTransformer])
def test_bad_input(cls):
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        cls(3, padding_mode="wrap")
    with pytest.raises(ValueError, match="loc_chans"):
        cls(3, loc_chans=(8,))
    layer = cls(3)
    tensor = paddle.to_tensor if cls is PL.SpatialTransformer else torch.tensor
    with pytest.raises(ValueError, match=r"expected 3 input channels"):
        layer(tensor(random_input([1, 4, 8, 8])))
    with pytest.raises(ValueError, match=r"H, W >= 4"):
        layer(tensor(random_input([1, 3, 3, 8])))
