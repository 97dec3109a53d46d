"""The tolerance policy: how far Paddle may be from the torch reference, and why.

Every comparison is element by element: the largest absolute difference over *all* values,
divided by the reference's scale (its largest absolute value). A mean would let a permuted
or untransposed weight pass; a per-element relative error explodes on values near zero, so it
is reported, never used to decide.

    pass  <=>  max|paddle - torch| <= bound * max(max|torch|, 1e-6)

Why the numbers (fp32 unit roundoff u = 2**-24 ~ 6e-8): both frameworks compute the same
expressions, but their kernels (MKL/oneDNN vs. torch's) sum in different orders. A dot product
of length K then differs by about sqrt(K) * u of its scale on typical data (K <= 4096 here:
~4e-6), and a softmax or LayerNorm adds a few u. One layer therefore stays well inside 1e-5.
A whole network chains 12-24 such blocks with residual additions; the differences add up
(roughly with the square root of depth) and are amplified by LayerNorm when a row has a small
variance, so networks get 1e-4. Gradients are sums over the batch and every token, so they are
held to the same bound as the network (1e-4), and one optimizer step on top of them too.
Never widen a bound to make a test pass: a real bug (a missing transpose, a wrong scale, a
permuted head) shows up as an error of order 1e-1..1, four orders above these bounds.

GPU rows: TF32 off for fp32 (it would give ~1e-3, the 10-bit mantissa); fp16 has u = 2**-11
~ 4.9e-4 and bf16 u = 2**-8 ~ 3.9e-3, so a layer gets ~10 u and a network ~40-100 u.
Half precision means both models cast to the half type (``parity.layerwise.prepare``): every
stored activation is rounded to the format, so the two frameworks differ by a few u per value
wherever their kernels round differently. Measured (torch, CPU, vit_small/base_patch16_224,
batch 2, each half type against float32, the worst hooked layer): fp16 2.7e-3 (~5.5 u), bf16
1.8e-2 (~4.7 u). Two half runs differ by at most the sum of their distances to float32, so
~5.4e-3 (fp16) and ~3.6e-2 (bf16): the model rows leave a margin of ~4x and ~3x for kernel
differences on the GPU (cuBLAS/cuDNN vs. the CPU kernels measured here). Price of the bf16
row: a 25% wrong softmax scale in one block of a tiny ViT (2e-2 at that layer, 3e-3 at the
logits) passes; a 4x wrong scale (3e-1) fails. fp32 catches both by two orders of magnitude.

Layer by layer (``parity.layerwise``) every hooked output is held to the *model* row: the
output of layer k carries the error of layers 1..k, i.e. it is the end of a prefix of the
network, and the layer rows would fail a correct deep model at its last layers.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tolerance:
    name: str
    bound: float   # max abs error / reference scale
    why: str


POLICY: dict[str, Tolerance] = {t.name: t for t in (
    Tolerance("fp32_layer", 1e-5, "one layer in fp32: reduction-order differences ~sqrt(K)*u"),
    Tolerance("fp32_model", 1e-4, "a network or a gradient in fp32: 12-24 chained layers, LayerNorm amplification"),
    Tolerance("gpu_fp32_layer", 1e-5, "GPU fp32 with TF32 off: same arithmetic as the CPU rows"),
    Tolerance("gpu_fp32_model", 1e-4, "GPU fp32 with TF32 off: same as fp32_model"),
    Tolerance("fp16_layer", 5e-3, "fp16 (u ~ 4.9e-4): ~10 u for one layer"),
    Tolerance("fp16_model", 2e-2, "fp16: ~40 u across a network"),
    Tolerance("bf16_layer", 4e-2, "bf16 (u ~ 3.9e-3): ~10 u for one layer"),
    Tolerance("bf16_model", 1e-1, "bf16: ~25 u across a network; only gross errors are caught"),
)}


def tolerance(kind: str = "layer", dtype: str = "float32", device: str = "cpu") -> Tolerance:
    """The row for ``kind`` ('layer' or 'model'), a dtype and a device ('cpu' or 'gpu')."""
    if kind not in ("layer", "model"):
        raise ValueError(f"kind must be 'layer' or 'model', got {kind!r}")
    prefix = {"float32": "gpu_fp32" if device == "gpu" else "fp32", "float16": "fp16", "bfloat16": "bf16"}.get(dtype)
    if prefix is None:
        raise ValueError(f"no tolerance for dtype {dtype!r}")
    return POLICY[f"{prefix}_{kind}"]


# Gradients that are zero in exact arithmetic. In train mode a BatchNorm subtracts the batch mean
# per channel, so the bias of a BatchNorm that reaches the next train-mode BatchNorm only through
# a 1x1 conv (no non-linearity, no padding) gets gradient exactly 0: EfficientNet's projection
# ``bn3``/``bn2`` biases. Both frameworks then return rounding noise, measured at 1e-9..2e-8 of
# the largest gradient of the step, while every gradient that is not zero in theory is above
# 5e-4 of it (tiny EfficientNetV2-S, one step). Comparing noise to noise by its own scale would
# fail at random, so such a tensor (torch's max below this fraction of the step's largest
# gradient) must instead be as small in Paddle: a bug there is a gradient that is not zero.
# The same holds for the bias of global-context attention's 1x1 scoring conv (GlobalContext.conv_attn):
# a constant added to every position's score leaves their softmax unchanged (measured: 7e-9 in torch,
# 1e-8 of the largest gradient of a single block).
ZERO_GRADIENT = 1e-6
