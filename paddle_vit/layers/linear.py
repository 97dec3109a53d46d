"""``Linear``: Paddle's ``nn.Linear`` with the bias added inside the GEMM on CPU in eager mode."""
from __future__ import annotations

import paddle
import paddle.nn as nn


class Linear(nn.Linear):
    """``[..., in_features]`` -> ``[..., out_features]``; the same parameters (``weight``
    ``[in, out]``, ``bias`` ``[out]``) and the same function as ``paddle.nn.Linear``.

    Paddle's ``F.linear`` is a GEMM followed by a broadcast add, and its CPU broadcast add is a
    single-threaded pass over the whole output (~30 % of a ``[1576, 384] x [384, 1536]`` layer).
    ``paddle.addmm`` starts the GEMM from the bias instead (BLAS ``beta = 1``), as torch's
    ``nn.Linear`` does. Only in eager mode on CPU: static graphs keep ``matmul + add``, the pattern
    Paddle Inference fuses into its oneDNN ``fc`` kernel; GPU kernels fuse the bias already.
    """

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if self.bias is None or x.ndim < 2 or not paddle.in_dynamic_mode() or not x.place.is_cpu_place():
            return super().forward(x)
        lead = x.shape[:-1]
        out = paddle.addmm(self.bias, x.reshape([-1, x.shape[-1]]), self.weight)
        return out.reshape([*lead, self.weight.shape[1]])
