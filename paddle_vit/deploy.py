"""Deployment: export a paddle_vit model and serve it with Paddle Inference or ONNX Runtime.

Paddle's dygraph (eager) CPU kernels use the MKL 2019 bundled with Paddle; Paddle Inference
runs the exported graph through oneDNN instead (AVX-512 where the CPU has it) and fuses
operators; ``format="onnx"`` converts the same program with paddle2onnx for ONNX Runtime
(the optional extra ``onnx``). Which path is fastest depends on the model and the CPU:
``paddle-vit bench`` reports it per model; BENCHMARKS.md has the figures.

    model = paddle_vit.create_model("vit_small_patch16_224", pretrained="vit_s16.safetensors")
    prefix = export(model, "out/vit_s16", [None, 3, 224, 224])            # any batch size
    logits = InferencePredictor(prefix)(images)   # numpy [B, 3, 224, 224] -> numpy [B, 1000]
    path = export(model, "out/vit_s16", [None, 3, 224, 224], format="onnx")    # out/vit_s16.onnx
    logits = OnnxPredictor(path, threads=2)(images)
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
import paddle
import paddle.nn as nn

from paddle_vit.deploy_onnx import ONNX_OPSET, ExportError, OnnxPredictor  # noqa: F401  (part of this API)

FORMATS = ("paddle", "onnx")
VERIFY_BATCH = 2  # the batch of the check run when the exported batch is dynamic


def to_static(model: nn.Layer, input_shape: Sequence[int | None]) -> nn.Layer:
    """``paddle.jit.to_static`` for a float32 input ``[B, C, H, W]``; ``B`` may be ``None``
    (any batch size).

    Note: Paddle converts ``model`` itself (its ``forward`` becomes the static program).
    """
    shape = to_static_check(input_shape)
    spec = [paddle.static.InputSpec([None if d is None else int(d) for d in shape], "float32", "x")]
    return paddle.jit.to_static(model, input_spec=spec, full_graph=True)


def to_static_check(input_shape: Sequence[int | None]) -> list[int | None]:
    """``input_shape`` as a list if it is ``[B, C, H, W]`` with positive sizes (``B`` may be ``None``)."""
    shape = list(input_shape)
    if len(shape) != 4 or any(d is not None and int(d) < 1 for d in shape) or None in shape[1:]:
        raise ValueError(f"input_shape must be [B, C, H, W] with positive sizes (B may be None), got {shape}")
    return shape


def export(model: nn.Layer, prefix: str | Path, input_shape: Sequence[int | None], format: str = "paddle",
           opset: int = ONNX_OPSET, verify: bool = True) -> str:
    """Save ``model`` (eval mode) for deployment; ``model`` is converted in place (see ``to_static``).

    ``format="paddle"``: ``prefix.json`` + ``prefix.pdiparams`` for Paddle Inference; returns ``prefix``.
    ``format="onnx"``: ``prefix.onnx`` (ONNX ``opset``, weights inside, a dynamic first dimension
    named ``batch`` where ``input_shape[0]`` is ``None``); returns its path. Needs the extra
    ``onnx``. With ``verify`` (the default) the ONNX graph is run by ONNX Runtime on a random
    batch and must give the eager model's output within the policy's ``fp32_model`` bound, else
    ``ExportError`` and nothing is written. The file is written whole or not at all.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    model.eval()
    prefix = str(prefix)
    if format == "onnx":
        return _export_onnx(model, prefix, input_shape, opset, verify)
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    paddle.jit.save(to_static(model, input_shape), prefix)
    return prefix


def _export_onnx(model: nn.Layer, prefix: str, input_shape: Sequence[int | None], opset: int, verify: bool) -> str:
    from paddle_vit.deploy_onnx import check_opset, program_to_onnx, require, write_atomically
    for package in ("paddle2onnx", "onnx", "onnxruntime"):  # before any work: say what is missing
        require(package)
    check_opset(opset)
    to_static_check(input_shape)
    x = None
    if verify:  # the eager output, before to_static converts the model
        shape = [VERIFY_BATCH if d is None else int(d) for d in input_shape]
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        with paddle.no_grad():
            eager = model(paddle.to_tensor(x)).numpy()
    with tempfile.TemporaryDirectory(prefix="paddle_vit_onnx_") as tmp:
        program = export(model, Path(tmp) / "model", input_shape)
        data = program_to_onnx(program, opset)
    if verify:
        check_onnx(data, x, eager)
    path = Path(prefix + ".onnx")
    write_atomically(data, path)
    return str(path)


def check_onnx(data: bytes, x: np.ndarray, expected: np.ndarray) -> None:
    """ONNX Runtime on the serialized model ``data`` must map ``x`` to ``expected`` (fp32_model bound)."""
    from paddle_vit.deploy_onnx import require
    from paddle_vit.parity import error_stats, tolerance
    ort = require("onnxruntime")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    tol = tolerance("model")
    stats = error_stats(expected, got, "ONNX Runtime vs eager Paddle")
    if not stats.passes(tol):
        raise ExportError("the ONNX graph does not compute the model: " + stats.describe(tol)
                          + "; nothing written (verify=False skips this check)")


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
