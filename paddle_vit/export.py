"""Export a model with ``paddle.jit`` and run it through Paddle Inference."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import paddle
import paddle.nn as nn
from paddle.static import InputSpec


def export(model: nn.Layer, prefix: str | os.PathLike, image_shape: Sequence[int]) -> Path:
    """``paddle.jit.to_static`` + ``paddle.jit.save`` with a dynamic batch: ``image_shape`` is
    ``[C, H, W]``. Writes ``prefix.json`` (or ``.pdmodel``) and ``prefix.pdiparams``."""
    model.eval()
    spec = [InputSpec([None, *image_shape], "float32", "x")]
    static = paddle.jit.to_static(model, input_spec=spec, full_graph=True)
    paddle.jit.save(static, str(prefix))
    return Path(prefix)


class Predictor:
    """A Paddle Inference predictor on CPU: ``Predictor(prefix)(x [B, C, H, W]) -> logits``."""

    def __init__(self, prefix: str | os.PathLike, onednn: bool = True, threads: int | None = None) -> None:
        from paddle import inference
        prefix = str(prefix)
        graph = prefix + ".json" if os.path.exists(prefix + ".json") else prefix + ".pdmodel"
        config = inference.Config(graph, prefix + ".pdiparams")
        config.disable_gpu()
        config.disable_glog_info()
        if onednn:
            config.enable_mkldnn()
        else:
            config.disable_mkldnn()
        config.set_cpu_math_library_num_threads(threads or int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)))
        self._predictor = inference.create_predictor(config)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        handle = self._predictor.get_input_handle(self._predictor.get_input_names()[0])
        handle.reshape(list(x.shape))
        handle.copy_from_cpu(np.ascontiguousarray(x, dtype=np.float32))
        self._predictor.run()
        return self._predictor.get_output_handle(self._predictor.get_output_names()[0]).copy_to_cpu()
