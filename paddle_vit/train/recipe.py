"""The fine-tuning recipe of the EfficientNetV2 tutorial (seed 003) as data, framework-free.

Read by both trees (``paddle_vit.train.engine`` and ``torch_ref.train.engine``), so the two run
the same recipe from the same numbers: SGD with momentum 0.9 and weight decay 1e-4 on the
trainable parameters, a cosine ``LambdaLR`` stepped once per epoch from ``lr`` down to
``lr * lrf``, everything but the classifier frozen, RandomResizedCrop + horizontal flip for
training and resize + center crop for validation.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Sequence

import numpy as np

# Where each family's classifier lives (timm's names): the tensors that a new head replaces and
# that stay trainable when the rest is frozen. The seed freezes every parameter whose name has
# no "head"; ours are named by family, so the rule is a prefix per family.
CLASSIFIER: dict[str, str] = {"vit": "head.", "swin": "head.fc.", "swinv2": "head.fc.", "efficientnet": "classifier."}

# The seed's (train, val) image sizes for EfficientNetV2; other families train and validate at
# the model's own img_size (a ViT's position embedding fixes its input size).
SEED_SIZES: dict[str, tuple[int, int]] = {
    "efficientnetv2_s": (300, 384), "efficientnetv2_m": (384, 480), "efficientnetv2_l": (384, 480),
    "tf_efficientnetv2_s": (300, 384), "tf_efficientnetv2_m": (384, 480), "tf_efficientnetv2_l": (384, 480),
}

# Families whose position tables fix the input size: they train and validate at one size.
FIXED_INPUT = ("vit", "swin")
# A new classifier's initial values: the seed's Linear init (normal, std 0.01; zero bias), drawn
# from numpy with the run's seed so that both trees start the same head.
HEAD_INIT_STD = 0.01

SEED_MEAN = (0.5, 0.5, 0.5)   # the seed's Normalize([0.5]*3, [0.5]*3)
SEED_STD = (0.5, 0.5, 0.5)
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # every torchvision classification checkpoint
IMAGENET_STD = (0.229, 0.224, 0.225)


def cosine_factor(epoch: int, epochs: int, lrf: float) -> float:
    """The seed's ``lf``: ``((1 + cos(pi * epoch / epochs)) / 2) * (1 - lrf) + lrf`` (1 at epoch 0,
    ``lrf`` at ``epochs``); the learning rate of epoch ``e`` is ``lr * cosine_factor(e, ...)``."""
    return ((1.0 + math.cos(epoch * math.pi / epochs)) / 2.0) * (1.0 - lrf) + lrf


def new_head_value(key: str, torch_shape: Sequence[int], seed: int) -> np.ndarray:
    """Initial value of classifier tensor ``key`` (timm's name) in torch's layout (``[out, in]``
    for a weight): ``N(0, 0.01)`` for a weight, zeros for a bias; the same in every process and tree."""
    if key.endswith(".bias"):
        return np.zeros(tuple(torch_shape), np.float32)
    rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
    return (rng.standard_normal(tuple(torch_shape)) * HEAD_INIT_STD).astype(np.float32)


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The framework's global seed during one epoch of one process (dropout, drop path): a resumed
    run draws what an uninterrupted one would, and processes draw different masks."""
    return (seed * 1_000_003 + epoch * 1009 + rank) % (2 ** 31)


def classifier_prefix(family: str) -> str:
    try:
        return CLASSIFIER[family]
    except KeyError:
        raise ValueError(f"no classifier known for model family {family!r}; known: {sorted(CLASSIFIER)}") from None


def trainable(name: str, family: str, freeze_layers: bool) -> bool:
    """Whether parameter ``name`` is trained: all of them, or only the classifier's (the seed's default)."""
    return not freeze_layers or name.startswith(classifier_prefix(family))


@dataclass
class LoadReport:
    """What ``load_for_finetune`` did: the checkpoint's layout, how many tensors it loaded, and each
    dropped tensor as ``(model key, checkpoint key, checkpoint shape, model shape)``."""
    path: str
    source: str
    loaded: int = 0
    dropped: list[tuple[str, str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"loaded {self.loaded} tensors from {self.path} ({self.source} layout)"]
        for dst, src, have, want in self.dropped:
            out.append(f"dropped {src} {list(have)}: the new classifier {dst} needs {list(want)} "
                       "(trained from its initial value)")
        return out


@dataclass
class Recipe:
    """Everything a fine-tuning run depends on (the seed's defaults). ``paddle_vit.train.finetune``
    and ``torch_ref.train.finetune`` take the same fields as keyword arguments."""
    data: str
    model: str
    checkpoint: str | None = None
    num_classes: int | None = None
    out: str = "runs/finetune"
    epochs: int = 30
    batch_size: int = 8                 # per process
    lr: float = 0.01
    lrf: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    freeze_layers: bool = True
    img_size: int | None = None         # sets train_size and val_size at once
    train_size: int | None = None
    val_size: int | None = None
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None
    seed: int = 0
    amp: str | None = None              # None, 'bf16' or 'fp16' (GPU)
    resume: bool = False
    workers: int = 0
    source: str = "auto"
    overrides: dict[str, Any] = field(default_factory=dict)
    bad_images: str = "skip"            # 'skip' (named on stderr) or 'error'
    augment: bool = True
    device: str | None = None           # 'cpu', 'gpu' or None (GPU if there is one)
    progress: bool | None = None        # tqdm bar; None: only on a terminal
    stop_after: int | None = None       # end after this many epochs of this run (as if killed)

    def __post_init__(self) -> None:
        problems = []
        if self.epochs < 1:
            problems.append(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        if self.lr <= 0 or not 0 < self.lrf <= 1:
            problems.append(f"need lr > 0 and 0 < lrf <= 1, got lr={self.lr}, lrf={self.lrf}")
        if self.num_classes is not None and self.num_classes < 1:
            problems.append(f"num_classes must be >= 1, got {self.num_classes}")
        if self.amp not in (None, "bf16", "fp16"):
            problems.append(f"amp must be 'bf16' or 'fp16', got {self.amp!r}")
        if self.bad_images not in ("skip", "error"):
            problems.append(f"bad_images must be 'skip' or 'error', got {self.bad_images!r}")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is not None and (len(value) != 3 or (name == "std" and min(value) <= 0)):
                problems.append(f"{name} must be 3 numbers (std > 0), got {list(value)}")
        if problems:
            raise ValueError("bad fine-tuning recipe: " + "; ".join(problems))

    def sizes(self, family: str, model_img_size: int | Sequence[int] | None) -> tuple[int, int]:
        """``(train_size, val_size)``: explicit sizes first, then ``img_size``, then the seed's table,
        then the model's own size."""
        default = model_img_size if isinstance(model_img_size, int) else (model_img_size or [224])[0]
        seed_train, seed_val = SEED_SIZES.get(self.model, (default, default))
        train = self.train_size or self.img_size or seed_train
        val = self.val_size or self.img_size or seed_val
        return int(train), int(val)

    def normalization(self, source: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """``(mean, std)``: the caller's, else torchvision's ImageNet statistics for a torchvision
        checkpoint (all its classification weights use them), else the seed's 0.5 / 0.5."""
        known = (IMAGENET_MEAN, IMAGENET_STD) if source == "torchvision" else (SEED_MEAN, SEED_STD)
        return tuple(self.mean or known[0]), tuple(self.std or known[1])

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("mean", "std"):
            out[key] = None if out[key] is None else list(out[key])
        return out

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


# Fields that may change between a run and its resumption without changing what it computes.
RESUMABLE = {"resume", "workers", "progress", "stop_after", "device", "checkpoint", "out", "data", "bad_images"}
