"""Reductions: sum, mean, max. Their backward spreads the gradient back over the reduced axes."""

from __future__ import annotations

import builtins
from typing import Any

from ..backend import namespace
from ._core import primitive
from .elementwise import divide, multiply
from .shape import broadcast_to, expand_dims


def normalize_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    """``axis`` (None, int or tuple, negatives allowed) as a sorted tuple of non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(sorted(a % ndim if ndim else a for a in axes))


def expand_reduced(grad: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    """Give a reduction's gradient back its reduced axes (size 1), then broadcast to ``x``."""
    if not keepdims and x.ndim:
        grad = expand_dims(grad, normalize_axes(axis, x.ndim))
    return broadcast_to(grad, x.shape)


def sum_backward(grad_output: Any, x: Any, axis: Any = None, keepdims: bool = False) -> tuple:
    return expand_reduced(grad_output, x, axis, keepdims), None, None


@primitive(sum_backward, formula="∂Σx/∂xᵢ = 1")
def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001 - NumPy's name
    return namespace(x).sum(x, axis=axis, keepdims=keepdims)


def _count(x: Any, axis: Any) -> int:
    n = 1
    for a in normalize_axes(axis, x.ndim):
        n *= x.shape[a]
    return n


def mean_backward(grad_output: Any, x: Any, axis: Any = None, keepdims: bool = False) -> tuple:
    return expand_reduced(divide(grad_output, builtins.max(_count(x, axis), 1)), x, axis, keepdims), None, None


@primitive(mean_backward, formula="∂mean(x)/∂xᵢ = 1/n")
def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    return namespace(x).mean(x, axis=axis, keepdims=keepdims)


def max_backward(grad_output: Any, x: Any, axis: Any = None, keepdims: bool = False) -> tuple:
    # the gradient goes to the maxima; ties share it equally (PyTorch's amax rule)
    xp = namespace(x)
    top = xp.max(x, axis=axis, keepdims=True)
    mask = x == top
    share = (mask / xp.sum(mask, axis=axis, keepdims=True)).astype(x.dtype)  # a constant
    return multiply(expand_reduced(grad_output, x, axis, keepdims), share), None, None


@primitive(max_backward, formula="∂max(x)/∂xᵢ = [xᵢ = max] / #ties")
def max(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001 - NumPy's name
    return namespace(x).max(x, axis=axis, keepdims=keepdims)
