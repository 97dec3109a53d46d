"""Pins the behaviour of the seed tutorial's Paddle ``Attention`` (000_4253bf5fdfb0924a.txt).

The reference below is written from the tutorial's description, in float64 numpy: qkv is one
Linear whose output is chunked in 3 along the last axis; each chunk is split into heads
``[B, N, H, D] -> [B, H, N, D]``; ``softmax(scale * q k^T)`` over the last axis; the weighted sum
of v goes back to ``[B, N, H*D]`` and through ``proj``. It returns ``(out, attn_weight)``.
"""
from __future__ import annotations

import numpy as np
import paddle
import pytest

from paddle_vit.layers import Attention
from paddle_vit.parity import assert_close, tolerance
from harness import random_input


def seed_attention(x, qkv_w, qkv_b, proj_w, proj_b, num_heads, scale):
    """The tutorial's forward, with Paddle's Linear convention (weight ``[in, out]``)."""
    B, N, _ = x.shape
    qkv = x @ qkv_w + (0 if qkv_b is None else qkv_b)
    q, k, v = np.split(qkv, 3, axis=-1)
    head_dim = q.shape[-1] // num_heads
    q, k, v = (t.reshape(B, N, num_heads, head_dim).transpose(0, 2, 1, 3) for t in (q, k, v))
    logits = scale * (q @ k.transpose(0, 1, 3, 2))
    attn = np.exp(logits - logits.max(-1, keepdims=True))
    attn /= attn.sum(-1, keepdims=True)
    out = (attn @ v).transpose(0, 2, 1, 3).reshape(B, N, -1)
    return out @ proj_w + proj_b, attn


@pytest.mark.parametrize("embed_dim,num_heads,qkv_bias,qk_scale", [
    (96, 8, False, None),   # the tutorial's own example: [4, 16, 96] -> out [4, 16, 96], attn [4, 8, 16, 16]
    (96, 8, True, None), (64, 4, True, 0.2), (50, 8, True, None)])
def test_matches_seed_attention(embed_dim, num_heads, qkv_bias, qk_scale):
    paddle.seed(1)
    layer = Attention(embed_dim, num_heads, qkv_bias=qkv_bias, qk_scale=qk_scale)
    layer.eval()
    if qkv_bias:  # a zero bias would hide a missing bias
        layer.qkv.bias.set_value(paddle.randn(layer.qkv.bias.shape) * 0.1)
    x = random_input([4, 16, embed_dim]).astype(np.float64)
    w = {k: v.numpy().astype(np.float64) for k, v in layer.state_dict().items()}
    head_dim = int(embed_dim / num_heads)
    scale = head_dim ** -0.5 if qk_scale is None else qk_scale
    ref_out, ref_attn = seed_attention(x, w["qkv.weight"], w.get("qkv.bias"), w["proj.weight"], w["proj.bias"],
                                       num_heads, scale)
    out, attn = layer(paddle.to_tensor(x.astype(np.float32)))
    assert list(out.shape) == [4, 16, embed_dim] and list(attn.shape) == [4, num_heads, 16, 16]
    assert_close(ref_out, out, tolerance("layer"), "out")
    assert_close(ref_attn, attn, tolerance("layer"), "attn_weight")
