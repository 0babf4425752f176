"""Linear algebra ops: products and (in :mod:`new_grad.linalg`) decompositions."""

from __future__ import annotations

from typing import Any

from ..backend import namespace
from ._core import primitive, unbroadcast_to
from .elementwise import multiply
from .shape import expand_dims, reshape, swapaxes


def _mT(x: Any) -> Any:
    return swapaxes(x, -1, -2)


def matmul_backward(grad_output: Any, a: Any, b: Any, *, out: Any = None, needs: Any = (True, True)) -> tuple:
    """∂(a@b)/∂a = g @ bᵀ and ∂(a@b)/∂b = aᵀ @ g, with 1-d operands and batch broadcasting."""
    g = grad_output
    if a.ndim == 1 and b.ndim == 1:  # a dot product: g is a scalar
        return (multiply(g, b) if needs[0] else None), (multiply(g, a) if needs[1] else None)
    a2 = expand_dims(a, 0) if a.ndim == 1 else a  # (n,) acts as (1, n)
    b2 = expand_dims(b, -1) if b.ndim == 1 else b  # (n,) acts as (n, 1)
    if a.ndim == 1:
        g = expand_dims(g, -2)
    if b.ndim == 1:
        g = expand_dims(g, -1)
    ga = gb = None
    if needs[0]:
        ga = reshape(unbroadcast_to(matmul(g, _mT(b2)), a2.shape), a.shape)
    if needs[1]:
        gb = reshape(unbroadcast_to(matmul(_mT(a2), g), b2.shape), b.shape)
    return ga, gb


@primitive(matmul_backward, formula="∂(AB)/∂A = G Bᵀ, ∂(AB)/∂B = Aᵀ G")
def matmul(a: Any, b: Any) -> Any:
    return a @ b


def outer_backward(grad_output: Any, a: Any, b: Any) -> tuple:
    a1, b1 = reshape(a, (-1,)), reshape(b, (-1,))
    ga = reshape(matmul(grad_output, b1), a.shape)
    gb = reshape(matmul(a1, grad_output), b.shape)
    return ga, gb


@primitive(outer_backward, formula="∂(a⊗b)/∂a = G b, ∂(a⊗b)/∂b = Gᵀ a")
def outer(a: Any, b: Any) -> Any:
    return namespace(a, b).outer(a, b)
