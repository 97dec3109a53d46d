"""Forward and backward parity of the shared layers, plus their behaviour on bad input."""
from __future__ import annotations

import numpy as np
import paddle
import pytest
import torch
from hypothesis import given, settings, strategies as st

import paddle_vit.layers as P
import paddle_vit.models.vit as PV
import torch_ref.layers as T
import torch_ref.models.vit as TV
from harness import check_parity, pair, random_input


@pytest.mark.parametrize("qkv_bias,qk_scale,dim,heads", [
    (True, None, 64, 8), (False, None, 64, 8), (True, 0.1, 48, 4), (True, None, 50, 8), (False, 0.3, 30, 7)])
@pytest.mark.parametrize("return_attn", [True, False])
def test_attention(device, qkv_bias, qk_scale, dim, heads, return_attn):
    tm, pm, routes = pair(T.Attention, P.Attention, dim, heads, qkv_bias, qk_scale, device=device)
    assert ("qkv.bias" in dict(pm.named_parameters())) == qkv_bias
    x = random_input([2, 17, dim])
    check_parity(tm, pm, routes, [x], call=lambda m, xs: m(xs[0], return_attn=return_attn),
                 names=["out", "attn_weight"], device=device)


def test_attention_fast_path_equals_weights_path():
    pm = P.Attention(64, 8)
    x = paddle.to_tensor(random_input([2, 9, 64]))
    out, attn = pm(x)
    fast, none = pm(x, return_attn=False)
    assert none is None and list(attn.shape) == [2, 8, 9, 9]
    np.testing.assert_allclose(fast.numpy(), out.numpy(), rtol=0, atol=1e-5)


@pytest.mark.parametrize("rows_per_slice", [1, 4, 5])
def test_attention_in_slices_of_the_batch_x_heads_rows(monkeypatch, device, rows_per_slice):
    """Large logits are computed slice by slice (LOGITS_SLICE_BYTES, here lowered so that a small
    case takes that path): torch's outputs and gradients, and the unsliced path's output."""
    import paddle_vit.layers.attention as A
    tm, pm, routes = pair(T.Attention, P.Attention, 48, 6, True, device=device)
    x = random_input([3, 11, 48])  # B x H = 18 rows: slices of 1, 4 (and a last of 2), 5 (and 3)
    whole, _ = pm(paddle.to_tensor(x), return_attn=False)
    monkeypatch.setattr(A, "LOGITS_SLICE_BYTES", rows_per_slice * 11 * 11 * 4)
    sliced, _ = pm(paddle.to_tensor(x), return_attn=False)
    # the same arithmetic per row: at most the rounding of another GEMM kernel for 1-row slices
    np.testing.assert_allclose(sliced.numpy(), whole.numpy(), rtol=0, atol=1e-6 * np.abs(whole.numpy()).max())
    _, attn = A.feature_major_attention(paddle.to_tensor(x), pm.qkv, pm.proj, 6, 8, pm.scale, pm.attn_drop,
                                        pm.proj_drop, need_attn=False)
    assert attn is None  # the sliced path ran (it keeps no [B, H, N, N] weights)
    check_parity(tm, pm, routes, [x], call=lambda m, xs: m(xs[0], return_attn=False)[0], device=device)


@settings(max_examples=12, deadline=None)
@given(b=st.integers(1, 3), n=st.integers(1, 20), heads=st.integers(1, 6), head_dim=st.integers(1, 12),
       extra=st.integers(0, 3), bias=st.booleans())
def test_attention_random_shapes(b, n, heads, head_dim, extra, bias):
    dim = heads * head_dim + (extra if head_dim > extra else 0)  # sometimes not divisible, as the source allows
    tm, pm, routes = pair(T.Attention, P.Attention, dim, heads, bias)
    check_parity(tm, pm, routes, [random_input([b, n, dim])], names=["out", "attn_weight"])


@pytest.mark.parametrize("img,patch", [(32, 8), ((32, 48), 16), ((24, 40), (8, 4))])
def test_patch_embed(device, img, patch):
    tm, pm, routes = pair(T.PatchEmbed, P.PatchEmbed, img, patch, 3, 24, device=device)
    h, w = (img, img) if isinstance(img, int) else img
    check_parity(tm, pm, routes, [random_input([2, 3, h, w])], device=device)


@pytest.mark.parametrize("img", [32, (32, 48)])
def test_patch_embedding(device, img):
    tm, pm, routes = pair(T.PatchEmbedding, P.PatchEmbedding, img, 8, 3, 16, 0.0, device=device)
    h, w = (img, img) if isinstance(img, int) else img
    assert list(pm(paddle.to_tensor(random_input([2, 3, h, w]))).shape) == [2, 1 + (h // 8) * (w // 8), 16]
    check_parity(tm, pm, routes, [random_input([2, 3, h, w])], device=device)


@pytest.mark.parametrize("shape", [[5], [7, 12], [2, 3, 12], [2, 2, 3, 12]])
@pytest.mark.parametrize("bias", [True, False])
def test_linear(device, shape, bias):
    """The eager-CPU bias-in-GEMM path (``addmm``, inputs >= 2-D) and the plain path (1-D input,
    no bias, GPU) against torch's ``nn.Linear``, forward and backward."""
    in_features = shape[-1] if len(shape) > 1 else 5
    tm, pm, routes = pair(lambda: T.Linear(in_features, 9, bias=bias),
                          lambda: P.Linear(in_features, 9, bias_attr=None if bias else False), device=device)
    assert ("bias" in dict(pm.named_parameters())) == bias
    check_parity(tm, pm, routes, [random_input(shape)], device=device)


@pytest.mark.parametrize("hidden,out", [(None, None), (40, 12)])
def test_mlp(device, hidden, out):
    tm, pm, routes = pair(T.Mlp, P.Mlp, 16, hidden, out, device=device)
    check_parity(tm, pm, routes, [random_input([2, 5, 16])], device=device)


@pytest.mark.parametrize("dim,heads,qkv_bias", [(32, 4, True), (36, 6, False)])
def test_block(device, dim, heads, qkv_bias):
    tm, pm, routes = pair(TV.Block, PV.Block, dim, heads, 2.0, qkv_bias, device=device)
    check_parity(tm, pm, routes, [random_input([2, 10, dim])], device=device)


def _sincos_reference(n: int, d: int) -> np.ndarray:
    """The formula, element by element, in float64."""
    table = np.zeros((n, d))
    for i in range(n):
        for c in range(d):
            j2 = c - (c % 2)
            angle = i / 10000 ** (j2 / d)
            table[i, c] = np.sin(angle) if c % 2 == 0 else np.cos(angle)
    return table


@pytest.mark.parametrize("n,d", [(1, 4), (50, 64), (197, 33)])
def test_sincos_1d(n, d):
    ref = _sincos_reference(n, d)
    for got in (P.sincos_1d(n, d).numpy(), T.sincos_1d(n, d).numpy()):
        assert got.shape == (n, d) and got.dtype == np.float32
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)  # float32 rounding of values in [-1, 1]


def test_sincos_2d():
    gh, gw, d = 3, 5, 16
    got = P.sincos_2d((gh, gw), d).numpy()
    rows, cols = _sincos_reference(gh, d // 2), _sincos_reference(gw, d // 2)
    for r in range(gh):
        for c in range(gw):
            np.testing.assert_allclose(got[r * gw + c], np.concatenate([rows[r], cols[c]]), atol=1e-6)
    np.testing.assert_allclose(T.sincos_2d((gh, gw), d).numpy(), got, atol=0)
    with pytest.raises(ValueError, match="divisible by 4"):
        P.sincos_2d(4, 18)


@pytest.mark.parametrize("old,new", [((14, 14), (24, 24)), ((7, 7), (5, 9)), ((4, 6), (4, 6))])
def test_resample_pos_embed(old, new):
    from harness import tolerance
    from paddle_vit.parity import assert_close
    pe = random_input([1, 1 + old[0] * old[1], 12])
    got = P.resample_pos_embed(paddle.to_tensor(pe), new, old_size=old).numpy()
    ref = T.resample_pos_embed(torch.tensor(pe), new, old_size=old).numpy()
    assert got.shape == (1, 1 + new[0] * new[1], 12)
    np.testing.assert_array_equal(got[:, :1], pe[:, :1])  # class token untouched
    assert_close(ref, got, tolerance("layer"), "resampled pos_embed")
    timm_layers = pytest.importorskip("timm.layers", reason="timm not installed")
    theirs = timm_layers.resample_abs_pos_embed(torch.tensor(pe), list(new), list(old), num_prefix_tokens=1)
    assert_close(theirs, got, tolerance("layer"), "vs timm.resample_abs_pos_embed")


def test_drop_path_eval_and_zero_are_identity():
    x = paddle.to_tensor(random_input([8, 3, 4]))
    layer = P.DropPath(0.5)
    layer.eval()
    assert layer(x) is x
    assert P.drop_path(x, 0.0, training=True) is x


@pytest.mark.parametrize("impl", ["paddle", "torch"])
def test_drop_path_statistics(impl):
    p, n = 0.3, 20000
    if impl == "paddle":
        out = P.drop_path(paddle.ones([n, 4]), p, training=True).numpy()
    else:
        out = T.drop_path(torch.ones(n, 4), p, training=True).numpy()
    kept = out[:, 0] != 0
    assert np.all(out[kept] == pytest.approx(1 / (1 - p)))             # kept samples scaled by 1/keep
    assert np.all((out == 0).all(axis=1) | (out != 0).all(axis=1))      # whole samples, not elements
    assert abs(kept.mean() - (1 - p)) < 4 * np.sqrt(p * (1 - p) / n)    # 4 sigma


@pytest.mark.parametrize("build,bad,msg", [
    (lambda: P.Attention(16, 4), [2, 5, 12], "last dimension 16"),
    (lambda: P.Attention(16, 4), [2, 16], "rank 2"),
    (lambda: P.PatchEmbed(32, 8, 3, 16), [1, 3, 32, 40], r"image size \(32, 32\)"),
    (lambda: P.PatchEmbed(32, 8, 3, 16), [1, 1, 32, 32], "3 input channels"),
    (lambda: P.PatchEmbed(32, 8, 3, 16), [3, 32, 32], "rank 3"),
])
def test_bad_input_is_a_clear_error(build, bad, msg):
    layer = build()
    with pytest.raises(ValueError, match=msg):
        layer(paddle.zeros(bad))


@pytest.mark.parametrize("ctor,msg", [
    (lambda m: m.Attention(16, 0), "num_heads must be >= 1"),
    (lambda m: m.PatchEmbed(30, 8), "not divisible by patch size 8"),
    (lambda m: m.PatchEmbed((32, 30), (8, 4), 3, 8), "not divisible"),
    (lambda m: m.DropPath(1.0), r"drop_prob must be in \[0, 1\)"),
])
@pytest.mark.parametrize("tree", [P, T])
def test_bad_config_is_a_clear_error(tree, ctor, msg):
    with pytest.raises(ValueError, match=msg):
        ctor(tree)
