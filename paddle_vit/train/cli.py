"""``paddle-vit finetune``: the seed's transfer-learning recipe on an image folder.

    paddle-vit finetune --data DIR --model NAME [--checkpoint FILE] [--num-classes N] [--epochs 30] ...

Data-parallel: ``python -m paddle.distributed.launch --nproc_per_node N $(which paddle-vit) finetune ...``
(or ``tools/finetune.py ...`` from a checkout). Bad input exits 2 with one message (see ``paddle_vit.cli``).
"""
from __future__ import annotations

import argparse
from typing import Any

from paddle_vit.train.recipe import Recipe


def _override(text: str) -> tuple[str, Any]:
    from paddle_vit.convert.cli import parse_override
    return parse_override(text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = Recipe(data="", model="")
    p.add_argument("--data", required=True, help="dataset folder: DATA/train/<class>/*.jpg and DATA/val/<class>/*.jpg")
    p.add_argument("--model", required=True, help="variant name, e.g. efficientnetv2_s (paddle-vit-convert --list-models)")
    p.add_argument("--checkpoint", help="weights to start from: a torch checkpoint (timm, torchvision, torch_ref), "
                   ".pdparams or .safetensors; a classifier of another size is dropped (and reported)")
    p.add_argument("--source", default="auto", help="layout of a torch checkpoint: auto, timm, torchvision, torch_ref")
    p.add_argument("--num-classes", type=int, help="must equal the number of class folders (default: that number)")
    p.add_argument("--out", default=d.out, help=f"run folder: checkpoints, curves.csv, curves.png (default {d.out})")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"(default {d.epochs})")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"per process (default {d.batch_size})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"initial learning rate (default {d.lr})")
    p.add_argument("--lrf", type=float, default=d.lrf,
                   help=f"final learning rate as a fraction of --lr, cosine schedule (default {d.lrf})")
    p.add_argument("--momentum", type=float, default=d.momentum, help=f"SGD momentum (default {d.momentum})")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay, help=f"(default {d.weight_decay})")
    p.add_argument("--freeze-layers", action=argparse.BooleanOptionalAction, default=d.freeze_layers,
                   help="train only the classifier (default); --no-freeze-layers trains every layer")
    p.add_argument("--img-size", type=int, help="train and val image size (default: the seed's 300/384 for "
                   "EfficientNetV2-S, 384/480 for M/L; the model's own size for ViT and Swin)")
    p.add_argument("--train-size", type=int, help="training crop size")
    p.add_argument("--val-size", type=int, help="validation resize + center-crop size")
    p.add_argument("--mean", type=float, nargs=3, help="normalization mean (default: ImageNet's for torchvision "
                   "checkpoints, else the seed's 0.5 0.5 0.5)")
    p.add_argument("--std", type=float, nargs=3, help="normalization std (default as --mean)")
    p.add_argument("--seed", type=int, default=d.seed, help="data order, augmentation and new-head seed (default 0)")
    p.add_argument("--amp", choices=("bf16", "fp16"), help="mixed precision (GPU only)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last complete epoch")
    p.add_argument("--workers", type=int, default=d.workers, help="data loader worker processes (default 0)")
    p.add_argument("--override", action="append", type=_override, default=[], metavar="KEY=VALUE",
                   help="any constructor argument of the variant, e.g. --override drop_rate=0.0 (repeatable)")
    p.add_argument("--bad-images", choices=("skip", "error"), default=d.bad_images,
                   help="an image that cannot be decoded: skip it (named on stderr, default) or stop")
    p.add_argument("--no-augment", action="store_true", help="train on the validation transform (no random crop or flip)")
    p.add_argument("--device", choices=("cpu", "gpu"), help="default: the GPU if Paddle sees one")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (it shows only on a terminal anyway)")


def recipe_from(args: argparse.Namespace) -> Recipe:
    return Recipe(data=args.data, model=args.model, checkpoint=args.checkpoint, num_classes=args.num_classes,
                  out=args.out, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, lrf=args.lrf,
                  momentum=args.momentum, weight_decay=args.weight_decay, freeze_layers=args.freeze_layers,
                  img_size=args.img_size, train_size=args.train_size, val_size=args.val_size, mean=args.mean,
                  std=args.std, seed=args.seed, amp=args.amp, resume=args.resume, workers=args.workers,
                  source=args.source, overrides=dict(args.override), bad_images=args.bad_images,
                  augment=not args.no_augment, device=args.device, progress=False if args.no_progress else None)


def run(args: argparse.Namespace) -> int:
    recipe = recipe_from(args)
    from paddle_vit.train.engine import finetune
    finetune(recipe)
    return 0
