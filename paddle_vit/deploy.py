"""The fastest way to run a paddle_vit model on CPU: export it and serve it with Paddle Inference.

Paddle's dygraph (eager) CPU kernels use the MKL 2019 bundled with Paddle; Paddle Inference
runs the exported graph through oneDNN instead (AVX-512 where the CPU has it) and fuses
operators. See BENCHMARKS.md for what each path costs.

    model = paddle_vit.create_model("vit_small_patch16_224", pretrained="vit_s16.safetensors")
    prefix = export(model, "out/vit_s16", [8, 3, 224, 224])
    predictor = InferencePredictor(prefix)
    logits = predictor(images)          # numpy [8, 3, 224, 224] -> numpy [8, 1000]
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import paddle
import paddle.nn as nn


def to_static(model: nn.Layer, input_shape: Sequence[int | None]) -> nn.Layer:
    """``paddle.jit.to_static`` for a float32 input ``[B, C, H, W]``; ``B`` may be ``None``
    (any batch size).

    Note: Paddle converts ``model`` itself (its ``forward`` becomes the static program).
    """
    shape = list(input_shape)
    if len(shape) != 4 or any(d is not None and int(d) < 1 for d in shape) or None in shape[1:]:
        raise ValueError(f"input_shape must be [B, C, H, W] with positive sizes (B may be None), got {shape}")
    spec = [paddle.static.InputSpec([None if d is None else int(d) for d in shape], "float32", "x")]
    return paddle.jit.to_static(model, input_spec=spec, full_graph=True)


def export(model: nn.Layer, prefix: str | Path, input_shape: Sequence[int | None]) -> str:
    """Save ``model`` (eval mode) for Paddle Inference as ``prefix.json`` + ``prefix.pdiparams``;
    returns ``prefix``. ``model`` is converted in place (see ``to_static``)."""
    model.eval()
    prefix = str(prefix)
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    paddle.jit.save(to_static(model, input_shape), prefix)
    return prefix


class InferencePredictor:
    """A Paddle Inference predictor for an ``export``-ed model: numpy in, numpy out.

    CPU: oneDNN on, ``threads`` math-library threads (default ``OMP_NUM_THREADS`` or all cores).
    GPU (``device='gpu'``): Paddle's GPU executor, no TensorRT.
    """

    def __init__(self, prefix: str | Path, threads: int | None = None, device: str = "cpu",
                 onednn: bool = True) -> None:
        from paddle import inference
        if device not in ("cpu", "gpu"):
            raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
        prefix = str(prefix)
        program = next((p for p in (prefix + ".json", prefix + ".pdmodel") if os.path.exists(p)), None)
        if program is None or not os.path.exists(prefix + ".pdiparams"):
            raise ValueError(f"no exported model at {prefix!r} (expected {prefix}.json and {prefix}.pdiparams)")
        config = inference.Config(program, prefix + ".pdiparams")
        if device == "gpu":
            config.enable_use_gpu(256, 0)
        else:
            config.disable_gpu()
            if onednn:
                config.enable_mkldnn()
            config.set_cpu_math_library_num_threads(threads or int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1))
        config.disable_glog_info()
        self.predictor = inference.create_predictor(config)
        self._input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self._output = self.predictor.get_output_handle(self.predictor.get_output_names()[0])
        self._cpu = device == "cpu"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``x [B, C, H, W]`` float32 (the exported shape; any B if it was exported with None) -> output."""
        self._input.reshape(list(x.shape))
        self._input.copy_from_cpu(np.ascontiguousarray(x, dtype=np.float32))
        self.predictor.run()
        if self._cpu:
            restore_eager_threads()
        return self._output.copy_to_cpu()


def restore_eager_threads() -> None:
    """Give the process's math library (MKL, OpenMP) back its ``OMP_NUM_THREADS`` threads.

    A Paddle Inference run leaves them at 1 for the whole process, so eager Paddle in the same
    process would then run single-threaded (ViT-S/16, batch 8, 2 cores: 390 -> 700 ms).
    """
    paddle.base.core.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1))
