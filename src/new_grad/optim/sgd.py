"""Stochastic gradient descent with PyTorch's exact update rule."""

from __future__ import annotations

from typing import Any

from ..errors import NewGradError
from .optimizer import Optimizer


class SGD(Optimizer):
    """``p -= lr · v`` where ``v`` adds weight decay, momentum (with dampening) and Nesterov.

    Per step, as in ``torch.optim.SGD``: ``g = grad + wd·p``; with momentum
    ``buf = g`` on the first step, then ``buf = μ·buf + (1 − dampening)·g``;
    ``g = g + μ·buf`` if Nesterov, else ``g = buf``; ``p -= lr·g``.
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise NewGradError(f"SGD: lr={lr}, momentum={momentum}, weight_decay={weight_decay} must be ≥ 0")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise NewGradError("SGD: Nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(
            params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov)
        )

    def step(self) -> None:
        for group in self.param_groups:
            lr, mu, damp = group["lr"], group["momentum"], group["dampening"]
            wd, nesterov = group["weight_decay"], group["nesterov"]
            for p, grad in group["params"]:
                g = grad
                if wd:
                    g = g + wd * p
                if mu:
                    state = self.state.setdefault(id(p), {})
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = g.copy()
                    else:
                        buf *= mu
                        buf += (1 - damp) * g if damp else g
                    g = g + mu * buf if nesterov else buf
                p -= lr * g
