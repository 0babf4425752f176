"""Adam and AdamW (with AMSGrad), following ``torch.optim.Adam``'s single-tensor update step by step."""

from __future__ import annotations

from typing import Any

from ..backends import namespace
from ..errors import OptimizerError
from .optimizer import Optimizer, _check, _direction, _lerp


class Adam(Optimizer):
    """Adaptive moments: ``m ← β₁m + (1−β₁)g``, ``v ← β₂v + (1−β₂)g²``, ``p −= lr·m̂ / (√v̂ + ε)``.

    The floating-point operations run in PyTorch's order (bias corrections on the
    step size and on ``√v``; ``ε`` added after the correction), so float64
    trajectories match ``torch.optim.Adam`` to rounding. ``amsgrad`` normalises by
    the running maximum of ``v``; ``decoupled_weight_decay`` (AdamW) shrinks ``p``
    by ``1 − lr·wd`` instead of adding ``wd·p`` to the gradient.
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ) -> None:
        name = type(self).__name__
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        _check(name, defaults, "lr", "eps", "weight_decay")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise OptimizerError(f"{name}: invalid betas {tuple(betas)}; each must be in [0, 1)")
        super().__init__(params, defaults)

    def _step_group(self, group: dict[str, Any]) -> None:
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        wd, amsgrad, decoupled = group["weight_decay"], group["amsgrad"], group["decoupled_weight_decay"]
        for p, grad in group["params"]:
            xp = namespace(p)
            g = _direction(p, grad, group["maximize"], 0.0 if decoupled else wd)  # AdamW decays p below
            state = self.state.setdefault(id(p), {})
            if not state:
                state["step"] = 0.0
                state["exp_avg"] = xp.zeros_like(p)
                state["exp_avg_sq"] = xp.zeros_like(p)
                if amsgrad:
                    state["max_exp_avg_sq"] = xp.zeros_like(p)
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            state["step"] += 1
            step = state["step"]
            if wd != 0 and decoupled:
                p *= 1 - lr * wd
            _lerp(exp_avg, g, 1 - beta1)
            exp_avg_sq *= beta2
            exp_avg_sq += (1 - beta2) * g * g
            bias_correction1 = 1 - beta1**step
            bias_correction2 = 1 - beta2**step
            step_size = lr / bias_correction1
            bias_correction2_sqrt = bias_correction2**0.5
            if amsgrad:
                if "max_exp_avg_sq" not in state:  # amsgrad switched on after the first step
                    state["max_exp_avg_sq"] = xp.zeros_like(p)
                xp.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
                denom = xp.sqrt(state["max_exp_avg_sq"]) / bias_correction2_sqrt
            else:
                denom = xp.sqrt(exp_avg_sq) / bias_correction2_sqrt
            denom += eps
            p += -step_size * exp_avg / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): ``p ← p·(1 − lr·wd)`` before the Adam step."""

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize, decoupled_weight_decay=True)
