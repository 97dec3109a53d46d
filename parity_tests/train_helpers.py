"""Shared by the fine-tuning tests: a tiny image folder, tiny models, a torch checkpoint with random
(non-trivial) weights, and a step hook that snapshots a model's whole state after every step."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

import torch_ref
from paddle_vit.train.toydata import make_dataset
from torch_ref.random_weights import randomize_

IMG = 32
# (variant, overrides), stochastic parts off: every EfficientNetV2 block kind (BatchNorm everywhere), a ViT
# and a Swin (LayerNorm only).
EFFNET = ("efficientnetv2_s", dict(channel_multiplier=0.25, depth_multiplier=0.25, num_features=64,
                                   drop_rate=0.0, drop_path_rate=0.0))
VIT = ("vit_tiny_patch16_224", dict(patch_size=8, depth=2, embed_dim=48, num_heads=3))
SWIN = ("swin_tiny_patch4_window7_224", dict(window_size=4, embed_dim=16, depths=(1, 1), num_heads=(2, 4),
                                            drop_path_rate=0.0))  # shifted windows in stage 1, 4x4 map in stage 2


def toy_dataset(root: Path, train: int = 12, val: int = 4) -> Path:
    """4 classes x ``train`` + ``val`` images (PNG, 40..72 px)."""
    return make_dataset(root, train, val, seed=0)


def torch_checkpoint(path: Path, model: tuple[str, dict], num_classes: int = 1000, seed: int = 0) -> Path:
    """A torch_ref checkpoint of ``model`` at ``IMG`` px with random weights and BatchNorm statistics
    (EFFNET: timm scales num_features by the channel multiplier too, so its head is 16 wide)."""
    name, overrides = model
    torch.manual_seed(seed)
    tm = randomize_(torch_ref.create_model(name, num_classes=num_classes, img_size=IMG, **overrides), seed)
    torch.save(tm.state_dict(), path)
    return path


def recipe_kwargs(data: Path, out: Path, model: tuple[str, dict], checkpoint: Path | None, **extra: Any) -> dict:
    """``Recipe`` fields of a tiny run (2 epochs of 6 steps of 8 images at 32 px), ``extra`` on top."""
    kwargs = dict(data=str(data), model=model[0], overrides=dict(model[1]), out=str(out), epochs=2, batch_size=8,
                  checkpoint=str(checkpoint) if checkpoint else None, img_size=IMG, progress=False)
    return {**kwargs, **extra}


class Snapshots:
    """``on_step`` hook: the loss and a copy of every state tensor (numpy) after each step."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.states: list[dict[str, np.ndarray]] = []

    def __call__(self, epoch: int, step: int, loss: float, model: Any) -> None:
        self.losses.append(loss)
        self.states.append({k: np.array(v.detach().cpu().numpy() if hasattr(v, "detach") else v.numpy())
                            for k, v in model.state_dict().items()})
