"""``python -m paddle_vit.convert``: the ``paddle-vit-convert`` command."""
import sys

from paddle_vit.convert.cli import main

sys.exit(main())
