"""Elementwise ops: each forward with its derivative right beside it.

Backward functions use new_grad's own ops (so they can be recorded for higher
derivatives) and return the gradient of each operand as broadcast: the engine sums
it back to the operand's shape, once for every op.
"""

from __future__ import annotations

import cmath
import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..backends import is_array, namespace
from ..errors import NewGradError
from ._core import EVERY, _wrap_error, nondifferentiable, primitive, register


def as_array(x: Any, numbers: bool = True) -> Any:
    """A Python list (or number) an op accepts, as NumPy does, as a NumPy array; arrays pass through.

    ``numbers=False`` leaves Python numbers as they are: an elementwise op keeps them weakly typed (a float32
    array with a Python float stays float32, with a 0-d float64 array it would not).
    """
    if type(x) is np.ndarray or is_array(x) or not (numbers or isinstance(x, (list, tuple))):
        return x
    return np.asarray(x)

# -- arithmetic ------------------------------------------------------------------------------


def add_backward(grad_output: Any, a: Any, b: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return grad_output if needs[0] else None, grad_output if needs[1] else None


@primitive(add_backward, formula="∂(a+b)/∂a = 1, ∂(a+b)/∂b = 1", replay=("g", "g"))
def add(a: Any, b: Any) -> Any:
    return a + b


def sub_backward(grad_output: Any, a: Any, b: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return grad_output if needs[0] else None, negative(grad_output) if needs[1] else None


@primitive(sub_backward, name="subtract", formula="∂(a−b)/∂a = 1, ∂(a−b)/∂b = −1", replay=("g", "-g"))
def subtract(a: Any, b: Any) -> Any:
    return a - b


def mul_backward(grad_output: Any, a: Any, b: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return multiply(grad_output, b) if needs[0] else None, multiply(grad_output, a) if needs[1] else None


@primitive(mul_backward, formula="∂(ab)/∂a = b, ∂(ab)/∂b = a", replay=("g * i1", "g * i0"))
def multiply(a: Any, b: Any) -> Any:
    return a * b


def div_backward(grad_output: Any, a: Any, b: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    ga = divide(grad_output, b)
    return ga if needs[0] else None, negative(multiply(ga, divide(a, b))) if needs[1] else None


@primitive(div_backward, formula="∂(a/b)/∂a = 1/b, ∂(a/b)/∂b = −a/b²")
def divide(a: Any, b: Any) -> Any:
    return a / b


true_divide = divide


def negative_backward(grad_output: Any, a: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return (negative(grad_output),)


@primitive(negative_backward, formula="∂(−a)/∂a = −1", replay=("-g",))
def negative(a: Any) -> Any:
    a = as_array(a, numbers=False)
    return -a


def power_backward(grad_output: Any, a: Any, b: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    ga = gb = None
    if type(a) is list or type(b) is list:  # the forward took a list (a constant): as the array it meant
        a, b = as_array(a), as_array(b)
    if needs[0]:
        ga = _power_base_grad(grad_output, a, b)
    if needs[1] and hasattr(b, "shape"):
        # ∂aᵇ/∂b = aᵇ·log a, taken as 0 where a = 0 (PyTorch's convention). The safe log input is
        # a recorded `where`, so the mixed second derivative ∂²/∂a∂b survives create_graph.
        y = power(a, b) if out is None else out
        if hasattr(a, "shape"):
            log_a = log(where(a == 0, 1, a))
        elif isinstance(a, complex):
            log_a = cmath.log(a) if a != 0 else 0.0
        else:
            log_a = math.log(a) if a > 0 else (0.0 if a == 0 else math.nan)
        gb = multiply(grad_output, multiply(y, log_a))
    return ga, gb


def _power_base_grad(grad_output: Any, a: Any, b: Any) -> Any:
    """g·b·aᵇ⁻¹, and exactly 0 where b = 0 (d/da a⁰ = 0 even at a = 0, where aᵇ⁻¹ is inf; PyTorch's rule).

    The exponent fed to ``power`` is made safe (1 where b = 0) so that higher derivatives, which
    differentiate this expression again, see no inf either: d²/da² a¹ and d³/da³ a² at 0 are 0.
    """
    if not hasattr(b, "shape"):
        if b == 0:
            return multiply(grad_output, 0.0)
        return multiply(grad_output, multiply(b, power(a, b - 1)))
    zero = b == 0
    if not namespace(zero).any(zero):
        return multiply(grad_output, multiply(b, power(a, subtract(b, 1))))
    safe = where(zero, 1, subtract(b, 1))
    return where(zero, 0.0, multiply(grad_output, multiply(b, power(a, safe))))


@primitive(power_backward, formula="∂aᵇ/∂a = b·aᵇ⁻¹ (0 where b = 0), ∂aᵇ/∂b = aᵇ·log a")
def power(a: Any, b: Any) -> Any:
    return a**b


# -- exponentials and logarithms -------------------------------------------------------------


def exp_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return (multiply(grad_output, exp(x) if out is None else out),)


@primitive(exp_backward, formula="∂eˣ/∂x = eˣ", replay=("g * o",))
def exp(x: Any) -> Any:
    return namespace(x).exp(x)


def log_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return (divide(grad_output, x),)


@primitive(log_backward, formula="∂log x/∂x = 1/x", replay=("g / i0",))
def log(x: Any) -> Any:
    return namespace(x).log(x)


# -- activations -------------------------------------------------------------------------------


def tanh_op_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    t = tanh(x) if out is None else out
    return (multiply(grad_output, subtract(1, multiply(t, t))),)


@primitive(tanh_op_backward, formula="∂tanh x/∂x = 1 − tanh²x", replay=("g * (1 - o * o)",))
def tanh(x: Any) -> Any:
    return namespace(x).tanh(x)


def sigmoid_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    s = sigmoid(x) if out is None else out
    return (multiply(grad_output, multiply(s, subtract(1, s))),)


def _logistic(x: Any) -> Any:
    """σ(x) on plain arrays (unrecorded): shared by sigmoid, silu and the fused recurrent cells."""
    # 1/(1 + e⁻ˣ) is exact at both ends: e⁻ˣ overflowing to inf gives 1/inf = 0, the right limit.
    # Only NumPy's overflow warning needs silencing (half the calls of a sign-split version).
    with np.errstate(over="ignore"):
        return 1 / (1 + namespace(x).exp(-x))


@primitive(sigmoid_backward, formula="∂σ(x)/∂x = σ(x)(1 − σ(x))", replay=("g * (o * (1 - o))",))
def sigmoid(x: Any) -> Any:
    x = as_array(x, numbers=False)
    return _logistic(x)


def relu_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return (multiply(grad_output, x > 0),)


@primitive(relu_backward, formula="∂relu(x)/∂x = [x > 0]", replay=("g * (i0 > 0)",))
def relu(x: Any) -> Any:
    return namespace(x).maximum(x, 0)


# -- selection ---------------------------------------------------------------------------------


def where_backward(grad_output: Any, condition: Any, x: Any, y: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    # the unselected branch gets an exact zero, not "0 · its local derivative": but a NaN/inf
    # produced *inside* that branch (log of a negative, 1/0) still poisons the chain rule upstream
    # of it (0 · inf = NaN). Make the unused branch safe before `where`, as in JAX.
    gx = where(condition, grad_output, 0) if needs[1] else None
    gy = where(condition, 0, grad_output) if needs[2] else None
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
        dev_erf = getattr(xp, "erf", None)  # a backend's own (the CPU stand-in's); CuPy keeps it in cupyx
        if dev_erf is None:
            from cupyx.scipy.special import erf as dev_erf  # type: ignore[import-not-found]
        return dev_erf(x)
    try:
        from scipy.special import erf as sp_erf
    except ImportError:  # pragma: no cover - scipy is optional
        return np.vectorize(math.erf, otypes=[x.dtype if x.dtype.kind == "f" else np.float64])(x)
    return sp_erf(x)


def erf_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return (multiply(grad_output, multiply(_TWO_OVER_SQRT_PI, exp(negative(multiply(x, x))))),)


_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


@primitive(erf_backward, formula="∂erf(x)/∂x = 2/√π · e^(−x²)")
def erf(x: Any) -> Any:
    """The error function (needed by exact GELU)."""
    return _erf_impl(np.asarray(x) if not hasattr(x, "dtype") else x)


# -- helpers for the ops below -----------------------------------------------------------------


def _like(mask: Any, g: Any) -> Any:
    """A constant derivative factor (bool or float64) in the gradient's dtype (keeps float32)."""
    return mask.astype(g.dtype, copy=False)


def _cast_back(g: Any, x: Any) -> Any:
    """``g`` in ``x``'s dtype (ops that compute in a wider dtype than their input)."""
    if g is None or not hasattr(x, "dtype") or g.dtype == x.dtype:
        return g
    return astype(g, x.dtype)


# Piecewise-constant ops (sign, floor, ceil, round): the derivative is 0 almost everywhere.
# ``None`` is "no gradient": the input's slot stays a lazy zero, which reads as PyTorch's zeros.


def piecewise_constant_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    """sign, floor, ceil, trunc, rint, spacing: no gradient (their derivative is 0 almost everywhere)."""
    return (None,)


def round_backward(grad_output: Any, x: Any, decimals: int = 0, out: Any = None, needs: Any = EVERY) -> tuple:
    return None, None


# -- more arithmetic ---------------------------------------------------------------------------


def positive_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return (grad_output,)


@primitive(positive_backward, formula="∂(+x)/∂x = 1")
def positive(x: Any) -> Any:
    """+x: a copy (NumPy's ``positive``)."""
    x = as_array(x, numbers=False)
    return +x  # the array's own unary plus: every backend has it


def square_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return (multiply(grad_output, multiply(2, x)),)


@primitive(square_backward, formula="∂x²/∂x = 2x")
def square(x: Any) -> Any:
    return namespace(x).square(x)


def reciprocal_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    r = reciprocal(x) if out is None else out
    return (negative(multiply(grad_output, multiply(r, r))),)


@primitive(reciprocal_backward, formula="∂(1/x)/∂x = −1/x²")
def reciprocal(x: Any) -> Any:
    """1/x (floating point; NumPy's integer ``reciprocal`` truncates, so ints become floats)."""
    if not hasattr(x, "dtype"):  # a Python number or list, like every other unary op accepts
        x = np.asarray(x)
        x = x.astype(np.result_type(x, 1.0))
    xp = namespace(x)
    return xp.reciprocal(x) if x.dtype.kind in "fc" else 1.0 / x


def abs_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    if _is_complex(x):  # |z| is not holomorphic: g·z̄/|z|, and 0 at z = 0
        zero = namespace(x).asarray(x) == 0
        r = abs(x) if out is None else out
        return (multiply(grad_output, divide(conj(where(zero, 0, x)), where(zero, 1, r))),)
    # sign(0) = 0: PyTorch's subgradient at the kink
    return (multiply(grad_output, namespace(x).sign(x)),)


def _is_complex(x: Any) -> bool:
    return getattr(x, "dtype", None) is not None and x.dtype.kind == "c"


@primitive(abs_backward, formula="∂|x|/∂x = sign(x); complex z: g·z̄/|z| (0 at 0)")
def abs(x: Any) -> Any:
    return namespace(x).abs(x)


absolute = abs


@primitive(piecewise_constant_backward, formula="∂sign(x)/∂x = 0 (a.e.)")
def sign(x: Any) -> Any:
    return namespace(x).sign(x)


@primitive(piecewise_constant_backward, formula="∂⌊x⌋/∂x = 0 (a.e.)")
def floor(x: Any) -> Any:
    return namespace(x).floor(x)


@primitive(piecewise_constant_backward, formula="∂⌈x⌉/∂x = 0 (a.e.)")
def ceil(x: Any) -> Any:
    return namespace(x).ceil(x)


@primitive(round_backward, formula="∂round(x)/∂x = 0 (a.e.)")
def round(x: Any, decimals: int = 0) -> Any:
    """Round half to even (NumPy's and PyTorch's rule) to ``decimals`` places."""
    return namespace(x).round(x, decimals)


def float_power_backward(grad_output: Any, a: Any, b: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    ga, gb = power_backward(grad_output, _f64(as_array(a, numbers=False)), _f64(as_array(b, numbers=False)))
    return _cast_back(ga, a), _cast_back(gb, b)


def _f64(v: Any) -> Any:
    if hasattr(v, "dtype") and v.dtype.kind in "fc" and v.dtype not in (np.float64, np.complex128):
        return astype(v, np.complex128 if v.dtype.kind == "c" else np.float64)
    return v


@primitive(float_power_backward, formula="as power, computed in float64; gradients in the inputs' dtypes")
def float_power(a: Any, b: Any) -> Any:
    """aᵇ in float64 whatever the inputs (NumPy's ``float_power``)."""
    return namespace(a, b).float_power(a, b)


# -- exponentials and logarithms, more ----------------------------------------------------------

_LN2 = math.log(2.0)
_LN10 = math.log(10.0)


def exp2_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return (multiply(grad_output, multiply(exp2(x) if out is None else out, _LN2)),)


@primitive(exp2_backward, formula="∂2ˣ/∂x = 2ˣ ln 2")
def exp2(x: Any) -> Any:
    return namespace(x).exp2(x)


def expm1_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return (multiply(grad_output, exp(x) if out is None else add(out, 1)),)


@primitive(expm1_backward, formula="∂(eˣ − 1)/∂x = eˣ")
def expm1(x: Any) -> Any:
    return namespace(x).expm1(x)


def log2_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return (divide(grad_output, multiply(x, _LN2)),)


@primitive(log2_backward, formula="∂log₂x/∂x = 1/(x ln 2)")
def log2(x: Any) -> Any:
    return namespace(x).log2(x)


def log10_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return (divide(grad_output, multiply(x, _LN10)),)


@primitive(log10_backward, formula="∂log₁₀x/∂x = 1/(x ln 10)")
def log10(x: Any) -> Any:
    return namespace(x).log10(x)


def log1p_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return (divide(grad_output, add(x, 1)),)


@primitive(log1p_backward, formula="∂log(1 + x)/∂x = 1/(1 + x)")
def log1p(x: Any) -> Any:
    return namespace(x).log1p(x)


def sqrt_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return (divide(grad_output, multiply(2, sqrt(x) if out is None else out)),)


@primitive(sqrt_backward, formula="∂√x/∂x = 1/(2√x)")
def sqrt(x: Any) -> Any:
    return namespace(x).sqrt(x)


def cbrt_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    c = cbrt(x) if out is None else out
    return (divide(grad_output, multiply(3, multiply(c, c))),)


@primitive(cbrt_backward, formula="∂∛x/∂x = 1/(3∛x²)")
def cbrt(x: Any) -> Any:
    return namespace(x).cbrt(x)


# -- trigonometric and hyperbolic --------------------------------------------------------------


def sin_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return (multiply(grad_output, cos(x)),)


@primitive(sin_backward, formula="∂sin x/∂x = cos x")
def sin(x: Any) -> Any:
    return namespace(x).sin(x)


def cos_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return (negative(multiply(grad_output, sin(x))),)


@primitive(cos_backward, formula="∂cos x/∂x = −sin x")
def cos(x: Any) -> Any:
    return namespace(x).cos(x)


def tan_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    t = tan(x) if out is None else out
    return (multiply(grad_output, add(1, multiply(t, t))),)


@primitive(tan_backward, formula="∂tan x/∂x = 1 + tan²x")
def tan(x: Any) -> Any:
    return namespace(x).tan(x)


def arcsin_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return (divide(grad_output, sqrt(subtract(1, multiply(x, x)))),)


@primitive(arcsin_backward, formula="∂arcsin x/∂x = 1/√(1 − x²)")
def arcsin(x: Any) -> Any:
    return namespace(x).arcsin(x)


def arccos_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return (negative(divide(grad_output, sqrt(subtract(1, multiply(x, x))))),)


@primitive(arccos_backward, formula="∂arccos x/∂x = −1/√(1 − x²)")
def arccos(x: Any) -> Any:
    return namespace(x).arccos(x)


def arctan_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return (divide(grad_output, add(1, multiply(x, x))),)


@primitive(arctan_backward, formula="∂arctan x/∂x = 1/(1 + x²)")
def arctan(x: Any) -> Any:
    return namespace(x).arctan(x)


def sinh_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return (multiply(grad_output, cosh(x)),)


@primitive(sinh_backward, formula="∂sinh x/∂x = cosh x")
def sinh(x: Any) -> Any:
    return namespace(x).sinh(x)


def cosh_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return (multiply(grad_output, sinh(x)),)


@primitive(cosh_backward, formula="∂cosh x/∂x = sinh x")
def cosh(x: Any) -> Any:
    return namespace(x).cosh(x)


def arcsinh_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return (divide(grad_output, sqrt(add(multiply(x, x), 1))),)


@primitive(arcsinh_backward, formula="∂arsinh x/∂x = 1/√(x² + 1)")
def arcsinh(x: Any) -> Any:
    return namespace(x).arcsinh(x)


def arccosh_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return (divide(grad_output, sqrt(subtract(multiply(x, x), 1))),)


@primitive(arccosh_backward, formula="∂arcosh x/∂x = 1/√(x² − 1)")
def arccosh(x: Any) -> Any:
    return namespace(x).arccosh(x)


def arctanh_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return (divide(grad_output, subtract(1, multiply(x, x))),)


@primitive(arctanh_backward, formula="∂artanh x/∂x = 1/(1 − x²)")
def arctanh(x: Any) -> Any:
    return namespace(x).arctanh(x)


# -- two-argument functions --------------------------------------------------------------------


def _arr(v: Any, xp: Any) -> Any:
    return v if hasattr(v, "dtype") else xp.asarray(v)


def _shares(grad_output: Any, a: Any, b: Any, needs: Any, share_a: Any, share_b: Any) -> tuple:
    """The gradient split between a and b by constant masks (1, ½ or 0 per element)."""
    ga = multiply(grad_output, _like(share_a, grad_output)) if needs[0] else None
    gb = multiply(grad_output, _like(share_b, grad_output)) if needs[1] else None
    return ga, gb


def maximum_backward(grad_output: Any, a: Any, b: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    # PyTorch's rule: the larger input takes the gradient, ties split it ½ / ½
    xp = namespace(a, b)
    a_, b_ = _arr(a, xp), _arr(b, xp)
    tie = a_ == b_
    return _shares(grad_output, a, b, needs, xp.where(tie, 0.5, ~(a_ < b_)), xp.where(tie, 0.5, ~(a_ > b_)))


@primitive(maximum_backward, formula="∂max(a,b)/∂a = [a > b] + ½[a = b]")
def maximum(a: Any, b: Any) -> Any:
    """Elementwise max, NaN-propagating (``fmax`` ignores NaNs)."""
    return namespace(a, b).maximum(a, b)


def minimum_backward(grad_output: Any, a: Any, b: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    xp = namespace(a, b)
    a_, b_ = _arr(a, xp), _arr(b, xp)
    tie = a_ == b_
    return _shares(grad_output, a, b, needs, xp.where(tie, 0.5, ~(a_ > b_)), xp.where(tie, 0.5, ~(a_ < b_)))


@primitive(minimum_backward, formula="∂min(a,b)/∂a = [a < b] + ½[a = b]")
def minimum(a: Any, b: Any) -> Any:
    """Elementwise min, NaN-propagating (``fmin`` ignores NaNs)."""
    return namespace(a, b).minimum(a, b)


def fmax_backward(grad_output: Any, a: Any, b: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    # PyTorch's rule: a takes the gradient where a ≥ b or b is NaN, b elsewhere (no tie split)
    xp = namespace(a, b)
    a_, b_ = _arr(a, xp), _arr(b, xp)
    take_a = (a_ >= b_) | xp.isnan(b_)
    return _shares(grad_output, a, b, needs, take_a, ~take_a)


@primitive(fmax_backward, formula="∂fmax(a,b)/∂a = [a ≥ b or b is NaN]")
def fmax(a: Any, b: Any) -> Any:
    """Elementwise max that ignores NaNs."""
    return namespace(a, b).fmax(a, b)


def fmin_backward(grad_output: Any, a: Any, b: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    xp = namespace(a, b)
    a_, b_ = _arr(a, xp), _arr(b, xp)
    take_a = (a_ <= b_) | xp.isnan(b_)
    return _shares(grad_output, a, b, needs, take_a, ~take_a)


@primitive(fmin_backward, formula="∂fmin(a,b)/∂a = [a ≤ b or b is NaN]")
def fmin(a: Any, b: Any) -> Any:
    """Elementwise min that ignores NaNs."""
    return namespace(a, b).fmin(a, b)


def hypot_backward(grad_output: Any, a: Any, b: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    h = hypot(a, b) if out is None else out
    g = divide(grad_output, h)
    ga = multiply(g, a) if needs[0] else None
    gb = multiply(g, b) if needs[1] else None
    return ga, gb


@primitive(hypot_backward, formula="∂√(a² + b²)/∂a = a/h, ∂/∂b = b/h")
def hypot(a: Any, b: Any) -> Any:
    return namespace(a, b).hypot(a, b)


def arctan2_backward(grad_output: Any, y: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    y, x = as_array(y, numbers=False), as_array(x, numbers=False)  # a list the forward took
    r2 = add(multiply(x, x), multiply(y, y))
    origin = r2 == 0
    if bool(namespace(origin).any(origin)):  # no derivative at (0, 0): 0 there, as PyTorch (not 0/0 = NaN)
        r2 = where(origin, 1.0, r2)
        grad_output = where(origin, 0.0, grad_output)
    g = divide(grad_output, r2)
    gy = multiply(g, x) if needs[0] else None
    gx = negative(multiply(g, y)) if needs[1] else None
    return gy, gx


@primitive(arctan2_backward, formula="∂atan2(y,x)/∂y = x/(x² + y²), ∂/∂x = −y/(x² + y²) (0 at the origin)")
def arctan2(y: Any, x: Any) -> Any:
    """The angle of the point (x, y), argument order as NumPy's (and ``torch.atan2``)."""
    return namespace(y, x).arctan2(y, x)


def clip_backward(
    grad_output: Any, x: Any, a_min: Any = None, a_max: Any = None, out: Any = None, needs: Any = EVERY
) -> tuple:
    """PyTorch's ``clamp`` rule: x passes the gradient where min ≤ x ≤ max (boundaries included);
    array bounds take it where they are the value (min where x < min < max, max where x > max or max < min)."""
    inside = None
    if a_min is not None:
        inside = x >= a_min
    if a_max is not None:
        inside = (x <= a_max) if inside is None else inside & (x <= a_max)
    gx = where(inside, grad_output, 0) if needs[0] else None
    gmin = gmax = None
    if needs[1] and a_min is not None:
        takes = x < a_min if a_max is None else (x < a_min) & (a_min < a_max)
        gmin = where(takes, grad_output, 0)
    if needs[2] and a_max is not None:
        takes = x > a_max if a_min is None else (x > a_max) | (a_max < a_min)
        gmax = where(takes, grad_output, 0)
    return gx, gmin, gmax


@primitive(clip_backward, formula="∂x = [a_min ≤ x ≤ a_max]; array bounds get the rest")
def clip(x: Any, a_min: Any = None, a_max: Any = None) -> Any:
    """Limit ``x`` to [a_min, a_max] (either may be None, or an array; torch's ``clamp``)."""
    if a_min is None and a_max is None:
        from ..errors import ArgumentError

        raise ArgumentError(f"clip: x {tuple(x.shape)} got neither a_min nor a_max; give at least one bound")
    xp = namespace(x, a_min, a_max)
    if a_min is None:
        return xp.minimum(x, a_max)
    if a_max is None:
        return xp.maximum(x, a_min)
    return xp.minimum(xp.maximum(x, a_min), a_max)


# -- dtype ---------------------------------------------------------------------------------------


def astype_backward(grad_output: Any, x: Any, dtype: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    # the gradient goes back in x's dtype; a cast to int/bool cuts the graph (no gradient)
    if grad_output.dtype.kind not in "fc" or x.dtype.kind not in "fc":
        return None, None
    if grad_output.dtype.kind == "c" and x.dtype.kind != "c":  # real x went complex: its real part
        grad_output = real(grad_output)
    return (grad_output if grad_output.dtype == x.dtype else astype(grad_output, x.dtype)), None


@primitive(astype_backward, formula="∂x = the gradient cast back to x's dtype (complex to real: the real part)")
def astype(x: Any, dtype: Any) -> Any:
    """A copy of ``x`` in ``dtype`` (the recorded ``x.astype(dtype)``; complex to real keeps the real part,
    with NumPy's ComplexWarning)."""
    return x.astype(dtype)


# -- comparisons and logic: never recorded (their outputs are bool, nothing to differentiate) -----


def _nondiff(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Register ``fn`` as non-differentiable, with NumPy's errors wrapped like a primitive's (op + shapes)."""

    @functools.wraps(fn)
    def op(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NewGradError:
            raise
        except (ValueError, IndexError) as err:
            raise _wrap_error(fn.__name__, args, kwargs, err) from err

    return nondifferentiable(op)


def _numpy_nondiff(name: str, arity: int) -> Callable[..., Any]:
    """NumPy's (or CuPy's) ``name`` on one or two arrays, registered as non-differentiable."""
    if arity == 2:

        def fn(a: Any, b: Any) -> Any:
            return getattr(namespace(a, b), name)(a, b)

    else:

        def fn(x: Any) -> Any:
            return getattr(namespace(x), name)(x)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"NumPy's ``{name}``: a bool array, never recorded."
    return _nondiff(fn)


equal = _numpy_nondiff("equal", 2)
not_equal = _numpy_nondiff("not_equal", 2)
less = _numpy_nondiff("less", 2)
less_equal = _numpy_nondiff("less_equal", 2)
greater = _numpy_nondiff("greater", 2)
greater_equal = _numpy_nondiff("greater_equal", 2)
logical_and = _numpy_nondiff("logical_and", 2)
logical_or = _numpy_nondiff("logical_or", 2)
logical_xor = _numpy_nondiff("logical_xor", 2)
logical_not = _numpy_nondiff("logical_not", 1)
isfinite = _numpy_nondiff("isfinite", 1)
isnan = _numpy_nondiff("isnan", 1)
isinf = _numpy_nondiff("isinf", 1)


# -- more of NumPy's elementwise functions -------------------------------------------------------------


def remainder_backward(grad_output: Any, a: Any, b: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    ga = grad_output if needs[0] else None
    gb = None
    if needs[1] and hasattr(b, "shape"):
        q = namespace(a, b).floor_divide(a, b)  # piecewise constant: no derivative of its own
        gb = negative(multiply(grad_output, _like(q, grad_output)))
    return ga, gb


@primitive(remainder_backward, formula="a − b⌊a/b⌋: ∂/∂a = 1, ∂/∂b = −⌊a/b⌋")
def remainder(a: Any, b: Any) -> Any:
    """The remainder with the sign of ``b`` (Python's ``%``; NumPy's ``remainder`` and ``mod``)."""
    return namespace(a, b).remainder(a, b)


mod = remainder


def fmod_backward(grad_output: Any, a: Any, b: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    ga = grad_output if needs[0] else None
    gb = None
    if needs[1] and hasattr(b, "shape"):
        xp = namespace(a, b)
        r = xp.fmod(a, b) if out is None else out
        q = xp.round((xp.asarray(a) - r) / b)  # trunc(a/b), exactly an integer
        gb = negative(multiply(grad_output, _like(q, grad_output)))
    return ga, gb


@primitive(fmod_backward, formula="a − b·trunc(a/b): ∂/∂a = 1, ∂/∂b = −trunc(a/b)")
def fmod(a: Any, b: Any) -> Any:
    """The remainder with the sign of ``a`` (C's ``fmod``)."""
    return namespace(a, b).fmod(a, b)


_DEG = math.pi / 180.0


def deg2rad(x: Any) -> Any:
    """Degrees to radians: x·π/180 (NumPy's ``deg2rad``, alias ``radians``)."""
    x = as_array(x, numbers=False)
    return multiply(x, _DEG)


def rad2deg(x: Any) -> Any:
    """Radians to degrees: x·180/π (NumPy's ``rad2deg``, alias ``degrees``)."""
    x = as_array(x, numbers=False)
    return multiply(x, 180.0 / math.pi)


def radians(x: Any) -> Any:
    """NumPy's ``radians``: the same as :func:`deg2rad`."""
    return deg2rad(x)


def degrees(x: Any) -> Any:
    """NumPy's ``degrees``: the same as :func:`rad2deg`."""
    return rad2deg(x)


register("deg2rad", None, deg2rad, formula="∂(x·π/180)/∂x = π/180")
register("radians", None, radians, formula="∂(x·π/180)/∂x = π/180")
register("rad2deg", None, rad2deg, formula="∂(x·180/π)/∂x = 180/π")
register("degrees", None, degrees, formula="∂(x·180/π)/∂x = 180/π")


def sinc_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    s = sinc(x) if out is None else out
    zero = namespace(x).asarray(x) == 0
    safe = where(zero, 1.0, x)
    d = divide(subtract(cos(multiply(math.pi, safe)), where(zero, 1.0, s)), safe)
    return (multiply(grad_output, where(zero, 0.0, d)),)


@primitive(sinc_backward, formula="∂sinc x/∂x = (cos πx − sinc x)/x, 0 at x = 0")
def sinc(x: Any) -> Any:
    """sin(πx)/(πx), 1 at 0 (NumPy's normalised ``sinc``)."""
    return namespace(x).sinc(x)


def logaddexp_backward(grad_output: Any, a: Any, b: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    y = logaddexp(a, b) if out is None else out
    ga = multiply(grad_output, exp(subtract(a, y))) if needs[0] else None
    gb = multiply(grad_output, exp(subtract(b, y))) if needs[1] else None
    return ga, gb


@primitive(logaddexp_backward, formula="y = log(eᵃ + eᵇ): ∂y/∂a = eᵃ⁻ʸ, ∂y/∂b = eᵇ⁻ʸ")
def logaddexp(a: Any, b: Any) -> Any:
    return namespace(a, b).logaddexp(a, b)


def logaddexp2_backward(grad_output: Any, a: Any, b: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    y = logaddexp2(a, b) if out is None else out
    ga = multiply(grad_output, exp2(subtract(a, y))) if needs[0] else None
    gb = multiply(grad_output, exp2(subtract(b, y))) if needs[1] else None
    return ga, gb


@primitive(logaddexp2_backward, formula="y = log₂(2ᵃ + 2ᵇ): ∂y/∂a = 2ᵃ⁻ʸ, ∂y/∂b = 2ᵇ⁻ʸ")
def logaddexp2(a: Any, b: Any) -> Any:
    return namespace(a, b).logaddexp2(a, b)


def nan_to_num_backward(
    grad_output: Any, x: Any, copy: bool = True, nan: float = 0.0, posinf: Any = None, neginf: Any = None, out: Any = None, needs: Any = EVERY
) -> tuple:
    xp = namespace(x)
    if _is_complex(x):  # the real and imaginary parts are replaced separately
        re = where(xp.isfinite(x.real), real(grad_output), 0.0)
        im = where(xp.isfinite(x.imag), imag(grad_output), 0.0)
        return add(re, multiply(im, 1j)), None, None, None, None
    return where(xp.isfinite(x), grad_output, 0.0), None, None, None, None


@primitive(nan_to_num_backward, formula="∂x = 1 where x is finite, 0 where it was replaced")
def nan_to_num(x: Any, copy: bool = True, nan: float = 0.0, posinf: Any = None, neginf: Any = None) -> Any:
    """NaN → ``nan``, ±inf → ``posinf``/``neginf`` (the dtype's largest by default); always a new array."""
    return namespace(x).nan_to_num(x, copy=True, nan=nan, posinf=posinf, neginf=neginf)


def fabs_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return (multiply(grad_output, namespace(x).sign(x)),)


@primitive(fabs_backward, formula="∂|x|/∂x = sign(x)")
def fabs(x: Any) -> Any:
    """|x| for real x (NumPy's ``fabs``)."""
    return namespace(x).fabs(x)


# real, imag, conj, angle. For complex z = x + iy the gradient is ∂L/∂x − i·∂L/∂y (see docs/ops-guide.md):
# real passes g through (as a complex array), imag gives −i·g, conj conjugates g.


def real_backward(grad_output: Any, val: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    """``real`` passes the gradient through (the engine makes it complex for complex input)."""
    return (grad_output,)


@primitive(real_backward, formula="∂x/∂x = 1; complex z: g (the real part's gradient)")
def real(val: Any) -> Any:
    """The real part (for real input, a copy of it)."""
    xp = namespace(val)
    return xp.array(xp.real(val), copy=True)


def imag_backward(grad_output: Any, val: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    if _is_complex(val):
        return (multiply(grad_output, -1j),)
    return (None,)


@primitive(imag_backward, formula="real input: imag x = 0, ∂/∂x = 0; complex z: −i·g")
def imag(val: Any) -> Any:
    """The imaginary part (zeros for real input)."""
    xp = namespace(val)
    return xp.array(xp.imag(val), copy=True)


def conj_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return (conj(grad_output) if _is_complex(grad_output) else grad_output,)


@primitive(conj_backward, formula="real input: ∂x̄/∂x = 1; complex z: conj(g)")
def conj(x: Any) -> Any:
    """The complex conjugate (for real input, a copy)."""
    return namespace(x).conj(x)


conjugate = conj


def angle_backward(grad_output: Any, z: Any, deg: bool = False, out: Any = None, needs: Any = EVERY) -> tuple:
    if not _is_complex(z):
        return None, None
    # θ = atan2(y, x): ∂θ/∂x = −y/|z|², ∂θ/∂y = x/|z|², so the gradient is −i·g·z̄/|z|² (0 at z = 0)
    zero = namespace(z).asarray(z) == 0
    safe = where(zero, 1, z)
    d = divide(multiply(conj(safe), -1j), real(multiply(safe, conj(safe))))
    if deg:
        d = multiply(d, 180.0 / math.pi)
    return multiply(grad_output, where(zero, 0, d)), None


@primitive(angle_backward, formula="real input: 0 or π, ∂/∂x = 0 (a.e.); complex z: −i·g·z̄/|z|²")
def angle(z: Any, deg: bool = False) -> Any:
    """The argument of z (0 for x ≥ 0 and π for x < 0 on real input)."""
    return namespace(z).angle(z, deg)


def select(condlist: Any, choicelist: Any, default: Any = 0) -> Any:
    """NumPy's ``select``: the first choice whose condition holds, else ``default`` (a chain of ``where``)."""
    condlist, choicelist = list(condlist), list(choicelist)
    if len(condlist) != len(choicelist):
        from ..errors import ShapeError

        raise ShapeError(f"select: {len(condlist)} conditions for {len(choicelist)} choices; give one of each")
    if not condlist:
        from ..errors import ShapeError

        raise ShapeError("select: condlist is empty; give at least one condition")
    out = default
    for c, v in reversed(list(zip(condlist, choicelist))):
        out = where(c, v, out)
    return out


register("select", None, select, formula="where(c₀, x₀, where(c₁, x₁, … default)): each choice gets G where it is picked")

# NumPy 2's array-API spellings
acos, asin, atan, atan2 = arccos, arcsin, arctan, arctan2
acosh, asinh, atanh = arccosh, arcsinh, arctanh
pow = power  # noqa: A001 - NumPy's name


# piecewise-constant roundings: the derivative is 0 almost everywhere


@primitive(piecewise_constant_backward, formula="∂trunc(x)/∂x = 0 (a.e.)")
def trunc(x: Any) -> Any:
    return namespace(x).trunc(x)


@primitive(piecewise_constant_backward, formula="∂rint(x)/∂x = 0 (a.e.)")
def rint(x: Any) -> Any:
    return namespace(x).rint(x)


def fix(x: Any) -> Any:
    """Round toward zero (NumPy's ``fix``: the same as ``trunc``)."""
    return trunc(x)


around = round


def copysign_backward(grad_output: Any, a: Any, b: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    # PyTorch's rule: ∂/∂a = sign(a)·(−1 if b's sign bit is set else 1), 0 at a = 0; ∂/∂b = 0
    xp = namespace(a, b)
    a_, b_ = _arr(a, xp), _arr(b, xp)
    factor = xp.where(a_ == 0, 0, xp.sign(a_) * xp.where(xp.signbit(b_), -1, 1))
    ga = multiply(grad_output, _like(xp.asarray(factor), grad_output)) if needs[0] else None
    return ga, None


@primitive(copysign_backward, formula="∂/∂a = sign(a)·sign(b) (0 at a = 0), ∂/∂b = 0")
def copysign(a: Any, b: Any) -> Any:
    """|a| with the sign of b."""
    return namespace(a, b).copysign(a, b)


def ldexp_backward(grad_output: Any, x1: Any, x2: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    xp = namespace(x1, x2)
    scale = xp.ldexp(xp.ones((), dtype=grad_output.dtype), x2)  # 2^x2, exactly
    return multiply(grad_output, scale) if needs[0] else None, None


@primitive(ldexp_backward, formula="x1·2^x2: ∂/∂x1 = 2^x2 (x2 is an integer)")
def ldexp(x1: Any, x2: Any) -> Any:
    return namespace(x1, x2).ldexp(x1, x2)


def floor_divide_backward(grad_output: Any, a: Any, b: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return None, None


@primitive(floor_divide_backward, formula="⌊a/b⌋: ∂ = 0 (a.e.)")
def floor_divide(a: Any, b: Any) -> Any:
    return namespace(a, b).floor_divide(a, b)


def divmod(a: Any, b: Any) -> tuple:  # noqa: A001 - NumPy's name
    """(⌊a/b⌋, a mod b): the quotient is piecewise constant, the remainder as :func:`remainder`."""
    return floor_divide(a, b), remainder(a, b)


register("divmod", None, divmod, formula="(floor_divide, remainder)")


def _frac_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return (grad_output,)


@primitive(_frac_backward, name="modf", formula="(x − trunc x, trunc x): ∂frac/∂x = 1, ∂trunc/∂x = 0")
def _frac(x: Any) -> Any:
    return namespace(x).modf(x)[0]


def modf(x: Any) -> tuple:
    """(fractional part, integral part), both with the sign of x."""
    return _frac(x), trunc(x)


def heaviside_backward(grad_output: Any, x1: Any, x2: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    if not needs[1]:
        return None, None
    return None, where(namespace(x1).asarray(x1) == 0, grad_output, 0.0)


@primitive(heaviside_backward, formula="0, x2 or 1: ∂/∂x1 = 0 (a.e.), ∂/∂x2 = [x1 = 0]")
def heaviside(x1: Any, x2: Any) -> Any:
    return namespace(x1, x2).heaviside(x1, x2)


def nextafter_backward(grad_output: Any, x1: Any, x2: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return None, None


@primitive(nextafter_backward, formula="the next float after x1 toward x2: ∂ = 0 (a step function of its inputs)")
def nextafter(x1: Any, x2: Any) -> Any:
    return namespace(x1, x2).nextafter(x1, x2)


@primitive(piecewise_constant_backward, formula="the gap to the next float: ∂ = 0 (piecewise constant)")
def spacing(x: Any) -> Any:
    xp = namespace(x)
    if xp is np:
        return np.spacing(x)
    ax = xp.abs(x)  # CuPy has no spacing: the gap above |x|, with x's sign
    gap = xp.nextafter(ax, xp.asarray(math.inf, dtype=ax.dtype)) - ax
    return xp.where(x < 0, -gap, gap)


def piecewise(x: Any, condlist: Any, funclist: Any, *args: Any, **kw: Any) -> Any:
    """``np.piecewise``: each function (or constant) evaluated on the entries of its condition only, as NumPy
    does (so a function undefined elsewhere cannot put NaN into the gradient); the last condition wins."""
    from .indexing import getitem, index_update

    xp = namespace(x)
    if isinstance(condlist, (bool, np.bool_)) or (is_array(condlist) and condlist.dtype == bool and condlist.ndim == x.ndim):
        condlist = [condlist]
    conds = [xp.asarray(c, dtype=bool) for c in condlist]
    funcs = list(funclist)
    if len(funcs) == len(conds) + 1:
        others = ~xp.any(xp.stack(conds), axis=0) if conds else xp.ones(x.shape, dtype=bool)
        conds.append(others)
    elif len(funcs) != len(conds):
        from ..errors import ShapeError

        raise ShapeError(f"piecewise: {len(funcs)} functions for {len(conds)} conditions; give n or n + 1")
    out = multiply(x, 0.0)  # zeros where no condition holds, on the graph of x (NumPy leaves zeros)
    for c, f in zip(conds, funcs):
        if not bool(xp.any(c)):
            continue
        vals = f(getitem(x, c), *args, **kw) if callable(f) else f
        out = index_update(out, c, vals)
    return out


register("piecewise", None, piecewise, formula="each piece's function on its entries: index_update of recorded values")
