"""``paddle-vit``: one command, one subcommand per tool (``diff``, ``bench``, ``predict``, ``export``, ``finetune``; others register the same way)."""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

# subcommand -> (module with ``add_arguments(parser)`` and ``run(args) -> int``, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "diff": ("paddle_vit.parity.model_diff",
             "compare a model with its torch reference layer by layer; report the first diverging layer"),
    "bench": ("paddle_vit.bench",
              "time every Paddle path against torch_ref and timm side by side (throughput, memory, ratios)"),
    "predict": ("paddle_vit.predict",
                "classify images with a pretrained tag or checkpoint, preprocessed as timm does; --compare-torch"),
    "export": ("paddle_vit.deploy_cli",
               "export a variant for deployment: a Paddle Inference program or an ONNX file (paddle2onnx)"),
    "finetune": ("paddle_vit.train.cli",
                 "fine-tune a model on an image folder with the EfficientNetV2 tutorial's recipe (one process or many)"),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="paddle-vit", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.set_defaults(module=module)
        # the module is imported only to declare its arguments: cheap, Paddle loads on run
        importlib.import_module(module).add_arguments(sp)
    args = parser.parse_args(argv)
    try:
        return importlib.import_module(args.module).run(args)
    except ValueError as exc:  # bad input: the message says what was expected
        print(f"paddle-vit {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
