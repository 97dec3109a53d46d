"""Data-parallel training on ``paddle.distributed`` (gloo on CPU, NCCL on GPUs).

Under ``python -m paddle.distributed.launch --nproc_per_node N`` each process trains a
``paddle.DataParallel`` replica on its share of every global batch (``data.train_batches``);
gradients are averaged across processes in the backward. What is not a gradient is handled here:
metric sums are added up across processes, and BatchNorm running statistics (each process
measures its own share of the batch) are replaced by rank 0's at the end of each epoch, the
outcome torch's DDP gives with its default ``broadcast_buffers``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import paddle
import paddle.distributed as dist
import paddle.nn as nn


@dataclass(frozen=True)
class World:
    size: int = 1
    rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this process writes checkpoints and logs (rank 0)."""
        return self.rank == 0


def launched_processes() -> int:
    """How many processes ``paddle.distributed.launch`` started (1 outside a launch)."""
    return int(os.environ.get("PADDLE_TRAINERS_NUM", "1") or 1)


def init() -> World:
    """Join the launch's process group if there is one; a single process otherwise."""
    if launched_processes() <= 1:
        return World()
    if not dist.is_initialized():
        dist.init_parallel_env()
    return World(dist.get_world_size(), dist.get_rank())


def all_sum(values: Sequence[float], world: World) -> list[float]:
    """Element-wise sum of ``values`` over all processes (float64)."""
    if world.size == 1:
        return [float(v) for v in values]
    t = paddle.to_tensor([float(v) for v in values], dtype="float64")
    dist.all_reduce(t)
    return [float(v) for v in t.numpy()]


def broadcast_state(model: nn.Layer, world: World) -> None:
    """Every tensor of ``model``'s state that is not trained by gradients (BatchNorm statistics,
    frozen weights) set to rank 0's."""
    if world.size == 1:
        return
    for p in model.state_dict().values():
        if p.stop_gradient:
            dist.broadcast(p, src=0)


def wrap(model: nn.Layer, world: World) -> nn.Layer:
    """``paddle.DataParallel(model)`` for several processes (it broadcasts rank 0's parameters), else ``model``."""
    return paddle.DataParallel(model) if world.size > 1 else model


def barrier(world: World) -> None:
    if world.size > 1:
        dist.barrier()
