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
