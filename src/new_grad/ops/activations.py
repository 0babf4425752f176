"""Activations and the softmax family, with PyTorch's formulas and closed-form derivatives.

Forwards compute with the array's own namespace (never by calling recorded ops,
which would put extra entries on the tape). Backwards are written with new_grad
ops so ``create_graph=True`` can record them for higher derivatives; where the
derivative is cheaper from the forward's output (softmax, log_softmax,
logsumexp, elu, selu), they use ``out``, recomputing it only when ``out`` is
``None`` (a recorded backward).

Constants are Python floats, never NumPy float64 scalars, so float32 stays
float32 (NEP 50: a NumPy scalar or 0-d array would promote).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backends import namespace
from ..errors import ArgumentError
from ._core import EVERY, primitive
from .elementwise import _erf_impl, _logistic, add, as_array, erf, exp, multiply, sigmoid, subtract, tanh, where
from .reductions import keep_reduced, normalize_axes
from .reductions import sum as _sum

# -- softmax family --------------------------------------------------------------------------------


def softmax_backward(grad_output: Any, x: Any, axis: int = -1, out: Any = None, needs: Any = EVERY) -> tuple:
    """∂x = s ⊙ (g − Σ g⊙s): the Jacobian diag(s) − s sᵀ applied without forming it."""
    s = softmax(x, axis) if out is None else out
    gs = multiply(grad_output, s)
    return subtract(gs, multiply(s, _sum(gs, axis, True))), None


@primitive(softmax_backward, formula="∂x = s ⊙ (g − Σⱼ gⱼsⱼ)")
def softmax(x: Any, axis: int = -1) -> Any:
    """exp(x) / Σ exp(x) along ``axis``, shifted by the max so exp never overflows."""
    x = as_array(x)
    xp = namespace(x)
    if x.size == 0:
        return xp.exp(x)
    e = xp.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax_backward(grad_output: Any, x: Any, axis: int = -1, out: Any = None, needs: Any = EVERY) -> tuple:
    """∂x = g − softmax(x) Σ g, with softmax = exp(output)."""
    s = exp(log_softmax(x, axis) if out is None else out)
    return subtract(grad_output, multiply(s, _sum(grad_output, axis, True))), None


@primitive(log_softmax_backward, formula="∂x = g − softmax(x) Σⱼ gⱼ")
def log_softmax(x: Any, axis: int = -1) -> Any:
    """x − logsumexp(x) along ``axis``: stable where log(softmax(x)) underflows to −inf."""
    x = as_array(x)
    return _log_softmax_array(x, axis)


def _log_softmax_array(x: Any, axis: int = -1) -> Any:
    """log softmax in plain array code: for forwards (a forward must not record other ops)."""
    xp = namespace(x)
    if x.size == 0:
        return xp.exp(x)
    z = x - x.max(axis=axis, keepdims=True)
    return z - xp.log(xp.exp(z).sum(axis=axis, keepdims=True))


def logsumexp_backward(
    grad_output: Any, x: Any, axis: Any = None, keepdims: bool = False, out: Any = None, needs: Any = EVERY
) -> tuple:
    """∂x = g · exp(x − logsumexp(x)) = g · softmax(x) over the reduced axes."""
    lse = logsumexp(x, axis, True) if out is None else keep_reduced(out, x, axis, keepdims)
    g = keep_reduced(grad_output, x, axis, keepdims)
    return multiply(g, exp(subtract(x, lse))), None, None


@primitive(logsumexp_backward, formula="∂x = g · exp(x − logsumexp(x))")
def logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """log Σ exp(x) over ``axis`` (all axes for None), computed as m + log Σ exp(x − m)."""
    x = as_array(x)
    xp = namespace(x)
    with np.errstate(divide="ignore"):  # an empty or all −inf slice is −inf, like PyTorch
        if x.size == 0:
            return xp.log(xp.sum(xp.exp(x), axis=axis, keepdims=keepdims))
        m = xp.max(x, axis=axis, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)  # all −inf (or an inf) slices: don't shift by ±inf
        r = xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True)) + m
    if keepdims:
        return r
    return xp.reshape(r, tuple(n for i, n in enumerate(x.shape) if i not in normalize_axes(axis, x.ndim)))


# -- rectifiers ------------------------------------------------------------------------------------


def _as(a: Any, x: Any) -> Any:
    """``a`` (a constant derivative mask) in ``x``'s float dtype."""
    return a.astype(x.dtype, copy=False) if x.dtype.kind in "fc" else a


def leaky_relu_backward(
    grad_output: Any, x: Any, negative_slope: float = 0.01, out: Any = None, needs: Any = EVERY
) -> tuple:
    xp = namespace(x)
    return multiply(grad_output, _as(xp.where(x > 0, 1.0, negative_slope), x)), None


@primitive(leaky_relu_backward, formula="∂x = 1 if x > 0 else negative_slope")
def leaky_relu(x: Any, negative_slope: float = 0.01) -> Any:
    x = as_array(x, numbers=False)
    return namespace(x).where(x > 0, x, x * negative_slope)


def elu_backward(grad_output: Any, x: Any, alpha: float = 1.0, out: Any = None, needs: Any = EVERY) -> tuple:
    """For x ≤ 0, ∂ α(eˣ − 1) = αeˣ = output + α: no second exp."""
    y = elu(x, alpha) if out is None else out
    return multiply(grad_output, where(x > 0, 1, add(y, alpha))), None


@primitive(elu_backward, formula="∂x = 1 if x > 0 else output + α")
def elu(x: Any, alpha: float = 1.0) -> Any:
    x = as_array(x, numbers=False)
    xp = namespace(x)
    return xp.where(x > 0, x, alpha * xp.expm1(xp.minimum(x, 0)))


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    y = selu(x) if out is None else out
    return (multiply(grad_output, where(x > 0, _SELU_SCALE, add(y, _SELU_SCALE * _SELU_ALPHA))),)


@primitive(selu_backward, formula="∂x = λ if x > 0 else output + λα")
def selu(x: Any) -> Any:
    """λ·elu(x, α) with the self-normalising constants of Klambauer et al. (PyTorch's)."""
    x = as_array(x, numbers=False)
    xp = namespace(x)
    return _SELU_SCALE * xp.where(x > 0, x, _SELU_ALPHA * xp.expm1(xp.minimum(x, 0)))


def hardtanh_backward(
    grad_output: Any, x: Any, min_val: float = -1.0, max_val: float = 1.0, out: Any = None, needs: Any = EVERY
) -> tuple:
    # PyTorch's rule: zero at the boundaries too
    return multiply(grad_output, (x > min_val) & (x < max_val)), None, None


@primitive(hardtanh_backward, formula="∂x = [min_val < x < max_val]")
def hardtanh(x: Any, min_val: float = -1.0, max_val: float = 1.0) -> Any:
    if min_val > max_val:
        raise ArgumentError(f"hardtanh: min_val={min_val} must not exceed max_val={max_val}")
    return namespace(x).clip(x, min_val, max_val)


# -- smooth activations ----------------------------------------------------------------------------

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_K = math.sqrt(2.0 / math.pi)
_GELU_C = 0.044715


def gelu_backward(grad_output: Any, x: Any, approximate: str = "none", out: Any = None, needs: Any = EVERY) -> tuple:
    if approximate == "tanh":
        # y = ½x(1 + t), t = tanh(k(x + c x³)):  ∂x = ½(1 + t) + ½x(1 − t²)·k(1 + 3c x²)
        x2 = multiply(x, x)
        t = tanh(multiply(_GELU_K, multiply(x, add(1, multiply(_GELU_C, x2)))))
        dinner = multiply(_GELU_K, add(1, multiply(3 * _GELU_C, x2)))
        d = add(multiply(0.5, add(1, t)), multiply(multiply(0.5, x), multiply(subtract(1, multiply(t, t)), dinner)))
    else:
        # y = x Φ(x):  ∂x = Φ(x) + x φ(x)
        cdf = multiply(0.5, add(1, erf(multiply(x, _INV_SQRT2))))
        pdf = multiply(_INV_SQRT_2PI, exp(multiply(-0.5, multiply(x, x))))
        d = add(cdf, multiply(x, pdf))
    return multiply(grad_output, d), None


@primitive(gelu_backward, formula="∂x = Φ(x) + xφ(x) (exact); tanh form for approximate='tanh'")
def gelu(x: Any, approximate: str = "none") -> Any:
    """x·Φ(x), Φ the standard normal CDF; ``approximate='tanh'`` is the GPT-2 formula."""
    x = as_array(x, numbers=False)
    xp = namespace(x)
    if approximate == "tanh":
        return 0.5 * x * (1 + xp.tanh(_GELU_K * (x + _GELU_C * x * x * x)))
    if approximate != "none":
        raise ArgumentError(f"gelu: approximate={approximate!r}; use 'none' (exact, erf) or 'tanh'")
    return 0.5 * x * (1 + _erf_impl(x * _INV_SQRT2))


def silu_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    s = sigmoid(x)
    return (multiply(grad_output, multiply(s, add(1, multiply(x, subtract(1, s))))),)


@primitive(silu_backward, formula="∂x = σ(x)(1 + x(1 − σ(x)))")
def silu(x: Any) -> Any:
    """x·σ(x) (a.k.a. swish)."""
    x = as_array(x, numbers=False)
    return x * _logistic(x)


def softplus_backward(
    grad_output: Any, x: Any, beta: float = 1.0, threshold: float = 20.0, out: Any = None, needs: Any = EVERY
) -> tuple:
    bx = multiply(x, beta)
    return multiply(grad_output, where(bx > threshold, 1, sigmoid(bx))), None, None


@primitive(softplus_backward, formula="∂x = σ(βx) (1 where βx > threshold)")
def softplus(x: Any, beta: float = 1.0, threshold: float = 20.0) -> Any:
    """log(1 + e^(βx))/β, and x itself where βx > threshold (PyTorch's linear regime)."""
    x = as_array(x, numbers=False)
    xp = namespace(x)
    bx = x * beta
    return xp.where(bx > threshold, x, xp.log1p(xp.exp(xp.minimum(bx, threshold))) / beta)


def mish_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    # y = x·tanh(sp(x)), sp' = σ:  ∂x = tanh(sp) + x σ(x) (1 − tanh²(sp))
    t = tanh(softplus(x))
    return (multiply(grad_output, add(t, multiply(multiply(x, sigmoid(x)), subtract(1, multiply(t, t))))),)


@primitive(mish_backward, formula="∂x = tanh(sp(x)) + xσ(x)(1 − tanh²(sp(x)))")
def mish(x: Any) -> Any:
    """x·tanh(softplus(x)) (Misra 2019)."""
    xp = namespace(x)
    return x * xp.tanh(xp.logaddexp(0, x))

