"""Thin wrapper around ``paddle-vit-convert`` for a checkout that is not installed:

    python tools/convert_torch_to_paddle.py SRC DST --model NAME [options]   (see --help)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from paddle_vit.convert.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
