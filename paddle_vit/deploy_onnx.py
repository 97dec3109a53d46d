"""ONNX: an exported Paddle program converted by ``paddle2onnx``, run by ONNX Runtime.

Needs the optional extra ``onnx`` (``pip install "paddle_vit[onnx]"``: paddle2onnx, onnx,
onnxruntime). ``paddle_vit.deploy.export(..., format="onnx")`` is the entry point; this module
holds the conversion, the repairs it needs and the predictor.

One repair: paddle2onnx 2.1 reads the pad value of Paddle's ``pad3d`` op under the attribute
name ``value``, but Paddle 3.x programs call it ``pad_value`` (a float64 since Paddle 3.3), so
every ONNX ``Pad`` it writes holds whatever its float happened to contain: measured 1.8e22 on
the stem of a tiny ``tf_efficientnetv2_s`` (``Conv2dSame`` pads with ``F.pad``), logits 3e25
times off. ``restore_pad_values`` writes the program's own values back into the graph.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

# LayerNormalization is an ONNX op from opset 17: paddle2onnx then writes one node per LayerNorm
# instead of seven (mean, sub, pow, mean, add, sqrt, div).
ONNX_OPSET = 17
MIN_OPSET = 11  # from opset 11 the Pad op takes its value as an input, which restore_pad_values sets
BATCH_DIM = "batch"
EXTRA_HINT = 'pip install "paddle_vit[onnx]" (paddle2onnx, onnx and onnxruntime)'


class ExportError(RuntimeError):
    """The program could not be converted, or the converted graph does not compute the model."""


def require(module: str) -> Any:
    """Import one package of the ``onnx`` extra, or say how to install it."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"the ONNX path needs {module.split('.')[0]}: {EXTRA_HINT} ({exc})") from None


def missing_extra() -> str | None:
    """Why the ONNX path cannot run here (a missing package), or ``None``."""
    import importlib.util
    for module in ("paddle2onnx", "onnx", "onnxruntime"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed: {EXTRA_HINT}"
    return None


def check_opset(opset: int) -> None:
    """``ValueError`` unless ``opset`` is one this export supports and the installed onnx knows."""
    newest = require("onnx").defs.onnx_opset_version()
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset must be an integer in [{MIN_OPSET}, {newest}], got {opset!r}")


def program_to_onnx(prefix: str, opset: int = ONNX_OPSET) -> bytes:
    """The Paddle program ``prefix.json`` + ``prefix.pdiparams`` (``deploy.export``) as a
    serialized ONNX model at ``opset``, repaired (pad values) and checked by ``onnx.checker``."""
    p2o, onnx = require("paddle2onnx"), require("onnx")
    check_opset(opset)
    try:
        # save_file=None: the bytes come back to us (its own writer would try polygraphy, and
        # install it with pip when missing). It logs a failure instead of raising, then fails on
        # its own unbound result: any exception here means "could not convert".
        data = p2o.export(prefix + ".json", prefix + ".pdiparams", None, opset_version=opset,
                          auto_upgrade_opset=False, enable_onnx_checker=True, verbose=False)
    except Exception as exc:  # noqa: BLE001  (see above)
        raise ExportError(f"paddle2onnx could not convert {prefix}.json at opset {opset}: "
                          f"{type(exc).__name__}: {exc}") from None
    if not isinstance(data, bytes) or not data:
        raise ExportError(f"paddle2onnx returned no model for {prefix}.json")
    proto = onnx.load_from_string(data)
    restore_pad_values(proto, pad_values(prefix))
    name_batch_dim(proto)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def pad_values(prefix: str) -> list[float]:
    """The ``pad_value`` of every ``pad3d`` op of the exported program, in program order."""
    import paddle
    program = paddle.jit.load(prefix).program()
    return [float(op.attrs()["pad_value"]) for op in program.global_block().ops if op.name() == "pd_op.pad3d"]


_PAD3D_OUTPUT = re.compile(r"^p2o\.pd_op\.pad3d\.(\d+)\.0$")  # paddle2onnx's name for pad3d op N's output


def restore_pad_values(proto: Any, values: list[float]) -> int:
    """Give each ONNX ``Pad`` that paddle2onnx made from a ``pad3d`` op that op's pad value
    (``values``, in program order); returns how many were set."""
    from onnx import numpy_helper
    graph = proto.graph
    pads = sorted(((int(m.group(1)), node) for node in graph.node if node.op_type == "Pad"
                   for m in [_PAD3D_OUTPUT.match(node.output[0])] if m), key=lambda t: t[0])
    if len(pads) != len(values):
        raise ExportError(f"the program has {len(values)} pad3d ops but paddle2onnx wrote {len(pads)} Pad nodes "
                          "from them: cannot restore their pad values")
    dtypes = _constant_dtypes(graph)
    replaced = set()
    for (_, node), value in zip(pads, values):
        if len(node.input) >= 3 and node.input[2]:
            name = node.output[0] + ".pad_value"
            dtype = dtypes.get(node.input[2], np.float32)
            graph.initializer.append(numpy_helper.from_array(np.array(value, dtype=dtype), name))
            replaced.add(node.input[2])
            node.input[2] = name
        elif value != 0.0:  # no value input means 0
            raise ExportError(f"Pad node {node.name!r} has no value input to hold {value}")
    _drop_unused_constants(graph, replaced)
    return len(pads)


def _constant_dtypes(graph: Any) -> dict[str, Any]:
    """numpy dtype of every ``Constant`` node's output (the pad value must keep its type)."""
    from onnx import helper
    return {node.output[0]: helper.tensor_dtype_to_np_dtype(attr.t.data_type)
            for node in graph.node if node.op_type == "Constant" for attr in node.attribute if attr.name == "value"}


def _drop_unused_constants(graph: Any, names: set[str]) -> None:
    """Remove the ``Constant`` nodes among ``names`` that nothing reads any more."""
    used = {i for node in graph.node for i in node.input} | {o.name for o in graph.output}
    for node in [n for n in graph.node if n.op_type == "Constant" and n.output[0] in names - used]:
        graph.node.remove(node)


def name_batch_dim(proto: Any) -> None:
    """Call a dynamic first dimension of the input and the output ``batch`` (paddle2onnx names them
    ``DynamicDimension.0`` and ``.1``): the same name tells ONNX Runtime they are equal."""
    for v in list(proto.graph.input) + list(proto.graph.output):
        dims = v.type.tensor_type.shape.dim
        if dims and dims[0].dim_param:
            dims[0].dim_param = BATCH_DIM


def write_atomically(data: bytes, path: Path) -> None:
    """``data`` to ``path`` through a temporary file beside it: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class OnnxPredictor:
    """ONNX Runtime on an exported ``.onnx`` file: numpy in, numpy out.

    ``threads``: ONNX Runtime's intra-op threads (default ``OMP_NUM_THREADS`` or all cores);
    one inter-op thread, sequential execution, every graph optimisation. ONNX Runtime keeps its
    own thread pool, so unlike Paddle Inference it leaves the process's OpenMP threads alone.
    ``device='gpu'`` needs onnxruntime-gpu (the CUDA execution provider).
    """

    def __init__(self, path: str | Path, threads: int | None = None, device: str = "cpu") -> None:
        ort = require("onnxruntime")
        if device not in ("cpu", "gpu"):
            raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
        path = str(path)
        if not os.path.isfile(path):
            raise ValueError(f"no ONNX model at {path!r} (expected the .onnx file that export(format='onnx') writes)")
        providers = ["CPUExecutionProvider"]
        if device == "gpu":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ValueError("device 'gpu' needs onnxruntime-gpu (no CUDAExecutionProvider in this onnxruntime)")
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # no warnings about initializers paddle2onnx left unused
        self.threads = options.intra_op_num_threads
        self.session = ort.InferenceSession(path, options, providers=providers)
        self._input = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``x [B, C, H, W]`` float32 (the exported shape; any B if it was exported with None) -> output."""
        return self.session.run(None, {self._input: np.ascontiguousarray(x, dtype=np.float32)})[0]
