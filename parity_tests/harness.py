"""The shared-weight parity harness: one torch module, its Paddle twin, the same weights
(copied through the real converter) and the same input; outputs and gradients compared."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import paddle
import pytest
import torch

from paddle_vit.convert import Route, convert_state_dict, load_state_dict_strict, plan_for
from paddle_vit.parity import Tolerance, as_numpy, assert_close, tolerance
from torch_ref.random_weights import randomize_  # noqa: F401  (re-exported for the tests)


def gpu_available() -> tuple[bool, str]:
    if not torch.cuda.is_available():
        return False, "no GPU visible to torch"
    if not paddle.device.is_compiled_with_cuda() or paddle.device.cuda.device_count() < 1:
        return False, "no GPU visible to Paddle (the CPU wheel is installed; see README, GPU)"
    return True, ""


_GPU, _WHY = gpu_available()
DEVICES = ["cpu", pytest.param("gpu", marks=[pytest.mark.gpu, pytest.mark.skipif(not _GPU, reason=_WHY)])]


def use_device(device: str) -> str:
    """Point Paddle at ``device`` and return torch's name for it."""
    paddle.set_device("gpu" if device == "gpu" else "cpu")
    if device == "gpu":
        from paddle_vit.parity.layerwise import disable_tf32
        disable_tf32()
    return "cuda" if device == "gpu" else "cpu"


def sync(torch_module: torch.nn.Module, paddle_module: paddle.nn.Layer, source: str = "torch_ref",
         state: dict | None = None) -> list[Route]:
    """Copy the torch weights into Paddle through the converter; return the routes used."""
    state = torch_module.state_dict() if state is None else state
    routes = plan_for(state, paddle_module, source)
    load_state_dict_strict(paddle_module, convert_state_dict(state, paddle_module, source))
    return routes


def pair(torch_cls: Callable, paddle_cls: Callable, *args: Any, seed: int = 0, device: str = "cpu",
         **kwargs: Any) -> tuple[torch.nn.Module, paddle.nn.Layer, list[Route]]:
    """Build ``cls(*args, **kwargs)`` in both frameworks with the same (random) weights, in eval mode."""
    tdev = use_device(device)
    torch.manual_seed(seed)
    tm = randomize_(torch_cls(*args, **kwargs), seed).eval().to(tdev)
    pm = paddle_cls(*args, **kwargs)
    pm.eval()
    routes = sync(tm.cpu(), pm)
    return tm.to(tdev), pm, routes


def random_input(shape: Sequence[int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _outputs(out: Any) -> list[Any]:
    return [o for o in (out if isinstance(out, (tuple, list)) else (out,)) if o is not None]


def check_parity(tm: torch.nn.Module, pm: paddle.nn.Layer, routes: list[Route], inputs: Sequence[np.ndarray],
                 call: Callable[[Any, list], Any] = lambda m, xs: m(*xs), kind: str = "layer",
                 device: str = "cpu", backward: bool = True, names: Sequence[str] | None = None) -> None:
    """Forward: every output; backward (``sum(out * w)`` with a fixed random ``w``): the gradient
    of every input and of every parameter, mapped through the converter's routes."""
    tol: Tolerance = tolerance(kind, "float32", device)
    tdev = "cuda" if device == "gpu" else "cpu"
    tx = [torch.tensor(x, device=tdev, requires_grad=backward) for x in inputs]
    px = [paddle.to_tensor(x, stop_gradient=not backward) for x in inputs]
    t_out, p_out = _outputs(call(tm, tx)), _outputs(call(pm, px))
    assert len(t_out) == len(p_out), f"torch returned {len(t_out)} outputs, paddle {len(p_out)}"
    names = list(names or [f"output[{i}]" for i in range(len(t_out))])
    for name, t, p in zip(names, t_out, p_out):
        assert_close(t, p, tol, name)
    if not backward:
        return
    weights = [random_input(t.shape, seed=100 + i) for i, t in enumerate(t_out)]
    sum(((t * torch.tensor(w, device=tdev)).sum() for t, w in zip(t_out, weights)), torch.zeros((), device=tdev)).backward()
    paddle.add_n([(p * paddle.to_tensor(w)).sum() for p, w in zip(p_out, weights)]).backward()
    grad_tol = tolerance("model", "float32", device)
    for i, (t, p) in enumerate(zip(tx, px)):
        if t.grad is not None or p.grad is not None:
            assert t.grad is not None and p.grad is not None, f"input[{i}]: gradient missing on one side"
            assert_close(t.grad, p.grad, grad_tol, f"grad of input[{i}]")
    check_param_grads(tm, pm, routes, grad_tol)


def check_param_grads(tm: torch.nn.Module, pm: paddle.nn.Layer, routes: list[Route], tol: Tolerance) -> None:
    """Every parameter gradient; one that is zero in exact arithmetic (torch's below ``ZERO_GRADIENT``
    of the largest, see tolerances.py) must be as small in Paddle instead of matching noise to noise."""
    from paddle_vit.parity.tolerances import ZERO_GRADIENT
    t_params, p_params = dict(tm.named_parameters()), dict(pm.named_parameters())
    pairs = []
    for route in routes:
        if route.src not in t_params:
            continue  # a buffer (BatchNorm statistics): no gradient
        tg, pg = t_params[route.src].grad, p_params[route.dst].grad
        if tg is None and pg is None:
            continue
        assert tg is not None and pg is not None, f"grad of {route.src}: missing on one side"
        tg = as_numpy(tg)
        pairs.append((route.src, tg.T if route.transform == "linear" else tg, as_numpy(pg)))
    floor = ZERO_GRADIENT * max([float(np.abs(t).max()) for _, t, _ in pairs] or [0.0])
    for src, tg, pg in pairs:
        if float(np.abs(tg).max()) <= floor:
            assert float(np.abs(pg).max()) <= floor, (f"grad of {src}: zero in exact arithmetic (torch max "
                                                      f"{np.abs(tg).max():.2e}), Paddle's max is {np.abs(pg).max():.2e}")
        else:
            assert_close(tg, pg, tol, f"grad of {src}")


def first_diverging_layer(tm: torch.nn.Module, pm: paddle.nn.Layer, inputs: Sequence[np.ndarray],
                          call: Callable[[Any, list], Any] = lambda m, xs: m(*xs), backward: bool = True) -> str:
    """For a failing model-level comparison: one line naming the first layer whose output (or,
    if every output agrees, whose gradient) leaves the tolerance, from the layer-by-layer tool."""
    from paddle_vit.parity.layerwise import compare
    try:
        return compare(tm, pm, list(inputs), call=call, backward=backward).summary()
    except Exception as exc:  # the diagnosis must never hide the original failure
        return f"(layer-by-layer diagnosis failed: {type(exc).__name__}: {exc})"


def check_model_parity(tm: torch.nn.Module, pm: paddle.nn.Layer, routes: list[Route], inputs: Sequence[np.ndarray],
                       **kwargs: Any) -> None:
    """``check_parity(kind='model')``; on failure the message also names the first diverging layer."""
    try:
        check_parity(tm, pm, routes, inputs, kind="model", **kwargs)
    except AssertionError as exc:
        where = first_diverging_layer(tm, pm, inputs, kwargs.get("call", lambda m, xs: m(*xs)),
                                      kwargs.get("backward", True))
        raise AssertionError(f"{exc}\n{where}") from None
