"""Stochastic gradient descent with PyTorch's exact update rule."""

from __future__ import annotations

from typing import Any

from ..errors import OptimizerError
from .optimizer import Optimizer, _check, _direction


class SGD(Optimizer):
    """``p -= lr · v`` where ``v`` adds weight decay, momentum (with dampening) and Nesterov.

    Per step, as in ``torch.optim.SGD``: ``g = grad + wd·p``; with momentum
    ``buf = g`` on the first step, then ``buf = μ·buf + (1 − dampening)·g``;
    ``g = g + μ·buf`` if Nesterov, else ``g = buf``; ``p -= lr·g``.
    ``maximize`` ascends instead (``g = −grad``).
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        _check("SGD", defaults, "lr", "momentum", "weight_decay")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise OptimizerError("SGD: Nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, defaults)

    def _step_group(self, group: dict[str, Any]) -> None:
        lr, mu, damp = group["lr"], group["momentum"], group["dampening"]
        wd, nesterov, maximize = group["weight_decay"], group["nesterov"], group["maximize"]
        for p, grad in group["params"]:
            g = _direction(p, grad, maximize, wd)
            if mu != 0:
                state = self.state.setdefault(id(p), {})
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = g.copy()
                else:
                    buf *= mu
                    buf += (1 - damp) * g if damp else g  # (1 − 0)·g is g: skip the temporary
                g = g + mu * buf if nesterov else buf
            p += -lr * g
