"""Custom ops: your forward, your backward, one tape entry (HIPS autograd's ``defvjp``, JAX's ``custom_vjp``).

Write the forward with NumPy (or anything) and the backward seed-style,
``backward(grad_output, *inputs) -> tuple`` with one gradient per parameter of
the forward (``None`` for numbers, flags and inputs that get no gradient)::

    def clip_gradient_backward(grad_output, x, bound):
        return new_grad.clip(grad_output, -bound, bound), None

    @new_grad.custom_op(clip_gradient_backward, formula="∂/∂x = 1, gradient clipped to ±bound")
    def clip_gradient(x, bound=1.0):
        return x.copy()

    with engine:
        y = new_grad.sum(clip_gradient(w, 0.5) ** 2)

The forward runs without recording (its inner ops never reach the tape); the
op records one entry named after it. Like the built-in ops, the backward may take
keyword-only ``out=None`` (the forward's output, to reuse it; ``None`` when it
must be recomputed, under ``create_graph``) and ``needs`` (per input: does it
want a gradient?). A backward that returns the wrong number of
gradients or a gradient of the wrong shape raises :class:`GradientError`
naming the custom op. Write the backward with new_grad's ops and higher
derivatives (``new_grad.grad(new_grad.grad(f))``) work through it; a backward in
plain NumPy gives correct first derivatives but is a constant to higher ones.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from .autograd_engine import STATE, no_grad
from .backend import is_array
from .errors import GradientError, NewGradError, shape_str

__all__ = ["custom_op", "defvjp", "CUSTOM_OPS"]

#: every custom op defined in this process, by name (kept apart from the built-in op registry)
CUSTOM_OPS: dict[str, Callable[..., Any]] = {}

_REQUIRED = object()


def _checked_backward(name: str, backward: Callable[..., Any], nparams: int) -> Callable[..., Any]:
    """Wrap a user backward: clear errors naming the op for a wrong count or shape of gradients."""

    params = inspect.signature(backward).parameters
    wants = {k for k in ("out", "needs") if k in params}  # optional keyword-only extras, as for built-in ops

    def checked(grad_output: Any, *inputs: Any, out: Any = None, needs: Any = None) -> tuple:
        extra = {}
        if "out" in wants:
            extra["out"] = out
        if "needs" in wants:
            extra["needs"] = needs if needs is not None else (True,) * len(inputs)
        grads = backward(grad_output, *inputs, **extra)
        if nparams == 1 and (grads is None or is_array(grads)):
            grads = (grads,)  # a lone gradient for a one-input op is unambiguous
        if not isinstance(grads, (tuple, list)):
            raise GradientError(
                f"custom op {name}: backward returned {type(grads).__name__}; it must return a tuple with "
                f"one gradient (or None) per input of the forward, {len(inputs)} here"
            )
        if len(grads) != len(inputs):
            raise GradientError(
                f"custom op {name}: backward returned {len(grads)} gradients for {len(inputs)} inputs "
                f"({', '.join(shape_str(x) for x in inputs)}); return one per input, None for numbers, "
                "flags and inputs without a gradient"
            )
        for i, (x, g) in enumerate(zip(inputs, grads)):
            if g is None or not is_array(x):
                continue
            shape = getattr(g, "shape", ())  # a Python number fits a 0-d input only
            if tuple(shape) != tuple(x.shape):
                raise GradientError(
                    f"custom op {name}: backward returned a gradient of shape {tuple(shape)} for input {i} "
                    f"of shape {tuple(x.shape)}; return the input's exact shape (undo broadcasting with "
                    "new_grad.ops.unbroadcast(g, x))"
                )
        return tuple(grads)

    checked.__name__ = f"{name}_backward"
    checked.__qualname__ = checked.__name__
    checked.__doc__ = backward.__doc__
    return checked


def defvjp(
    forward: Callable[..., Any],
    backward: Callable[..., Any],
    *,
    name: str | None = None,
    formula: str = "",
) -> Callable[..., Any]:
    """Return ``forward`` as a recorded op whose gradient rule is ``backward`` (see the module docstring)."""
    opname = name or getattr(forward, "__name__", "custom_op")
    params = list(inspect.signature(forward).parameters.values())
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        raise TypeError(
            f"custom op {opname}: the forward must have a fixed parameter list (no *args/**kwargs); "
            "the backward gets one argument per parameter"
        )
    defaults = tuple(_REQUIRED if p.default is p.empty else p.default for p in params)
    index = {p.name: i for i, p in enumerate(params)}
    checked = _checked_backward(opname, backward, len(params))

    @functools.wraps(forward)
    def op(*args: Any, **kwargs: Any) -> Any:
        eng = STATE.engine
        with no_grad():
            out = forward(*args, **kwargs)
        if eng is None:
            return out
        full = list(args) + list(defaults[len(args) :])
        for k, v in kwargs.items():
            if k not in index:
                raise TypeError(f"custom op {opname}: unexpected keyword argument {k!r}")
            full[index[k]] = v
        if any(v is _REQUIRED for v in full):
            raise TypeError(f"custom op {opname}: missing arguments (forward parameters: {list(index)})")
        if not is_array(out) and not isinstance(out, np.generic):  # NumPy scalars become 0-d arrays
            raise NewGradError(
                f"custom op {opname}: the forward returned {type(out).__name__}; it must return one array"
            )
        return eng.record(opname, checked, tuple(full), out, True)

    op.__name__ = op.__qualname__ = opname
    op.backward = checked  # type: ignore[attr-defined]
    op.formula = formula or (backward.__doc__ or "").strip()  # type: ignore[attr-defined]
    CUSTOM_OPS[opname] = op
    return op


def custom_op(
    backward: Callable[..., Any],
    *,
    name: str | None = None,
    formula: str = "",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator form of :func:`defvjp`: ``@custom_op(my_backward)`` over the forward."""
    if not callable(backward):
        raise TypeError("custom_op(backward): pass the backward function, then decorate the forward with it")

    def deco(forward: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(forward):
            raise TypeError(
                f"custom_op({getattr(backward, '__name__', 'backward')}) is a decorator factory: write "
                "@new_grad.custom_op(my_backward) above the forward (a bare @custom_op took the forward "
                "for the backward)"
            )
        return defvjp(forward, backward, name=name, formula=formula)

    return deco
