"""Stochastic gradient descent with PyTorch's exact update rule."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import OptimizerError
from .optimizer import Optimizer, _check, _direction

#: elements per slice of a plain update: ``lr·grad`` goes through a scratch buffer this long, which stays
#: in the CPU cache (a whole-array temporary of a large weight falls out of it, and costs about half again)
_CHUNK = 1 << 16


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
        if mu == 0 and wd == 0 and not maximize and type(lr) in (float, int):
            self._plain_step(group["params"], lr)
            return
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

    def _plain_step(self, pairs: list, lr: float) -> None:
        """``p -= lr·grad`` for every pair without a whole-array temporary: bitwise ``p += -lr·grad``."""
        scratch: dict[Any, Any] = self.__dict__.setdefault("_scratch", {})
        for p, grad in pairs:
            n = p.size
            if type(p) is not np.ndarray or type(grad) is not np.ndarray or p.dtype != grad.dtype or n == 0:
                p += -lr * grad  # another array library (one kernel either way), or mixed dtypes
                continue
            buf = scratch.get(p.dtype)
            if buf is None:
                buf = scratch[p.dtype] = np.empty(_CHUNK, p.dtype)
            if n <= _CHUNK:
                s = buf[:n].reshape(p.shape)
                np.multiply(grad, lr, out=s)
                np.subtract(p, s, out=p)
            elif p.flags.c_contiguous and grad.flags.c_contiguous:
                pf, gf = p.reshape(-1), grad.reshape(-1)
                for i in range(0, n, _CHUNK):
                    pc = pf[i : i + _CHUNK]
                    s = buf[: pc.size]
                    np.multiply(gf[i : i + _CHUNK], lr, out=s)
                    np.subtract(pc, s, out=pc)
            else:
                p += -lr * grad
