"""Training-step parity: the same model in both frameworks, train mode, cross-entropy, backward and
SGD with momentum; losses, every gradient, every updated weight and every BatchNorm running
statistic compared (through the converter's routes, so a wrongly mapped tensor shows)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import paddle
import torch
import torch.nn.functional as TF

from harness import sync
from paddle_vit.convert import Route
from paddle_vit.parity import Tolerance, as_numpy, assert_close, tolerance
from paddle_vit.parity.tolerances import ZERO_GRADIENT


def check_state(tm: torch.nn.Module, pm: paddle.nn.Layer, routes: Sequence[Route], tol: Tolerance, when: str) -> None:
    """Every routed tensor (weights and BatchNorm statistics) of ``pm`` against ``tm``'s."""
    t_state, p_state = tm.state_dict(), pm.state_dict()
    for route in routes:
        ref = as_numpy(t_state[route.src])
        assert_close(ref.T if route.transform == "linear" else ref, p_state[route.dst], tol, f"{route.src} {when}")


def check_step_grads(tm: torch.nn.Module, pm: paddle.nn.Layer, routes: Sequence[Route], tol: Tolerance,
                     when: str) -> None:
    """Every parameter gradient after a training backward. A gradient that is zero in exact arithmetic
    (torch's below ``ZERO_GRADIENT`` of the step's largest) must be as small in Paddle, see tolerances.py."""
    t_params, p_params = dict(tm.named_parameters()), dict(pm.named_parameters())
    pairs = []
    for route in routes:
        if route.src not in t_params:
            continue  # BatchNorm statistics
        tg, pg = t_params[route.src].grad, p_params[route.dst].grad
        assert tg is not None and pg is not None, f"grad of {route.src} {when}: missing on one side"
        tg = as_numpy(tg)
        pairs.append((route.src, tg.T if route.transform == "linear" else tg, as_numpy(pg)))
    floor = ZERO_GRADIENT * max(float(np.abs(tg).max()) for _, tg, _ in pairs)
    for src, tg, pg in pairs:
        if float(np.abs(tg).max()) <= floor:
            assert float(np.abs(pg).max()) <= floor, (
                f"grad of {src} {when}: zero in exact arithmetic (torch max {np.abs(tg).max():.2e}), "
                f"Paddle's max is {np.abs(pg).max():.2e} > {floor:.2e}")
        else:
            assert_close(tg, pg, tol, f"grad of {src} {when}")


def check_batchnorm_config(tm: torch.nn.Module, pm: paddle.nn.Layer, routes: Sequence[Route]) -> int:
    """Each torch BatchNorm's twin (found through the route of its weight) has the same ``eps`` and
    Paddle momentum ``1 - torch momentum``. Returns how many pairs were checked."""
    t_mods, p_mods = dict(tm.named_modules()), dict(pm.named_sublayers(include_self=True))
    checked = 0
    for route in routes:
        owner, _, leaf = route.src.rpartition(".")
        if leaf != "weight" or not isinstance(t_mods.get(owner), torch.nn.modules.batchnorm._BatchNorm):
            continue
        t_bn, p_bn = t_mods[owner], p_mods[route.dst.rpartition(".")[0]]
        assert isinstance(p_bn, paddle.nn.layer.norm._BatchNormBase), f"{owner}: twin is {type(p_bn).__name__}"
        assert p_bn._epsilon == t_bn.eps, f"{owner}: eps {p_bn._epsilon} in Paddle, {t_bn.eps} in torch"
        assert abs(p_bn._momentum - (1.0 - t_bn.momentum)) < 1e-12, (
            f"{owner}: Paddle momentum {p_bn._momentum}, torch {t_bn.momentum} (need 1 - torch's)")
        checked += 1
    return checked


def check_training_steps(tm: torch.nn.Module, pm: paddle.nn.Layer, routes: Sequence[Route], x: np.ndarray,
                         labels: np.ndarray, steps: int = 2, lr: float = 0.1, momentum: float = 0.9,
                         weight_decay: float = 1e-4) -> list[float]:
    """``steps`` training steps on both sides; raises ``AssertionError`` naming the first tensor that
    differs. Returns the torch losses.

    Every step after the first starts from the same weights (torch's, copied into Paddle through
    the converter; the optimizers keep their momentum buffers), so each comparison measures one
    step: in an untrained network a 1e-5 difference in the weights grows ~10x per step (the loss
    moves by 0.2 at lr 1e-3), which says nothing about the port. The second step is where SGD's
    momentum buffer enters (the first step is ``lr * grad`` in both frameworks).

    The reference is ``tm`` in float64 (converted in place): train-mode BatchNorm over few values
    per channel amplifies rounding, and torch's own float32 gradients then sit up to ~6e-5 from the
    exact ones (tiny EfficientNetV2-S); judged against the exact answer, Paddle's float32 error is
    its own, not the sum of two frameworks' roundings."""
    tol = tolerance("model")
    tm.double()
    tm.train()
    pm.train()
    t_opt = torch.optim.SGD(tm.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    # Paddle lists BatchNorm statistics among parameters (stop_gradient): the optimizer gets the trainable ones.
    p_opt = paddle.optimizer.Momentum(learning_rate=lr, momentum=momentum, weight_decay=weight_decay,
                                      parameters=[p for p in pm.parameters() if not p.stop_gradient])
    losses = []
    for step in range(steps):
        if step:
            sync(tm, pm, source="torch_ref")
        t_loss = TF.cross_entropy(tm(torch.tensor(x, dtype=torch.float64)), torch.tensor(labels))
        p_loss = paddle.nn.functional.cross_entropy(pm(paddle.to_tensor(x)), paddle.to_tensor(labels))
        assert_close(t_loss, p_loss, tol, f"loss at step {step}")
        t_loss.backward()
        p_loss.backward()
        check_step_grads(tm, pm, routes, tol, f"at step {step}")
        t_opt.step()
        p_opt.step()
        t_opt.zero_grad()
        p_opt.clear_grad()
        check_state(tm, pm, routes, tol, f"after step {step}")
        losses.append(float(t_loss.detach()))
    return losses

