"""Multi-head self-attention, as in the seed tutorial's Paddle ``Attention`` class."""
from __future__ import annotations

from functools import partial
from typing import Callable

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from paddle_vit.checks import check_tokens
from paddle_vit.layers.create_norm import create_norm
from paddle_vit.layers.linear import Linear

NormFactory = Callable[[int], nn.Layer]

# Eager attention whose [B, H, N, N] logits would exceed this many bytes runs over slices of the
# B x H rows, each slice's logits within it: logits far beyond the caches make the softmax and the
# second GEMM memory-bound (DINOv2's ViT-S/14 at 518 px, batch 8: 8 x 6 x 1374^2 floats, 362 MB
# per block, took 2.2x the time per image of batch 1; sliced: 1.38x faster, tools/bench_attention_slices.py).
# Each row's arithmetic is unchanged: bit-identical in the measured cases, except where a slice of
# one row makes MKL take another GEMM kernel (fp32 rounding).
LOGITS_SLICE_BYTES = 16 << 20


class Attention(nn.Layer):
    """Multi-head self-attention over tokens ``[B, N, C]``.

    ``head_dim = int(embed_dim / num_heads)``; like the source, ``embed_dim`` need not be
    divisible by ``num_heads`` (``qkv`` then produces ``3 * head_dim * num_heads`` features
    and ``proj`` maps them back to ``embed_dim``).

    timm's options: ``qk_norm`` (``q_norm``/``k_norm`` over each head's ``[..., head_dim]``),
    ``scale_norm`` (``norm`` on the heads' output before ``proj``), ``proj_bias``; ``norm_layer``
    is a factory ``dim -> layer`` for those norms (default LayerNorm, eps 1e-6). With either norm
    on, the eager CPU path is the token-major one (the feature-major layout has no head axis last).
    """

    def __init__(self, embed_dim: int, num_heads: int, qkv_bias: bool = True,
                 qk_scale: float | None = None, dropout: float = 0.0,
                 attention_dropout: float = 0.0, qk_norm: bool = False, scale_norm: bool = False,
                 proj_bias: bool = True, norm_layer: NormFactory | None = None) -> None:
        super().__init__()
        if num_heads < 1:
            raise ValueError(f"num_heads must be >= 1, got {num_heads}")
        if embed_dim < num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be >= num_heads ({num_heads})")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = int(embed_dim / num_heads)
        self.all_head_dim = self.head_dim * num_heads
        self.scale = self.head_dim ** -0.5 if qk_scale is None else qk_scale
        self.qk_norm, self.scale_norm = qk_norm, scale_norm
        norm_layer = norm_layer or partial(create_norm, "layernorm")
        self.qkv = Linear(embed_dim, self.all_head_dim * 3, bias_attr=None if qkv_bias else False)
        self.q_norm = norm_layer(self.head_dim) if qk_norm else nn.Identity()
        self.k_norm = norm_layer(self.head_dim) if qk_norm else nn.Identity()
        self.attn_drop = nn.Dropout(attention_dropout)
        self.norm = norm_layer(self.all_head_dim) if scale_norm else nn.Identity()
        self.proj = Linear(self.all_head_dim, embed_dim, bias_attr=None if proj_bias else False)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: paddle.Tensor, return_attn: bool = True
                ) -> tuple[paddle.Tensor, paddle.Tensor | None]:
        """``x [B, N, C]`` -> ``(out [B, N, C], attn [B, H, N, N] or None)``.

        ``return_attn=False`` returns ``None`` for the weights and, on GPU, takes Paddle's fused
        scaled-dot-product kernel; both paths compute the same function.
        """
        check_tokens(x, self.embed_dim, "Attention")
        if not return_attn and _fused_attention_available(x):
            return self._fused(x), None
        # Eager: the feature-major path (qkv's and proj's weights used, the layers not called);
        # static graphs, hooked sublayers and q/k or scale norms: the source's order (see token_major).
        plain = not (self.qk_norm or self.scale_norm)
        out, attn = (self._explicit(x, return_attn) if plain and not token_major(self.qkv, self.proj)
                     else self._layer_by_layer(x))
        return out, attn if return_attn else None

    def _layer_by_layer(self, x: paddle.Tensor) -> tuple[paddle.Tensor, paddle.Tensor]:
        """The source's order of operations, every sublayer called: ``[B, N, C]`` -> out, attn."""
        B, N, _ = x.shape
        qkv = self.qkv(x).reshape([B, N, 3, self.num_heads, self.head_dim]).transpose([2, 0, 3, 1, 4])
        q, k, v = qkv.unbind(axis=0)  # each [B, H, N, D]
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        attn = F.softmax(paddle.matmul(q, k, transpose_y=True) * self.scale, axis=-1)
        out = paddle.matmul(self.attn_drop(attn), v).transpose([0, 2, 1, 3]).reshape([B, N, self.all_head_dim])
        if self.scale_norm:
            out = self.norm(out)
        return self.proj_drop(self.proj(out)), attn

    def _fused(self, x: paddle.Tensor) -> paddle.Tensor:
        B, N, _ = x.shape
        # [B, N, 3, H, D]: q, k, v are the three chunks of the last axis, as in the source.
        q, k, v = self.qkv(x).reshape([B, N, 3, self.num_heads, self.head_dim]).unbind(axis=2)
        if self.qk_norm:  # over head_dim, the last axis here too
            q, k = self.q_norm(q), self.k_norm(k)
        # The fused kernel takes [B, N, H, D] directly: no transposes needed.
        p = self.attn_drop.p if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=p, training=self.training, scale=self.scale)
        out = out.reshape([B, N, self.all_head_dim])
        if self.scale_norm:
            out = self.norm(out)
        return self.proj_drop(self.proj(out))

    def _explicit(self, x: paddle.Tensor, need_attn: bool = True) -> tuple[paddle.Tensor, paddle.Tensor | None]:
        return feature_major_attention(x, self.qkv, self.proj, self.num_heads, self.head_dim, self.scale,
                                       self.attn_drop, self.proj_drop, need_attn=need_attn)


def feature_major_attention(x: paddle.Tensor, qkv: nn.Linear, proj: nn.Linear, num_heads: int, head_dim: int,
                            scale: float, attn_drop: nn.Layer, proj_drop: nn.Layer,
                            add_to_logits: Callable[[paddle.Tensor], paddle.Tensor] | None = None,
                            need_attn: bool = True) -> tuple[paddle.Tensor, paddle.Tensor | None]:
    """``x [B, N, C]`` -> ``(out [B, N, C], attn [B, H, N, N])``, with ``add_to_logits`` (a bias,
    a mask) applied to the scaled logits before the softmax. With ``need_attn=False`` and no
    ``add_to_logits``, logits over ``LOGITS_SLICE_BYTES`` are computed slice by slice of the
    ``B x H`` rows and ``attn`` is ``None``.

    Tokens are the LAST axis of q, k, v ("feature-major"): every head split is then a free reshape
    and every transpose a flag of a GEMM, instead of a strided copy (Paddle's CPU copies of
    transposed views are ~30x slower than torch's). ``qkv`` and ``proj`` are used through their
    weights, not called. Eager mode only: static graphs take the token-major order
    (``token_major``), so the in-place ops below never reach a to_static program.
    """
    B, N, _ = x.shape
    H, D = num_heads, head_dim
    # qkv^T = W^T x^T: [B, 3*H*D, N] = [B, 3, H, D, N]; split copies each chunk contiguous.
    # The bias adds and the scaling write in place, into tensors made just here that no backward
    # needs (matmul saves its inputs, not its output): Paddle's CPU elementwise ops are much
    # slower writing a fresh large tensor, whose pages they touch first, than in place (the qkv
    # bias of Swin-T's first stage, [512, 288, 49]: 30 -> 8 ms).
    qkv_t = paddle.matmul(qkv.weight, x, transpose_x=True, transpose_y=True)
    if qkv.bias is not None:
        qkv_t.add_(qkv.bias.unsqueeze(-1))
    q_t, k_t, v_t = (t.reshape([B, H, D, N]) for t in paddle.split(qkv_t.reshape([B, 3, H, D, N]), 3, axis=1))
    q_t = q_t.scale_(scale)
    rows = max(1, LOGITS_SLICE_BYTES // (N * N * 4))
    if not need_attn and add_to_logits is None and B * H > rows:
        q_r, k_r, v_r = (t.reshape([B * H, D, N]) for t in (q_t, k_t, v_t))
        parts = [paddle.matmul(v_r[i:i + rows], attn_drop(F.softmax(
                     paddle.matmul(q_r[i:i + rows], k_r[i:i + rows], transpose_x=True), axis=-1)), transpose_y=True)
                 for i in range(0, B * H, rows)]
        out_t = paddle.concat(parts, axis=0)                                           # [B * H, D, N]
        out = paddle.matmul(out_t.reshape([B, H * D, N]), proj.weight, transpose_x=True)
        return proj_drop(out if proj.bias is None else out.add_(proj.bias)), None
    logits = paddle.matmul(q_t, k_t, transpose_x=True)  # [B, H, N, N]
    if add_to_logits is not None:
        logits = add_to_logits(logits)
    attn = F.softmax(logits, axis=-1)
    out_t = paddle.matmul(v_t, attn_drop(attn), transpose_y=True)                   # [B, H, D, N]
    out = paddle.matmul(out_t.reshape([B, H * D, N]), proj.weight, transpose_x=True)  # [B, N, C]
    return proj_drop(out if proj.bias is None else out.add_(proj.bias)), attn


def sublayers_hooked(*layers: nn.Layer) -> bool:
    return any(layer._forward_pre_hooks or layer._forward_post_hooks for layer in layers)


def token_major(qkv: nn.Layer, proj: nn.Layer) -> bool:
    """Whether attention takes the source's token-major order (``qkv`` and ``proj`` called,
    heads split by transposes) instead of ``feature_major_attention``: when hooks must see those
    sublayers (``paddle_vit.parity.layerwise``), and in static graphs. Paddle Inference fuses
    the transposes into oneDNN's matmuls, and there the token-major graph is the faster one
    (batch 8, 2 threads: ViT-S/16 815 vs 876 ms, Swin-T 986 vs 1106 ms); the feature-major
    layout only pays off against Paddle's eager transposes."""
    return not paddle.in_dynamic_mode() or sublayers_hooked(qkv, proj)


def _fused_attention_available(x: paddle.Tensor) -> bool:
    """Paddle's fused attention kernels are GPU kernels; on CPU its scaled_dot_product_attention
    falls back to unfused ops on transposed views, slower than ``Attention._explicit``."""
    if paddle.in_dynamic_mode():
        return not x.place.is_cpu_place()
    return not paddle.get_device().startswith("cpu")
