import os
import sys

# Same thread count for both frameworks in every test process (Paddle would pin 1 otherwise),
# and the other CPU defaults users get from paddle_vit (set before Paddle loads).
os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
sys.path.insert(0, os.path.dirname(__file__))
import paddle_vit  # noqa: E402,F401

import paddle  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from harness import DEVICES  # noqa: E402


@pytest.fixture(params=DEVICES)
def device(request):
    yield request.param
    paddle.set_device("cpu")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    paddle.seed(0)
