"""The curves of a run: one row per epoch, written as CSV and drawn as PNG (framework-free).

Both files are rewritten whole from the committed history after each epoch (atomically), so
after a resume they hold exactly the epochs the checkpoint holds.
"""
from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Mapping, Sequence

from paddle_vit.convert.io import atomic_output

COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr")


def format_row(row: Mapping[str, float]) -> str:
    return (f"epoch {row['epoch']:3d}  lr {row['lr']:.5f}  train loss {row['train_loss']:.4f} acc {row['train_acc']:.3f}"
            f"  val loss {row['val_loss']:.4f} acc {row['val_acc']:.3f}")


def write_csv(history: Sequence[Mapping[str, float]], dst: str | Path) -> None:
    """``history`` (rows with ``COLUMNS``) as CSV; ``lr`` is the learning rate the epoch trained with."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    with atomic_output(dst, force=True) as tmp:
        tmp.write_text(buf.getvalue())


def read_csv(path: str | Path) -> list[dict[str, float]]:
    with open(path, newline="") as f:
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()} for row in csv.DictReader(f)]


_warned = False


def write_plot(history: Sequence[Mapping[str, float]], dst: str | Path, title: str = "") -> bool:
    """Loss, accuracy and learning rate per epoch as a PNG; ``False`` (with one note on stderr)
    if matplotlib is not installed (``pip install paddle_vit[plot]``)."""
    global _warned
    try:
        import matplotlib
        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        if not _warned:
            print("matplotlib is not installed: no curves.png (pip install matplotlib)", file=sys.stderr)
            _warned = True
        return False
    epochs = [r["epoch"] for r in history]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), dpi=80)
    for split, style in (("train", "-o"), ("val", "-s")):
        axes[0].plot(epochs, [r[f"{split}_loss"] for r in history], style, label=split, ms=3)
        axes[1].plot(epochs, [r[f"{split}_acc"] for r in history], style, label=split, ms=3)
    axes[2].plot(epochs, [r["lr"] for r in history], "-o", ms=3, color="tab:green")
    for ax, label in zip(axes, ("cross-entropy", "accuracy", "learning rate")):
        ax.set_xlabel("epoch")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    axes[0].legend()
    axes[1].set_ylim(0, 1.02)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_output(dst, force=True) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return True
