"""Custom ops: your forward, your backward, one tape entry (HIPS autograd's ``defvjp``, JAX's ``custom_vjp``).

Write the forward with NumPy (or anything) and the backward in the course's style,
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
op records one entry named after it. The backward may also declare the
keyword-only parameters the library's own backward functions receive: ``out``
(the forward's output, to reuse it; ``None`` when it must be recomputed, under
``create_graph``) and ``needs`` (per input: does it want a gradient?). A
gradient with the shape an input was broadcast to is summed back to the input's
shape, as PyTorch does. A backward that returns the wrong number of
gradients or a gradient of the wrong shape raises :class:`GradientError`
naming the custom op. Write the backward with new_grad's ops and higher
derivatives (``new_grad.grad(new_grad.grad(f))``) work through it; a backward in
plain NumPy gives correct first derivatives but is a constant to higher ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .ops._core import REGISTRY, primitive

__all__ = ["custom_op", "defvjp", "custom_ops"]


def custom_ops() -> dict[str, Callable[..., Any]]:
    """Every custom op defined in this process, by name (they live in the one op registry, flagged)."""
    return {k: v.public for k, v in REGISTRY.items() if v.user}


def defvjp(
    forward: Callable[..., Any],
    backward: Callable[..., Any],
    *,
    name: str | None = None,
    formula: str = "",
) -> Callable[..., Any]:
    """Return ``forward`` as a recorded op whose gradient rule is ``backward`` (see the module docstring)."""
    return primitive(backward, name=name, formula=formula or (backward.__doc__ or "").strip(), user=True)(forward)


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
