#!/usr/bin/env python
"""``paddle-vit finetune`` from a source checkout without installing; also the script to hand to
``python -m paddle.distributed.launch --nproc_per_node N tools/finetune.py --data ... --model ...``."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paddle_vit.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["finetune", *sys.argv[1:]]))
