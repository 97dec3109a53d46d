"""Swin V2: the log-spaced coordinate table, the position-bias MLP and the clamped cosine attention
against independent numpy constructions (forward; backward where there are parameters: analytic
for the MLP, central differences in float64 for the attention); layer and model parity
(torch_ref vs paddle_vit, both attention paths), timm's layers, torchvision's rule, export and the
layer-by-layer diff for timm and torchvision sources; bad configurations."""
from __future__ import annotations

import itertools
import math

import numpy as np
import paddle
import pytest
import torch
from hypothesis import given, settings, strategies as st

import paddle_vit
import paddle_vit.models.swin_v2 as P2
import torch_ref.models.swin_v2 as T2
from harness import check_model_parity, check_parity, pair, randomize_, random_input
from paddle_vit import swin_tables
from paddle_vit.convert import ConversionError, convert_state_dict, load_state_dict_strict
from paddle_vit.parity import assert_close, tolerance
from test_swin import BLOCK_CASES, reference_index, reference_mask

timm = pytest.importorskip("timm", reason="timm is needed for the timm-layer tests")

SMALL = dict(img_size=(64, 96), window_size=4, embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4),
             num_classes=10, pretrained_window_sizes=(3, 3, 5, 2))


# --- the coordinate table -----------------------------------------------------------------------------
def reference_coords(window: tuple[int, int], pretrained: tuple[int, int]) -> np.ndarray:
    """Entry by entry: offset (dy, dx), divided per axis by (pretrained or own window) - 1 (at least 1),
    times 8, then sign(t) * log2(1 + |t|) / 3."""
    (wh, ww), (ph, pw) = window, pretrained
    norm = (ph, pw) if ph > 0 else (wh, ww)
    out = np.zeros((1, 2 * wh - 1, 2 * ww - 1, 2))
    for i, j in itertools.product(range(2 * wh - 1), range(2 * ww - 1)):
        for axis, offset in ((0, i - wh + 1), (1, j - ww + 1)):
            t = offset / max(norm[axis] - 1, 1) * 8
            out[0, i, j, axis] = math.copysign(math.log2(1 + abs(t)) / 3, t) if t else 0.0
    return out


COORD_CASES = [((8, 8), (0, 0)), ((16, 16), (12, 12)), ((6, 6), (12, 12)), ((3, 5), (0, 0)), ((1, 4), (0, 0)),
               ((12, 12), (6, 6))]


@pytest.mark.parametrize("window,pretrained", COORD_CASES)
def test_log_relative_coords(window, pretrained):
    """The table is a buffer (no parameter, hence no backward): the values, in both trees and in timm's
    layer (and torchvision's, which knows no pretrained window)."""
    ref = reference_coords(window, pretrained)
    got = swin_tables.log_relative_coords(window, pretrained)
    assert got.dtype == np.float32 and got.shape == ref.shape
    assert_close(ref, got, tolerance("layer"), "coordinates")
    for tree in (P2, T2):
        layer = tree.WindowAttention(8, window, 2, pretrained_window_size=pretrained)
        np.testing.assert_array_equal(np.asarray(layer.relative_coords_table), got)
    from timm.models.swin_transformer_v2 import WindowAttention as TimmAttention
    theirs = TimmAttention(8, window, 2, pretrained_window_size=pretrained)
    assert_close(theirs.relative_coords_table, got, tolerance("layer"), "vs timm")
    if pretrained == (0, 0) and min(window) > 1:
        from torchvision.models.swin_transformer import ShiftedWindowAttentionV2
        tv = ShiftedWindowAttentionV2(8, list(window), [0, 0], 2)
        assert_close(tv.relative_coords_table, got, tolerance("layer"), "vs torchvision")


# --- the position-bias MLP -----------------------------------------------------------------------------
def _lively_attention(layer: paddle.nn.Layer, seed: int = 0) -> dict[str, np.ndarray]:
    """Random, well-scaled parameters for a Paddle V2 WindowAttention, returned as float64 arrays
    (Paddle layout: Linear weights [in, out]); one head's logit scale above the clamp."""
    rng = np.random.default_rng(seed)
    values = {}
    for name, p in layer.named_parameters():
        shape = tuple(p.shape)
        if name == "logit_scale":
            v = rng.uniform(1.0, 3.0, shape)
            v[0] = P2.LOGIT_SCALE_MAX + 0.5
        elif name == "cpb_mlp.0.weight":
            v = rng.standard_normal(shape)
        elif name.endswith("weight") and len(shape) == 2:
            v = rng.standard_normal(shape) / math.sqrt(shape[0])
        else:
            v = 0.3 * rng.standard_normal(shape)
        p.set_value(v.astype(np.float32))
        values[name] = v.astype(np.float32).astype(np.float64)
    return values


def numpy_bias(v: dict[str, np.ndarray], window: tuple[int, int], pretrained: tuple[int, int], heads: int
               ) -> tuple[np.ndarray, dict]:
    """``[heads, N, N]`` = 16 sigmoid(MLP(coords)) at each pair's offset, and what backward needs."""
    c = reference_coords(window, pretrained).reshape(-1, 2)
    z = c @ v["cpb_mlp.0.weight"] + v["cpb_mlp.0.bias"]
    h = np.maximum(z, 0.0)
    t = h @ v["cpb_mlp.2.weight"]                                     # [(2Wh-1)(2Ww-1), heads]
    idx = reference_index(*window)                                    # [N, N]
    s = 1.0 / (1.0 + np.exp(-t))
    return 16.0 * s[idx].transpose(2, 0, 1), dict(c=c, z=z, h=h, s=s, idx=idx)


def numpy_bias_grads(v, cache, w: np.ndarray) -> dict[str, np.ndarray]:
    """Gradients of ``sum(bias * w)`` (``w [heads, N, N]``) by hand."""
    s, idx = cache["s"], cache["idx"]
    d_t = np.zeros_like(s)
    np.add.at(d_t, idx, w.transpose(1, 2, 0))                          # scatter each pair back to its row
    d_t *= 16.0 * s * (1.0 - s)
    d_h = d_t @ v["cpb_mlp.2.weight"].T
    d_z = d_h * (cache["z"] > 0)
    return {"cpb_mlp.2.weight": cache["h"].T @ d_t, "cpb_mlp.0.weight": cache["c"].T @ d_z,
            "cpb_mlp.0.bias": d_z.sum(0)}


@pytest.mark.parametrize("window,pretrained", [((4, 4), (0, 0)), ((3, 5), (6, 6))])
def test_position_bias_mlp_forward_and_backward(window, pretrained):
    layer = P2.WindowAttention(8, window, 2, pretrained_window_size=pretrained)
    v = _lively_attention(layer)
    ref, cache = numpy_bias(v, window, pretrained, 2)
    bias = layer.relative_position_bias()
    assert_close(ref[None], bias, tolerance("layer"), "bias")
    w = random_input(ref.shape, seed=3).astype(np.float64)
    (bias * paddle.to_tensor(w.astype(np.float32))).sum().backward()
    grads = numpy_bias_grads(v, cache, w)
    params = dict(layer.named_parameters())
    for name, g in grads.items():
        assert_close(g, params[name].grad, tolerance("model"), f"grad of {name}")  # the policy's gradient row
    # the torch tree: same function, same gradients (its Linear weights are [out, in])
    tl = T2.WindowAttention(8, window, 2, pretrained_window_size=pretrained)
    with torch.no_grad():
        for name, p in tl.named_parameters():
            p.copy_(torch.tensor(v[name].T if name.endswith("weight") and p.ndim == 2 else v[name]))
    tb = tl.relative_position_bias()
    assert_close(ref[None], tb, tolerance("layer"), "torch_ref bias")
    (tb * torch.tensor(w)).sum().backward()
    for name, g in grads.items():
        tg = dict(tl.named_parameters())[name].grad
        assert_close(g, tg.T if tg.ndim == 2 else tg, tolerance("model"), f"torch_ref grad of {name}")


# --- the cosine attention ----------------------------------------------------------------------------------
def numpy_attention(v: dict[str, np.ndarray], x: np.ndarray, window, pretrained, heads: int,
                    mask: np.ndarray | None) -> np.ndarray:
    """float64: qkv with biases (q, 0, v); per head cos(q, k) * exp(min(logit_scale, log 100)) + bias
    (+ mask), softmax, weighted v, proj."""
    B_, N, C = x.shape
    D = C // heads
    bias_qkv = np.concatenate([v["q_bias"], np.zeros(C), v["v_bias"]]) if "q_bias" in v else 0.0
    qkv = (x @ v["qkv.weight"] + bias_qkv).reshape(B_, N, 3, heads, D).transpose(2, 0, 3, 1, 4)
    q, k, val = qkv
    qn = q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), 1e-12)
    kn = k / np.maximum(np.linalg.norm(k, axis=-1, keepdims=True), 1e-12)
    scale = np.exp(np.minimum(v["logit_scale"], math.log(100.0)))  # [heads, 1, 1]
    logits = qn @ kn.transpose(0, 1, 3, 2) * scale + numpy_bias(v, window, pretrained, heads)[0]
    if mask is not None:
        nw = mask.shape[0]
        logits = (logits.reshape(-1, nw, heads, N, N) + mask[None, :, None]).reshape(-1, heads, N, N)
    e = np.exp(logits - logits.max(-1, keepdims=True))
    attn = e / e.sum(-1, keepdims=True)
    out = (attn @ val).transpose(0, 2, 1, 3).reshape(B_, N, C)
    return out @ v["proj.weight"] + v["proj.bias"]


def _force_token_major(layer: paddle.nn.Layer) -> None:
    """A no-op hook on ``proj``: the layer then takes the token-major path (as static graphs do)."""
    layer.proj.register_forward_post_hook(lambda m, i, o: o)


@pytest.mark.parametrize("path", ["feature_major", "token_major"])
@pytest.mark.parametrize("masked", [False, True])
def test_cosine_attention_forward_and_backward(path, masked):
    """Forward against numpy; backward against float64 central differences for the input, q/v biases and
    the logit scales (the head above the clamp must get exactly 0)."""
    window, pretrained, heads, C = (2, 3), (4, 4), 2, 8
    layer = P2.WindowAttention(C, window, heads, pretrained_window_size=pretrained)
    v = _lively_attention(layer)
    if path == "token_major":
        _force_token_major(layer)
    mask = swin_tables.shift_mask((4, 6), window, (1, 1)) if masked else None
    x = random_input([4, 6, C], seed=5).astype(np.float64)
    f = lambda vv, xx: numpy_attention(vv, xx, window, pretrained, heads, mask)  # noqa: E731
    px = paddle.to_tensor(x.astype(np.float32), stop_gradient=False)
    out, _ = layer(px, mask=None if mask is None else paddle.to_tensor(mask))
    ref = f(v, x)
    assert_close(ref, out, tolerance("layer"), "attention output")
    w = random_input(ref.shape, seed=6).astype(np.float64)
    (out * paddle.to_tensor(w.astype(np.float32))).sum().backward()

    def numeric(name: str | None) -> np.ndarray:
        base = x if name is None else v[name]
        grad = np.zeros_like(base)
        for i in np.ndindex(base.shape):
            vals = []
            for step in (1e-6, -1e-6):
                moved = base.copy()
                moved[i] += step
                vals.append((f(v, moved) if name is None else f({**v, name: moved}, x)) * w)
            grad[i] = (vals[0].sum() - vals[1].sum()) / 2e-6
        return grad

    params = dict(layer.named_parameters())
    grad_tol = tolerance("model")  # the policy's row for gradients
    assert_close(numeric(None), px.grad, grad_tol, "grad of x")
    for name in ("q_bias", "v_bias", "logit_scale"):
        assert_close(numeric(name), params[name].grad, grad_tol, f"grad of {name}")
    assert float(params["logit_scale"].grad.numpy()[0].item()) == 0.0  # clamped: no gradient
    assert (np.abs(params["logit_scale"].grad.numpy()[1:]) > 0).all()


# --- layer and model parity (torch_ref vs paddle_vit) ---------------------------------------------------------
@pytest.mark.parametrize("qkv_bias", [True, False])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("path", ["feature_major", "token_major"])
def test_window_attention(device, qkv_bias, masked, path):
    window = (3, 4)
    tm, pm, routes = pair(T2.WindowAttention, P2.WindowAttention, 12, window, 3, qkv_bias, 0.0, 0.0, (5, 5),
                          device=device)
    if path == "token_major":
        _force_token_major(pm)
    mask = swin_tables.shift_mask((6, 12), window, (1, 2)) if masked else None

    def call(m, xs):
        is_torch = isinstance(m, torch.nn.Module)
        m_mask = None if mask is None else (torch.tensor(mask, device=xs[0].device) if is_torch
                                            else paddle.to_tensor(mask))
        return m(xs[0], mask=m_mask, return_attn=True)

    check_parity(tm, pm, routes, [random_input([12, 12, 12])], call=call, names=["out", "attn"], device=device)


V2_BLOCK_CASES = [(res, window, shift, "timm") for res, window, shift in BLOCK_CASES] + [
    ((7, 10), 4, 2, "torchvision"), ((3, 5), 4, 2, "torchvision"), ((8, 8), 4, 2, "torchvision")]


@pytest.mark.parametrize("res,window,shift,rule", V2_BLOCK_CASES)
def test_block(device, res, window, shift, rule):
    tm, pm, routes = pair(T2.SwinTransformerV2Block, P2.SwinTransformerV2Block, 12, res, 3, window, shift, 2.0,
                          device=device, window_rule=rule)
    check_parity(tm, pm, routes, [random_input([2, *res, 12])], device=device)


@pytest.mark.parametrize("res,window,shift", BLOCK_CASES)
def test_block_matches_timm(res, window, shift):
    from timm.models.swin_transformer_v2 import SwinTransformerV2Block as TimmBlock
    theirs = randomize_(TimmBlock(12, res, 3, window_size=window, shift_size=shift, mlp_ratio=2.0,
                                  pretrained_window_size=3)).eval()
    ours = T2.SwinTransformerV2Block(12, res, 3, window, shift, 2.0, pretrained_window_size=3).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert (ours.attn_mask is None) == (theirs.attn_mask is None)
    if ours.attn_mask is not None:
        np.testing.assert_array_equal(ours.attn_mask.numpy(), theirs.attn_mask.numpy())
    x = torch.tensor(random_input([2, *res, 12]))
    with torch.no_grad():
        assert_close(theirs(x), ours(x), tolerance("layer"), "V2 block vs timm")


@pytest.mark.parametrize("res", [(4, 6), (5, 7)])
def test_patch_merging(device, res):
    """Reduction first, then the norm over the output width; odd sides zero-padded."""
    tm, pm, routes = pair(T2.PatchMerging, P2.PatchMerging, 6, 10, res, device=device)
    x = random_input([2, *res, 6])
    assert list(pm(paddle.to_tensor(x)).shape) == [2, (res[0] + 1) // 2, (res[1] + 1) // 2, 10]
    check_parity(tm, pm, routes, [x], device=device)
    from timm.models.swin_transformer_v2 import PatchMerging as TimmMerging
    theirs = randomize_(TimmMerging(6, 10)).eval()
    tm.cpu().load_state_dict(theirs.state_dict(), strict=True)
    with torch.no_grad():
        assert_close(theirs(torch.tensor(x)), tm(torch.tensor(x)), tolerance("layer"), "V2 PatchMerging vs timm")


@pytest.mark.parametrize("cfg", [SMALL, {**SMALL, "window_rule": "torchvision", "pretrained_window_sizes": None},
                                 dict(img_size=32, patch_size=2, window_size=(3, 2), embed_dim=12, depths=(2, 1),
                                      num_heads=(2, 3), num_classes=5, mlp_ratio=2.0, qkv_bias=False)])
def test_model(device, cfg):
    tm, pm, routes = pair(T2.SwinTransformerV2, P2.SwinTransformerV2, device=device, **cfg)
    check_model_parity(tm, pm, routes, [random_input([2, 3, *swin_tables.pair(cfg["img_size"], "img")])],
                       device=device)


def test_model_starts_as_timm_does():
    """timm's init: every block's post-norms at 0 (the blocks start as the identity), logit scales log(10)."""
    pm = P2.SwinTransformerV2(**SMALL)
    for block in (b for s in pm.layers for b in s.blocks):
        assert not block.norm1.weight.numpy().any() and not block.norm2.bias.numpy().any()
        np.testing.assert_allclose(block.attn.logit_scale.numpy(), math.log(10.0), rtol=1e-6)
        assert not block.attn.q_bias.numpy().any() and "attn.k_bias" not in block.state_dict()


@settings(max_examples=10, deadline=None)
@given(h=st.integers(1, 11), w=st.integers(1, 11), wh=st.integers(1, 5), ww=st.integers(1, 5), shifted=st.booleans(),
       rule=st.sampled_from(swin_tables.WINDOW_RULES))
def test_block_random_shapes(h, w, wh, ww, shifted, rule):
    """Any map and window, either rule: padded or not, shrunk or not, shifted on none, one or both axes."""
    shift = (wh // 2, ww // 2) if shifted else 0
    tm, pm, routes = pair(T2.SwinTransformerV2Block, P2.SwinTransformerV2Block, 8, (h, w), 2, (wh, ww), shift, 2.0,
                          window_rule=rule)
    check_parity(tm, pm, routes, [random_input([2, h, w, 8])])


# --- torchvision's window rule, its checkpoints at other sizes ----------------------------------------------
def _torchvision_small(v2: bool, window: int):
    from torchvision.models.swin_transformer import (PatchMergingV2, SwinTransformer, SwinTransformerBlock,
                                                     SwinTransformerBlockV2, PatchMerging)
    torch.manual_seed(0)
    model = SwinTransformer([4, 4], 16, [2, 2, 2, 2], [1, 2, 2, 4], [window, window], num_classes=10,
                            block=SwinTransformerBlockV2 if v2 else SwinTransformerBlock,
                            downsample_layer=PatchMergingV2 if v2 else PatchMerging)
    return randomize_(model).eval()


@pytest.mark.parametrize("name,v2", [("swinv2_tiny_window8_256", True), ("swin_tiny_patch4_window7_224", False)])
def test_torchvision_checkpoint_at_a_size_its_window_does_not_divide(tmp_path, name, v2):
    """72 px, window 4: maps 18, 9, 5, 3 (padded and shifted; the last smaller than the window). timm's
    rule computes those blocks differently, so the default model refuses, naming the stages; with
    window_rule='torchvision' the logits are torchvision's."""
    theirs = _torchvision_small(v2, 4)
    path = tmp_path / "tv.pth"
    torch.save(theirs.state_dict(), path)
    cfg = dict(img_size=72, window_size=4, embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4), num_classes=10)
    with pytest.raises(ConversionError, match=r"layers\.0: map \(18, 18\), window \(4, 4\).*window_rule='torchvision'"):
        paddle_vit.create_model(name, pretrained=path, **cfg)
    pm = paddle_vit.create_model(name, pretrained=path, window_rule="torchvision", **cfg)
    x = random_input([2, 3, 72, 72])
    with torch.no_grad():
        ref = theirs(torch.tensor(x))
    assert_close(ref, pm(paddle.to_tensor(x)), tolerance("model"), "logits vs torchvision at 72 px")


def test_rules_differ_exactly_where_torchvision_computes_differently():
    for (res, win, shift), want in [(((8, 8), 4, 2), False), (((4, 4), 4, 2), False), (((9, 8), 4, 2), True),
                                    (((9, 8), 4, 0), False), (((3, 8), 4, 2), True), (((3, 8), 4, 0), True)]:
        assert swin_tables.rules_differ(res, win, shift) is want, (res, win, shift)
    assert swin_tables.window_and_shift((3, 8), 4, 2, "torchvision") == ((4, 4), (0, 2))
    assert swin_tables.window_and_shift((3, 8), 4, 2, "timm") == ((3, 4), (0, 2))
    mask = swin_tables.shift_mask((9, 8), (4, 4), (2, 2))  # torchvision builds the same mask on its padded map
    np.testing.assert_array_equal(mask, reference_mask((9, 8), (4, 4), (2, 2)))


# --- torchvision and timm checkpoints, the layer-by-layer diff ------------------------------------------------
def test_torchvision_qkv_bias_becomes_q_and_v_bias():
    theirs = _torchvision_small(True, 2)
    state = theirs.state_dict()
    pm = P2.SwinTransformerV2(img_size=64, window_size=2, embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4),
                              num_classes=10)
    converted = convert_state_dict(state, pm, "torchvision")
    packed = state["features.3.1.attn.qkv.bias"].numpy()
    np.testing.assert_array_equal(converted["layers.1.blocks.1.attn.q_bias"], packed[:32])
    np.testing.assert_array_equal(converted["layers.1.blocks.1.attn.v_bias"], packed[64:])
    assert not any("k_bias" in k or "coords" in k or "index" in k for k in converted)


@pytest.mark.parametrize("v2,source", [(True, "timm"), (True, "torchvision"), (False, "torchvision")])
def test_layerwise_pairs_swin_layers(v2, source):
    """``paddle-vit diff``'s pairing: every block, merging, norm and MLP of V2 (and of torchvision's V1),
    and every parameter gradient through the converter's routes (the split q|k|v bias included)."""
    import paddle_vit.models.swin as P1
    from paddle_vit.parity.layerwise import compare
    from paddle_vit.parity.report import format_table
    cfg = dict(img_size=64, window_size=2, embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4), num_classes=10)
    if source == "timm":
        tm = randomize_(timm.create_model("swinv2_tiny_window8_256", pretrained=False, **cfg)).eval()
    else:
        tm = _torchvision_small(v2, 2)
    pm = (P2.SwinTransformerV2 if v2 else P1.SwinTransformer)(**cfg)
    load_state_dict_strict(pm, convert_state_dict(tm.state_dict(), pm, source))
    pm.eval()
    report = compare(tm, pm, random_input([2, 3, 64, 64]), backward=True)
    assert report.passed, format_table(report)
    assert not report.notes, report.notes
    names = {r.name for r in report.forward}
    blocks = [f"layers.{s}.blocks.{b}" for s in range(4) for b in range(2)]
    assert set(blocks) <= names and {"layers.1.downsample", "norm", "(model)"} <= names
    assert {"layers.2.blocks.0.norm1", "layers.3.blocks.1.mlp.fc2"} <= names
    if v2:
        assert "layers.0.blocks.1.attn.cpb_mlp" in names
    if source == "timm":  # same names: the attention itself pairs too
        assert "layers.0.blocks.1.attn" in names
    else:  # torchvision's attention also shifts and partitions: left out, its blocks compared
        assert "layers.0.blocks.1.attn" not in names and "features.1.1.attn" in report.unpaired["torch"]
        row = next(r for r in report.forward if r.name == "layers.0.blocks.1")
        assert row.ref_name == "features.1.1"
    grads = {r.name for r in report.params}
    assert len(grads) == len(list(pm.parameters()))
    if v2:
        assert {"grad of layers.0.blocks.0.attn.q_bias", "grad of layers.0.blocks.0.attn.v_bias",
                "grad of layers.0.blocks.0.attn.logit_scale"} <= grads


@pytest.mark.parametrize("cfg", [SMALL, {**SMALL, "img_size": (32, 64), "window_rule": "torchvision",
                                         "pretrained_window_sizes": None}], ids=["timm", "torchvision_rule"])
def test_export_and_inference_match_eager(tmp_path, cfg):
    """One V2 variant, shrunk (padded, shifted and shrunk windows; pretrained windows; torchvision's
    rule with a map smaller than its pad), through paddle.jit and Paddle Inference with and without
    oneDNN, any batch size."""
    from paddle_vit.deploy import InferencePredictor, export
    paddle.seed(0)
    model = paddle_vit.create_model("swinv2_base_window12to16_192to256", **cfg)
    for name, p in model.named_parameters():  # no zero post-norm or head: every tensor must travel
        post_norm = name.endswith(("norm1.weight", "norm2.weight"))
        p.set_value(p + paddle.randn(p.shape) * 0.05 + (1.0 if post_norm else 0.0))
    model.eval()
    h, w = cfg["img_size"]
    x = random_input([3, 3, h, w])
    eager = model(paddle.to_tensor(x)).numpy()
    prefix = export(model, tmp_path / "model", [None, 3, h, w])
    loaded = paddle.jit.load(prefix)
    loaded.eval()
    assert_close(eager, loaded(paddle.to_tensor(x)), tolerance("model"), "jit.load")
    for onednn in (False, True):
        predictor = InferencePredictor(prefix, threads=1, onednn=onednn)
        assert_close(eager, predictor(x), tolerance("model"), f"inference onednn={onednn}")
        assert_close(eager[:1], predictor(x[:1]), tolerance("model"), f"inference onednn={onednn}, batch 1")


# --- bad configurations ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tree", [P2, T2])
@pytest.mark.parametrize("kwargs,msg", [
    (dict(pretrained_window_sizes=(12, 12, 6)), r"pretrained_window_sizes must have one .* per stage \(4 stages"),
    (dict(pretrained_window_sizes=(12, -1, 6, 6)), r"pretrained_window_sizes must .*got \(12, -1, 6, 6\)"),
    (dict(window_size=(4, 4, 4)), r"window_size must be .*\(4 stages\), got \(4, 4, 4\)"),
    (dict(window_size=0), r"window_size must be an int >= 1"),
    (dict(num_heads=(3, 2, 2, 4)), r"dim must be a positive multiple of num_heads, got dim=16, num_heads=3"),
    (dict(window_rule="pytorch"), r"window_rule must be one of \('timm', 'torchvision'\), got 'pytorch'"),
])
def test_bad_config_is_a_clear_error(tree, kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        tree.SwinTransformerV2(**{**SMALL, **kwargs})


@pytest.mark.parametrize("tree", [P2, T2])
def test_bad_input_is_a_clear_error(tree):
    zeros = paddle.zeros if tree is P2 else torch.zeros
    with pytest.raises(ValueError, match="expected 12 tokens per window"):
        tree.WindowAttention(8, (3, 4), 2)(zeros([2, 11, 8]))
    with pytest.raises(ValueError, match=r"mask must be \[num_windows, 12, 12\]"):
        tree.WindowAttention(8, (3, 4), 2)(zeros([6, 12, 8]), mask=zeros([4, 12, 12]))
    with pytest.raises(ValueError, match=r"SwinTransformerV2Block: expected resolution \(8, 8\)"):
        tree.SwinTransformerV2Block(8, (8, 8), 2, 4)(zeros([1, 8, 6, 8]))


def test_v1_checkpoint_into_v2_is_one_clear_error():
    v1 = randomize_(timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, img_size=64, window_size=2,
                                      embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4)))
    pm = P2.SwinTransformerV2(img_size=64, window_size=2, embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4))
    with pytest.raises(ConversionError, match="cannot tell the source layout"):
        convert_state_dict(v1.state_dict(), pm)
    with pytest.raises(ConversionError, match=r"missing key 'layers.0.blocks.0.attn.cpb_mlp.0.weight'"):
        convert_state_dict(v1.state_dict(), pm, "timm")
