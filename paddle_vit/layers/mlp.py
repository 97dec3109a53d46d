"""The transformer MLPs (timm's names): ``Mlp`` (fc1 -> act -> fc2), and the gated ``GluMlp``
(one fc1, halves multiplied; ``SwiGLUPacked`` is GluMlp with the gate first) and ``SwiGLU``
(two fc1 layers, ``fc1_g`` and ``fc1_x``)."""
from __future__ import annotations

from functools import partial
from typing import Callable

import paddle
import paddle.nn as nn

from paddle_vit.layers.activations import create_act
from paddle_vit.layers.linear import Linear
from paddle_vit.vit_arch import MLP_LAYERS, choice

NormFactory = Callable[[int], nn.Layer]


def _linear(fan_in: int, fan_out: int, bias: bool) -> Linear:
    return Linear(fan_in, fan_out, bias_attr=None if bias else False)


def _norm(norm_layer: NormFactory | None, dim: int) -> nn.Layer:
    return norm_layer(dim) if norm_layer is not None else nn.Identity()


class Mlp(nn.Layer):
    """``[..., in_features]`` -> ``[..., out_features]``: fc1 -> act -> drop -> norm -> fc2 -> drop.

    ``act_layer``: timm's name (default exact GELU); ``norm_layer``: a factory ``dim -> layer`` for
    the optional norm of the hidden features (BEiT-3's ``scale_mlp_norm``); ``bias`` for both Linears.
    """

    def __init__(self, in_features: int, hidden_features: int | None = None, out_features: int | None = None,
                 drop: float = 0.0, act_layer: str = "gelu", norm_layer: NormFactory | None = None,
                 bias: bool = True) -> None:
        super().__init__()
        hidden_features = hidden_features or in_features
        out_features = out_features or in_features
        self.fc1 = _linear(in_features, hidden_features, bias)
        self.act = create_act(act_layer)
        self.drop1 = nn.Dropout(drop)
        self.use_norm = norm_layer is not None  # off: not even called (Mlp runs in every ViT and Swin block)
        self.norm = _norm(norm_layer, hidden_features)
        self.fc2 = _linear(hidden_features, out_features, bias)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.drop1(self.act(self.fc1(x)))
        return self.drop2(self.fc2(self.norm(x) if self.use_norm else x))


class GluMlp(nn.Layer):
    """Gated MLP on ``[..., in_features]``: ``fc1`` to ``hidden_features``, split in halves ``x1, x2``;
    ``x1 * act(x2)`` (``gate_last``) or ``act(x1) * x2``; then norm and ``fc2`` from ``hidden / 2``."""

    def __init__(self, in_features: int, hidden_features: int | None = None, out_features: int | None = None,
                 drop: float = 0.0, act_layer: str = "sigmoid", norm_layer: NormFactory | None = None,
                 bias: bool = True, gate_last: bool = True) -> None:
        super().__init__()
        hidden_features = hidden_features or in_features
        out_features = out_features or in_features
        if hidden_features % 2:
            raise ValueError(f"GluMlp splits fc1 in two halves: hidden_features must be even, got {hidden_features}")
        self.gate_last = gate_last
        self.fc1 = _linear(in_features, hidden_features, bias)
        self.act = create_act(act_layer)
        self.drop1 = nn.Dropout(drop)
        self.norm = _norm(norm_layer, hidden_features // 2)
        self.fc2 = _linear(hidden_features // 2, out_features, bias)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x1, x2 = paddle.chunk(self.fc1(x), 2, axis=-1)
        x = x1 * self.act(x2) if self.gate_last else self.act(x1) * x2
        return self.drop2(self.fc2(self.norm(self.drop1(x))))


class SwiGLU(nn.Layer):
    """SwiGLU with two input Linears: ``act(fc1_g(x)) * fc1_x(x)`` -> drop -> norm -> ``fc2`` -> drop."""

    def __init__(self, in_features: int, hidden_features: int | None = None, out_features: int | None = None,
                 drop: float = 0.0, act_layer: str = "silu", norm_layer: NormFactory | None = None,
                 bias: bool = True) -> None:
        super().__init__()
        hidden_features = hidden_features or in_features
        out_features = out_features or in_features
        self.fc1_g = _linear(in_features, hidden_features, bias)
        self.fc1_x = _linear(in_features, hidden_features, bias)
        self.act = create_act(act_layer)
        self.drop1 = nn.Dropout(drop)
        self.norm = _norm(norm_layer, hidden_features)
        self.fc2 = _linear(hidden_features, out_features, bias)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.act(self.fc1_g(x)) * self.fc1_x(x)
        return self.drop2(self.fc2(self.norm(self.drop1(x))))


# timm's SwiGLUPacked is GluMlp with the gate in the first half (its SiLU comes from act_layer).
SwiGLUPacked = partial(GluMlp, act_layer="silu", gate_last=False)
_MLPS = {"Mlp": Mlp, "SwiGLU": SwiGLU, "SwiGLUPacked": SwiGLUPacked, "GluMlp": GluMlp}
assert tuple(_MLPS) == MLP_LAYERS


def create_mlp(name: str, in_features: int, hidden_features: int, act_layer: str,
               norm_layer: NormFactory | None = None, bias: bool = True, drop: float = 0.0) -> nn.Layer:
    """The MLP ``name`` (timm's class name), built as timm's ``Block`` builds it."""
    cls = _MLPS[choice("mlp_layer", name, MLP_LAYERS)]
    return cls(in_features, hidden_features, drop=drop, act_layer=act_layer, norm_layer=norm_layer, bias=bias)
