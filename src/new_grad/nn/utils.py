"""Gradient clipping, in place on the gradient arrays, with ``torch.nn.utils``' names and arithmetic.

``parameters`` is what optimisers take — ``model.parameters()`` ((param, grad)
pairs) or a model — or plainly the gradient arrays themselves (one array or an
iterable of arrays). Call these after backward and before ``optimizer.step()``.
"""

from __future__ import annotations

import math
import types
import warnings
from typing import Any

import numpy as np

from ..backends import namespace
from ..errors import AnomalyError, OptimizerError
from .module import param_grads

__all__ = ["clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm"]


def _grads(parameters: Any, who: str) -> list[Any]:
    """The gradient arrays named by ``parameters`` (pairs, a model, arrays), read by :func:`param_grads`."""
    if isinstance(parameters, types.GeneratorType):
        parameters = list(parameters)
        if not parameters:
            warnings.warn(f"{who}: `parameters` is an empty generator, no gradient clipping will occur", stacklevel=3)
    return [g for _, _, g in param_grads(parameters, who, arrays=True)]


def _vector_norm(x: Any, ord: float) -> Any:
    """``torch.linalg.vector_norm`` of a flattened array: 0-d array of its dtype."""
    xp = namespace(x)
    a = xp.abs(x)
    if ord == 2.0:
        return xp.sqrt(xp.sum(a * a))
    if ord == 1.0:
        return xp.sum(a)
    if ord == math.inf:
        return xp.max(a) if a.size else xp.zeros((), a.dtype)
    if ord == -math.inf:
        return xp.min(a) if a.size else xp.asarray(math.inf, a.dtype)
    if ord == 0.0:
        return xp.asarray(xp.count_nonzero(a), a.dtype)
    return xp.sum(a**ord) ** (1.0 / ord)


def get_total_norm(
    tensors: Any, norm_type: float = 2.0, error_if_nonfinite: bool = False, foreach: bool | None = None
) -> Any:
    """The ``norm_type`` norm of all the arrays together (the norm of their norms), as a 0-d array."""
    grads = _grads(tensors, "get_total_norm")
    norm_type = float(norm_type)
    if not grads:
        return namespace().asarray(0.0)
    xp = namespace(grads[0])
    norms = [_vector_norm(g, norm_type) for g in grads]
    total = _vector_norm(xp.stack([xp.asarray(n) for n in norms]), norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise AnomalyError(
            f"clip_grad_norm_: the total norm of order {norm_type} of {len(grads)} gradients is {float(total)}, "
            "so it cannot be clipped; find the NaN/inf (anomaly mode names the op), or pass "
            "error_if_nonfinite=False to scale by it anyway"
        )
    return total


def clip_grads_with_norm_(parameters: Any, max_norm: float, total_norm: Any, foreach: bool | None = None) -> None:
    """Scale the gradients by ``min(1, max_norm / (total_norm + 1e-6))`` in place."""
    grads = _grads(parameters, "clip_grads_with_norm_")
    if not grads:
        return
    xp = namespace(grads[0])
    clip_coef = float(max_norm) / (xp.asarray(total_norm) + 1e-6)
    clip_coef_clamped = xp.minimum(clip_coef, 1.0)
    with np.errstate(invalid="ignore"):  # an infinite norm scales to NaN, silently as in PyTorch
        for g in grads:
            g *= clip_coef_clamped


def clip_grad_norm_(
    parameters: Any,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Any:
    """Rescale the gradients in place so their joint norm is at most ``max_norm``; return the norm before.

    ``norm_type`` may be any p (``math.inf`` for the largest absolute value). The
    returned total norm is a 0-d array (``float(...)`` it for logging).
    """
    if max_norm < 0:
        raise OptimizerError(f"clip_grad_norm_: max_norm is {max_norm}; it must be ≥ 0")
    grads = _grads(parameters, "clip_grad_norm_")
    total_norm = get_total_norm(grads, norm_type, error_if_nonfinite)
    clip_grads_with_norm_(grads, max_norm, total_norm)
    return total_norm


def clip_grad_value_(parameters: Any, clip_value: float, foreach: bool | None = None) -> None:
    """Clamp every gradient entry to ``[-clip_value, clip_value]`` in place."""
    clip_value = float(clip_value)
    for g in _grads(parameters, "clip_grad_value_"):
        namespace(g).clip(g, -clip_value, clip_value, out=g)
