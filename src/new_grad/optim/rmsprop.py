"""RMSprop, following ``torch.optim.RMSprop``'s single-tensor update step by step."""

from __future__ import annotations

from typing import Any

from ..backends import namespace
from .optimizer import Optimizer, _check, _direction, _lerp


class RMSprop(Optimizer):
    """Divide the gradient by a running RMS: ``s ← αs + (1−α)g²``, ``p −= lr·g / (√s + ε)``.

    ``centered`` subtracts the squared running mean of ``g`` from ``s`` (an
    estimate of the variance); ``momentum`` accumulates ``g / (√s + ε)`` in a
    buffer and steps along it. Operation order as in PyTorch.
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
        )
        _check("RMSprop", defaults, "lr", "alpha", "eps", "weight_decay", "momentum")
        super().__init__(params, defaults)

    def _step_group(self, group: dict[str, Any]) -> None:
        lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
        wd, momentum, centered = group["weight_decay"], group["momentum"], group["centered"]
        for p, grad in group["params"]:
            xp = namespace(p)
            g = _direction(p, grad, group["maximize"], wd)
            state = self.state.setdefault(id(p), {})
            if not state:
                state["step"] = 0.0
                state["square_avg"] = xp.zeros_like(p)
            if momentum > 0 and "momentum_buffer" not in state:
                state["momentum_buffer"] = xp.zeros_like(p)
            if centered and "grad_avg" not in state:
                state["grad_avg"] = xp.zeros_like(p)
            state["step"] += 1
            square_avg = state["square_avg"]
            square_avg *= alpha
            square_avg += (1 - alpha) * g * g
            if centered:
                grad_avg = state["grad_avg"]
                _lerp(grad_avg, g, 1 - alpha)
                avg = xp.sqrt(square_avg + -1 * grad_avg * grad_avg)
            else:
                avg = xp.sqrt(square_avg)
            avg += eps
            if momentum > 0:
                buf = state["momentum_buffer"]
                buf *= momentum
                buf += g / avg
                p += -lr * buf
            else:
                p += -lr * g / avg
