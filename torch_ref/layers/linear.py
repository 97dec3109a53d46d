"""``Linear`` (torch mirror of ``paddle_vit.layers.linear``): torch's own ``nn.Linear``, which
already adds the bias inside the GEMM (``addmm``), the behaviour the Paddle class adds."""
from torch.nn import Linear

__all__ = ["Linear"]
