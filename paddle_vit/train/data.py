"""Image folders, augmentations and batch order, framework-free (numpy + PIL).

Both trees read their batches from here, so Paddle and torch see the same arrays: every random
number of an augmentation is drawn from a generator seeded by ``(seed, epoch, sample index)``,
and the batch order from one seeded by ``(seed, epoch)``. Neither depends on the process, the
loader worker or the framework, so one process with batch ``2b`` and two with ``b`` each see the
same images in the same augmented form, and a resumed run sees what an uninterrupted one would.

Layout (torchvision's ``ImageFolder``): ``root/train/<class>/*.jpg`` and ``root/val/<class>/*.jpg``;
class index = position of the folder name in sorted order of ``train/``'s folders.
"""
from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
CROP_SCALE = (0.08, 1.0)        # torchvision RandomResizedCrop defaults
CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)
CROP_ATTEMPTS = 10


class DatasetError(ValueError):
    """A dataset directory that does not fit the expected layout; the message says what was expected."""


@dataclass(frozen=True)
class Split:
    """One split: its folder, the class names (index = position) and ``(path, class index)`` samples."""
    root: Path
    classes: tuple[str, ...]
    samples: tuple[tuple[Path, int], ...]
    skipped: tuple[tuple[Path, str], ...] = ()   # undecodable images and why


def _class_folders(root: Path) -> list[str]:
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder; expected <data>/train/<class>/... and <data>/val/<class>/...")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        files = sorted(p.name for p in root.iterdir() if not p.name.startswith("."))[:5]
        raise DatasetError(f"{root}: no class folders; expected one sub-folder of images per class"
                           + (f" (found only files: {', '.join(files)})" if files else " (the folder is empty)"))
    return folders


def check_image(path: Path) -> str | None:
    """``None`` if PIL decodes the whole image, else why not (one line)."""
    from PIL import Image
    try:
        with Image.open(path) as img:
            img.load()
        return None
    except Exception as exc:  # PIL raises many types for bad data (OSError, SyntaxError, ValueError, ...)
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else 'undecodable'}"


def scan_split(root: str | os.PathLike, classes: Sequence[str] | None = None, bad_images: str = "skip",
               check: bool = True) -> Split:
    """The images of one split. ``classes``: the training split's (``root``'s folders must be among
    them); ``bad_images``: ``'skip'`` (each named on stderr) or ``'error'``."""
    root = Path(root)
    folders = _class_folders(root)
    if classes is None:
        classes = folders
    else:
        extra = [f for f in folders if f not in classes]
        if extra:
            raise DatasetError(f"{root}: class folders {extra} are not in the training split's classes {list(classes)}")
    samples, skipped, empty = [], [], []
    for folder in folders:
        files = sorted(p for p in (root / folder).iterdir() if p.suffix.lower() in IMG_EXTENSIONS and p.is_file())
        kept = 0
        for path in files:
            why = check_image(path) if check else None
            if why is None:
                samples.append((path, classes.index(folder)))
                kept += 1
            elif bad_images == "error":
                raise DatasetError(f"cannot decode image {path}: {why} (pass --bad-images skip to leave it out)")
            else:
                skipped.append((path, why))
                print(f"skipping undecodable image {path}: {why}", file=sys.stderr)
        if not kept:
            empty.append(folder)
    if empty:
        raise DatasetError(f"{root}: class folder(s) {empty} hold no readable image ({', '.join(IMG_EXTENSIONS)})")
    return Split(root, tuple(classes), tuple(samples), tuple(skipped))


def scan_dataset(root: str | os.PathLike, bad_images: str = "skip", check: bool = True) -> tuple[Split, Split]:
    """``(train, val)`` of ``root/train`` and ``root/val``; the class list is train's."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset folder; expected <data>/train/<class>/ and <data>/val/<class>/")
    missing = [s for s in ("train", "val") if not (root / s).is_dir()]
    if missing:
        raise DatasetError(f"{root}: no {' or '.join(f'{m}/' for m in missing)} folder; expected "
                           "<data>/train/<class>/*.jpg and <data>/val/<class>/*.jpg (one folder per class)")
    train = scan_split(root / "train", None, bad_images, check)
    val = scan_split(root / "val", train.classes, bad_images, check)
    return train, val


# --- augmentations -------------------------------------------------------------------------
@dataclass(frozen=True)
class Crop:
    """A crop box ``(top, left, height, width)`` in pixels and whether to flip it horizontally."""
    top: int
    left: int
    height: int
    width: int
    flip: bool = False


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of one sample's augmentation in one epoch."""
    return np.random.default_rng([seed, epoch, index])


def random_resized_crop(rng: np.random.Generator, height: int, width: int,
                        scale: Sequence[float] = CROP_SCALE, ratio: Sequence[float] = CROP_RATIO) -> Crop:
    """torchvision's ``RandomResizedCrop.get_params`` rule with ``rng``'s numbers, plus a fair
    horizontal flip: up to 10 tries of an area fraction in ``scale`` and a log-uniform aspect
    ratio in ``ratio``; if none fits, the central crop of the clamped aspect ratio."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    flip = bool(rng.random() < 0.5)
    for _ in range(CROP_ATTEMPTS):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return Crop(int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w, flip)
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        w, h = int(round(height * max(ratio))), height
    else:
        w, h = width, height
    return Crop((height - h) // 2, (width - w) // 2, h, w, flip)


def to_array(img, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """RGB PIL image -> normalized float32 ``[3, H, W]`` (``ToTensor`` + ``Normalize``)."""
    x = np.asarray(img, dtype=np.float32) / 255.0
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def train_transform(img, crop: Crop, size: int, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Crop ``crop`` out of ``img``, resize it to ``size x size`` (PIL bilinear, antialiased as
    torchvision's on PIL images), flip if asked -> ``[3, size, size]``. Cropped first, as torchvision:
    PIL's ``resize(box=...)`` would let the filter read pixels beyond the box."""
    from PIL import Image
    box = (crop.left, crop.top, crop.left + crop.width, crop.top + crop.height)
    out = img.crop(box).resize((size, size), Image.BILINEAR)
    if crop.flip:
        out = out.transpose(Image.FLIP_LEFT_RIGHT)
    return to_array(out, mean, std)


def eval_transform(img, size: int, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Validation: shorter side resized to ``size`` (bilinear), central ``size x size`` crop,
    normalized -> ``[3, size, size]`` (the seed's ``Resize(size)`` + ``CenterCrop(size)``): timm's
    evaluation transform with ``crop_pct=1`` (``paddle_vit.data``)."""
    from paddle_vit.data import create_transform
    return create_transform(size, interpolation="bilinear", mean=mean, std=std, crop_pct=1.0,
                            crop_mode="center")(img)


def load_rgb(path: Path):
    from PIL import Image
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except Exception as exc:  # the file changed since it was scanned
        raise DatasetError(f"cannot decode image {path}: {type(exc).__name__}: {exc}") from None


class ImageFolderDataset:
    """Map-style dataset over a ``Split``: ``[i]`` -> ``(image float32 [3, size, size], label int64)``.

    ``train=True``: random resized crop + flip from ``sample_rng(seed, epoch, i)`` (call
    ``set_epoch`` before each epoch); ``augment=False`` gives the validation transform instead
    (for tests that must see unaugmented images)."""

    def __init__(self, split: Split, size: int, mean: Sequence[float], std: Sequence[float], train: bool,
                 seed: int = 0, augment: bool = True) -> None:
        self.split, self.size, self.mean, self.std = split, size, tuple(mean), tuple(std)
        self.train, self.seed, self.augment, self.epoch = train, seed, augment, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.split.samples)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.int64]:
        path, label = self.split.samples[int(index)]
        img = load_rgb(path)
        if self.train and self.augment:
            crop = random_resized_crop(sample_rng(self.seed, self.epoch, int(index)), img.height, img.width)
            x = train_transform(img, crop, self.size, self.mean, self.std)
        else:
            x = eval_transform(img, self.size, self.mean, self.std)
        return x, np.int64(label)


# --- batch order ---------------------------------------------------------------------------
def train_batches(num_samples: int, batch_size: int, epoch: int, seed: int, world_size: int = 1,
                  rank: int = 0, shuffle: bool = True) -> list[list[int]]:
    """This rank's batches of one epoch. The epoch's order is a permutation seeded by
    ``(seed, epoch)``; global batch ``k`` is ``order[k*G:(k+1)*G]`` with ``G = batch_size *
    world_size``, and rank ``r`` takes the ``r``-th of its ``world_size`` near-equal contiguous
    parts. So the union over ranks of step ``k``'s batches is the one-process batch of size ``G``.
    A last global batch too small to give every rank a sample is dropped."""
    order = np.random.default_rng([seed, epoch]).permutation(num_samples) if shuffle else np.arange(num_samples)
    global_batch = batch_size * world_size
    out = []
    for start in range(0, num_samples, global_batch):
        chunk = order[start:start + global_batch]
        if len(chunk) < world_size:
            break
        out.append([int(i) for i in np.array_split(chunk, world_size)[rank]])
    return out


def global_batch_sizes(num_samples: int, batch_size: int, world_size: int = 1) -> list[int]:
    """The size of every global batch ``train_batches`` makes (the same for every rank and epoch)."""
    sizes = [min(batch_size * world_size, num_samples - s) for s in range(0, num_samples, batch_size * world_size)]
    return [s for s in sizes if s >= world_size]


def eval_batches(num_samples: int, batch_size: int, world_size: int = 1, rank: int = 0) -> list[list[int]]:
    """This rank's validation batches: a contiguous near-equal share of the samples, in order."""
    share = np.array_split(np.arange(num_samples), world_size)[rank]
    return [[int(i) for i in share[s:s + batch_size]] for s in range(0, len(share), batch_size)]

