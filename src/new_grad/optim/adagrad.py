"""Adagrad, following ``torch.optim.Adagrad``'s single-tensor update step by step."""

from __future__ import annotations

from typing import Any

from ..backends import namespace
from .optimizer import Optimizer, _check, _direction


class Adagrad(Optimizer):
    """Per-coordinate step sizes from the sum of squared gradients: ``p −= clr·g / (√Σg² + ε)``.

    ``clr = lr / (1 + (step − 1)·lr_decay)``; the sums start at
    ``initial_accumulator_value`` and are created at construction, as in PyTorch.
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            eps=eps,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            maximize=maximize,
        )
        _check("Adagrad", defaults, "lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")
        super().__init__(params, defaults)  # add_param_group creates the sums

    def _init_state(self, p: Any, initial: float) -> dict[str, Any]:
        state = self.state.get(id(p))
        if state is None:
            state = self.state[id(p)] = {"step": 0.0, "sum": namespace(p).full_like(p, initial)}
        return state

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        for p, _ in group["params"]:
            self._init_state(p, group["initial_accumulator_value"])

    def _step_group(self, group: dict[str, Any]) -> None:
        lr, lr_decay, eps, wd = group["lr"], group["lr_decay"], group["eps"], group["weight_decay"]
        for p, grad in group["params"]:
            xp = namespace(p)
            state = self._init_state(p, group["initial_accumulator_value"])
            state["step"] += 1
            step = state["step"]
            g = _direction(p, grad, group["maximize"], wd)
            clr = lr / (1 + (step - 1) * lr_decay)
            state["sum"] += g * g
            std = xp.sqrt(state["sum"])
            std += eps
            p += -clr * g / std
