"""``paddle-vit export``: a variant (with its weights) to a Paddle Inference program or an ONNX file.

    paddle-vit export --model vit_small_patch16_224 --checkpoint vit_s16.pdparams --out out/vit_s16
    paddle-vit export --model tf_efficientnetv2_s --checkpoint effv2.pth --img-size 300 --format onnx --out out/effv2

Exit status: 0 written; 1 the export failed (nothing written); 2 bad arguments.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any


def _override(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` as ``paddle-vit-convert --override`` reads it (imported on use: it loads Paddle)."""
    from paddle_vit.convert.cli import parse_override
    return parse_override(text)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """``paddle-vit export``'s options on ``ap``."""
    from paddle_vit.deploy_onnx import ONNX_OPSET
    ap.add_argument("--model", required=True, help="variant name, e.g. vit_small_patch16_224")
    ap.add_argument("--out", required=True, metavar="PREFIX",
                    help="output prefix: PREFIX.json + PREFIX.pdiparams (paddle) or PREFIX.onnx (onnx)")
    ap.add_argument("--format", choices=("paddle", "onnx"), default="paddle",
                    help="paddle: for Paddle Inference; onnx: for ONNX Runtime (needs paddle_vit[onnx])")
    ap.add_argument("--checkpoint", help="weights: a torch (timm/torchvision/torch_ref), .pdparams or .safetensors "
                                         "file, as create_model(pretrained=...) reads it; default: random weights")
    ap.add_argument("--img-size", type=int, help="input size (default: the variant's)")
    ap.add_argument("--num-classes", type=int, help="classifier width (default: the variant's)")
    ap.add_argument("--override", action="append", type=_override, default=[], metavar="KEY=VALUE",
                    help="any other constructor argument, e.g. --override depth=2 (repeatable)")
    ap.add_argument("--batch", type=int, default=None,
                    help="a fixed batch size (default: dynamic, any batch size)")
    ap.add_argument("--opset", type=int, default=ONNX_OPSET, help=f"ONNX opset (default {ONNX_OPSET})")
    ap.add_argument("--no-verify", action="store_true",
                    help="onnx: write without checking ONNX Runtime's output against eager Paddle")


def input_shape(model: Any, img_size: int | None, batch: int | None) -> list[int | None]:
    """``[B, 3, H, W]`` for ``model``: ``img_size`` if given, else the model's own."""
    size = img_size or getattr(model, "img_size", None) or getattr(getattr(model, "patch_embed", None), "img_size", None)
    if size is None:
        raise ValueError("the model has no image size of its own: pass --img-size")
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    if batch is not None and batch < 1:
        raise ValueError(f"--batch must be >= 1, got {batch}")
    return [batch, getattr(model, "in_chans", 3), h, w]


def run(args: argparse.Namespace) -> int:
    """Build, load, export; 0 on success, 1 when the export itself fails (ValueError: exit 2)."""
    import paddle_vit
    from paddle_vit.convert.core import ConversionError
    from paddle_vit.deploy import ExportError, export
    kwargs = dict(args.override)
    kwargs.update({k: v for k, v in (("img_size", args.img_size), ("num_classes", args.num_classes)) if v is not None})
    try:
        model = paddle_vit.create_model(args.model, pretrained=args.checkpoint, **kwargs)
        shape = input_shape(model, args.img_size, args.batch)
        out = export(model, args.out, shape, format=args.format, opset=args.opset, verify=not args.no_verify)
    except (ImportError, ExportError, ConversionError, OSError) as exc:
        print(f"paddle-vit export: error: {exc}\nnothing was written", file=sys.stderr)
        return 1
    files = f"{out}.json + {out}.pdiparams" if args.format == "paddle" else out
    print(f"wrote {files}: {args.model}, input {['B' if d is None else d for d in shape]}"
          + (f", ONNX opset {args.opset}" if args.format == "onnx" else ""))
    return 0
