"""EfficientNetV2's stage table -> one spec per block; framework-free, shared by both trees."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from paddle_vit.conv_arith import round_channels, scale_depth

BLOCKS = ("fused", "mbconv")


@dataclass(frozen=True)
class BlockSpec:
    """One block of the network: ``blocks.{stage}.{index}``."""
    stage: int
    index: int
    block: str          # 'fused' or 'mbconv'
    in_chs: int
    out_chs: int
    kernel_size: int
    stride: int         # only the first block of a stage strides
    expand_ratio: float
    se_ratio: float
    drop_path: float


def check_stage(row: Sequence, i: int) -> None:
    """A stage row is ``(block, repeats, kernel, stride, expand_ratio, out_chs, se_ratio)``."""
    if len(row) != 7:
        raise ValueError(f"stage {i}: expected (block, repeats, kernel, stride, expand_ratio, out_chs, se_ratio), got {row!r}")
    block, repeats, kernel, stride, expand, out_chs, se_ratio = row
    if block not in BLOCKS:
        raise ValueError(f"stage {i}: block must be one of {BLOCKS}, got {block!r}")
    if repeats < 1 or kernel < 1 or out_chs < 1 or expand < 1 or not 0 <= se_ratio <= 1:
        raise ValueError(f"stage {i}: need repeats, kernel, out_chs >= 1, expand_ratio >= 1 and se_ratio in "
                         f"[0, 1], got {row!r}")
    if stride not in (1, 2):
        raise ValueError(f"stage {i}: stride must be 1 or 2, got {stride}")
    if block == "mbconv" and expand == 1:
        raise ValueError(f"stage {i}: MBConv needs expand_ratio != 1 (use 'fused' for a single conv)")
    if block == "fused" and se_ratio:
        raise ValueError(f"stage {i}: Fused-MBConv has no squeeze-excitation, got se_ratio={se_ratio}")


def block_specs(stages: Sequence[Sequence], stem_size: int, channel_multiplier: float = 1.0,
                depth_multiplier: float = 1.0, drop_path_rate: float = 0.0) -> list[BlockSpec]:
    """Every block in order. Widths are scaled by ``channel_multiplier`` and rounded to multiples of
    8; repeats by ``depth_multiplier`` (ceil). Block ``k`` of ``n`` drops its residual branch with
    probability ``drop_path_rate * k / n`` (the linear survival rule: 1 at the input)."""
    if not stages:
        raise ValueError("stages must list at least one stage")
    if not 0.0 <= drop_path_rate < 1.0:
        raise ValueError(f"drop_path_rate must be in [0, 1), got {drop_path_rate}")
    for i, row in enumerate(stages):
        check_stage(row, i)
    repeats = [scale_depth(row[1], depth_multiplier) for row in stages]
    total, k, specs = sum(repeats), 0, []
    in_chs = round_channels(stem_size, channel_multiplier)
    for s, (row, n) in enumerate(zip(stages, repeats)):
        block, _, kernel, stride, expand, out_chs, se_ratio = row
        out_chs = round_channels(out_chs, channel_multiplier)
        for j in range(n):
            specs.append(BlockSpec(s, j, block, in_chs, out_chs, kernel, stride if j == 0 else 1, expand,
                                   se_ratio, drop_path_rate * k / total))
            in_chs, k = out_chs, k + 1
    return specs


def check_block(kind: str, stride: int, expand_ratio: float, se_ratio: float) -> None:
    """The source's rules for a block of ``kind`` ('fused' or 'mbconv'); a ValueError names what was expected."""
    where = "FusedMBConv" if kind == "fused" else "MBConv"
    if stride not in (1, 2):
        raise ValueError(f"{where}: stride must be 1 or 2, got {stride}")
    if kind == "fused":
        if se_ratio:
            raise ValueError(f"FusedMBConv has no squeeze-excitation, got se_ratio={se_ratio}")
        if expand_ratio < 1:
            raise ValueError(f"FusedMBConv: expand_ratio must be >= 1, got {expand_ratio}")
    elif expand_ratio <= 1:
        raise ValueError(f"MBConv needs expand_ratio > 1 (got {expand_ratio}); use FusedMBConv for expansion 1")
