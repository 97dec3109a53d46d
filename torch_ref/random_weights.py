"""Random but non-degenerate weights for a torch model (tests and demos make their own weights)."""
from __future__ import annotations

import torch


def randomize_(module: torch.nn.Module, seed: int = 0, std: float = 0.05) -> torch.nn.Module:
    """Perturb every parameter by N(0, std) and draw BatchNorm statistics, in place.

    Zero biases, unit norms and zero-initialised heads would hide a wrong mapping (a swapped
    norm, a missing bias); after this no tensor is constant."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g).to(p) * std)
        for name, b in module.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=g) * 0.1)
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)
    return module


def well_conditioned_(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights for a deep convnet whose activations neither explode nor vanish, in place.

    Every conv and Linear weight ~ N(0, 1 / fan_in) (fan_in = in / groups * k * k): a unit-variance
    input gives a unit-variance output, block after block. (timm's EfficientNet init uses the
    depthwise fan_out, std ~0.5 for a 3x3 depthwise conv: each residual block then doubles the
    activations, logits reach 1e11 at 64 px and any rounding difference grows to O(1).) A CondConv
    weight ``[E, N]`` (a module with ``num_experts``) is scaled so that its routed mixture is. Norm
    layers get random affine parameters around (1, 0) and BatchNorm random running statistics; all
    biases are non-zero. Works on timm's and torchvision's modules as on ours."""
    g = torch.Generator().manual_seed(seed)
    randn = lambda shape: torch.randn(tuple(shape), generator=g)  # noqa: E731
    with torch.no_grad():
        for m in module.modules():
            experts = getattr(m, "num_experts", 0)
            weight = getattr(m, "weight", None)
            if not isinstance(weight, torch.nn.Parameter):
                continue
            if experts and weight.ndim == 2:                        # CondConv: [E, out * in/g * k * k]
                fan_in = weight.shape[1] // m.out_channels
                weight.copy_(randn(weight.shape) * (2.0 / (fan_in * experts) ** 0.5))
            elif isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear)):
                weight.copy_(randn(weight.shape) / weight[0].numel() ** 0.5)
            else:                                                   # norm layers (and EvoNorm's v)
                weight.copy_(1.0 + 0.1 * randn(weight.shape))
            for name, p in m.named_parameters(recurse=False):
                if name != "weight":
                    p.copy_((1.0 if name == "v" else 0.0) + 0.1 * randn(p.shape))
        for name, b in module.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(randn(b.shape) * 0.1)
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)
    return module
