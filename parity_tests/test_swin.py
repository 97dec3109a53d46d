"""Swin Transformer: the window tables against an independent construction, layer and model parity
(torch_ref vs paddle_vit), and real timm / torchvision models converted and matched."""
from __future__ import annotations

import itertools

import numpy as np
import paddle
import pytest
import torch
from hypothesis import given, settings, strategies as st

import paddle_vit
import paddle_vit.models.swin as PS
import torch_ref.models.swin as TS
from harness import check_parity, pair, randomize_, random_input
from paddle_vit import swin_tables
from paddle_vit.convert import ConversionError, convert_state_dict, detect_source, load_state_dict_strict
from paddle_vit.parity import assert_close, tolerance

timm = pytest.importorskip("timm", reason="timm is needed for the timm-checkpoint tests")
torchvision = pytest.importorskip("torchvision", reason="torchvision is needed for the torchvision-checkpoint tests")

# A small Swin that still exercises everything: 64x96 px, patch 4 -> stage grids 16x24, 8x12, 4x6, 2x3;
# window 4 -> stage 2 pads 6 -> 8 along W and shrinks along H (4 <= 4: no shift on H), stage 3 shrinks to 2x3.
SMALL = dict(img_size=(64, 96), window_size=4, embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4),
             num_classes=10)


# --- the tables, against an independent pair-by-pair construction ------------------------------
def reference_index(wh: int, ww: int) -> np.ndarray:
    """Pair by pair: the table row of (dy, dx) is (dy + Wh - 1) * (2 Ww - 1) + (dx + Ww - 1)."""
    n = wh * ww
    out = np.zeros((n, n), dtype=np.int64)
    for i, j in itertools.product(range(n), range(n)):
        (yi, xi), (yj, xj) = divmod(i, ww), divmod(j, ww)
        out[i, j] = (yi - yj + wh - 1) * (2 * ww - 1) + (xi - xj + ww - 1)
    return out


def reference_mask(res: tuple[int, int], window: tuple[int, int], shift: tuple[int, int]) -> np.ndarray:
    """Pair by pair over the rolled and padded map: two tokens of one window see each other iff they
    lie in the same region on both axes; an axis of padded length L splits at L - window and L - shift
    (the rows rolled in from the other border, and the tokens before them)."""
    (mh, mw), (sh, sw) = window, shift
    hp, wp = -(-res[0] // mh) * mh, -(-res[1] // mw) * mw

    def region(p: int, length: int, m: int, s: int) -> int:
        return int(p >= length - m) + int(s > 0 and p >= length - s)

    masks = []
    for wy, wx in itertools.product(range(hp // mh), range(wp // mw)):
        cells = [(wy * mh + a, wx * mw + b) for a in range(mh) for b in range(mw)]
        labels = [(region(y, hp, mh, sh), region(x, wp, mw, sw)) for y, x in cells]
        masks.append([[0.0 if li == lj else -100.0 for lj in labels] for li in labels])
    return np.array(masks, dtype=np.float32)


@pytest.mark.parametrize("window", [(1, 1), (2, 3), (4, 4), (7, 7), (5, 2)])
def test_relative_position_index(window):
    ref = reference_index(*window)
    np.testing.assert_array_equal(swin_tables.relative_position_index(window), ref)
    rows = (2 * window[0] - 1) * (2 * window[1] - 1)
    assert ref.min() == 0 and ref.max() == rows - 1  # every table row reachable, none beyond
    for tree in (PS, TS):  # the buffers both trees actually index with
        layer = tree.WindowAttention(8, 2, window_size=window)
        np.testing.assert_array_equal(np.asarray(layer.relative_position_index).reshape(ref.shape), ref)
    from timm.models.swin_transformer import get_relative_position_index
    np.testing.assert_array_equal(get_relative_position_index(*window).numpy(), ref)


# (resolution, window, shift) as the block resolves them: divisible, padded, non-square, one axis shifted
MASK_CASES = [((8, 8), (4, 4), (2, 2)), ((14, 14), (7, 7), (3, 3)), ((7, 10), (4, 4), (2, 2)),
              ((9, 12), (3, 4), (1, 2)), ((4, 12), (4, 4), (0, 2)), ((11, 5), (3, 5), (1, 0))]


@pytest.mark.parametrize("res,window,shift", MASK_CASES)
def test_shift_mask(res, window, shift):
    ref = reference_mask(res, window, shift)
    np.testing.assert_array_equal(swin_tables.shift_mask(res, window, shift), ref)
    assert (ref != 0).any(), "a shifted map must separate some tokens"
    for tree in (PS, TS):
        block = tree.SwinTransformerBlock(8, res, 2, window_size=window, shift_size=shift)
        assert block.window_size == window and block.shift_size == shift
        np.testing.assert_array_equal(np.asarray(block.attn_mask), ref)
    from timm.models.swin_transformer import SwinTransformerBlock as TimmBlock
    theirs = TimmBlock(8, res, 2, window_size=window, shift_size=shift)
    assert tuple(theirs.window_size) == window and tuple(theirs.shift_size) == shift
    np.testing.assert_array_equal(theirs.attn_mask.numpy(), ref)


def test_unshifted_block_has_no_mask():
    assert swin_tables.shift_mask((8, 8), (4, 4), (0, 0)) is None
    assert PS.SwinTransformerBlock(8, 8, 2, window_size=4).attn_mask is None
    assert "attn_mask" not in PS.SwinTransformerBlock(8, 8, 2, window_size=4, shift_size=2).state_dict()


@pytest.mark.parametrize("res,window,shift,want", [
    ((7, 7), 7, 3, ((7, 7), (0, 0))),        # the last stage of a 224 model: one window, no shift
    ((3, 5), 7, 3, ((3, 5), (0, 0))),        # smaller than the window: shrink to the map
    ((4, 6), 4, 2, ((4, 4), (0, 2))),        # one axis fits, the other is shifted (and padded)
    ((8, 8), (4, 2), (2, 1), ((4, 2), (2, 1)))])
def test_window_and_shift_follow_timm(res, window, shift, want):
    assert swin_tables.window_and_shift(res, window, shift) == want
    from timm.models.swin_transformer import SwinTransformerBlock as TimmBlock
    theirs = TimmBlock(8, res, 2, window_size=window, shift_size=shift)
    assert (tuple(theirs.window_size), tuple(theirs.shift_size)) == want


def test_mask_blocks_attention_across_regions():
    """Weights between tokens of different regions are ~exp(-100 + logit spread): with O(1) logits
    (spread < 30) far below 1e-20, i.e. nothing leaks across the border of a sub-window."""
    res, window, shift = (8, 8), (4, 4), (2, 2)
    mask = swin_tables.shift_mask(res, window, shift)
    layer = PS.WindowAttention(16, 2, window_size=window)
    layer.eval()
    x = paddle.to_tensor(random_input([mask.shape[0] * 2, 16, 16]))
    _, attn = layer(x, mask=paddle.to_tensor(mask), return_attn=True)
    blocked = np.broadcast_to((mask != 0)[None, :, None], (2, mask.shape[0], 2, 16, 16)).reshape(-1, 2, 16, 16)
    assert blocked.any() and attn.numpy()[blocked].max() < 1e-20
    np.testing.assert_allclose(attn.numpy().sum(-1), 1.0, rtol=1e-5)


# --- the bias-table resize (a checkpoint made for another window) ----------------------------------
TABLE_CASES = [(7, (12, 12)), (12, (7, 7)), (7, (12, 16)), (12, (24, 24)), (2, (3, 3)), (7, (1, 1)), (1, (4, 4)),
               (7, (3, 5)), (6, (8, 8))]


@pytest.mark.parametrize("side,window", TABLE_CASES)
def test_bias_table_resize_matches_timm(side, window):
    """timm's resize_rel_pos_bias_table (what its checkpoint filter calls), and the same positions read
    with numpy's np.interp one axis after the other (an independent bilinear reading)."""
    from timm.layers import resize_rel_pos_bias_table as timm_resize
    from paddle_vit.resample import _geometric_positions, resize_rel_pos_bias_table
    heads = 3
    table = random_input([(2 * side - 1) ** 2, heads])
    rows = (2 * window[0] - 1) * (2 * window[1] - 1)
    got = resize_rel_pos_bias_table(table, window)
    assert got.shape == (rows, heads) and got.dtype == np.float32
    ref = timm_resize(torch.tensor(table), new_window_size=window, new_bias_shape=(rows, heads)).numpy()
    assert_close(ref, got, tolerance("layer"), "vs timm")
    src, (dh, dw) = 2 * side - 1, (2 * window[0] - 1, 2 * window[1] - 1)
    grid = table.reshape(src, src, heads).astype(np.float64)
    py, px = _geometric_positions(src, dh), _geometric_positions(src, dw)
    ty, tx = np.arange(dh) - dh // 2, np.arange(dw) - dw // 2
    along_x = np.stack([[np.interp(tx, px, grid[i, :, h]) for i in range(src)] for h in range(heads)])  # [h, src, dw]
    both = np.stack([[np.interp(ty, py, along_x[h, :, j]) for j in range(dw)] for h in range(heads)])   # [h, dw, dh]
    assert_close(both.transpose(2, 1, 0).reshape(rows, heads), got, tolerance("layer"), "vs np.interp")


def test_bias_table_of_the_same_size_is_kept():
    from paddle_vit.resample import resize_rel_pos_bias_table
    table = random_input([45, 2])  # a (3, 5) window's: not a square one, taken as it is
    assert resize_rel_pos_bias_table(table, (3, 5)) is table
    with pytest.raises(ValueError, match=r"45 rows is not a square window's \(2M-1\)\^2"):
        resize_rel_pos_bias_table(table, (4, 4))


def test_checkpoint_that_cannot_be_resized_names_keys_and_shapes_and_loads_nothing():
    """Another width (heads) or a non-square source window: one error naming every such key with both
    shapes; the model keeps its weights."""
    pm = PS.SwinTransformer(**SMALL)
    before = {k: v.numpy().copy() for k, v in pm.state_dict().items()}
    state = dict(_small_timm().state_dict())
    state["layers.1.blocks.0.attn.relative_position_bias_table"] = torch.zeros(49, 5)      # 5 heads, not 2
    state["layers.0.blocks.1.attn.relative_position_bias_table"] = torch.zeros(45, 1)      # a (3, 5) window's
    with pytest.raises(ConversionError) as err:
        paddle_vit.convert.load_state_dict_strict(pm, convert_state_dict(state, pm, "timm"))
    text = str(err.value)
    assert "2 problem(s)" in text
    assert ("shape mismatch 'layers.1.blocks.0.attn.relative_position_bias_table': checkpoint [49, 5], "
            "model 'layers.1.blocks.0.attn.relative_position_bias_table' needs [49, 2]") in text
    assert "checkpoint [45, 1]" in text and "a square window's rows" in text
    assert all(np.array_equal(before[k], v.numpy()) for k, v in pm.state_dict().items())


def test_window7_checkpoint_loads_at_other_windows_in_the_converter(tmp_path):
    """``paddle-vit-convert`` resizes the tables too, and its verification (the timm model at the new
    window, loading the tables resized the same way) passes."""
    from paddle_vit.convert.cli import main
    src = tmp_path / "w7.pth"
    small = dict(embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4))
    torch.save(randomize_(timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, **small)).state_dict(),
               src)
    args = [str(src), str(tmp_path / "w12.pdparams"), "--model", "swin_tiny_patch4_window7_224", "--img-size", "192",
            "--override", "window_size=12", "--quiet"]
    args += [a for k, v in small.items() for a in ("--override", f"{k}={v!r}")]
    assert main(args) == 0
    pm = paddle_vit.create_model("swin_tiny_patch4_window7_224", pretrained=tmp_path / "w12.pdparams", img_size=192,
                                 window_size=12, **small)
    assert list(pm.layers[0].blocks[0].attn.relative_position_bias_table.shape) == [23 * 23, 1]


# --- window partition ------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,window", [((2, 8, 12, 3), (4, 4)), ((1, 6, 6, 2), (3, 2)), ((3, 4, 4, 1), (4, 4))])
def test_window_partition_and_reverse(shape, window):
    x = random_input(shape)
    B, H, W, C = shape
    mh, mw = window
    ref = np.stack([x[b, i:i + mh, j:j + mw] for b in range(B) for i in range(0, H, mh) for j in range(0, W, mw)])
    for got, back in ((PS.window_partition(paddle.to_tensor(x), window),
                       lambda w: PS.window_reverse(w, window, H, W)),
                      (TS.window_partition(torch.tensor(x), window),
                       lambda w: TS.window_reverse(w, window, H, W))):
        np.testing.assert_array_equal(np.asarray(got), ref)
        np.testing.assert_array_equal(np.asarray(back(got)), x)


@pytest.mark.parametrize("res,window,shift", [((8, 12), (4, 4), (0, 0)), ((8, 12), (4, 4), (2, 2)),
                                              ((6, 6), (3, 2), (1, 1)), ((7, 8), (4, 4), (2, 2))])
def test_window_order_is_roll_then_partition(res, window, shift):
    """The gather index of the fast block path, against an explicit roll + slice (None when padded)."""
    H, W = res
    order = swin_tables.window_order(res, window, shift)
    if H % window[0] or W % window[1]:
        assert order is None
        return
    x = random_input((2, H, W, 3))
    rolled = np.roll(x, (-shift[0], -shift[1]), axis=(1, 2))
    mh, mw = window
    ref = np.stack([rolled[b, i:i + mh, j:j + mw].reshape(-1, 3) for b in range(2)
                    for i in range(0, H, mh) for j in range(0, W, mw)]).reshape(2, H * W, 3)
    got = x.reshape(2, H * W, 3)[:, order]
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(got[:, swin_tables.inverse_order(order)], x.reshape(2, H * W, 3))


@pytest.mark.parametrize("res", [(4, 6), (8, 8), (5, 6)])
def test_merge_order_matches_timm_concatenation(res):
    H, W = res
    order = swin_tables.merge_order(res)
    if H % 2 or W % 2:
        assert order is None
        return
    x = random_input((2, H, W, 3))
    ref = np.concatenate([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], axis=-1)
    np.testing.assert_array_equal(x.reshape(2, H * W, 3)[:, order].reshape(2, H // 2, W // 2, 12), ref)


# --- layer parity ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dim,heads,window,qkv_bias", [(16, 2, (4, 4), True), (12, 3, (3, 5), False)])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("return_attn", [False, True])
def test_window_attention(device, dim, heads, window, qkv_bias, masked, return_attn):
    tm, pm, routes = pair(TS.WindowAttention, PS.WindowAttention, dim, heads, None, window, qkv_bias, device=device)
    res = (window[0] * 2, window[1] * 3)
    mask = swin_tables.shift_mask(res, window, (window[0] // 2, window[1] // 2)) if masked else None
    n_win = 6
    x = random_input([2 * n_win, window[0] * window[1], dim])

    def call(m, xs):
        is_torch = isinstance(m, torch.nn.Module)
        m_mask = None if mask is None else (torch.tensor(mask, device=xs[0].device) if is_torch
                                            else paddle.to_tensor(mask))
        return m(xs[0], mask=m_mask, return_attn=return_attn)

    check_parity(tm, pm, routes, [x], call=call, names=["out", "attn"], device=device)


BLOCK_CASES = [  # (resolution, window, shift)
    ((8, 8), 4, 0), ((8, 8), 4, 2),                # divisible, unshifted / shifted
    ((7, 10), 4, 2), ((6, 9), (3, 4), (1, 2)),     # padded (not divisible), non-square window
    ((3, 5), 7, 3),                                # window larger than the map: shrinks, no shift
]


@pytest.mark.parametrize("res,window,shift", BLOCK_CASES)
def test_block(device, res, window, shift):
    tm, pm, routes = pair(TS.SwinTransformerBlock, PS.SwinTransformerBlock, 12, res, 3, None, window, shift, 2.0,
                          device=device)
    check_parity(tm, pm, routes, [random_input([2, *res, 12])], device=device)


@pytest.mark.parametrize("res,window,shift", [((7, 10), 4, 2), ((3, 5), 4, 2), ((8, 8), 4, 2),
                                              ((9, 9), (4, 3), (2, 1))])
def test_block_torchvision_rule(res, window, shift):
    """Pad, then roll (and back), windows never shrunk: torch_ref and paddle_vit agree."""
    tm, pm, routes = pair(TS.SwinTransformerBlock, PS.SwinTransformerBlock, 12, res, 3, None, window, shift, 2.0,
                          window_rule="torchvision")
    assert pm.window_size == swin_tables.pair(window, "window")
    check_parity(tm, pm, routes, [random_input([2, *res, 12])])


@pytest.mark.parametrize("res,window,shift", BLOCK_CASES)
def test_block_matches_timm(res, window, shift):
    """torch_ref's block is timm's, weight for weight (timm's non-fused path, its default for Swin)."""
    from timm.models.swin_transformer import SwinTransformerBlock as TimmBlock
    theirs = randomize_(TimmBlock(12, res, 3, window_size=window, shift_size=shift, mlp_ratio=2.0)).eval()
    ours = TS.SwinTransformerBlock(12, res, 3, None, window, shift, 2.0).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.tensor(random_input([2, *res, 12]))
    with torch.no_grad():
        assert_close(theirs(x), ours(x), tolerance("layer"), "block vs timm")


@settings(max_examples=10, deadline=None)
@given(h=st.integers(1, 11), w=st.integers(1, 11), wh=st.integers(1, 5), ww=st.integers(1, 5), shifted=st.booleans())
def test_block_random_shapes(h, w, wh, ww, shifted):
    """Any map and window: padded or not, shrunk or not, shifted on none, one or both axes."""
    shift = (wh // 2, ww // 2) if shifted else 0
    tm, pm, routes = pair(TS.SwinTransformerBlock, PS.SwinTransformerBlock, 8, (h, w), 2, None, (wh, ww), shift, 2.0)
    check_parity(tm, pm, routes, [random_input([2, h, w, 8])])


@pytest.mark.parametrize("res", [(4, 6), (5, 7), (1, 3), (3, 3)])
def test_patch_merging(device, res):
    """Odd sides are zero-padded at the bottom/right, as timm and torchvision do (neither refuses)."""
    tm, pm, routes = pair(TS.PatchMerging, PS.PatchMerging, 6, device=device)
    x = random_input([2, *res, 6])
    assert list(pm(paddle.to_tensor(x)).shape) == [2, (res[0] + 1) // 2, (res[1] + 1) // 2, 12]
    check_parity(tm, pm, routes, [x], device=device)
    from timm.models.swin_transformer import PatchMerging as TimmMerging
    theirs = randomize_(TimmMerging(6)).eval()
    tm.cpu().load_state_dict(theirs.state_dict(), strict=True)
    with torch.no_grad():
        assert_close(theirs(torch.tensor(x)), tm(torch.tensor(x)), tolerance("layer"), "PatchMerging vs timm")


def test_patch_merging_order():
    """Channel block k of the 4C vector is neighbour (dy, dx) = (0,0), (1,0), (0,1), (1,1) for k = 0..3
    (read through an identity norm and reduction)."""
    x = random_input([1, 2, 2, 3])
    want = np.concatenate([x[0, 0, 0], x[0, 1, 0], x[0, 0, 1], x[0, 1, 1]])
    for tree, to_tensor in ((PS, paddle.to_tensor), (TS, torch.tensor)):
        layer = tree.PatchMerging(3, out_dim=12)
        layer.norm = paddle.nn.Identity() if tree is PS else torch.nn.Identity()
        if tree is PS:
            layer.reduction.weight.set_value(np.eye(12, dtype=np.float32))
        else:
            layer.reduction.weight.data.copy_(torch.eye(12))
        out = layer(to_tensor(x))
        np.testing.assert_array_equal((out.detach() if tree is TS else out).numpy().reshape(-1), want)


# --- the model ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("cfg", [
    SMALL,
    dict(img_size=32, patch_size=2, window_size=3, embed_dim=12, depths=(2, 1), num_heads=(2, 3), num_classes=5,
         mlp_ratio=2.0, qkv_bias=False),
])
def test_model(device, cfg):
    tm, pm, routes = pair(TS.SwinTransformer, PS.SwinTransformer, device=device, **cfg)
    h, w = (cfg["img_size"],) * 2 if isinstance(cfg["img_size"], int) else cfg["img_size"]
    check_parity(tm, pm, routes, [random_input([2, 3, h, w])], kind="model", device=device)


def test_model_pooled_features():
    pm = PS.SwinTransformer(**{**SMALL, "num_classes": 0})
    pm.eval()
    out = pm(paddle.to_tensor(random_input([1, 3, 64, 96])))
    assert list(out.shape) == [1, pm.num_features] == [1, 128]


# --- real checkpoints: timm and torchvision models, random weights, converted ------------------------
def _small_timm() -> torch.nn.Module:
    return randomize_(timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, **SMALL)).eval()


def _small_torchvision() -> torch.nn.Module:
    from torchvision.models.swin_transformer import SwinTransformer as TvSwin
    model = TvSwin(patch_size=[4, 4], embed_dim=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4],
                   window_size=[4, 4], num_classes=10)
    return randomize_(model).eval()


# torchvision pads before rolling and never shrinks a window, so it is compared where every stage map
# is a multiple of the window (128x256 px: 32x64, 16x32, 8x16, 4x8 with window 4), as for swin_t at 224.
TORCHVISION_SMALL = {**SMALL, "img_size": (128, 256)}


@pytest.mark.parametrize("source", ["timm", "torchvision"])
def test_converted_checkpoint_matches_source(tmp_path, source):
    theirs, cfg = (_small_timm(), SMALL) if source == "timm" else (_small_torchvision(), TORCHVISION_SMALL)
    state = theirs.state_dict()
    assert detect_source(state.keys(), "swin") == source
    path = tmp_path / f"{source}.pth"
    torch.save(state, path)
    pm = paddle_vit.create_model("swin_tiny_patch4_window7_224", pretrained=path, **cfg)
    x = random_input([2, 3, *cfg["img_size"]])
    with torch.no_grad():
        ref = theirs(torch.tensor(x))
    assert_close(ref, pm(paddle.to_tensor(x)), tolerance("model"), f"logits vs {source}")


def test_timm_checkpoint_with_saved_buffers_converts():
    """Older timm and the original Swin code saved relative_position_index and attn_mask: they are rebuilt."""
    theirs = _small_timm()
    state = dict(theirs.state_dict())
    for name, buf in theirs.named_buffers():
        if buf is not None:
            state[name] = buf
    assert any(k.endswith("attn_mask") for k in state) and any(k.endswith("relative_position_index") for k in state)
    pm = PS.SwinTransformer(**SMALL)
    load_state_dict_strict(pm, convert_state_dict(state, pm))
    pm.eval()
    x = random_input([1, 3, 64, 96])
    with torch.no_grad():
        assert_close(theirs(torch.tensor(x)), pm(paddle.to_tensor(x)), tolerance("model"), "logits")


def test_wrong_checkpoint_is_one_clear_error():
    pm = PS.SwinTransformer(**SMALL)
    state = dict(_small_timm().state_dict())
    del state["layers.2.blocks.1.attn.qkv.weight"]
    state["layers.0.blocks.0.attn.relative_position_bias_table"] = torch.zeros(3, 1)
    with pytest.raises(ConversionError) as err:
        convert_state_dict(state, pm, "timm")
    text = str(err.value)
    assert "missing key 'layers.2.blocks.1.attn.qkv.weight'" in text and "shape mismatch" in text
    with torch.device("meta"):  # only the keys matter: Swin V2 has tensors v1 lacks
        v2 = torchvision.models.swin_v2_t().state_dict()
    with pytest.raises(ConversionError, match="unmapped key .*(cpb_mlp|logit_scale)"):
        convert_state_dict(v2, pm, "torchvision")


@pytest.mark.full_size
def test_full_size_swin_tiny_from_timm_and_torchvision(tmp_path):
    """swin_tiny_patch4_window7_224 from a timm and a torchvision swin_t checkpoint (random weights), batch 1."""
    x = random_input([1, 3, 224, 224])
    for source, theirs in (("timm", timm.create_model("swin_tiny_patch4_window7_224", pretrained=False)),
                           ("torchvision", torchvision.models.swin_t())):
        randomize_(theirs).eval()
        path = tmp_path / f"{source}.pth"
        torch.save(theirs.state_dict(), path)
        pm = paddle_vit.create_model("swin_tiny_patch4_window7_224", pretrained=path)
        with torch.no_grad():
            ref = theirs(torch.tensor(x))
        assert_close(ref, pm(paddle.to_tensor(x)), tolerance("model"), f"logits vs {source}")


# --- bad input and bad configs -------------------------------------------------------------------------
@pytest.mark.parametrize("tree", [PS, TS])
@pytest.mark.parametrize("build,bad,msg", [
    (lambda t: t.SwinTransformerBlock(8, (8, 8), 2, window_size=4), [1, 8, 6, 8], r"resolution \(8, 8\)"),
    (lambda t: t.SwinTransformerBlock(8, (8, 8), 2, window_size=4), [1, 64, 8], r"\[B, H, W, 8\]"),
    (lambda t: t.WindowAttention(8, 2, window_size=4), [2, 15, 8], "16 tokens per window"),
    (lambda t: t.PatchMerging(8), [1, 4, 4, 6], r"\[B, H, W, 8\]"),
    (lambda t: t.SwinTransformer(**SMALL), [1, 3, 64, 64], r"image size \(64, 96\)"),
])
def test_bad_input_is_a_clear_error(tree, build, bad, msg):
    layer = build(tree)
    x = paddle.zeros(bad) if tree is PS else torch.zeros(bad)
    with pytest.raises(ValueError, match=msg):
        layer(x)


@pytest.mark.parametrize("tree", [PS, TS])
def test_bad_mask_is_a_clear_error(tree):
    layer = tree.WindowAttention(8, 2, window_size=2)
    zeros = paddle.zeros if tree is PS else torch.zeros
    with pytest.raises(ValueError, match=r"mask must be \[num_windows, 4, 4\]"):
        layer(zeros([6, 4, 8]), mask=zeros([4, 4, 4]))


@pytest.mark.parametrize("tree", [PS, TS])
@pytest.mark.parametrize("kwargs,msg", [
    (dict(global_pool="token"), "global_pool must be 'avg'"),
    (dict(depths=(2, 2), num_heads=(1, 2, 4)), "one entry >= 1 per stage"),
    (dict(window_size=(4, 4, 4)), "window_size must be"),
])
def test_bad_config_is_a_clear_error(tree, kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        tree.SwinTransformer(**{**SMALL, **kwargs})


def test_shift_not_smaller_than_window_is_refused():
    with pytest.raises(ValueError, match="shift_size .* must be smaller than window_size"):
        PS.SwinTransformerBlock(8, (16, 16), 2, window_size=4, shift_size=4)
