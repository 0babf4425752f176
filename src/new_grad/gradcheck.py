"""``gradcheck``: compare new_grad's gradients with central differences, in float64.

For any function built from new_grad ops (or custom ops)::

    new_grad.gradcheck(lambda x, w: new_grad.sum(new_grad.tanh(x @ w)), (x, w))

Every float input is copied to float64; the analytic Jacobian comes from
:func:`new_grad.jacobian` (one backward per output entry), the numeric one from
``(f(x + eps·eᵢ) − f(x − eps·eᵢ)) / 2eps``. They must agree entrywise within
``atol + rtol·|numeric|``. Inputs that are not float arrays (ints, labels,
numbers) and arrays marked with :func:`new_grad.constant` are passed through
unchecked. Meant for small inputs: the cost is one backward per output entry
plus two forwards per input entry.

Complex inputs are copied to complex128 and checked against the convention of
new_grad's gradients: for a real output L of z = x + iy the numeric gradient is
∂L/∂x − i·∂L/∂y (central differences along the real and the imaginary part). A
complex output is checked as its real part and its imaginary part, two real
functions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .autograd_engine import STATE, is_constant, no_grad
from .backends import is_array, to_numpy
from .errors import DtypeError, GradcheckError, shape_str

__all__ = ["gradcheck", "gradgradcheck"]


def _index(shape: tuple, flat: int) -> tuple:
    return tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()


def gradcheck(
    f: Callable[..., Any],
    inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    *,
    _who: str = "gradcheck",
) -> bool:
    """True if ``f``'s analytic gradients match central differences; else raise :class:`GradcheckError`.

    ``inputs`` is one array or a sequence of arguments. With ``raise_exception=False``
    a mismatch returns False instead. The error names the input, the worst entry
    (its index in the input and in the output), and the analytic and numeric values.
    """
    single = not isinstance(inputs, (tuple, list))
    args: list[Any] = [inputs] if single else list(inputs)
    checked: list[int] = []
    for i, a in enumerate(args):
        if isinstance(a, float):
            args[i] = np.asarray(a, dtype=np.float64)
        elif not is_array(a) or a.dtype.kind not in "fc" or is_constant(a):
            continue
        else:  # a float64 (complex128) copy on the host
            args[i] = np.array(to_numpy(a), dtype=np.complex128 if a.dtype.kind == "c" else np.float64)
        checked.append(i)
    if not checked:
        raise DtypeError(
            f"{_who}: no input to check: give at least one float array (inputs: "
            f"{', '.join(shape_str(a) for a in args)}); int arrays and constants are passed through unchecked"
        )

    saved = STATE.engine
    STATE.engine = None  # check f on its own, never on the caller's active tape
    try:
        with no_grad():
            out0 = f(*args)
        outputs = list(out0) if isinstance(out0, (tuple, list)) else [out0]
        for k in range(len(outputs)):

            def fk(*a: Any, k: int = k) -> Any:
                o = f(*a)
                return o[k] if isinstance(o, (tuple, list)) else o

            if not _check_output(fk, args, checked, k, len(outputs), eps, atol, rtol, raise_exception, _who):
                return False
    finally:
        STATE.engine = saved
    return True


def _check_output(
    f: Callable[..., Any],
    args: list[Any],
    checked: Sequence[int],
    k: int,
    n_outputs: int,
    eps: float,
    atol: float,
    rtol: float,
    raise_exception: bool,
    who: str,
    part: str = "",
) -> bool:
    from .transforms import jacobian

    with no_grad():
        out = np.asarray(to_numpy(f(*args)))
    if out.dtype.kind not in "fc":
        return True  # an integer/boolean output has no gradient to check
    if out.dtype.kind == "c":  # two real functions: the real and the imaginary part
        from .ops.elementwise import imag, real

        return all(
            _check_output(lambda *a, part=part: part(f(*a)), args, checked, k, n_outputs, eps, atol, rtol,
                          raise_exception, who, f"{part.__name__} part of ")
            for part in (real, imag)
        )
    analytic = jacobian(f, argnums=tuple(checked), allow_unused=True)(*args)
    what = part + (f"output {k} " if n_outputs > 1 else "")
    if who == "gradgradcheck":
        what = f"second derivative: the derivative of gradient {k} with respect to "
    for i, J in zip(checked, analytic):
        x = args[i]
        J = np.asarray(to_numpy(J), dtype=x.dtype).reshape(out.size, x.size)
        numeric = np.zeros_like(J)
        flat = x.reshape(-1)  # a view: perturb x in place, restore after
        for j in range(x.size):
            # a complex entry: ∂/∂x − i·∂/∂y, from steps along the real and the imaginary axis
            for step, weight in ((eps, 1.0), (1j * eps, -1j)) if x.dtype.kind == "c" else ((eps, 1.0),):
                old = flat[j].copy()
                flat[j] = old + step
                with no_grad():
                    hi = np.asarray(to_numpy(f(*args)), dtype=np.float64).reshape(-1)
                flat[j] = old - step
                with no_grad():
                    lo = np.asarray(to_numpy(f(*args)), dtype=np.float64).reshape(-1)
                flat[j] = old
                numeric[:, j] += weight * (hi - lo) / (2 * eps)
        excess = np.abs(J - numeric) - (atol + rtol * np.abs(numeric))
        bad = ~(excess <= 0)  # NaNs count as failures
        if not bad.any():
            continue
        if not raise_exception:
            return False
        hint = (
            "A backward computed in plain NumPy is a constant to higher derivatives: write it with new_grad ops."
            if who == "gradgradcheck"
            else "Check the op's backward; if f has a kink there (relu, abs, max at ties) move the input away "
            "from it, or raise eps/atol for noisy functions."
        )
        worst = int(np.nanargmax(np.where(np.isnan(excess), np.inf, excess)))
        o, j = divmod(worst, x.size)
        raise GradcheckError(
            f"{who}: {what}{'' if who == 'gradgradcheck' else 'gradient of '}input {i} {shape_str(x)} does not match central differences "
            f"at input index {_index(x.shape, j)}, output index {_index(out.shape, o)}: analytic "
            f"{_num(J[o, j])!r} vs numeric {_num(numeric[o, j])!r} ({int(bad.sum())} of {bad.size} entries outside "
            f"atol={atol} + rtol={rtol}·|numeric|). {hint}"
        )
    return True


def _num(v: Any) -> float | complex:
    return complex(v) if np.iscomplexobj(v) else float(v)


def gradgradcheck(
    f: Callable[..., Any],
    inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    seed: int = 0,
) -> bool:
    """:func:`gradcheck` one order up: the gradient of ``⟨w, f⟩`` (``w`` random, fixed by ``seed``).

    Its analytic Jacobian (the Hessian, by a recorded backward pass) is compared with
    central differences of new_grad's own first-order gradients: the check for a
    backward meant to support ``new_grad.grad(new_grad.grad(...))``.
    """
    from .ops.elementwise import multiply
    from .ops.reductions import sum as _sum
    from .transforms import grad

    single = not isinstance(inputs, (tuple, list))
    args = [inputs] if single else list(inputs)
    nums = tuple(
        i for i, a in enumerate(args)
        if isinstance(a, float) or (is_array(a) and a.dtype.kind in "fc" and not is_constant(a))
    )
    if not nums:
        raise DtypeError("gradgradcheck: no float array among the inputs to differentiate")
    with no_grad():
        out = f(*args)
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(np.shape(out))
    if np.iscomplexobj(out):  # the real loss Re Σ w·f, with w complex
        from .ops.elementwise import real

        w = w + 1j * rng.standard_normal(np.shape(out))

        def loss(*b: Any) -> Any:
            return real(_sum(multiply(f(*b), w)))
    else:

        def loss(*b: Any) -> Any:
            return _sum(multiply(f(*b), w))

    def first_gradient(*a: Any) -> Any:
        return grad(loss, argnums=nums, allow_unused=True)(*a)

    return gradcheck(first_gradient, args if not single else args[0], eps, atol, rtol, raise_exception, _who="gradgradcheck")
