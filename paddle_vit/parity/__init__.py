"""Parity between a Paddle model and its torch reference: the tolerance policy and the comparison."""
from paddle_vit.parity.compare import ErrorStats, as_numpy, assert_close, error_stats
from paddle_vit.parity.tolerances import POLICY, Tolerance, tolerance

__all__ = ["ErrorStats", "POLICY", "Tolerance", "as_numpy", "assert_close", "error_stats", "tolerance"]
