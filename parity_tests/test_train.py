"""Fine-tuning (``paddle_vit.train``, seed 003's recipe): N steps of Paddle against the torch twin
from the same converted weights, the schedule, the data pipeline against torchvision, checkpoints
that survive a kill, and bad input. (Data-parallel: test_train_distributed.py.)"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import paddle
import pytest
import torch

import paddle_vit.train.engine as PE
import torch_ref.train.engine as TE
from paddle_vit.cli import main as cli_main
from paddle_vit.convert import ConversionError, plan_for
from paddle_vit.convert.io import read_pdparams
from paddle_vit.parity import assert_close, tolerance
from paddle_vit.train import data as D
from paddle_vit.train.curves import read_csv
from paddle_vit.train.recipe import Recipe, classifier_prefix, cosine_factor
from paddle_vit.train.runs import CheckpointError, read_pointer
from train_helpers import EFFNET, IMG, SWIN, VIT, Snapshots, recipe_kwargs, torch_checkpoint, toy_dataset

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return toy_dataset(tmp_path_factory.mktemp("data") / "shapes")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ckpt")
    return {name: torch_checkpoint(root / f"{name}.pth", model)
            for name, model in (("effnet", EFFNET), ("vit", VIT), ("swin", SWIN))}


# --- the recipe and the schedule ---------------------------------------------------------
@pytest.mark.filterwarnings("ignore:Detected call of")
def test_cosine_schedule_is_the_seeds_in_both_frameworks():
    """lr(e) = lr * (((1 + cos(pi e / E)) / 2) * (1 - lrf) + lrf), stepped per epoch, in torch's
    LambdaLR and in Paddle's LambdaDecay as our optimizers are built."""
    recipe = Recipe(data="", model="vit_tiny_patch16_224", epochs=7, lr=0.01, lrf=0.01)
    assert cosine_factor(0, 7, 0.01) == 1.0 and cosine_factor(7, 7, 0.01) == pytest.approx(0.01)
    tm, pm = torch.nn.Linear(2, 2), paddle.nn.Linear(2, 2)
    t_opt, t_sched = TE.build_optimizer(tm, ["weight", "bias"], recipe)
    p_opt, p_sched = PE.build_optimizer(pm, ["weight", "bias"], recipe)
    for epoch in range(8):
        want = 0.01 * ((1 + math.cos(math.pi * epoch / 7)) / 2 * 0.99 + 0.01)
        assert t_opt.param_groups[0]["lr"] == pytest.approx(want, rel=1e-12)
        assert p_opt.get_lr() == pytest.approx(want, rel=1e-12)
        t_sched.step()
        p_sched.step()
    assert t_opt.defaults["momentum"] == 0.9 and t_opt.defaults["weight_decay"] == 1e-4


@pytest.mark.filterwarnings("ignore:Detected call of")
def test_optimizer_update_is_torchs():
    """Three steps of the recipe's optimizers on one Linear with a large weight decay (so that a
    missing or decoupled decay, a wrong momentum or lr shows far above rounding)."""
    recipe = Recipe(data="", model="vit_tiny_patch16_224", epochs=3, lr=0.1, weight_decay=0.1)
    tm, pm = torch.nn.Linear(5, 3), paddle.nn.Linear(5, 3)
    pm.weight.set_value(tm.weight.detach().numpy().T)
    pm.bias.set_value(tm.bias.detach().numpy())
    t_opt, t_sched = TE.build_optimizer(tm, ["weight", "bias"], recipe)
    p_opt, p_sched = PE.build_optimizer(pm, ["weight", "bias"], recipe)
    x = np.random.default_rng(0).standard_normal([4, 5]).astype(np.float32)
    for _ in range(3):
        (tm(torch.tensor(x)) ** 2).sum().backward()
        (pm(paddle.to_tensor(x)) ** 2).sum().backward()
        t_opt.step(), p_opt.step()
        t_opt.zero_grad(), p_opt.clear_grad()
        t_sched.step(), p_sched.step()
    assert_close(tm.weight.detach().numpy().T, pm.weight, tolerance("layer"), "weight after 3 steps")
    assert_close(tm.bias, pm.bias, tolerance("layer"), "bias after 3 steps")


# --- the data pipeline ----------------------------------------------------------------------
@pytest.mark.parametrize("n,batch,world", [(48, 8, 2), (50, 8, 2), (37, 4, 3), (9, 4, 1), (5, 4, 2)])
def test_batches_split_one_process_batches(n, batch, world):
    """Step k of ``world`` processes with ``batch`` each sees exactly the one-process batch k of
    ``world * batch`` samples: the claim the data-parallel test rests on."""
    for epoch in (0, 3):
        one = D.train_batches(n, batch * world, epoch, seed=5)
        parts = [D.train_batches(n, batch, epoch, seed=5, world_size=world, rank=r) for r in range(world)]
        assert all(len(p) == len(parts[0]) for p in parts)  # every process takes the same number of steps
        for k, global_batch in enumerate(one[:len(parts[0])]):
            assert sorted(sum((p[k] for p in parts), [])) == sorted(global_batch)
        assert [len(b) for b in one[:len(parts[0])]] == D.global_batch_sizes(n, batch, world)
    assert D.train_batches(n, batch, 0, 5) != D.train_batches(n, batch, 1, 5)  # a new order each epoch


def test_train_transform_is_torchvisions(dataset):
    """Our crop + resize + flip and our eval resize + center crop give torchvision's arrays exactly
    (the seed's transforms, on PIL images), for crops from our random_resized_crop."""
    tvf = pytest.importorskip("torchvision.transforms.functional", reason="torchvision not installed")
    from torchvision import transforms as T
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.3, 0.4)
    for k, (path, _) in enumerate(D.scan_split(dataset / "train").samples[::7]):
        img = D.load_rgb(path)
        crop = D.random_resized_crop(D.sample_rng(0, 1, k), img.height, img.width)
        assert 0 <= crop.top and crop.top + crop.height <= img.height and 0 <= crop.left
        assert crop.left + crop.width <= img.width
        ref = tvf.resized_crop(img, crop.top, crop.left, crop.height, crop.width, [24, 24],
                               interpolation=T.InterpolationMode.BILINEAR)
        ref = tvf.hflip(ref) if crop.flip else ref
        ref = tvf.normalize(tvf.to_tensor(ref), mean, std).numpy()
        np.testing.assert_allclose(D.train_transform(img, crop, 24, mean, std), ref, rtol=0, atol=1e-6)
        ref_val = T.Compose([T.Resize(28), T.CenterCrop(28), T.ToTensor(), T.Normalize(mean, std)])(img).numpy()
        np.testing.assert_allclose(D.eval_transform(img, 28, mean, std), ref_val, rtol=0, atol=1e-6)


def test_both_loaders_yield_the_same_batches(dataset):
    """Paddle's DataLoader and torch's, over the same dataset and sampler order: equal arrays."""
    run = PE.prepare(**recipe_kwargs(dataset, dataset.parent / "unused", VIT, None))
    run.train_set.set_epoch(1)
    world = PE.distributed.World()
    p_sampler = PE.EpochBatchSampler(run.train_set, 8, world, 0, train=True)
    p_sampler.set_epoch(1)
    t_sampler = TE.EpochBatchSampler(run.train_set, 8, TE.World(), 0, train=True)
    t_sampler.set_epoch(1)
    pairs = list(zip(PE.loader(run.train_set, p_sampler, 2), TE.loader(run.train_set, t_sampler, 0)))  # 2 workers
    assert len(pairs) == 6
    for (px, py), (tx, ty) in pairs:
        assert np.array_equal(px.numpy(), tx.numpy()) and np.array_equal(py.numpy(), ty.numpy())
        assert list(px.shape) == [8, 3, IMG, IMG] and str(px.dtype) == "paddle.float32"


# --- N steps of the recipe in both frameworks ------------------------------------------------
@pytest.mark.parametrize("model,freeze", [(EFFNET, True), (VIT, False), (SWIN, False)],
                         ids=["effnet-frozen", "vit-all-layers", "swin-all-layers"])
def test_steps_match_torch(dataset, checkpoints, tmp_path, model, freeze):
    """The recipe's 12 steps (2 epochs x 6) in Paddle and in torch_ref, each on its own trajectory
    from the same checkpoint (torch -> converter -> Paddle) and the same batches (augmented by the
    same random numbers): the loss at every step, every weight and BatchNorm statistic after every
    step, and the learning rate of each epoch, within the model row. Measured worst after 12 steps:
    4.3e-6 (EfficientNetV2, classifier only, BatchNorm statistics updating), 7e-7 (ViT, all layers).
    Frozen parameters stay bit-identical to the checkpoint on both sides."""
    ckpt = checkpoints[{EFFNET[0]: "effnet", VIT[0]: "vit", SWIN[0]: "swin"}[model[0]]]
    snaps = {"paddle": Snapshots(), "torch": Snapshots()}
    results = {}
    for tree, engine in (("paddle", PE), ("torch", TE)):
        results[tree] = engine.finetune(on_step=snaps[tree], lr=0.05, freeze_layers=freeze,
                                        **recipe_kwargs(dataset, tmp_path / tree, model, ckpt))
    tol = tolerance("model")
    t_model = TE.build_model(Recipe(data="", model=model[0], overrides=model[1], img_size=IMG), 4)[0]
    p_model = PE.build_model(Recipe(data="", model=model[0], overrides=model[1], img_size=IMG), 4)[0]
    routes = plan_for(t_model.state_dict(), p_model, "torch_ref")
    trained = {r.src for r in routes if r.src.startswith(classifier_prefix(p_model.family)) or not freeze}
    p_snaps, t_snaps = snaps["paddle"], snaps["torch"]
    assert len(p_snaps.losses) == len(t_snaps.losses) == 12
    start = torch.load(ckpt, weights_only=True)
    for step in range(12):
        assert_close(t_snaps.losses[step], p_snaps.losses[step], tol, f"loss at step {step}")
        for r in routes:
            ref = t_snaps.states[step][r.src]
            assert_close(ref.T if r.transform == "linear" else ref, p_snaps.states[step][r.dst], tol,
                         f"{r.src} after step {step}")
    moved = set()
    for r in routes:
        before, t_after, p_after = start[r.src].numpy(), t_snaps.states[-1][r.src], p_snaps.states[-1][r.dst]
        if r.src in trained or "running_" in r.src:
            moved.add(r.src)
            continue
        assert np.array_equal(before, t_after), f"frozen {r.src} changed in torch"
        assert np.array_equal(before.T if r.transform == "linear" else before, p_after), f"frozen {r.src} changed in Paddle"
    assert moved, "nothing was trained"
    for p_row, t_row in zip(results["paddle"]["history"], results["torch"]["history"]):
        assert p_row["lr"] == t_row["lr"] == pytest.approx(0.05 * cosine_factor(p_row["epoch"] - 1, 2, 0.01))
        assert_close(t_row["val_loss"], p_row["val_loss"], tol, f"val loss of epoch {p_row['epoch']}")


# --- what a run writes, and resuming ---------------------------------------------------------
def test_run_folder_and_report(dataset, checkpoints, tmp_path, capsys):
    out = tmp_path / "run"
    result = PE.finetune(**recipe_kwargs(dataset, out, EFFNET, checkpoints["effnet"]))
    printed = capsys.readouterr().out
    assert "dropped classifier.weight [1000, 16]: the new classifier classifier.weight needs [4, 16]" in printed
    assert "dropped classifier.bias [1000]" in printed and "final val accuracy:" in printed
    names = sorted(p.name for p in out.iterdir())
    assert names == ["curves.csv", "curves.png", "epoch-001.pdparams", "epoch-002.pdopt", "epoch-002.pdparams", "last.json"]
    rows = read_csv(out / "curves.csv")
    assert [r["epoch"] for r in rows] == [1, 2] and rows == [{k: r[k] for k in rows[0]} for r in result["history"]]
    record = read_pointer(out)
    assert record["epoch"] == 2 and record["classes"] == ["disc", "square", "stripes", "triangle"]
    assert record["trainable"] == ["classifier.weight", "classifier.bias"]
    weights = read_pdparams(out / "epoch-002.pdparams")
    assert paddle.load(str(out / "epoch-002.pdparams")).keys() == weights.keys()  # Paddle's own reader too
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _weights(path: Path) -> dict[str, np.ndarray]:
    return read_pdparams(path)


@pytest.mark.parametrize("tree", ["paddle", "torch"])
def test_resume_continues_exactly(dataset, checkpoints, tmp_path, tree):
    """Stopped after epoch 1 and resumed (a new model and optimizer; in Paddle, other global
    parameter names), the run ends with the bits of an uninterrupted one, in both trees."""
    engine, suffix = (PE, "pdparams") if tree == "paddle" else (TE, "pth")
    load = _weights if tree == "paddle" else (lambda p: {k: v.numpy() for k, v in torch.load(p, weights_only=True).items()})
    kwargs = recipe_kwargs(dataset, tmp_path / "straight", VIT, checkpoints["vit"], epochs=3, freeze_layers=False)
    engine.finetune(**kwargs)
    kwargs["out"] = str(tmp_path / "stopped")
    engine.finetune(**{**kwargs, "stop_after": 1})
    assert read_pointer(tmp_path / "stopped")["epoch"] == 1
    with pytest.raises(CheckpointError, match="pass --resume"):
        engine.finetune(**kwargs)
    engine.finetune(**{**kwargs, "resume": True, "checkpoint": None})
    a, b = load(tmp_path / "straight" / f"epoch-003.{suffix}"), load(tmp_path / "stopped" / f"epoch-003.{suffix}")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert read_csv(tmp_path / "straight" / "curves.csv") == read_csv(tmp_path / "stopped" / "curves.csv")


def test_killed_run_resumes_from_its_last_complete_epoch(dataset, checkpoints, tmp_path):
    """A real SIGKILL of ``paddle-vit finetune`` mid-run: the record names complete files only, and
    the resumed run reaches the weights of an uninterrupted one."""
    out, epochs = tmp_path / "killed", 6
    args = ["--data", str(dataset), "--model", VIT[0], "--checkpoint", str(checkpoints["vit"]), "--out", str(out),
            "--epochs", str(epochs), "--batch-size", "8", "--img-size", str(IMG), "--no-freeze-layers", "--no-progress"]
    args += [f"--override={k}={v}" for k, v in VIT[1].items()]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "paddle_vit.cli", "finetune", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not (out / "last.json").exists():
        time.sleep(0.01)
    time.sleep(0.15)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    record = read_pointer(out)
    assert record is not None, proc.stderr.read().decode()[-2000:]
    assert 1 <= record["epoch"] < epochs, f"the kill came too late (epoch {record['epoch']})"
    straight = dict(data=str(dataset), model=VIT[0], overrides=dict(VIT[1]), checkpoint=str(checkpoints["vit"]),
                    out=str(tmp_path / "straight"), epochs=epochs, batch_size=8, img_size=IMG, freeze_layers=False,
                    progress=False)
    PE.finetune(**straight)
    PE.finetune(**{**straight, "out": str(out), "resume": True})
    assert not list(out.glob(".*.tmp")), "temporary files of the killed run were left"
    a, b = _weights(tmp_path / "straight" / f"epoch-{epochs:03d}.pdparams"), _weights(out / f"epoch-{epochs:03d}.pdparams")
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_damaged_checkpoint_is_refused_and_an_uncommitted_one_ignored(dataset, checkpoints, tmp_path):
    kwargs = recipe_kwargs(dataset, tmp_path / "run", VIT, checkpoints["vit"], epochs=3, stop_after=1)
    PE.finetune(**kwargs)
    run = tmp_path / "run"
    (run / "epoch-002.pdparams").write_bytes(b"half a file")   # a stray file of a later epoch: not committed
    PE.finetune(**{**kwargs, "resume": True})                   # resumes from epoch 1, rewrites epoch 2
    assert read_pointer(run)["epoch"] == 2 and len(_weights(run / "epoch-002.pdparams")) > 1
    data = bytearray((run / "epoch-002.pdparams").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (run / "epoch-002.pdparams").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"epoch-002.pdparams is not the file last.json committed"):
        PE.finetune(**{**kwargs, "resume": True})


def test_resume_from_another_run_is_refused(dataset, checkpoints, tmp_path):
    PE.finetune(**recipe_kwargs(dataset, tmp_path / "run", VIT, checkpoints["vit"], epochs=2, stop_after=1))
    other = recipe_kwargs(dataset, tmp_path / "run", EFFNET, checkpoints["effnet"], epochs=2, resume=True)
    with pytest.raises(CheckpointError, match=r"model='vit_tiny_patch16_224' there, 'efficientnetv2_s' now"):
        PE.finetune(**other)
    with pytest.raises(CheckpointError, match=r"lr=0.01 there, 0.02 now"):
        PE.finetune(**recipe_kwargs(dataset, tmp_path / "run", VIT, None, epochs=2, resume=True, lr=0.02))


# --- bad input --------------------------------------------------------------------------------
def _image_folder(root: Path, layout: dict[str, list[str]]) -> Path:
    for rel in [f"{split}/{c}/x.png" for split, classes in layout.items() for c in classes]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
    return root


def test_dataset_layout_errors(dataset, tmp_path):
    with pytest.raises(D.DatasetError, match="no such dataset folder"):
        D.scan_dataset(tmp_path / "nothing")
    (tmp_path / "flat" / "train").mkdir(parents=True)
    (tmp_path / "flat" / "val").mkdir()
    (tmp_path / "flat" / "train" / "a.png").write_bytes((dataset / "train/disc/000.png").read_bytes())
    with pytest.raises(D.DatasetError, match=r"flat/train: no class folders; expected one sub-folder of images per "
                                            r"class \(found only files: a.png\)"):
        D.scan_dataset(tmp_path / "flat")
    (tmp_path / "noval" / "train" / "a").mkdir(parents=True)
    with pytest.raises(D.DatasetError, match=r"no val/ folder"):
        D.scan_dataset(tmp_path / "noval")
    empty = tmp_path / "empty"
    for split in ("train", "val"):
        (empty / split / "a").mkdir(parents=True)
    with pytest.raises(D.DatasetError, match=r"class folder\(s\) \['a'\] hold no readable image"):
        D.scan_dataset(empty)


def test_undecodable_image_is_skipped_by_name_or_an_error(dataset, tmp_path, capsys):
    import shutil
    root = tmp_path / "d"
    shutil.copytree(dataset, root)
    bad = root / "train" / "disc" / "zz.png"
    bad.write_bytes((root / "train/disc/000.png").read_bytes()[:60])  # a truncated PNG
    train, _ = D.scan_dataset(root)
    assert [p for p, _ in train.skipped] == [bad] and bad not in [p for p, _ in train.samples]
    assert f"skipping undecodable image {bad}" in capsys.readouterr().err
    with pytest.raises(D.DatasetError, match=f"cannot decode image {bad}"):
        D.scan_dataset(root, bad_images="error")


def test_num_classes_must_match_the_folders(dataset, tmp_path):
    with pytest.raises(D.DatasetError, match=r"--num-classes 5 but .*train has 4 class folders: disc, square, "
                                             r"stripes, triangle"):
        PE.prepare(**recipe_kwargs(dataset, tmp_path / "r", VIT, None, num_classes=5))


@pytest.mark.parametrize("suffix", [".pdparams", ".safetensors"])
def test_paddle_checkpoint_loads_into_a_new_head(dataset, checkpoints, tmp_path, suffix, capsys):
    """A Paddle-layout file (converted once, 1000 classes) into a 4-class model: the classifier is
    dropped and reported, every other tensor is the file's, the new head is the seed's init."""
    from paddle_vit import create_model
    from paddle_vit.convert import save_paddle
    from paddle_vit.train.recipe import new_head_value
    name, overrides = EFFNET
    source = create_model(name, pretrained=checkpoints["effnet"], img_size=IMG, **overrides)
    path = tmp_path / f"effnet{suffix}"
    save_paddle({k: v.numpy() for k, v in source.state_dict().items()}, path)
    run = PE.prepare(**recipe_kwargs(dataset, tmp_path / "r", EFFNET, path))
    assert "dropped classifier.weight [16, 1000]: the new classifier classifier.weight needs [16, 4]" in "\n".join(run.notes)
    got, want = run.model.state_dict(), source.state_dict()
    for key in got:
        if key.startswith("classifier."):
            init = new_head_value(key, [4, 16] if key.endswith("weight") else [4], 0)
            assert np.array_equal(got[key].numpy(), init.T if key.endswith("weight") else init)
        else:
            assert np.array_equal(got[key].numpy(), want[key].numpy()), key


def test_checkpoint_of_another_backbone_is_refused_whole(dataset, checkpoints, tmp_path):
    """Only the classifier may be dropped: a backbone that does not fit is the converter's error."""
    with pytest.raises(ConversionError, match=r"shape mismatch 'blocks.0.norm1.weight'"):
        PE.prepare(**recipe_kwargs(dataset, tmp_path / "r", ("vit_tiny_patch16_224", dict(VIT[1], embed_dim=24)),
                                   checkpoints["vit"]))


def test_cli_bad_input_is_one_message(dataset, tmp_path, capsys):
    argv = ["finetune", "--data", str(tmp_path / "missing"), "--model", VIT[0]]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("paddle-vit finetune: error:") and "no such dataset folder" in err and "Traceback" not in err
    assert cli_main(["finetune", "--data", str(dataset), "--model", "vit_tiny_patch16_224", "--amp", "bf16",
                     "--device", "cpu", "--out", str(tmp_path / "r")]) == 2
    assert "--amp bf16 needs a GPU" in capsys.readouterr().err
    assert cli_main(["finetune", "--data", str(dataset), "--model", "vit_tiny_patch16_224", "--epochs", "0"]) == 2
    assert "epochs must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_every_family_has_its_classifier_declared():
    """``recipe.CLASSIFIER`` names, for every registered family, the prefix of its last Linear
    (what a new head replaces and what stays trainable); a new family fails here until declared."""
    import paddle_vit.models  # noqa: F401  (registers the families)
    from paddle_vit.registry import FAMILIES, create_model
    from paddle_vit.train.recipe import CLASSIFIER
    from paddle_vit.variants import VARIANTS
    for family in FAMILIES:
        assert family in CLASSIFIER, f"family {family!r}: add its classifier prefix to paddle_vit.train.recipe.CLASSIFIER"
        name = next(n for n, (f, _) in VARIANTS.items() if f == family)
        with paddle.LazyGuard():
            model = create_model(name, num_classes=7)
        head = {k: tuple(v.shape) for k, v in model.state_dict().items() if k.startswith(CLASSIFIER[family])}
        assert sorted(head) == [CLASSIFIER[family] + "bias", CLASSIFIER[family] + "weight"], (family, head)
        assert head[CLASSIFIER[family] + "bias"] == (7,) and head[CLASSIFIER[family] + "weight"][1] == 7


def test_recipe_defaults_are_the_seeds():
    r = Recipe(data="d", model="efficientnetv2_s")
    assert (r.lr, r.lrf, r.momentum, r.weight_decay, r.freeze_layers, r.batch_size, r.epochs) == (
        0.01, 0.01, 0.9, 1e-4, True, 8, 30)
    assert r.sizes("efficientnetv2_s", 384) == (300, 384) and r.normalization("timm") == ((0.5,) * 3, (0.5,) * 3)
    assert r.normalization("torchvision")[0] == (0.485, 0.456, 0.406)
    assert json.loads(json.dumps(r.as_dict()))["model"] == "efficientnetv2_s"
