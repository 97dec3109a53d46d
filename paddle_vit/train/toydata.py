"""A tiny image-classification dataset drawn with numpy, for tests and the README's example.

Four classes of shapes (``disc``, ``square``, ``triangle``, ``stripes``), each a random size,
place and colour on a random background with noise (or, ``--kind textures``, four textures:
horizontal and vertical stripes, checks, dots, each of random period, phase and colours), in images of varying size (so the resize
and crop paths are exercised), written as PNG in the ``ImageFolder`` layout:

    python -m paddle_vit.train.toydata DIR [--train 24] [--val 8] [--seed 0] [--kind shapes|textures]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import numpy as np

CLASSES = ("disc", "square", "triangle", "stripes")
TEXTURES = ("hstripes", "vstripes", "checks", "dots")  # --kind textures: told apart by local statistics


def _mask(kind: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean ``[h, w]`` mask of one shape of ``kind``."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = rng.uniform(0.2, 0.38) * min(h, w)
    cy, cx = rng.uniform(r, h - r), rng.uniform(r, w - r)
    if kind == "disc":
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    if kind == "square":
        return (np.abs(yy - cy) <= r * 0.85) & (np.abs(xx - cx) <= r * 0.85)
    if kind == "triangle":  # apex up: inside when below the two slanted edges and above the base
        top, base = cy - r, cy + r * 0.8
        half = (yy - top) / (base - top) * r
        return (yy >= top) & (yy <= base) & (np.abs(xx - cx) <= half)
    if kind == "stripes":
        period = rng.uniform(4.0, 8.0)
        angle = rng.uniform(0, np.pi)
        return np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period) > 0
    period, phase = rng.uniform(5.0, 9.0), rng.uniform(0, 2 * np.pi)
    wave = lambda t: np.sin(t * 2 * np.pi / period + phase) > 0  # noqa: E731
    if kind == "hstripes":
        return wave(yy)
    if kind == "vstripes":
        return wave(xx)
    if kind == "checks":
        return wave(xx) ^ wave(yy)
    if kind == "dots":
        return (np.sin(xx * 2 * np.pi / period + phase) + np.sin(yy * 2 * np.pi / period + phase)) > 0.8
    raise ValueError(f"unknown shape {kind!r}; known: {CLASSES + TEXTURES}")


def draw(kind: str, rng: np.random.Generator) -> np.ndarray:
    """One ``uint8 [h, w, 3]`` image of class ``kind`` (h, w in 40..72)."""
    h, w = int(rng.integers(40, 73)), int(rng.integers(40, 73))
    bg, fg = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    while np.abs(fg - bg).sum() < 150:  # keep the shape visible
        fg = rng.uniform(0, 255, 3)
    mask = _mask(kind, h, w, rng)[..., None]
    img = np.where(mask, fg, bg) + rng.normal(0, 12, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def make_dataset(root: str | Path, train_per_class: int = 24, val_per_class: int = 8, seed: int = 0,
                 classes: tuple[str, ...] = CLASSES, save: Callable | None = None) -> Path:
    """Write ``root/{train,val}/<class>/<i>.png``; returns ``root``. Deterministic in ``seed``."""
    from PIL import Image
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for kind in classes:
            folder = root / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                Image.fromarray(draw(kind, rng)).save(folder / f"{i:03d}.png")
    return root


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m paddle_vit.train.toydata", description=__doc__.split("\n")[0])
    p.add_argument("root", help="folder to write (train/ and val/ inside)")
    p.add_argument("--train", type=int, default=24, help="training images per class (default 24)")
    p.add_argument("--val", type=int, default=8, help="validation images per class (default 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kind", choices=("shapes", "textures"), default="shapes",
                   help=f"shapes: {', '.join(CLASSES)}; textures: {', '.join(TEXTURES)}")
    args = p.parse_args(argv)
    root = make_dataset(args.root, args.train, args.val, args.seed, CLASSES if args.kind == "shapes" else TEXTURES)
    print(f"wrote {len(CLASSES)} classes x ({args.train} train + {args.val} val) images to {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
