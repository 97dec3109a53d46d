#!/usr/bin/env python
"""Side-by-side benchmark of paddle_vit against torch_ref and timm: ``paddle_vit.bench``
(also ``paddle-vit bench``); run from a source checkout without installing. ``--help`` for options."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paddle_vit.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
