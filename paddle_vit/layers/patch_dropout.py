"""Patch dropout (timm's ``PatchDropout``): in training, keep a random subset of the patch tokens."""
from __future__ import annotations

import paddle
import paddle.nn as nn


class PatchDropout(nn.Layer):
    """``[B, prefix + L, C]`` -> ``[B, prefix + max(1, int(L * (1 - prob))), C]`` in training (each
    sample keeps its own random patches, in random order; the prefix tokens are always kept);
    identity in eval or when ``prob == 0``."""

    def __init__(self, prob: float = 0.5, num_prefix_tokens: int = 1) -> None:
        super().__init__()
        if not 0.0 <= prob < 1.0:
            raise ValueError(f"patch dropout prob must be in [0, 1), got {prob}")
        self.prob, self.num_prefix_tokens = prob, num_prefix_tokens

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if not self.training or self.prob == 0.0:
            return x
        prefix, patches = x[:, :self.num_prefix_tokens], x[:, self.num_prefix_tokens:]
        B, L = patches.shape[0], patches.shape[1]
        keep = paddle.argsort(paddle.randn([B, L]), axis=-1)[:, :max(1, int(L * (1.0 - self.prob)))]
        patches = paddle.take_along_axis(patches, keep.unsqueeze(-1), axis=1, broadcast=True)
        return paddle.concat([prefix, patches], axis=1)
