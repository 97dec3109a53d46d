"""Fine-tuning in Paddle: the seed's recipe (``paddle_vit.train.recipe``) on an image folder, on one
process or data-parallel over many (``paddle_vit.train.distributed``).

``finetune(data=..., model=..., checkpoint=..., ...)`` takes ``Recipe``'s fields; the torch twin
is ``torch_ref.train.engine.finetune``, with the same functions and the same data pipeline.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from paddle_vit.registry import create_model
from paddle_vit.train import checkpoint as ckpt
from paddle_vit.train import distributed
from paddle_vit.train.curves import format_row, write_csv, write_plot
from paddle_vit.train.data import (DatasetError, ImageFolderDataset, eval_batches, global_batch_sizes, scan_dataset,
                                   train_batches)
from paddle_vit.train.pretrained import load_for_finetune
from paddle_vit.train.recipe import FIXED_INPUT, Recipe, cosine_factor, epoch_seed, trainable
from paddle_vit.train.runs import CheckpointError, check_resumable, remove_leftovers
from paddle_vit.variants import model_kwargs

FRAMEWORK = "paddle"
StepHook = Callable[[int, int, float, nn.Layer], None]  # (epoch, step in epoch, loss, model)


class EpochBatchSampler(paddle.io.DistributedBatchSampler):
    """``DistributedBatchSampler`` whose order is ``data.train_batches`` (seeded by the run's seed
    and the epoch, the same in every process and in the torch twin) or ``data.eval_batches``."""

    def __init__(self, dataset: ImageFolderDataset, batch_size: int, world: distributed.World, seed: int,
                 train: bool) -> None:
        super().__init__(dataset, batch_size, num_replicas=world.size, rank=world.rank, shuffle=train)
        self.seed, self.train = seed, train

    def batches(self) -> list[list[int]]:
        if self.train:
            return train_batches(len(self.dataset), self.batch_size, self.epoch, self.seed, self.nranks, self.local_rank)
        return eval_batches(len(self.dataset), self.batch_size, self.nranks, self.local_rank)

    def __iter__(self):
        return iter(self.batches())

    def __len__(self) -> int:
        return len(self.batches())


@dataclass
class Run:
    """Everything one fine-tuning run holds; ``prepare`` builds it."""
    recipe: Recipe
    world: distributed.World
    model: nn.Layer
    optimizer: paddle.optimizer.Optimizer
    scheduler: paddle.optimizer.lr.LRScheduler
    train_set: ImageFolderDataset
    val_set: ImageFolderDataset
    classes: tuple[str, ...]
    trainable: list[str]
    normalization: tuple[tuple[float, ...], tuple[float, ...]]
    start_epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    scaler: Any = None

    @property
    def run_dir(self) -> Path:
        return Path(self.recipe.out)


def say(world: distributed.World, *lines: str) -> None:
    if world.main:
        for line in lines:
            print(line, flush=True)


def set_device(recipe: Recipe, world: distributed.World) -> str:
    """``'cpu'`` or ``'gpu'``; under a launch on GPUs each process takes its own card."""
    has_gpu = paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0
    device = recipe.device or ("gpu" if has_gpu else "cpu")
    if device == "gpu" and not has_gpu:
        raise ValueError("--device gpu: Paddle sees no GPU (the CPU wheel is installed?); see README, GPU")
    if recipe.amp and device != "gpu":
        raise ValueError(f"--amp {recipe.amp} needs a GPU (mixed precision runs on GPUs only here); drop --amp on CPU")
    paddle.set_device(f"gpu:{paddle.distributed.ParallelEnv().device_id}" if device == "gpu" else "cpu")
    return device


def build_model(recipe: Recipe, num_classes: int) -> tuple[nn.Layer, int, int]:
    """The variant with ``num_classes`` outputs, and the (train, val) image sizes."""
    family, kwargs = model_kwargs(recipe.model, **recipe.overrides)
    train_size, val_size = recipe.sizes(recipe.model, kwargs.get("img_size"))
    img_size = None
    if family in FIXED_INPUT:
        if train_size != val_size:
            raise ValueError(f"{recipe.model} takes one input size (its position tables fix it): "
                             f"got train size {train_size}, val size {val_size}; pass --img-size")
        img_size = val_size if val_size != kwargs.get("img_size") else None
    try:
        model = create_model(recipe.model, num_classes=num_classes, img_size=img_size, **recipe.overrides)
    except TypeError as exc:  # an override the constructor does not take
        raise ValueError(f"cannot build {recipe.model!r} with overrides {recipe.overrides}: {exc}") from None
    return model, train_size, val_size


def freeze(model: nn.Layer, recipe: Recipe) -> list[str]:
    """Stop the gradient of every parameter but the classifier's (``freeze_layers``); returns the
    names of the trainable ones. BatchNorm statistics are not parameters of the optimizer either way."""
    names = []
    for name, p in model.named_parameters():
        if p.stop_gradient:
            continue  # BatchNorm statistics: Paddle lists them as parameters without gradient
        if trainable(name, model.family, recipe.freeze_layers):
            names.append(name)
        else:
            p.stop_gradient = True
    if not names:
        raise ValueError(f"nothing to train in {recipe.model}: no parameter is left trainable")
    return names


def build_optimizer(model: nn.Layer, names: Sequence[str], recipe: Recipe
                    ) -> tuple[paddle.optimizer.Optimizer, paddle.optimizer.lr.LRScheduler]:
    """The seed's SGD (momentum 0.9, weight decay 1e-4, coupled as torch's ``weight_decay``) on
    ``names``, with the cosine ``LambdaLR`` stepped once per epoch."""
    scheduler = paddle.optimizer.lr.LambdaDecay(recipe.lr, lambda e: cosine_factor(e, recipe.epochs, recipe.lrf))
    params = dict(model.named_parameters())
    optimizer = paddle.optimizer.Momentum(learning_rate=scheduler, momentum=recipe.momentum,
                                          weight_decay=recipe.weight_decay, parameters=[params[n] for n in names])
    return optimizer, scheduler


def prepare(recipe: Recipe | None = None, **kwargs: Any) -> Run:
    """Build the run: dataset, model (checkpoint loaded into a new head, or the run resumed),
    frozen layers, optimizer and schedule. Nothing is written."""
    recipe = recipe or Recipe(**kwargs)
    world = distributed.init()
    set_device(recipe, world)
    train_split, val_split = scan_dataset(recipe.data, recipe.bad_images)
    classes = train_split.classes
    if recipe.num_classes is not None and recipe.num_classes != len(classes):
        raise DatasetError(f"--num-classes {recipe.num_classes} but {train_split.root} has {len(classes)} class "
                           f"folders: {', '.join(classes)}")
    if len(train_split.samples) < world.size:
        raise DatasetError(f"{train_split.root} has {len(train_split.samples)} images, fewer than the {world.size} processes")
    paddle.seed(recipe.seed)
    model, train_size, val_size = build_model(recipe, len(classes))
    resume = ckpt.load_last(recipe.out)
    if resume is not None and not recipe.resume:
        raise CheckpointError(f"{recipe.out} already holds a run (epoch {resume.record['epoch']} committed); "
                              "pass --resume to continue it, or another --out")
    notes = []
    source = "paddle"
    if resume is None and recipe.checkpoint:
        report = load_for_finetune(model, recipe.checkpoint, recipe.source, recipe.seed)
        notes += report.lines()
        source = report.source
    elif resume is None:
        notes.append("no --checkpoint: training from the model's initial weights")
    mean, std = recipe.normalization(source) if resume is None else tuple(map(tuple, resume.record["normalization"]))
    names = freeze(model, recipe)
    optimizer, scheduler = build_optimizer(model, names, recipe)
    run = Run(recipe, world, model, optimizer, scheduler,
              ImageFolderDataset(train_split, train_size, mean, std, train=True, seed=recipe.seed, augment=recipe.augment),
              ImageFolderDataset(val_split, val_size, mean, std, train=False),
              classes, names, (mean, std), notes=notes)
    if resume is not None:
        check_resumable(resume.record, recipe.as_dict(), list(classes), FRAMEWORK, world.size, recipe.out)
        ckpt.restore(resume, model, optimizer)
        run.start_epoch, run.history = int(resume.record["epoch"]), list(resume.record["history"])
        if scheduler.last_epoch != run.start_epoch:
            raise CheckpointError(f"{recipe.out}: the scheduler state says epoch {scheduler.last_epoch}, the record "
                                  f"{run.start_epoch}")
        notes.append(f"resumed {recipe.out} after epoch {run.start_epoch}")
    if recipe.amp == "fp16":
        run.scaler = paddle.amp.GradScaler(init_loss_scaling=2.0 ** 16)
    return run


def loader(dataset: ImageFolderDataset, sampler: EpochBatchSampler, workers: int) -> paddle.io.DataLoader:
    return paddle.io.DataLoader(dataset, batch_sampler=sampler, num_workers=workers, use_shared_memory=workers > 0)


def _amp(recipe: Recipe):
    import contextlib
    if recipe.amp is None:
        return contextlib.nullcontext()
    return paddle.amp.auto_cast(dtype={"bf16": "bfloat16", "fp16": "float16"}[recipe.amp], level="O1")


def train_step(net: nn.Layer, run: Run, x: paddle.Tensor, y: paddle.Tensor, weight: float) -> tuple[float, int]:
    """One SGD step on this process's share ``x [b, 3, H, W]``, ``y [b]``: cross-entropy scaled by
    ``weight`` = (share / global batch) * processes, so that the averaged gradient is the global
    batch's mean. Returns (unweighted loss, correct predictions)."""
    with _amp(run.recipe):
        logits = net(x)
        loss = F.cross_entropy(logits.astype("float32"), y)
    scaled = loss * weight if weight != 1.0 else loss
    if run.scaler is not None:
        run.scaler.scale(scaled).backward()
        run.scaler.step(run.optimizer)
        run.scaler.update()
    else:
        scaled.backward()
        run.optimizer.step()
    run.optimizer.clear_grad()
    return float(loss), int((logits.argmax(axis=-1) == y).sum())


def _progress(run: Run, items, desc: str):
    show = run.recipe.progress if run.recipe.progress is not None else sys.stderr.isatty()
    if not (show and run.world.main):
        return items
    from tqdm import tqdm
    return tqdm(items, desc=desc, leave=False, file=sys.stderr, unit="batch")


def train_one_epoch(net: nn.Layer, run: Run, epoch: int, on_step: StepHook | None = None) -> tuple[float, float]:
    """One epoch over this process's batches; returns the global (mean loss, accuracy)."""
    run.model.train()
    run.train_set.set_epoch(epoch)
    sampler = EpochBatchSampler(run.train_set, run.recipe.batch_size, run.world, run.recipe.seed, train=True)
    sampler.set_epoch(epoch)
    sizes = global_batch_sizes(len(run.train_set), run.recipe.batch_size, run.world.size)
    loss_sum = correct = count = 0.0
    bar = _progress(run, loader(run.train_set, sampler, run.recipe.workers), f"epoch {epoch + 1}/{run.recipe.epochs}")
    for step, (x, y) in enumerate(bar):
        n = int(y.shape[0])
        loss, right = train_step(net, run, x, y, n * run.world.size / sizes[step])
        loss_sum, correct, count = loss_sum + loss * n, correct + right, count + n
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{loss:.4f}")
        if on_step is not None:
            on_step(epoch, step, loss, run.model)
    loss_sum, correct, count = distributed.all_sum([loss_sum, correct, count], run.world)
    return loss_sum / count, correct / count


@paddle.no_grad()
def evaluate(run: Run) -> tuple[float, float]:
    """Validation (mean loss, accuracy) over the whole val split, shared out among the processes."""
    run.model.eval()
    sampler = EpochBatchSampler(run.val_set, run.recipe.batch_size, run.world, run.recipe.seed, train=False)
    loss_sum = correct = count = 0.0
    for x, y in _progress(run, loader(run.val_set, sampler, run.recipe.workers), "val"):
        logits = run.model(x).astype("float32")
        loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(axis=-1) == y).sum())
        count += int(y.shape[0])
    loss_sum, correct, count = distributed.all_sum([loss_sum, correct, count], run.world)
    return loss_sum / max(count, 1), correct / max(count, 1)


def record_meta(run: Run) -> dict[str, Any]:
    return dict(framework=FRAMEWORK, writer=dict(rank=run.world.rank, pid=os.getpid(), processes=run.world.size),
                model=run.recipe.model, classes=list(run.classes), recipe=run.recipe.as_dict(),
                normalization=[list(run.normalization[0]), list(run.normalization[1])], history=run.history,
                trainable=run.trainable)


def run_epochs(run: Run, on_step: StepHook | None = None) -> Run:
    """Train from ``run.start_epoch`` to the recipe's last epoch (or ``stop_after`` epochs of this
    call): train, BatchNorm statistics from rank 0, schedule step, validation, then on rank 0 the
    checkpoint, CSV and PNG."""
    recipe, world = run.recipe, run.world
    if world.main:
        run.run_dir.mkdir(parents=True, exist_ok=True)
        remove_leftovers(run.run_dir)
    net = distributed.wrap(run.model, world)
    last = recipe.epochs if recipe.stop_after is None else min(recipe.epochs, run.start_epoch + recipe.stop_after)
    for epoch in range(run.start_epoch, last):
        t0 = time.perf_counter()
        paddle.seed(epoch_seed(recipe.seed, epoch, world.rank))
        lr = run.optimizer.get_lr()
        train_loss, train_acc = train_one_epoch(net, run, epoch, on_step)
        distributed.broadcast_state(run.model, world)
        run.scheduler.step()
        val_loss, val_acc = evaluate(run)
        row = dict(epoch=epoch + 1, train_loss=train_loss, train_acc=train_acc, val_loss=val_loss, val_acc=val_acc, lr=lr)
        run.history.append(row)
        if world.main:
            ckpt.save_epoch(run.run_dir, epoch + 1, run.model, run.optimizer, record_meta(run))
            write_csv(run.history, run.run_dir / "curves.csv")
            write_plot(run.history, run.run_dir / "curves.png", f"{recipe.model} on {Path(recipe.data).name}")
            print(f"{format_row(row)}  ({time.perf_counter() - t0:.1f}s)", flush=True)
        distributed.barrier(world)
    return run


def finetune(recipe: Recipe | None = None, on_step: StepHook | None = None, **kwargs: Any) -> dict[str, Any]:
    """Fine-tune ``recipe.model`` on ``recipe.data`` (see ``Recipe`` for the fields, which may also
    be passed as keyword arguments). Returns ``{'history', 'classes', 'run_dir', 'final_val_acc'}``."""
    run = prepare(recipe, **kwargs)
    if run.world.size > 1:
        print(f"process {run.world.rank} of {run.world.size}, pid {os.getpid()}"
              + ("" if run.world.main else ": trains, writes nothing"), file=sys.stderr, flush=True)
    say(run.world, *run.notes,
        f"{run.recipe.model}: {len(run.trainable)} trainable tensors "
        f"({'classifier only' if run.recipe.freeze_layers else 'all'}), {len(run.classes)} classes, "
        f"{len(run.train_set)} train / {len(run.val_set)} val images, {run.world.size} process(es)")
    run_epochs(run, on_step)
    final = run.history[-1]["val_acc"] if run.history else float("nan")
    if run.history:
        epoch = run.history[-1]["epoch"]
        say(run.world, f"final val accuracy: {final:.3f} (epoch {epoch}, weights {run.run_dir / f'epoch-{epoch:03d}.pdparams'})")
    return dict(history=run.history, classes=list(run.classes), run_dir=str(run.run_dir), final_val_acc=final)
