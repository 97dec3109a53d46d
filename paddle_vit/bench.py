"""Inference throughput of paddle_vit against PyTorch, side by side, in one process.

For each model and batch size it times, round robin (one call of each path in turn, so that
load from other processes hits every path alike) after a warm-up, and reports medians:

  paddle_eager   paddle_vit model, dygraph, under ``paddle.no_grad()``
  paddle_static  the same model through ``paddle.jit.to_static`` (full graph)
  paddle_infer   ``paddle.jit.save`` + Paddle Inference predictor (CPU: oneDNN on)
  onnxruntime    the same program through paddle2onnx, run by ONNX Runtime (extra ``onnx``)
  torch_ref      torch_ref model (same weights), eager, under ``torch.inference_mode()``
  timm           ``timm.create_model`` (same weights where the state dict fits), eager
  timm_compile   the same timm model through ``torch.compile`` (default inductor; the compile
                 runs in the first, untimed call and its time is in the note; a failed compile
                 is reported "not available" with the reason)

The best of torch_ref, timm and timm_compile is the "best torch path" of ``x_best_torch``.

``--peers`` adds, interleaved with the paths above in the same process:

  paddleclas_eager  PaddleClas's equivalent architecture (random weights), dygraph, no_grad
  paddleclas_infer  the same through ``paddle.jit.save`` + the Paddle Inference predictor of paddle_infer
  timm_onnxruntime  the timm model (same weights) exported by ``torch.onnx.export`` and run by
                    ONNX Runtime with ``--threads`` intra-op threads

PaddleClas is not a dependency: install it with ``pip install --no-deps paddleclas`` (its 2.6.0
pins numpy==1.24.4 and pulls in opencv, faiss, visualdl; none is needed to build its models).
Without it the PaddleClas rows say "not available: PaddleClas is not installed: pip install
--no-deps paddleclas". The model mapping and the architectures that differ from timm's
(PaddleClas's ViT_small_patch16_224 is not timm's ViT-S/16) are in ``paddle_vit.bench_peers``
and in each row's note. PaddleClas's weights
are random, so their error column is empty. After the table, one line per model and batch: the
best paddle_vit path's throughput as a ratio to PaddleClas's best path and to timm_onnxruntime.

Peak resident memory of each path is measured in a fresh subprocess per path (``VmHWM``;
also the growth over the process's size after importing its framework).

Threads: ``--threads N`` (default: all cores) is given to both frameworks: OMP_NUM_THREADS
before either is imported, ``torch.set_num_threads``, the predictor's math-library threads and
ONNX Runtime's intra-op threads. After the table, the fastest path of each model and batch.
Between two timed calls the script sleeps ``--gap`` seconds: Paddle's Intel OpenMP threads
spin for 200 ms after each parallel region and would otherwise steal the cores from the
next path (torch uses GNU OpenMP, a separate thread pool).

    paddle-vit bench                         # the default models, batch 1 and 8, table + JSON
    paddle-vit bench --quick                 # ViT-S, batch 1, no memory: under a minute
    paddle-vit bench --dry-run               # tiny ViT, one repeat: checks the machinery
    paddle-vit bench --peers                 # also PaddleClas and timm through ONNX Runtime
    paddle-vit bench --profile --models vit_small_patch16_224 --batch-sizes 8   # op by op

``python tools/bench.py ...`` (a source checkout) and ``python -m paddle_vit.bench ...`` are the same.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from paddle_vit.bench_peers import PADDLECLAS_MODELS, PeerUnavailable, build_paddleclas, mparams

# the directory holding paddle_vit and torch_ref: memory-measuring children import from it too
ROOT = Path(__file__).resolve().parents[1]

# Models of the issue, with the input resolution each is benchmarked at.
DEFAULT_MODELS = {"vit_small_patch16_224": 224, "vit_base_patch16_224": 224,
                  "swin_tiny_patch4_window7_224": 224, "efficientnetv2_s": 300,
                  "swinv2_tiny_window8_256": 256,
                  # LayerScale + register tokens (DINOv2 ViT-S/14 with 4 registers), at its own 518 px
                  "vit_small_patch14_reg4_dinov2": 518,
                  "efficientnet_b0": 224, "mobilenetv2_100": 224}
PADDLE_PATHS = ("paddle_eager", "paddle_static", "paddle_infer", "onnxruntime")
TORCH_PATHS = ("torch_ref", "timm", "timm_compile")  # the candidates for the best torch path
ALL_PATHS = PADDLE_PATHS + TORCH_PATHS
# --peers: other implementations to compare with (not counted among the torch paths)
PADDLECLAS_PATHS = ("paddleclas_eager", "paddleclas_infer")
PEER_PATHS = PADDLECLAS_PATHS + ("timm_onnxruntime",)
# a file written in the cell's workdir, loaded by a runtime (the memory child gets the file)
EXPORTED_FILES = {"paddle_infer": "model", "onnxruntime": "model.onnx", "paddleclas_infer": "paddleclas",
                  "timm_onnxruntime": "timm.onnx"}
EXPORTED_PATHS = tuple(EXPORTED_FILES)
# --dry-run: a one-block ViT on 32x32 images, for checking the machinery in seconds.
DRY_RUN_MODEL = ("vit_small_patch16_224", 32,
                 dict(img_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=2, num_classes=10))


@dataclass
class Result:
    """One (model, device, precision, batch, path) cell of the table."""
    model: str
    device: str
    precision: str
    batch: int
    img_size: int
    path: str
    status: str = "ok"                   # ok | not available | error
    reason: str = ""
    median_ms: float | None = None
    p25_ms: float | None = None
    p75_ms: float | None = None
    min_ms: float | None = None
    cpu_ms: float | None = None          # median process CPU time per call (all threads)
    images_per_s: float | None = None
    x_best_torch: float | None = None    # this path's throughput / the best torch path's
    err_vs_torch_ref: float | None = None  # max |out - torch_ref| / max |torch_ref|
    peak_rss_mb: float | None = None
    rss_growth_mb: float | None = None   # peak RSS - RSS after importing the framework
    peak_device_mb: float | None = None
    samples_ms: list[float] = field(default_factory=list)


class Unavailable(Exception):
    """A path that cannot run here (model not registered, timm missing, ...): reported, not raised."""


# --- environment -------------------------------------------------------------------------
def set_threads(n: int) -> None:
    """Same thread count for both frameworks; must run before paddle or torch is imported."""
    if "paddle" in sys.modules or "torch" in sys.modules:
        raise RuntimeError("set_threads must run before paddle and torch are imported")
    os.environ["OMP_NUM_THREADS"] = str(n)
    import paddle_vit.runtime  # the other CPU defaults of paddle_vit (MKL_DEBUG_CPU_TYPE), if unset
    paddle_vit.runtime.configure_cpu()


def _status_mb(field_name: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024  # kB
    return float("nan")


def rss_mb() -> float:
    """Current resident set size of this process."""
    return _status_mb("VmRSS")


def peak_rss_mb() -> float:
    """Peak resident set size of this process's memory since exec (``VmHWM``; unlike
    ``ru_maxrss``, it does not inherit the high-water mark of the process that spawned us)."""
    return _status_mb("VmHWM")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions() -> dict[str, str]:
    import numpy
    import paddle
    import torch
    out = {"python": platform.python_version(), "paddle": paddle.__version__, "torch": torch.__version__,
           "numpy": numpy.__version__}
    try:
        import timm
        out["timm"] = timm.__version__
    except ImportError:
        out["timm"] = "not installed"
    return out


def gpu_status() -> tuple[bool, str]:
    """Whether both frameworks see a GPU, and why not."""
    import paddle
    import torch
    if not torch.cuda.is_available():
        return False, "no GPU visible to torch"
    if not paddle.device.is_compiled_with_cuda() or paddle.device.cuda.device_count() < 1:
        return False, "no GPU visible to Paddle (CPU wheel?)"
    return True, torch.cuda.get_device_name(0)


# --- building the paths ------------------------------------------------------------------
def build_torch_ref(name: str, overrides: dict[str, Any]):
    import torch_ref.registry
    from paddle_vit.variants import list_models
    if name not in list_models():
        raise Unavailable(f"{name} is not in the variant table")
    try:
        return torch_ref.registry.create_model(name, **overrides)
    except KeyError as e:
        raise Unavailable(f"family {e} not implemented in torch_ref") from None


def build_paddle(name: str, overrides: dict[str, Any], torch_state: dict | None):
    """The paddle_vit model, with ``torch_state`` (a torch_ref state dict) converted in when given."""
    import paddle_vit.registry
    from paddle_vit.variants import list_models
    if name not in list_models():
        raise Unavailable(f"{name} is not in the variant table")
    try:
        model = paddle_vit.registry.create_model(name, **overrides)
    except KeyError as e:
        raise Unavailable(f"family {e} not implemented in paddle_vit") from None
    if torch_state is not None:
        from paddle_vit.convert import convert_state_dict, load_state_dict_strict
        load_state_dict_strict(model, convert_state_dict(torch_state, model, "torch_ref"))
    model.eval()
    return model


def build_timm(name: str, overrides: dict[str, Any], torch_state: dict | None):
    """``(model, note)``: timm's model, with the torch_ref weights when its state dict fits."""
    try:
        import timm
    except ImportError:
        raise Unavailable("timm is not installed") from None
    if not timm.is_model(name):
        raise Unavailable(f"timm has no model {name}")
    model = timm.create_model(name, pretrained=False, **overrides).eval()
    note = ""
    if torch_state is not None:
        try:
            model.load_state_dict(torch_state, strict=True)
        except RuntimeError:
            note = "timm's own random init (state dict differs from torch_ref)"
    return model, note


def paddle_call(model, x, device: str, precision: str) -> Callable[[], Any]:
    import paddle
    px = paddle.to_tensor(x, place=paddle.CUDAPlace(0) if device == "gpu" else paddle.CPUPlace())

    def call():
        with paddle.no_grad():
            if precision == "fp32":
                return model(px)
            with paddle.amp.auto_cast(dtype=precision):
                return model(px)
    return call


def torch_call(model, x, device: str, precision: str) -> Callable[[], Any]:
    import torch
    tx = torch.from_numpy(x).to("cuda" if device == "gpu" else "cpu")
    dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(precision)

    def call():
        with torch.inference_mode():
            if dtype is None:
                return model(tx)
            with torch.autocast("cuda", dtype=dtype):
                return model(tx)
    return call


def build_paths(name: str, img_size: int, batch: int, paths: list[str], overrides: dict[str, Any],
                device: str, precision: str, threads: int, workdir: str
                ) -> tuple[dict[str, Callable[[], Any]], dict[str, str]]:
    """``(calls, problems)``: a zero-argument call per runnable path, a reason per other path."""
    import numpy as np
    calls: dict[str, Callable[[], Any]] = {}
    problems: dict[str, str] = {}
    x = np.random.default_rng(0).standard_normal((batch, 3, img_size, img_size)).astype(np.float32)
    tdev = "cuda" if device == "gpu" else "cpu"

    state, ours_mparams = None, None
    try:
        tm = build_torch_ref(name, overrides)
        state = {k: v.detach().clone() for k, v in tm.state_dict().items()}
        ours_mparams = mparams(tm)
        if "torch_ref" in paths:
            calls["torch_ref"] = torch_call(tm.to(tdev), x, device, precision)
    except Unavailable as e:
        problems["torch_ref"] = str(e)
    if "timm" in paths:
        try:
            model, note = build_timm(name, overrides, state)
            calls["timm"] = torch_call(model.to(tdev), x, device, precision)
            if note:
                problems["timm"] = note  # runs, but the note is kept
        except Unavailable as e:
            problems["timm"] = str(e)
    for p, builder in (("timm_compile", lambda: compiled_timm_call(name, overrides, state, x, device, precision)),
                       ("timm_onnxruntime", lambda: timm_onnx_call(name, overrides, state, x, threads, device,
                                                                   precision, workdir))):
        if p in paths:
            try:
                calls[p], note = builder()
                if note:
                    problems[p] = note
            except Unavailable as e:
                problems[p] = str(e)
    wanted = [p for p in PADDLE_PATHS if p in paths]
    peers = [p for p in PADDLECLAS_PATHS if p in paths]
    if wanted or peers:
        import paddle
        from paddle_vit import deploy
        paddle.set_device("gpu" if device == "gpu" else "cpu")  # where the parameters are created
    for p in wanted:
        # A model per path: paddle.jit.to_static converts the layer it is given in place.
        try:
            pm = build_paddle(name, overrides, state)
        except Unavailable as e:
            problems[p] = str(e)
            continue
        if p == "paddle_eager":
            calls[p] = paddle_call(pm, x, device, precision)
        elif p == "paddle_static":
            calls[p] = paddle_call(deploy.to_static(pm, x.shape), x, device, precision)
        elif precision != "fp32":
            problems[p] = "not measured under autocast (the predictor has no amp switch)"
        elif p == "onnxruntime":
            try:
                calls[p] = onnx_call(pm, x, threads, device, workdir)
            except Unavailable as e:
                problems[p] = str(e)
        else:
            prefix = deploy.export(pm, os.path.join(workdir, "model"), x.shape)
            predictor = deploy.InferencePredictor(prefix, threads, device)
            calls[p] = lambda pred=predictor: pred(x)  # copy-in, run, copy-out: all timed
    for p in peers:
        try:
            calls[p], problems[p] = paddleclas_call(p, name, overrides, x, device, precision, threads, workdir)
            if ours_mparams is not None:
                problems[p] += f" (ours: {ours_mparams:.3g} M)"
        except Unavailable as e:
            problems[p] = str(e)
    return calls, problems


def first_call(call: Callable[[], Any], what: str) -> float:
    """Run ``call`` once (a compile, a trial of a foreign model): its seconds, or ``Unavailable``."""
    t0 = time.perf_counter()
    try:
        call()
    except Exception as e:  # the path is reported with the reason, the table goes on
        first = (str(e).strip().splitlines() or [""])[0][:300]
        raise Unavailable(f"{what}: {type(e).__name__}: {first}") from None
    return time.perf_counter() - t0


def compiled_timm_call(name: str, overrides: dict[str, Any], state: dict | None, x, device: str,
                       precision: str) -> tuple[Callable[[], Any], str]:
    """``(call, note)``: ``torch.compile`` of timm's model (its own copy, the same weights as timm's
    path), compiled by this first call so that the compile stays out of the timing."""
    import torch
    model, note = build_timm(name, overrides, state)
    model = model.to("cuda" if device == "gpu" else "cpu")
    # A fresh dynamo cache per cell: after its recompile limit dynamo would run eager, silently.
    torch._dynamo.reset()
    call = torch_call(torch.compile(model), x, device, precision)
    seconds = first_call(call, "torch.compile failed")
    return call, "; ".join(n for n in (f"compiled in {seconds:.0f} s (untimed)", note) if n)


def timm_onnx_call(name: str, overrides: dict[str, Any], state: dict | None, x, threads: int, device: str,
                   precision: str, workdir: str) -> tuple[Callable[[], Any], str]:
    """``(call, note)``: ONNX Runtime on timm's model (the same weights) exported by
    ``torch.onnx.export`` (TorchScript exporter; the newer one needs onnxscript) for ``x``'s shape."""
    import importlib.util
    import warnings
    import torch
    if precision != "fp32":
        raise Unavailable("not measured under autocast (ONNX Runtime runs the fp32 graph)")
    if importlib.util.find_spec("onnxruntime") is None:
        raise Unavailable("onnxruntime is not installed: pip install onnxruntime")
    from paddle_vit.deploy_onnx import ONNX_OPSET, OnnxPredictor
    model, note = build_timm(name, overrides, state)
    path = os.path.join(workdir, EXPORTED_FILES["timm_onnxruntime"])
    try:
        with warnings.catch_warnings():  # the exporter's deprecation and tracer warnings
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (torch.from_numpy(x),), path, dynamo=False, opset_version=ONNX_OPSET,
                              input_names=["x"], output_names=["y"])
    except Exception as e:
        raise Unavailable(f"torch.onnx.export failed: {type(e).__name__}: {str(e)[:300]}") from None
    try:
        predictor = OnnxPredictor(path, threads, device)
    except ValueError as e:  # no CUDA execution provider
        raise Unavailable(str(e)) from None
    call = lambda: predictor(x)  # noqa: E731
    first_call(call, "ONNX Runtime failed on timm's graph")
    return call, note


def paddleclas_call(path: str, name: str, overrides: dict[str, Any], x, device: str, precision: str, threads: int,
                    workdir: str) -> tuple[Callable[[], Any], str]:
    """``(call, note)``: PaddleClas's architecture for ``name`` (``bench_peers``), eager or through
    Paddle Inference with our predictor settings. Tried once here: a model that fails is reported."""
    from paddle_vit import deploy
    try:
        model, note = build_paddleclas(name, overrides)
    except PeerUnavailable as e:
        raise Unavailable(str(e)) from None
    except Exception as e:  # foreign code: reported, the table goes on
        raise Unavailable(f"PaddleClas's constructor failed: {type(e).__name__}: "
                          f"{(str(e).strip().splitlines() or [''])[0][:300]}") from None
    if path == "paddleclas_eager":
        call = paddle_call(model, x, device, precision)
        first_call(call, "PaddleClas's model fails on a forward pass")
        return call, note
    if precision != "fp32":
        raise Unavailable("not measured under autocast (the predictor has no amp switch)")
    try:
        prefix = deploy.export(model, os.path.join(workdir, EXPORTED_FILES[path]), x.shape)
    except Exception as e:  # to_static of a foreign model; its message ends with the original error
        last = (str(e).strip().splitlines() or [""])[-1].strip()[:300]
        raise Unavailable("paddle.jit.save of PaddleClas's model failed: "
                          + (last if last.startswith(type(e).__name__) else f"{type(e).__name__}: {last}")) from None
    predictor = deploy.InferencePredictor(prefix, threads, device)
    call = lambda: predictor(x)  # noqa: E731
    first_call(call, "Paddle Inference fails on PaddleClas's program")
    return call, note


def onnx_call(model, x, threads: int, device: str, workdir: str) -> Callable[[], Any]:
    """ONNX Runtime on ``model`` exported with ``deploy.export(format='onnx')`` (``workdir/model.onnx``).
    Not verified at export: the table's error column compares its output with torch_ref's."""
    from paddle_vit import deploy
    from paddle_vit.deploy_onnx import missing_extra
    why = missing_extra()
    if why:
        raise Unavailable(why)
    path = deploy.export(model, os.path.join(workdir, "model"), x.shape, format="onnx", verify=False)
    try:
        predictor = deploy.OnnxPredictor(path, threads, device)
    except ValueError as e:  # no CUDA execution provider
        raise Unavailable(str(e)) from None
    return lambda: predictor(x)


# --- timing ------------------------------------------------------------------------------
def synchronizer(device: str) -> Callable[[], None]:
    if device != "gpu":
        return lambda: None
    import paddle
    import torch

    def sync():
        torch.cuda.synchronize()
        paddle.device.synchronize()
    return sync


def time_round_robin(calls: dict[str, Callable[[], Any]], repeats: int, warmup: int, gap: float,
                     sync: Callable[[], None]) -> dict[str, list[tuple[float, float]]]:
    """``(wall, cpu)`` seconds per call of each path; each round runs every path once, starting
    from a different path each round so that no path always follows the same neighbour.
    ``cpu`` is the process CPU time (all threads): with one thread it hardly moves when other
    processes load the machine, so it is the steadier figure on a shared machine."""
    names = list(calls)
    for _ in range(warmup):
        for n in names:
            calls[n]()
            sync()
    samples: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    for r in range(repeats):
        for n in names[r % len(names):] + names[:r % len(names)]:
            time.sleep(gap)
            t0, c0 = time.perf_counter(), time.process_time()
            calls[n]()
            sync()
            samples[n].append((time.perf_counter() - t0, time.process_time() - c0))
    return samples


def output_error(ref: Any, got: Any) -> float:
    from paddle_vit.parity import error_stats
    return error_stats(ref, got).scaled


# --- memory (one subprocess per path) ----------------------------------------------------
def measure_memory_child(args: argparse.Namespace) -> None:
    """Child mode: build one path only, run it, print its memory figures as JSON."""
    name, path, batch, img_size = args.child
    batch, img_size = int(batch), int(img_size)
    overrides = json.loads(args.overrides)
    import numpy as np
    x = np.random.default_rng(0).standard_normal((batch, 3, img_size, img_size)).astype(np.float32)
    if path in ("onnxruntime", "timm_onnxruntime"):  # ONNX Runtime alone: neither framework is loaded
        import onnxruntime  # noqa: F401
    elif path in PADDLE_PATHS + PADDLECLAS_PATHS:
        import paddle  # noqa: F401
        import paddle_vit.models  # noqa: F401
    else:
        import torch
        torch.set_num_threads(args.threads)
        if path in ("timm", "timm_compile"):
            import timm  # noqa: F401
        import torch_ref.models  # noqa: F401
    base = rss_mb()
    if path in ("onnxruntime", "timm_onnxruntime"):
        from paddle_vit.deploy_onnx import OnnxPredictor
        predictor = OnnxPredictor(args.model_prefix, args.threads)
        call = lambda: predictor(x)  # noqa: E731
    elif path in ("paddle_infer", "paddleclas_infer"):
        from paddle_vit.deploy import InferencePredictor
        predictor = InferencePredictor(args.model_prefix, args.threads)
        call = lambda: predictor(x)  # noqa: E731
    elif path == "paddleclas_eager":
        call = paddle_call(build_paddleclas(name, overrides)[0], x, "cpu", "fp32")
    elif path in PADDLE_PATHS:
        from paddle_vit.deploy import to_static
        model = build_paddle(name, overrides, None)
        call = paddle_call(to_static(model, x.shape) if path == "paddle_static" else model, x, "cpu", "fp32")
    else:
        model = build_torch_ref(name, overrides) if path == "torch_ref" else build_timm(name, overrides, None)[0]
        # timm_compile: the peak includes the compiler's own memory (its first call compiles)
        call = torch_call(torch.compile(model) if path == "timm_compile" else model, x, "cpu", "fp32")
    for _ in range(3):
        call()
    print(json.dumps({"peak_rss_mb": peak_rss_mb(), "rss_growth_mb": peak_rss_mb() - base}))


def measure_memory(name: str, path: str, batch: int, img_size: int, overrides: dict[str, Any],
                   threads: int, model_prefix: str | None) -> dict[str, float]:
    cmd = [sys.executable, "-m", "paddle_vit.bench", "--child", name, path, str(batch), str(img_size),
           "--threads", str(threads), "--overrides", json.dumps(overrides)]
    if model_prefix:
        cmd += ["--model-prefix", model_prefix]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        raise RuntimeError(f"memory child failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
    return json.loads(lines[-1])


# --- one (model, batch) cell -------------------------------------------------------------
def bench_one(name: str, img_size: int, batch: int, args: argparse.Namespace, overrides: dict[str, Any],
              device: str, precision: str) -> list[Result]:
    results = {p: Result(name, device, precision, batch, img_size, p) for p in args.paths}
    with tempfile.TemporaryDirectory(prefix="paddle_vit_bench_") as workdir:
        try:
            calls, problems = build_paths(name, img_size, batch, args.paths, overrides, device, precision,
                                          args.threads, workdir)
        except Exception as e:  # a model that fails to build must not stop the whole table
            for r in results.values():
                r.status, r.reason = "error", f"build failed: {type(e).__name__}: {e}"
            return list(results.values())
        for p, why in problems.items():
            if p in results:
                results[p].reason = why
                if p not in calls:
                    results[p].status = "not available"
        calls = {p: c for p, c in calls.items() if p in results}
        if calls:
            outputs = {p: c() for p, c in calls.items()}
            if "torch_ref" in outputs:
                for p, out in outputs.items():
                    if p not in PADDLECLAS_PATHS:  # PaddleClas's own random weights: no common function
                        results[p].err_vs_torch_ref = output_error(outputs["torch_ref"], out)
            samples = time_round_robin(calls, args.repeats, args.warmup, args.gap, synchronizer(device))
            for p, pairs in samples.items():
                r, wall = results[p], [w for w, _ in pairs]
                q = statistics.quantiles(wall, n=4) if len(wall) > 1 else [wall[0]] * 3
                r.median_ms, r.p25_ms, r.p75_ms = 1e3 * statistics.median(wall), 1e3 * q[0], 1e3 * q[2]
                r.min_ms = 1e3 * min(wall)
                r.cpu_ms = 1e3 * statistics.median(c for _, c in pairs)
                r.images_per_s = batch / statistics.median(wall)
                r.samples_ms = [round(1e3 * t, 3) for t in wall]
            best_torch = max((results[p].images_per_s for p in TORCH_PATHS
                              if p in calls and results[p].images_per_s), default=None)
            for p in calls:
                if best_torch:
                    results[p].x_best_torch = results[p].images_per_s / best_torch
            if device == "gpu":
                record_device_memory(results, calls)
        if args.memory and device == "cpu":
            files = {p: os.path.join(workdir, f) for p, f in EXPORTED_FILES.items()}
            for p in calls:
                try:
                    results[p].__dict__.update(measure_memory(name, p, batch, img_size, overrides, args.threads,
                                                              files.get(p)))
                except Exception as e:  # memory is secondary: note it, keep the timings
                    results[p].reason = (results[p].reason + "; " if results[p].reason else "") + str(e)
    return list(results.values())


def record_device_memory(results: dict[str, Result], calls: dict[str, Callable[[], Any]]) -> None:
    """GPU: peak allocated device memory of one call of each path (the allocators' own counters)."""
    import paddle
    import torch
    for p, call in calls.items():
        if p in PADDLE_PATHS + PADDLECLAS_PATHS and p not in EXPORTED_PATHS:
            paddle.device.cuda.reset_max_memory_allocated()
            call()
            results[p].peak_device_mb = paddle.device.cuda.max_memory_allocated() / 2**20
        elif p in TORCH_PATHS:
            torch.cuda.reset_peak_memory_stats()
            call()
            results[p].peak_device_mb = torch.cuda.max_memory_allocated() / 2**20


# --- op-level profile --------------------------------------------------------------------
def profile_ops(name: str, img_size: int, batch: int, overrides: dict[str, Any], steps: int = 3) -> None:
    """Print where eager Paddle and eager torch_ref spend their time, operator by operator."""
    import numpy as np
    import paddle
    import paddle.profiler as profiler
    import torch
    x = np.random.default_rng(0).standard_normal((batch, 3, img_size, img_size)).astype(np.float32)
    tm = build_torch_ref(name, overrides)
    pm = build_paddle(name, overrides, tm.state_dict())
    p_call, t_call = paddle_call(pm, x, "cpu", "fp32"), torch_call(tm, x, "cpu", "fp32")
    for _ in range(2):  # warm-up (oneDNN primitive creation, allocator)
        p_call(), t_call()
    prof = profiler.Profiler(targets=[profiler.ProfilerTarget.CPU], on_trace_ready=lambda _: None)  # no trace files
    prof.start()
    for _ in range(steps):
        p_call()
        prof.step()
    prof.stop()
    print(f"\n== Paddle eager, {name}, batch {batch}, {steps} forward passes")
    prof.summary(sorted_by=profiler.SortedKeys.CPUTotal, op_detail=False, thread_sep=False, time_unit="ms",
                 views=[profiler.SummaryView.OperatorView])
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as tprof:
        for _ in range(steps):
            t_call()
    print(f"\n== torch_ref eager, {name}, batch {batch}, {steps} forward passes")
    print(tprof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


# --- report ------------------------------------------------------------------------------
def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def table(results: list[Result]) -> str:
    head = (f"{'model':30s} {'dev/prec':12s} {'B':>2s} {'path':16s} {'ms/batch':>9s} {'min ms':>8s} {'cpu ms':>8s} {'img/s':>8s} "
            f"{'x best torch':>12s} {'peak RSS MB':>11s} {'+RSS MB':>8s} {'err vs ref':>10s}  note")
    lines = [head, "-" * len(head)]
    for r in results:
        mem = _fmt(r.peak_device_mb, ".0f") if r.device == "gpu" else _fmt(r.peak_rss_mb, ".0f")
        note = r.reason if r.status == "ok" else f"{r.status}: {r.reason}"
        lines.append(f"{r.model:30s} {r.device + '/' + r.precision:12s} {r.batch:>2d} {r.path:16s} "
                     f"{_fmt(r.median_ms, '9.1f')} {_fmt(r.min_ms, '8.1f')} {_fmt(r.cpu_ms, '8.1f')} "
                     f"{_fmt(r.images_per_s, '8.1f')} {_fmt(r.x_best_torch, '12.2f')} "
                     f"{mem:>11s} {_fmt(r.rss_growth_mb, '8.0f')} {_fmt(r.err_vs_torch_ref, '10.1e')}  {note}")
    return "\n".join(lines)


def fastest(results: list[Result]) -> list[dict[str, Any]]:
    """The fastest measured path of each (model, device, precision, batch), with its throughput."""
    best: dict[tuple, Result] = {}
    for r in results:
        key = (r.model, r.device, r.precision, r.batch)
        if r.images_per_s and (key not in best or r.images_per_s > best[key].images_per_s):
            best[key] = r
    return [{"model": r.model, "device": r.device, "precision": r.precision, "batch": r.batch, "path": r.path,
             "images_per_s": r.images_per_s, "x_best_torch": r.x_best_torch} for r in best.values()]


def fastest_lines(rows: list[dict[str, Any]]) -> str:
    return "\n".join(f"fastest: {r['model']} {r['device']}/{r['precision']} batch {r['batch']}: {r['path']} "
                     f"({_fmt(r['images_per_s'], '.1f')} img/s, {_fmt(r['x_best_torch'], '.2f')}x the best torch path)"
                     for r in rows)


def peer_summary(results: list[Result]) -> list[dict[str, Any]]:
    """Per (model, device, precision, batch) with a peer path: paddle_vit's best path and its
    throughput as a ratio to PaddleClas's best path and to timm_onnxruntime (``None`` where one
    of the two did not run)."""
    cells: dict[tuple, dict[str, Result]] = {}
    for r in results:
        if r.images_per_s:
            cells.setdefault((r.model, r.device, r.precision, r.batch), {})[r.path] = r
    rows = []
    for (model, device, precision, batch), by_path in cells.items():
        ours = max((r for p, r in by_path.items() if p in PADDLE_PATHS), key=lambda r: r.images_per_s, default=None)
        clas = max((r for p, r in by_path.items() if p in PADDLECLAS_PATHS), key=lambda r: r.images_per_s,
                   default=None)
        ort = by_path.get("timm_onnxruntime")
        if ours is None or (clas is None and ort is None):
            continue
        peer = PADDLECLAS_MODELS.get(model)
        rows.append({"model": model, "device": device, "precision": precision, "batch": batch,
                     "paddle_vit_path": ours.path, "paddle_vit_images_per_s": ours.images_per_s,
                     "paddleclas_path": clas and clas.path, "paddleclas_images_per_s": clas and clas.images_per_s,
                     "x_paddleclas": clas and ours.images_per_s / clas.images_per_s,
                     # the note names the differences where they apply (not at the dry run's sizes)
                     "paddleclas_same_architecture": (None if clas is None else
                                                      not (peer.differences and peer.differences in clas.reason)),
                     "timm_onnxruntime_images_per_s": ort and ort.images_per_s,
                     "x_timm_onnxruntime": ort and ours.images_per_s / ort.images_per_s})
    return rows


def peer_lines(rows: list[dict[str, Any]]) -> str:
    out = []
    for r in rows:
        clas = ("PaddleClas not measured" if r["paddleclas_path"] is None else
                f"{r['x_paddleclas']:.2f}x PaddleClas's best ({r['paddleclas_path']}, "
                f"{r['paddleclas_images_per_s']:.1f} img/s"
                + ("" if r["paddleclas_same_architecture"] else "; differs from timm's, see its note") + ")")
        ort = ("timm_onnxruntime not measured" if r["timm_onnxruntime_images_per_s"] is None else
               f"{r['x_timm_onnxruntime']:.2f}x timm_onnxruntime ({r['timm_onnxruntime_images_per_s']:.1f} img/s)")
        out.append(f"peers: {r['model']} {r['device']}/{r['precision']} batch {r['batch']}: paddle_vit's best "
                   f"{r['paddle_vit_path']} ({r['paddle_vit_images_per_s']:.1f} img/s) = {clas}, {ort}")
    return "\n".join(out)


def markdown_table(results: list[dict[str, Any]]) -> str:
    """The results of a JSON file as a markdown table (for BENCHMARKS.md)."""
    lines = ["| model | device | B | path | median ms | min ms | CPU ms | img/s | x best torch | peak RSS MB | +RSS MB |",
             "|---|---|--:|---|--:|--:|--:|--:|--:|--:|--:|"]
    for r in results:
        if r["status"] != "ok":
            lines.append(f"| {r['model']} | {r['device']}/{r['precision']} | {r['batch']} | {r['path']} "
                         f"| {r['status']}: {r['reason']} |||||||")
            continue
        lines.append(f"| {r['model']} | {r['device']}/{r['precision']} | {r['batch']} | {r['path']} "
                     f"| {_fmt(r['median_ms'], '.1f')} | {_fmt(r['min_ms'], '.1f')} | {_fmt(r['cpu_ms'], '.1f')} "
                     f"| {_fmt(r['images_per_s'], '.1f')} | {_fmt(r['x_best_torch'], '.2f')} "
                     f"| {_fmt(r['peak_rss_mb'], '.0f')} | {_fmt(r['rss_growth_mb'], '.0f')} |")
    return "\n".join(lines)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The bench's options, on ``ap`` (also ``paddle-vit bench``'s)."""
    ap.formatter_class = argparse.RawDescriptionHelpFormatter
    ap.epilog = __doc__.split("\n\n", 1)[1]
    ap.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS),
                    help="variant names (default: the four of the performance issue, Swin V2-T and a DINOv2 with "
                         "registers); size from the table or the variant")
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8])
    ap.add_argument("--paths", nargs="+", choices=ALL_PATHS + PEER_PATHS, default=list(ALL_PATHS))
    ap.add_argument("--peers", action="store_true",
                    help="also PaddleClas's equivalent models (eager, Inference; pip install --no-deps paddleclas) "
                         "and timm exported to ONNX Runtime")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="for both frameworks")
    ap.add_argument("--repeats", type=int, default=15, help="timed rounds (median over them)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    ap.add_argument("--gap", type=float, default=0.25, help="seconds of sleep before each timed call")
    ap.add_argument("--memory", action=argparse.BooleanOptionalAction, default=None,
                    help="peak RSS per path, one subprocess each (CPU; default: on, off for --quick/--dry-run)")
    ap.add_argument("--device", choices=["cpu", "gpu", "all"], default="all",
                    help="'all': CPU, plus GPU (fp32 and --gpu-precision autocast) when both frameworks see one")
    ap.add_argument("--gpu-precision", choices=["bfloat16", "float16"], default="bfloat16")
    ap.add_argument("--quick", action="store_true", help="ViT-S/16, batch 1, 5 repeats, no memory")
    ap.add_argument("--dry-run", action="store_true", help="a tiny one-block ViT, one repeat: checks the machinery")
    ap.add_argument("--out", default="bench_results.json", help="JSON results file")
    ap.add_argument("--markdown", metavar="JSON", help="print the results of a JSON file as a markdown table, then exit")
    ap.add_argument("--profile", action="store_true",
                    help="instead of timing: Paddle's and torch's op-level profiles of the eager paths")
    # internal: one memory measurement (see measure_memory)
    ap.add_argument("--child", nargs=4, metavar=("MODEL", "PATH", "BATCH", "IMG"), help=argparse.SUPPRESS)
    ap.add_argument("--overrides", default="{}", help=argparse.SUPPRESS)
    ap.add_argument("--model-prefix", default=None, help=argparse.SUPPRESS)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="paddle-vit bench", description=__doc__.split("\n\n")[0])
    add_arguments(ap)
    args = ap.parse_args(argv)
    try:
        return finish_args(args)
    except ValueError as exc:
        ap.error(str(exc))


def finish_args(args: argparse.Namespace) -> argparse.Namespace:
    """Check the options and apply ``--quick`` / ``--dry-run`` (once); ``ValueError`` on a bad value."""
    if getattr(args, "_finished", False):
        return args
    if args.threads < 1 or args.repeats < 1 or args.warmup < 0 or args.gap < 0:
        raise ValueError("need --threads >= 1, --repeats >= 1, --warmup >= 0, --gap >= 0")
    if args.quick:
        args.models, args.batch_sizes, args.repeats, args.warmup = ["vit_small_patch16_224"], [1], 5, 1
    if args.dry_run:
        args.batch_sizes, args.repeats, args.warmup, args.gap = [2], 1, 0, 0.0
    if args.memory is None:
        args.memory = not (args.quick or args.dry_run)
    if args.peers:
        args.paths = list(args.paths) + [p for p in PEER_PATHS if p not in args.paths]
    args._finished = True
    return args


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Run the bench as ``args`` says (``paddle-vit bench``); 0 on success."""
    args = finish_args(args)
    if args.markdown:
        print(markdown_table(json.loads(Path(args.markdown).read_text())["results"]))
        return 0
    set_threads(args.threads)
    if args.child:
        measure_memory_child(args)
        return 0
    import torch
    torch.set_num_threads(args.threads)
    gpu_ok, gpu_why = gpu_status()
    if args.dry_run:
        name, size, overrides = DRY_RUN_MODEL
        models = {name: (size, overrides)}
        print(f"dry run: {name} shrunk to {overrides}")
    else:
        from paddle_vit.variants import VARIANTS
        models = {m: (DEFAULT_MODELS.get(m) or VARIANTS.get(m, ("", {}))[1].get("img_size", 224), {})
                  for m in args.models}
    targets = [("cpu", "fp32")] if args.device in ("cpu", "all") else []
    if args.device in ("gpu", "all"):
        if gpu_ok:
            targets += [("gpu", "fp32"), ("gpu", args.gpu_precision)]
        elif args.device == "gpu":
            print(f"GPU requested but {gpu_why}", file=sys.stderr)
            return 2
    if args.profile:
        for name, (size, overrides) in models.items():
            for batch in args.batch_sizes:
                try:
                    profile_ops(name, size, batch, overrides)
                except Unavailable as e:
                    print(f"{name}: not available: {e}")
        return 0
    meta = {"command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "cpu": cpu_name(), "cores": os.cpu_count(),
            "threads": args.threads, "versions": versions(),
            "env": {k: os.environ.get(k, "") for k in ("OMP_NUM_THREADS", "MKL_DEBUG_CPU_TYPE", "KMP_BLOCKTIME")},
            "repeats": args.repeats, "warmup": args.warmup, "gap_s": args.gap,
            "gpu": gpu_why if gpu_ok else f"skipped: {gpu_why}",
            "loadavg_before": os.getloadavg()}
    print(f"threads: {args.threads} for paddle and torch (OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, "
          f"MKL_DEBUG_CPU_TYPE={os.environ.get('MKL_DEBUG_CPU_TYPE', 'unset')}); cpu: {meta['cpu']}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()))
    print(f"GPU: {meta['gpu']}")
    print("load average before: %.2f %.2f %.2f (other processes on these cores make timings noisy)"
          % meta["loadavg_before"], flush=True)
    results: list[Result] = []
    for device, precision in targets:
        for name, (size, overrides) in models.items():
            for batch in args.batch_sizes:
                rows = bench_one(name, size, batch, args, overrides, device, precision)
                results += rows
                print(table(rows).split("\n", 2)[2], flush=True)
    meta["loadavg_after"] = os.getloadavg()
    print("\n" + table(results))
    best = fastest(results)
    print(fastest_lines(best))
    peers = peer_summary(results)
    if peers:
        print(peer_lines(peers))
    print("load average after: %.2f %.2f %.2f" % meta["loadavg_after"])
    Path(args.out).write_text(json.dumps({"meta": meta, "results": [asdict(r) for r in results], "fastest": best,
                                         "peers": peers},
                                         indent=1))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
