"""Data-parallel fine-tuning on paddle.distributed: two CPU processes (gloo) launched with
``python -m paddle.distributed.launch --nproc_per_node 2 --devices ""`` on the very command users
run, against one process with the doubled batch.

The model is a ViT: LayerNorm normalises each sample on its own, so splitting a batch over
processes changes no activation, and the averaged gradient equals the doubled batch's. A
BatchNorm network would not be equal: in training each process normalises with its own half
batch's statistics (no SyncBatchNorm), which is a different function of the batch."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import paddle_vit.train.engine as PE
from paddle_vit.convert.io import read_pdparams
from paddle_vit.parity import assert_close, tolerance
from paddle_vit.train.runs import read_pointer
from train_helpers import IMG, VIT, recipe_kwargs, torch_checkpoint, toy_dataset

REPO = Path(__file__).resolve().parents[1]
LAUNCH_TIMEOUT = 240


def _launch(tmp_path: Path, args: list[str]) -> subprocess.CompletedProcess:
    log_dir = tmp_path / "launch_log"
    cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--devices", "",
           "--log_dir", str(log_dir), str(REPO / "tools" / "finetune.py"), *args]
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=LAUNCH_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher and both workers
        out, _ = proc.communicate()
        pytest.fail(f"the 2-process launch did not finish in {LAUNCH_TIMEOUT}s:\n{out.decode()[-3000:]}")
    logs = {r: (log_dir / f"workerlog.{r}").read_text() for r in (0, 1) if (log_dir / f"workerlog.{r}").exists()}
    assert proc.returncode == 0, f"launch failed ({proc.returncode}):\n{out.decode()[-2000:]}\n" + "\n".join(
        f"--- workerlog.{r}\n{text[-2000:]}" for r, text in logs.items())
    return subprocess.CompletedProcess(cmd, proc.returncode, out.decode(), logs)


def test_two_processes_equal_one_with_the_doubled_batch(tmp_path):
    data = toy_dataset(tmp_path / "shapes")
    ckpt = torch_checkpoint(tmp_path / "vit.pth", VIT)
    args = ["--data", str(data), "--model", VIT[0], "--checkpoint", str(ckpt), "--out", str(tmp_path / "two"),
            "--epochs", "2", "--batch-size", "8", "--img-size", str(IMG), "--lr", "0.05", "--no-freeze-layers",
            "--no-progress", *[f"--override={k}={v}" for k, v in VIT[1].items()]]
    launched = _launch(tmp_path, args)
    one = PE.finetune(**recipe_kwargs(data, tmp_path / "one", VIT, ckpt, batch_size=16, lr=0.05, freeze_layers=False))

    tol = tolerance("model")
    for epoch in (1, 2):
        a, b = read_pdparams(tmp_path / "one" / f"epoch-{epoch:03d}.pdparams"), read_pdparams(
            tmp_path / "two" / f"epoch-{epoch:03d}.pdparams")
        assert a.keys() == b.keys()
        for key in a:
            assert_close(a[key], b[key], tol, f"{key} after epoch {epoch}: 2 processes x 8 vs 1 x 16")
    two = read_pointer(tmp_path / "two")
    for row_one, row_two in zip(one["history"], two["history"]):
        for key in ("train_loss", "val_loss"):
            assert_close(row_one[key], row_two[key], tol, f"{key} of epoch {row_one['epoch']}")
        assert row_one["lr"] == row_two["lr"]

    # Only rank 0 writes: one set of files, its pid in the record, rank 1's log silent.
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [
        "curves.csv", "curves.png", "epoch-001.pdparams", "epoch-002.pdopt", "epoch-002.pdparams", "last.json"]
    pids = {r: int(re.search(rf"process {r} of 2, pid (\d+)", launched.stderr[r]).group(1)) for r in (0, 1)}
    assert two["writer"] == {"rank": 0, "pid": pids[0], "processes": 2}
    assert "epoch   2" in launched.stderr[0] and "final val accuracy" in launched.stderr[0]
    assert "trains, writes nothing" in launched.stderr[1]
    assert not re.search(r"epoch +\d|final val accuracy|loaded \d+ tensors", launched.stderr[1]), launched.stderr[1][-1500:]
    assert len(np.unique([pids[0], pids[1]])) == 2
