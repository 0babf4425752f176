"""Elementwise ops: each forward with its derivative right beside it.

Backward functions use new_grad's own ops (so they can be recorded for higher
derivatives) and :func:`unbroadcast` (so broadcasting is undone in one place).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backend import namespace
from ._core import primitive, unbroadcast

# -- arithmetic ------------------------------------------------------------------------------


def add_backward(grad_output: Any, a: Any, b: Any) -> tuple:
    return unbroadcast(grad_output, a), unbroadcast(grad_output, b)


@primitive(add_backward, formula="∂(a+b)/∂a = 1, ∂(a+b)/∂b = 1")
def add(a: Any, b: Any) -> Any:
    return a + b


def sub_backward(grad_output: Any, a: Any, b: Any) -> tuple:
    return unbroadcast(grad_output, a), unbroadcast(negative(grad_output), b)


@primitive(sub_backward, name="subtract", formula="∂(a−b)/∂a = 1, ∂(a−b)/∂b = −1")
def subtract(a: Any, b: Any) -> Any:
    return a - b


def mul_backward(grad_output: Any, a: Any, b: Any) -> tuple:
    return unbroadcast(multiply(grad_output, b), a), unbroadcast(multiply(grad_output, a), b)


@primitive(mul_backward, formula="∂(ab)/∂a = b, ∂(ab)/∂b = a")
def multiply(a: Any, b: Any) -> Any:
    return a * b


def div_backward(grad_output: Any, a: Any, b: Any) -> tuple:
    ga = divide(grad_output, b)
    return unbroadcast(ga, a), unbroadcast(negative(multiply(ga, divide(a, b))), b)


@primitive(div_backward, formula="∂(a/b)/∂a = 1/b, ∂(a/b)/∂b = −a/b²")
def divide(a: Any, b: Any) -> Any:
    return a / b


true_divide = divide


def negative_backward(grad_output: Any, a: Any) -> tuple:
    return (negative(grad_output),)


@primitive(negative_backward, formula="∂(−a)/∂a = −1")
def negative(a: Any) -> Any:
    return -a


def power_backward(grad_output: Any, a: Any, b: Any) -> tuple:
    xp = namespace(a, b)
    ga = unbroadcast(multiply(grad_output, multiply(b, power(a, subtract(b, 1)))), a)
    gb = None
    if unbroadcast(grad_output, b) is not None:
        # ∂aᵇ/∂b = aᵇ·log a, taken as 0 where a = 0 and b ≥ 0 (PyTorch's convention)
        safe = xp.where(xp.asarray(a) == 0, 1, a)
        gb = multiply(grad_output, multiply(power(a, b), log(safe)))
        gb = unbroadcast(gb, b)
    return ga, gb


@primitive(power_backward, formula="∂aᵇ/∂a = b·aᵇ⁻¹, ∂aᵇ/∂b = aᵇ·log a")
def power(a: Any, b: Any) -> Any:
    return a**b


# -- exponentials and logarithms -------------------------------------------------------------


def exp_backward(grad_output: Any, x: Any, *, out: Any = None, needs: Any = None) -> tuple:
    return (multiply(grad_output, exp(x) if out is None else out),)


@primitive(exp_backward, formula="∂eˣ/∂x = eˣ")
def exp(x: Any) -> Any:
    return namespace(x).exp(x)


def log_backward(grad_output: Any, x: Any) -> tuple:
    return (divide(grad_output, x),)


@primitive(log_backward, formula="∂log x/∂x = 1/x")
def log(x: Any) -> Any:
    return namespace(x).log(x)


# -- activations -------------------------------------------------------------------------------


def tanh_backward(grad_output: Any, x: Any, *, out: Any = None, needs: Any = None) -> tuple:
    t = tanh(x) if out is None else out
    return (multiply(grad_output, subtract(1, multiply(t, t))),)


@primitive(tanh_backward, formula="∂tanh x/∂x = 1 − tanh²x")
def tanh(x: Any) -> Any:
    return namespace(x).tanh(x)


def sigmoid_backward(grad_output: Any, x: Any, *, out: Any = None, needs: Any = None) -> tuple:
    s = sigmoid(x) if out is None else out
    return (multiply(grad_output, multiply(s, subtract(1, s))),)


@primitive(sigmoid_backward, formula="∂σ(x)/∂x = σ(x)(1 − σ(x))")
def sigmoid(x: Any) -> Any:
    xp = namespace(x)
    # split by sign so exp never overflows: σ(x) = 1/(1+e⁻ˣ) = eˣ/(1+eˣ)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def relu_backward(grad_output: Any, x: Any) -> tuple:
    return (multiply(grad_output, x > 0),)


@primitive(relu_backward, formula="∂relu(x)/∂x = [x > 0]")
def relu(x: Any) -> Any:
    return namespace(x).maximum(x, 0)


# -- selection ---------------------------------------------------------------------------------


def where_backward(grad_output: Any, condition: Any, x: Any, y: Any) -> tuple:
    # the unselected branch gets an exact zero, not "0 · its local derivative": but a NaN/inf
    # produced *inside* that branch (log of a negative, 1/0) still poisons the chain rule upstream
    # of it (0 · inf = NaN). Make the unused branch safe before `where`, as in JAX.
    gx = unbroadcast(where(condition, grad_output, 0), x)
    gy = unbroadcast(where(condition, 0, grad_output), y)
    return None, gx, gy


@primitive(where_backward, formula="∂/∂x = [cond], ∂/∂y = [¬cond]; cond not differentiated")
def where(condition: Any, x: Any, y: Any) -> Any:
    """``x`` where ``condition`` holds, else ``y`` (broadcast). ``condition`` gets no gradient.

    The branch not selected gets a zero gradient. Beware the NaN trap (JAX's FAQ):
    ``where(x > 0, log(x), 0)`` still computes ``log(x)`` at x ≤ 0, and backward
    multiplies that zero by log's infinite derivative there, giving NaN. Feed the
    unsafe op a safe input instead: ``where(x > 0, log(where(x > 0, x, 1)), 0)``.
    """
    return namespace(condition, x, y).where(condition, x, y)


# -- special functions -------------------------------------------------------------------------


def _erf_impl(x: Any) -> Any:
    """erf with SciPy (or CuPy's cupyx) when present; ``math.erf`` per element otherwise."""
    xp = namespace(x)
    if xp is not np:
        from cupyx.scipy.special import erf as cu_erf  # type: ignore[import-not-found]

        return cu_erf(x)
    try:
        from scipy.special import erf as sp_erf
    except ImportError:  # pragma: no cover - scipy is optional
        return np.vectorize(math.erf, otypes=[x.dtype if x.dtype.kind == "f" else np.float64])(x)
    return sp_erf(x)


def erf_backward(grad_output: Any, x: Any) -> tuple:
    return (multiply(grad_output, multiply(_TWO_OVER_SQRT_PI, exp(negative(multiply(x, x))))),)


_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


@primitive(erf_backward, formula="∂erf(x)/∂x = 2/√π · e^(−x²)")
def erf(x: Any) -> Any:
    """The error function (needed by exact GELU)."""
    return _erf_impl(np.asarray(x) if not hasattr(x, "dtype") else x)
