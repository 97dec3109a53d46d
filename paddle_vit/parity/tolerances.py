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

Ill-conditioned weights. Every bound above assumes well-conditioned weights: activations of
order 1..1e3, as our and torch_ref's initialisations (fan-out convs, truncated-normal linears)
perturbed by ``randomize_`` give, and as trained weights are. On weights whose activations
explode, fp32 results are decided by rounding and no bound can judge a port. Measured
(``python tools/fp32_conditioning.py --seeds 6``): tf_efficientnetv2_s with timm's own init
perturbed (its depthwise convs start sqrt(channels) larger than fan-out: logits ~1e13), 300 px,
one image per seed; max error of the logits over their max, against torch's float64 run:

    seed  torch fp32  Paddle fp32  Paddle vs torch fp32  Paddle vs torch fp64  SE gates flipped
    0     7.2e-01     2.2e-04      5.5e-01               4.4e-13               torch 12, Paddle 0
    1     1.8e-06     3.5e-06      1.8e-06               3.1e-15               none
    2     1.1e+00     1.5e+00      1.1e+00               1.8e-13               torch 20, Paddle 18
    3     4.7e-04     8.4e-01      8.4e-01               6.1e-13               torch 0, Paddle 16
    4     8.4e-07     7.8e-06      8.4e-06               4.5e-15               none
    5     2.9e-02     2.0e-05      2.9e-02               3.2e-14               torch 7, Paddle 0

No op of either framework rounds wrongly: up to stage 3 every row of both stays within 5.4e-6
of float64 relative to its own scale (seed 0, layer by layer against float64). The
squeeze-excitation gate (sigmoid of a 1x1 conv of the pooled map) is what grows it: the gate's
output has scale 1 while its input's absolute error grows with the activations (blocks.3.1:
input 5.6e-7 of its scale 4.4e3, gate 8.6e-5 torch, 7.3e-5 Paddle), and by stage 4 that input is
a sum of terms of up to ~1e7 cancelling to ~1e2..1e3, off by hundreds in both frameworks (seed 0,
blocks.4.7.se, channel 269: float64 481, torch fp32 -45, Paddle fp32 936, sum of |terms| 7.8e6).
Where the error flips the sign, the saturated gate flips between 0 and 1 and switches a whole
channel off in one framework only. Which framework flips is chance (seed 0 torch, seed 3
Paddle, seed 2 both). Layer by layer (``parity.layerwise`` on these weights, 384 px) the first
failing fp32 row is an SE gate (blocks.3.2.se.gate, 2.3e-4; logits 0.66). In float64 both
frameworks agree (table; layer by layer the worst row is 1.4e-11 at 300 px, 5.5e-11 at 384 px):
judge such weights in float64 (``paddle-vit diff --dtype float64 --checkpoint ...``, the
``fp64`` rows), where rounding shrinks by ~u64/u32 and a bug does not. That needs the same
epsilons: Paddle keeps a norm's epsilon as a float32 (BatchNorm's 1e-3 is 1.0000000475e-3), so
``layerwise.prepare`` rounds the reference's to float32 for float64 runs; with torch's exact
ones the float64 logits above differed by 1.3e-9..2.0e-7 and an SE gate by 1.1e-5. The parity
tests and ``paddle-vit diff``'s random weights are well-conditioned for this reason.
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
    # paddle_vit.data vs timm's create_transform / torchvision's weights.transforms(): the same PIL
    # resize on the same pixels, the same integer crop arithmetic, then x / 255, - mean, / std in
    # float32 (each one correctly rounded IEEE operation in both): nothing differs, so nothing may.
    Tolerance("preprocess", 0.0, "image transform: same PIL resize, same crop arithmetic, same fp32 ops: exact"),
    Tolerance("fp64_layer", 1e-12, "one layer in float64 (u ~ 1.1e-16, eps as Paddle stores it): sqrt(K)*u ~ 7e-15"),
    Tolerance("fp64_model", 1e-6, "float64, for ill-conditioned weights (below): worst layer measured 8.2e-8 (an SE "
                                  "gate), 5.5e-11 on the exploding tf_efficientnetv2_s; well-conditioned 4.3e-15"),
    # torch_ref captured by torch.jit.trace / torch.export against its own eager run (test_torchscript):
    # the same torch kernels on the same input: measured 0.0 for every case but CondConv's trace, which
    # sums per-expert convs instead of convolving with the mixed kernel (batch-independent): 3.1e-7
    # (~5 u). A few u leave room for that and for an op the capture decomposes; a baked shape or a
    # dropped branch is off by O(1e-1).
    Tolerance("graph_capture", 1e-6, "torch.jit.trace / torch.export vs eager torch: same kernels, fp32 rounding only"),
)}


def tolerance(kind: str = "layer", dtype: str = "float32", device: str = "cpu") -> Tolerance:
    """The row for ``kind`` ('layer' or 'model'), a dtype and a device ('cpu' or 'gpu')."""
    if kind not in ("layer", "model"):
        raise ValueError(f"kind must be 'layer' or 'model', got {kind!r}")
    prefix = {"float32": "gpu_fp32" if device == "gpu" else "fp32", "float64": "fp64", "float16": "fp16",
              "bfloat16": "bf16"}.get(dtype)
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
# The same holds for the bias of a key norm (``qk_norm``: ``attn.k_norm.bias``): it adds the same
# ``q . b`` to every logit of a query's row, which the softmax cancels exactly (tiny ViT with
# qk_norm, one backward, torch: 1e-9..2e-9 against a largest parameter gradient of 1.9, while the
# smallest gradient that is not zero in theory is 1.2e-2).
# The same holds for the bias of global-context attention's 1x1 scoring conv (GlobalContext.conv_attn):
# a constant added to every position's score leaves their softmax unchanged (measured: 7e-9 in torch,
# 1e-8 of the largest gradient of a single block).
ZERO_GRADIENT = 1e-6
