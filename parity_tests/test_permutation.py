"""Seed 002's argument as properties: self-attention without a position embedding is permutation-
equivariant (permuting the tokens permutes the outputs, and the attention map's rows and columns),
and adding a position embedding breaks it. Hypothesis draws the shapes and the permutation; both
trees are checked, each on random (non-trivial) weights."""
from __future__ import annotations

import numpy as np
import paddle
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import paddle_vit.layers as PL
import paddle_vit.models.vit as PV
import torch_ref.layers as TL
import torch_ref.models.vit as TV
from harness import pair, random_input
from paddle_vit.parity import as_numpy, assert_close, error_stats, tolerance

TREES = ["paddle", "torch"]
# An equivariant map permutes its output to within rounding (kernels may sum a row in a different
# order at another position): the one-layer bound. Broken equivariance is an error of order 1.
BROKEN = 1e-2
PROPERTY = settings(max_examples=20, deadline=None, derandomize=True)


@st.composite
def tokens_and_permutation(draw, max_tokens: int = 10):
    n = draw(st.integers(2, max_tokens))
    perm = draw(st.permutations(range(n)))
    assume(list(perm) != list(range(n)))
    return dict(batch=draw(st.integers(1, 3)), tokens=n, heads=draw(st.integers(1, 4)),
                head_dim=draw(st.integers(2, 8)), perm=np.asarray(perm))


def _run(module, tree: str, x: np.ndarray, *args):
    if tree == "paddle":
        with paddle.no_grad():
            out = module(paddle.to_tensor(x), *args)
    else:
        with torch.no_grad():
            out = module(torch.tensor(x), *args)
    return [as_numpy(o) for o in (out if isinstance(out, tuple) else (out,))]


def _attention(case: dict, tree: str):
    tm, pm, _ = pair(TL.Attention, PL.Attention, case["heads"] * case["head_dim"], case["heads"])
    return pm if tree == "paddle" else tm


def _block(case: dict, tree: str):
    tm, pm, _ = pair(TV.Block, PV.Block, case["heads"] * case["head_dim"], case["heads"], mlp_ratio=2.0)
    return pm if tree == "paddle" else tm


@pytest.mark.parametrize("tree", TREES)
@PROPERTY
@given(case=tokens_and_permutation())
def test_attention_is_permutation_equivariant(tree, case):
    attn = _attention(case, tree)
    x, p = random_input([case["batch"], case["tokens"], case["heads"] * case["head_dim"]]), case["perm"]
    out, weights = _run(attn, tree, x)
    out_p, weights_p = _run(attn, tree, x[:, p])
    assert_close(out[:, p], out_p, tolerance("layer"), "Attention(x[:, perm]) vs Attention(x)[:, perm]")
    assert_close(weights[:, :, p][:, :, :, p], weights_p, tolerance("layer"), "attention map, rows and columns permuted")


@pytest.mark.parametrize("tree", TREES)
@PROPERTY
@given(case=tokens_and_permutation())
def test_vit_block_is_permutation_equivariant(tree, case):
    block = _block(case, tree)
    x, p = random_input([case["batch"], case["tokens"], case["heads"] * case["head_dim"]]), case["perm"]
    (out,), (out_p,) = _run(block, tree, x), _run(block, tree, x[:, p])
    assert_close(out[:, p], out_p, tolerance("layer"), "Block(x[:, perm]) vs Block(x)[:, perm]")


@pytest.mark.parametrize("tree", TREES)
@PROPERTY
@given(case=tokens_and_permutation())
def test_position_embedding_breaks_equivariance(tree, case):
    """``Block(x + PE)``: permuting the tokens no longer permutes the output (PE: seed 002's 1-D sin-cos table)."""
    block = _block(case, tree)
    dim = case["heads"] * case["head_dim"]
    pe = PL.sincos_1d(case["tokens"], dim).numpy()[None]
    x, p = random_input([case["batch"], case["tokens"], dim]), case["perm"]
    (out,), (out_p,) = _run(block, tree, x + pe), _run(block, tree, x[:, p] + pe)
    stats = error_stats(out[:, p], out_p, "Block(x[:, perm] + PE) vs Block(x + PE)[:, perm]")
    assert stats.scaled > BROKEN, stats.describe()


def _scramble(images: np.ndarray, patch: int, perm: np.ndarray) -> np.ndarray:
    """``[B, C, H, W]`` with its ``patch x patch`` tiles reordered (row-major) by ``perm``."""
    b, c, h, w = images.shape
    gh, gw = h // patch, w // patch
    tiles = images.reshape(b, c, gh, patch, gw, patch).transpose(0, 2, 4, 1, 3, 5).reshape(b, gh * gw, c, patch, patch)
    tiles = tiles[:, perm].reshape(b, gh, gw, c, patch, patch)
    return np.ascontiguousarray(tiles.transpose(0, 3, 1, 4, 2, 5).reshape(b, c, h, w))


@pytest.mark.parametrize("tree", TREES)
@settings(max_examples=8, deadline=None, derandomize=True)
@given(perm=st.permutations(range(9)))
def test_vit_without_position_embedding_cannot_tell_a_scrambled_image(tree, perm):
    """The seed's picture: with the position embedding zeroed, a ViT classifies an image and the same
    image with its patches shuffled alike (the class token sees a set of patches); with a position
    embedding (the seed's sin-cos table, of the tokens' scale), it tells them apart."""
    perm = np.asarray(perm)
    assume(list(perm) != list(range(9)))
    kwargs = dict(img_size=24, patch_size=8, embed_dim=24, depth=2, num_heads=3, num_classes=5)
    tm, pm, _ = pair(TV.VisionTransformer, PV.VisionTransformer, **kwargs)
    model = pm if tree == "paddle" else tm
    x = random_input([2, 3, 24, 24])
    scrambled = _scramble(x, 8, perm)
    table = PL.sincos_1d(10, 24).numpy()[None]  # class token + 9 patches
    tokens = np.concatenate([[0], perm + 1])     # the class token stays first
    for pos_embed in (table, np.zeros_like(table)):
        if tree == "paddle":
            model.pos_embed.set_value(paddle.to_tensor(pos_embed))
        else:
            model.pos_embed.data.copy_(torch.tensor(pos_embed))
        (feats, logits), (feats_s, logits_s) = [_run(model.forward_features, tree, im) + _run(model, tree, im)
                                                for im in (x, scrambled)]
        if pos_embed is table:
            stats = error_stats(feats[:, tokens], feats_s, "patch tokens of the scrambled image, with PE")
            assert stats.scaled > BROKEN, stats.describe()
        else:
            assert_close(feats[:, tokens], feats_s, tolerance("model"), "tokens of the scrambled image, no PE")
            assert_close(logits, logits_s, tolerance("model"), "logits of the scrambled image, no PE")


def test_scramble_is_a_permutation_of_patches():
    x = random_input([1, 2, 16, 24])
    perm = np.random.default_rng(0).permutation(6)
    y = _scramble(x, 8, perm)
    k = 4  # output tile k is input tile perm[k]
    r, c, rs, cs = k // 3, k % 3, perm[k] // 3, perm[k] % 3
    assert np.array_equal(y[..., r * 8:(r + 1) * 8, c * 8:(c + 1) * 8], x[..., rs * 8:(rs + 1) * 8, cs * 8:(cs + 1) * 8])
    assert not np.array_equal(x, y)
