"""``paddle-vit predict``: classify image files with a pretrained tag (or a checkpoint), preprocessed
as timm does; ``--compare-torch`` runs the source model (timm / torchvision / torch_ref) on the
same batch and prints both top-k lists and the logit difference against the tolerance policy.

    paddle-vit predict cat.jpg dog.png --model vit_base_patch16_224.augreg2_in21k_ft_in1k
    paddle-vit predict cat.jpg --model tf_efficientnetv2_s --checkpoint tf_efficientnetv2_s.safetensors --top 3
    paddle-vit predict cat.jpg --model swin_tiny_patch4_window7_224.ms_in1k --compare-torch

Exit status: 0 done (and, with --compare-torch, within the policy); 1 bad input (an unreadable
image, a checkpoint that does not fit, weights that cannot be fetched, a model without a
classifier); 2 bad arguments; 3 --compare-torch outside the policy.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np


def _override(text: str) -> tuple[str, Any]:
    from paddle_vit.convert.cli import parse_override  # imported when used: it loads Paddle
    return parse_override(text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (any format Pillow reads)")
    p.add_argument("--model", required=True, metavar="NAME_OR_TAG",
                   help="a pretrained tag '<arch>.<tag>' or an arch (timm's default tag); see list_models(pretrained=True)")
    p.add_argument("--checkpoint", metavar="PATH",
                   help="weights to load instead of fetching the tag's (torch: timm/torchvision/torch_ref layout; "
                        ".pdparams; .safetensors)")
    p.add_argument("--top", type=int, default=5, metavar="K", help="classes to print per image (default 5)")
    p.add_argument("--compare-torch", action="store_true",
                   help="also run the source torch model on the same batch; print both top-k and the logit difference")
    p.add_argument("--source", default="auto", choices=("auto", "timm", "torchvision", "torch_ref"),
                   help="layout of a torch --checkpoint (default: detected from its keys)")
    p.add_argument("--override", action="append", type=_override, default=[], metavar="KEY=VALUE",
                   help="a constructor argument of the variant (repeatable)")


class BadInput(ValueError):
    """Input that cannot be classified; the message says which and why."""


@dataclass(frozen=True)
class TopK:
    indices: np.ndarray   # [B, k]
    probs: np.ndarray     # [B, k]


def softmax(logits: np.ndarray) -> np.ndarray:
    """``[B, C]`` -> probabilities, computed in float64."""
    z = logits.astype(np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def top_k(logits: np.ndarray, k: int) -> TopK:
    probs = softmax(logits)
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return TopK(order, np.take_along_axis(probs, order, axis=1))


def class_name(index: int, num_classes: int) -> str:
    if num_classes == 1000:
        from paddle_vit.data import imagenet_class_name
        return imagenet_class_name(index)
    return f"class {index}"


def load_images(paths: Sequence[str]) -> tuple[list[Any], list[str]]:
    """RGB images and notes; every unreadable file is reported at once."""
    from paddle_vit.data import load_image
    images, notes, errors = [], [], []
    for path in paths:
        try:
            image, note = load_image(path)
        except ValueError as exc:
            errors.append(str(exc))
            continue
        images.append(image)
        if note:
            notes.append(note)
    if errors:
        raise BadInput("\n  ".join([f"{len(errors)} image(s) cannot be read:", *errors]))
    return images, notes


def _input_config(model: Any) -> tuple[dict[str, Any], str | None]:
    """The tag's data config; where the model was built for another fixed size, that size."""
    from paddle_vit.data import resolve_data_config
    config = resolve_data_config(model)
    fixed = getattr(getattr(model, "patch_embed", None), "img_size", None)
    if fixed is not None:
        h, w = (fixed, fixed) if isinstance(fixed, int) else tuple(fixed)
        if tuple(config["input_size"][1:]) != (h, w):
            note = (f"the model takes {h}x{w} images, its tag's transform {config['input_size'][1]}x"
                    f"{config['input_size'][2]}: resizing for {h}x{w}")
            return dict(config, input_size=(3, h, w)), note
    return config, None


def build_paddle(args: argparse.Namespace, overrides: dict[str, Any]) -> Any:
    from paddle_vit.pretrained import model_tag
    from paddle_vit.registry import create_model
    from paddle_vit.variants import model_kwargs
    arch, row = model_tag(args.model, pretrained=not args.checkpoint)
    kwargs = model_kwargs(row.name if row else args.model, **overrides)[1]
    if kwargs.get("num_classes", 1000) == 0:
        raise BadInput(f"{row.name if row else arch} has no classifier (num_classes=0: a feature extractor); "
                       "predict needs class scores: pick a tag with a classifier, e.g. one ending in _in1k")
    if args.checkpoint:
        if not Path(args.checkpoint).is_file():
            raise BadInput(f"--checkpoint {args.checkpoint}: no such file")
        from paddle_vit.convert import read_pretrained
        family = model_kwargs(row.name if row else args.model)[0]
        # built with the arguments the checkpoint's library needs (a BatchNorm eps, momentum)
        ckpt = read_pretrained(args.checkpoint, family, arch, args.source)
        return create_model(row.name if row else args.model, pretrained=ckpt, **overrides)
    return create_model(args.model, pretrained=True, **overrides)


def reference_model(model: Any, path: str, source: str, overrides: dict[str, Any]) -> tuple[Any, str]:
    """The torch model the weights in ``path`` come from, loaded from that file, and its name."""
    import torch
    from paddle_vit.convert import detect_source, export_state_dict, read_checkpoint
    from paddle_vit.convert.core import tensor_shapes
    from paddle_vit.convert.sources import build_source_model
    from paddle_vit.convert.verify import load_without_copy
    from paddle_vit.pretrained import get_tag
    arch, family = model.variant, model.family
    tag = model.pretrained_cfg.get("name") if model.pretrained_cfg else None
    state, layout = read_checkpoint(path)
    if layout == "paddle":  # back to timm's names, into torch_ref
        import torch_ref
        ref = torch_ref.create_model(tag or arch, **overrides)
        ref.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in
                             export_state_dict(state, model, ref.state_dict(), "timm").items()}, strict=True)
        return ref.eval(), "torch_ref"
    if source == "auto":
        source = detect_source(tensor_shapes(state), family)
    if source == "timm":
        import timm
        row = get_tag(tag) if tag else None
        if row is not None and row.source == "timm" and timm.is_model(arch):
            # timm's own loader (its checkpoint filter included), from the same file
            ref = timm.create_model(row.name, pretrained=True, pretrained_cfg_overlay={"file": str(path)}, **overrides)
            return ref.eval(), "timm"
    kwargs = model_kwargs_of(model, overrides)
    ref = load_without_copy(lambda: build_source_model(arch, family, source, kwargs), state, source)
    return ref, source


def model_kwargs_of(model: Any, overrides: dict[str, Any]) -> dict[str, Any]:
    """The overrides plus the tag's num_classes (what the source builders take)."""
    out = dict(overrides)
    if model.pretrained_cfg:
        out.setdefault("num_classes", model.pretrained_cfg["num_classes"])
    return out


def print_top_k(path: str, ours: TopK, i: int, num_classes: int, theirs: TopK | None, ref_name: str) -> None:
    """Image ``i``'s top-k, Paddle's beside the reference's (``theirs``) when given."""
    print(f"\n{path}")
    width = 34
    head = f"  {'rank':>4}  {'paddle_vit':<{width}} {'prob':>7}"
    if theirs is not None:
        head += f"   {ref_name:<{width}} {'prob':>7}"
    print(head)
    for r in range(ours.indices.shape[1]):
        idx = int(ours.indices[i, r])
        line = f"  {r + 1:>4}  {f'{idx} {class_name(idx, num_classes)}'[:width]:<{width}} {ours.probs[i, r]:>7.2%}"
        if theirs is not None:
            jdx = int(theirs.indices[i, r])
            line += f"   {f'{jdx} {class_name(jdx, num_classes)}'[:width]:<{width}} {theirs.probs[i, r]:>7.2%}"
        print(line)


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except ValueError as exc:  # BadInput, ConversionError, PretrainedUnavailable, unknown model/tag
        print(f"paddle-vit predict: error: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    if args.top < 1:
        raise BadInput(f"--top must be >= 1, got {args.top}")
    images, notes = load_images(args.images)
    overrides = dict(args.override)
    model = build_paddle(args, overrides)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    import paddle
    from paddle_vit.data import create_transform
    config, note = _input_config(model)
    if note:
        print(f"note: {note}", file=sys.stderr)
    x = create_transform(**config).batch(images)
    with paddle.no_grad():
        logits = model(paddle.to_tensor(x)).numpy()
    num_classes = logits.shape[1]
    k = min(args.top, num_classes)
    weights = args.checkpoint or (model.pretrained_info or {}).get("source")
    tag = model.pretrained_cfg.get("name", model.variant) if model.pretrained_cfg else model.variant
    print(f"{tag}: weights {weights}; input {x.shape[2]}x{x.shape[3]}, {config['interpolation']}, "
          f"crop {config['crop_mode']} {config['crop_pct']:g}, mean {tuple(config['mean'])}, std {tuple(config['std'])}")
    ours = top_k(logits, k)
    if not args.compare_torch:
        for i, path in enumerate(args.images):
            print_top_k(path, ours, i, num_classes, None, "")
        return 0
    import torch
    from paddle_vit.parity import error_stats, tolerance
    ref, ref_name = reference_model(model, weights, args.source, overrides)
    with torch.no_grad():
        ref_logits = ref(torch.from_numpy(x)).numpy()
    theirs = top_k(ref_logits, k)
    tol = tolerance("model")
    for i, path in enumerate(args.images):
        print_top_k(path, ours, i, num_classes, theirs, ref_name)
        stats = error_stats(ref_logits[i], logits[i], "logits")
        same = np.array_equal(ours.indices[i], theirs.indices[i])
        print(f"  logits: max abs diff {stats.max_abs:.2e}, scaled {stats.scaled:.2e} (bound {tol.bound:.0e}, "
              f"{tol.name}): {'pass' if stats.passes(tol) else 'FAIL'}; top-{k} "
              f"{'identical' if same else 'DIFFERENT'}; max prob diff "
              f"{np.abs(softmax(logits[i:i + 1]) - softmax(ref_logits[i:i + 1])).max():.2e}")
    stats = error_stats(ref_logits, logits, "logits")
    print(f"\nall images: max abs logit diff {stats.max_abs:.2e}, scaled {stats.scaled:.2e}: "
          f"{'within' if stats.passes(tol) else 'OUTSIDE'} the policy ({tol.name} {tol.bound:.0e}, "
          "paddle_vit/parity/tolerances.py)")
    return 0 if stats.passes(tol) else 3


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="paddle-vit predict", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
