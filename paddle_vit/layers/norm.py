"""BatchNorm with torch's semantics, for layers ported from torch.

Paddle and torch disagree on two things, both fixed here in one place:
- ``momentum``: torch's is the weight of the *new* batch statistic (default 0.1), Paddle's
  the weight of the *old* running value (default 0.9). This layer takes torch's convention
  and hands Paddle ``1 - momentum``.
- the running variance: torch updates it with the *unbiased* batch variance (divided by
  ``n - 1``, ``n = B*H*W``), Paddle's kernel with the *biased* one (divided by ``n``). In
  training this layer lets Paddle's kernel normalise (output and gradients are Paddle's own
  fused op) and then overwrites both running statistics with torch's rule:
  ``running = (1 - momentum) * running + momentum * batch_stat``.
Eval mode is Paddle's kernel unchanged (it uses the running statistics, as torch).
"""
from __future__ import annotations

import paddle
import paddle.nn as nn
import paddle.nn.functional as F


class BatchNorm2d(nn.BatchNorm2D):
    """``[B, C, H, W]`` -> ``[B, C, H, W]``; ``eps`` and ``momentum`` as in ``torch.nn.BatchNorm2d``.
    State dict keys are Paddle's (``weight``, ``bias``, ``_mean``, ``_variance``)."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum (torch convention: weight of the new statistic) must be in [0, 1], got {momentum}")
        if eps <= 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        super().__init__(num_features, momentum=1.0 - momentum, epsilon=eps)

    @property
    def eps(self) -> float:
        return self._epsilon

    @property
    def momentum(self) -> float:
        """torch's convention (weight of the new batch statistic)."""
        return 1.0 - self._momentum

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if not self.training:  # the parent's forward named explicitly: to_static mis-resolves super() in subclasses
            return nn.BatchNorm2D.forward(self, x)
        if x.ndim != 4 or x.shape[0] * x.shape[2] * x.shape[3] < 2:
            raise ValueError(f"BatchNorm2d in training needs [B, C, H, W] with B*H*W >= 2, got shape {list(x.shape)}")
        old_mean, old_var = self._mean.clone(), self._variance.clone()
        # Paddle's kernel normalises with the batch statistics; its running update is replaced below.
        out = F.batch_norm(x, self._mean, self._variance, self.weight, self.bias, training=True,
                           momentum=self._momentum, epsilon=self._epsilon, data_format=self._data_format)
        with paddle.no_grad():
            mean = x.mean(axis=[0, 2, 3])
            # not x.var(unbiased=True): Paddle's var logs a type-promotion warning at every call
            n = x.shape[0] * x.shape[2] * x.shape[3]
            var = (x - mean.reshape([1, -1, 1, 1])).square().sum(axis=[0, 2, 3]) / (n - 1)
            m = self.momentum
            self._mean.set_value((1.0 - m) * old_mean + m * mean)
            self._variance.set_value((1.0 - m) * old_var + m * var)
        return out

    def extra_repr(self) -> str:
        return f"{self._num_features}, eps={self.eps}, momentum={self.momentum:g} (torch convention)"
