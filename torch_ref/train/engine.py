"""Fine-tuning in torch (mirror of ``paddle_vit.train.engine``): the same recipe, the same batches
(``paddle_vit.train.data``), the same run folder, one process."""
from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from paddle_vit.train.curves import format_row, write_csv, write_plot
from paddle_vit.train.data import (DatasetError, ImageFolderDataset, eval_batches, global_batch_sizes, scan_dataset,
                                   train_batches)
from paddle_vit.train.recipe import FIXED_INPUT, Recipe, cosine_factor, epoch_seed, trainable
from paddle_vit.train.runs import CheckpointError, check_resumable, remove_leftovers
from paddle_vit.variants import model_kwargs
from torch_ref.registry import create_model
from torch_ref.train import checkpoint as ckpt
from torch_ref.train.pretrained import load_for_finetune

FRAMEWORK = "torch"
StepHook = Callable[[int, int, float, nn.Module], None]  # (epoch, step in epoch, loss, model)


@dataclass(frozen=True)
class World:
    """One process (the torch twin does not run data-parallel)."""
    size: int = 1
    rank: int = 0
    main: bool = True


class EpochBatchSampler(torch.utils.data.Sampler):
    """The batches of ``data.train_batches`` / ``data.eval_batches``, as the Paddle sampler."""

    def __init__(self, dataset: ImageFolderDataset, batch_size: int, world: World, seed: int, train: bool) -> None:
        self.dataset, self.batch_size, self.world, self.seed, self.train, self.epoch = (
            dataset, batch_size, world, seed, train, 0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        if self.train:
            return train_batches(len(self.dataset), self.batch_size, self.epoch, self.seed, self.world.size,
                                 self.world.rank)
        return eval_batches(len(self.dataset), self.batch_size, self.world.size, self.world.rank)

    def __iter__(self):
        return iter(self.batches())

    def __len__(self) -> int:
        return len(self.batches())


@dataclass
class Run:
    recipe: Recipe
    world: World
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    train_set: ImageFolderDataset
    val_set: ImageFolderDataset
    classes: tuple[str, ...]
    trainable: list[str]
    normalization: tuple[tuple[float, ...], tuple[float, ...]]
    device: str = "cpu"
    start_epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    scaler: Any = None

    @property
    def run_dir(self) -> Path:
        return Path(self.recipe.out)


def say(world: World, *lines: str) -> None:
    for line in lines:
        print(line, flush=True)


def set_device(recipe: Recipe, world: World) -> str:
    device = recipe.device or ("gpu" if torch.cuda.is_available() else "cpu")
    if device == "gpu" and not torch.cuda.is_available():
        raise ValueError("--device gpu: torch sees no GPU")
    if recipe.amp and device != "gpu":
        raise ValueError(f"--amp {recipe.amp} needs a GPU (mixed precision runs on GPUs only here); drop --amp on CPU")
    return "cuda" if device == "gpu" else "cpu"


def build_model(recipe: Recipe, num_classes: int) -> tuple[nn.Module, int, int]:
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
    except TypeError as exc:
        raise ValueError(f"cannot build {recipe.model!r} with overrides {recipe.overrides}: {exc}") from None
    return model, train_size, val_size


def freeze(model: nn.Module, recipe: Recipe) -> list[str]:
    names = []
    for name, p in model.named_parameters():
        if trainable(name, model.family, recipe.freeze_layers):
            names.append(name)
        else:
            p.requires_grad_(False)
    if not names:
        raise ValueError(f"nothing to train in {recipe.model}: no parameter is left trainable")
    return names


def build_optimizer(model: nn.Module, names: Sequence[str], recipe: Recipe
                    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    params = dict(model.named_parameters())
    optimizer = torch.optim.SGD([params[n] for n in names], lr=recipe.lr, momentum=recipe.momentum,
                                weight_decay=recipe.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: cosine_factor(e, recipe.epochs, recipe.lrf))
    return optimizer, scheduler


def prepare(recipe: Recipe | None = None, **kwargs: Any) -> Run:
    recipe = recipe or Recipe(**kwargs)
    world = World()
    device = set_device(recipe, world)
    train_split, val_split = scan_dataset(recipe.data, recipe.bad_images)
    classes = train_split.classes
    if recipe.num_classes is not None and recipe.num_classes != len(classes):
        raise DatasetError(f"--num-classes {recipe.num_classes} but {train_split.root} has {len(classes)} class "
                           f"folders: {', '.join(classes)}")
    torch.manual_seed(recipe.seed)
    model, train_size, val_size = build_model(recipe, len(classes))
    resume = ckpt.load_last(recipe.out)
    if resume is not None and not recipe.resume:
        raise CheckpointError(f"{recipe.out} already holds a run (epoch {resume.record['epoch']} committed); "
                              "pass --resume to continue it, or another --out")
    notes, source = [], "torch_ref"
    if resume is None and recipe.checkpoint:
        report = load_for_finetune(model, recipe.checkpoint, recipe.source, recipe.seed)
        notes += report.lines()
    elif resume is None:
        notes.append("no --checkpoint: training from the model's initial weights")
    mean, std = recipe.normalization(source) if resume is None else tuple(map(tuple, resume.record["normalization"]))
    names = freeze(model, recipe)
    model.to(device)
    optimizer, scheduler = build_optimizer(model, names, recipe)
    run = Run(recipe, world, model, optimizer, scheduler,
              ImageFolderDataset(train_split, train_size, mean, std, train=True, seed=recipe.seed, augment=recipe.augment),
              ImageFolderDataset(val_split, val_size, mean, std, train=False),
              classes, names, (mean, std), device, notes=notes)
    if resume is not None:
        check_resumable(resume.record, recipe.as_dict(), list(classes), FRAMEWORK, world.size, recipe.out)
        ckpt.restore(resume, model, optimizer, scheduler)
        run.start_epoch, run.history = int(resume.record["epoch"]), list(resume.record["history"])
        notes.append(f"resumed {recipe.out} after epoch {run.start_epoch}")
    if recipe.amp == "fp16":
        run.scaler = torch.amp.GradScaler("cuda", init_scale=2.0 ** 16)
    return run


def loader(dataset: ImageFolderDataset, sampler: EpochBatchSampler, workers: int) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(dataset, batch_sampler=sampler, num_workers=workers)


def _amp(recipe: Recipe):
    if recipe.amp is None:
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype={"bf16": torch.bfloat16, "fp16": torch.float16}[recipe.amp])


def train_step(net: nn.Module, run: Run, x: torch.Tensor, y: torch.Tensor, weight: float) -> tuple[float, int]:
    x, y = x.to(run.device), y.to(run.device)
    with _amp(run.recipe):
        logits = net(x)
        loss = F.cross_entropy(logits.float(), y)
    scaled = loss * weight if weight != 1.0 else loss
    if run.scaler is not None:
        run.scaler.scale(scaled).backward()
        run.scaler.step(run.optimizer)
        run.scaler.update()
    else:
        scaled.backward()
        run.optimizer.step()
    run.optimizer.zero_grad()
    return loss.item(), int((logits.argmax(dim=-1) == y).sum())


def _progress(run: Run, items, desc: str):
    show = run.recipe.progress if run.recipe.progress is not None else sys.stderr.isatty()
    if not show:
        return items
    from tqdm import tqdm
    return tqdm(items, desc=desc, leave=False, file=sys.stderr, unit="batch")


def train_one_epoch(net: nn.Module, run: Run, epoch: int, on_step: StepHook | None = None) -> tuple[float, float]:
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
    return loss_sum / count, correct / count


@torch.no_grad()
def evaluate(run: Run) -> tuple[float, float]:
    run.model.eval()
    sampler = EpochBatchSampler(run.val_set, run.recipe.batch_size, run.world, run.recipe.seed, train=False)
    loss_sum = correct = count = 0.0
    for x, y in _progress(run, loader(run.val_set, sampler, run.recipe.workers), "val"):
        x, y = x.to(run.device), y.to(run.device)
        logits = run.model(x).float()
        loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(dim=-1) == y).sum())
        count += int(y.shape[0])
    return loss_sum / max(count, 1), correct / max(count, 1)


def record_meta(run: Run) -> dict[str, Any]:
    return dict(framework=FRAMEWORK, writer=dict(rank=0, pid=os.getpid(), processes=1), model=run.recipe.model,
                classes=list(run.classes), recipe=run.recipe.as_dict(),
                normalization=[list(run.normalization[0]), list(run.normalization[1])], history=run.history,
                trainable=run.trainable)


def run_epochs(run: Run, on_step: StepHook | None = None) -> Run:
    recipe = run.recipe
    run.run_dir.mkdir(parents=True, exist_ok=True)
    remove_leftovers(run.run_dir)
    last = recipe.epochs if recipe.stop_after is None else min(recipe.epochs, run.start_epoch + recipe.stop_after)
    for epoch in range(run.start_epoch, last):
        t0 = time.perf_counter()
        torch.manual_seed(epoch_seed(recipe.seed, epoch, run.world.rank))
        lr = run.optimizer.param_groups[0]["lr"]
        train_loss, train_acc = train_one_epoch(run.model, run, epoch, on_step)
        run.scheduler.step()
        val_loss, val_acc = evaluate(run)
        row = dict(epoch=epoch + 1, train_loss=train_loss, train_acc=train_acc, val_loss=val_loss, val_acc=val_acc, lr=lr)
        run.history.append(row)
        ckpt.save_epoch(run.run_dir, epoch + 1, run.model, run.optimizer, run.scheduler, record_meta(run))
        write_csv(run.history, run.run_dir / "curves.csv")
        write_plot(run.history, run.run_dir / "curves.png", f"{recipe.model} on {Path(recipe.data).name} (torch)")
        print(f"{format_row(row)}  ({time.perf_counter() - t0:.1f}s)", flush=True)
    return run


def finetune(recipe: Recipe | None = None, on_step: StepHook | None = None, **kwargs: Any) -> dict[str, Any]:
    run = prepare(recipe, **kwargs)
    say(run.world, *run.notes, f"{run.recipe.model} (torch): {len(run.trainable)} trainable tensors, "
                               f"{len(run.classes)} classes, {len(run.train_set)} train / {len(run.val_set)} val images")
    run_epochs(run, on_step)
    final = run.history[-1]["val_acc"] if run.history else float("nan")
    if run.history:
        say(run.world, f"final val accuracy: {final:.3f} (epoch {run.history[-1]['epoch']})")
    return dict(history=run.history, classes=list(run.classes), run_dir=str(run.run_dir), final_val_acc=final)
