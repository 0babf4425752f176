"""The 11-785 course's backward functions (``mytorch.nn.functional_hw1``), under its names and contracts.

Course code records its own operations through the raw door,
``engine.add_operation(inputs, output, gradients_to_update, backward_operation)``,
with these functions as ``backward_operation``. Their contract is the course's:

- a function of one input returns one bare array (the engine accepts that as a
  1-tuple); a function of several returns a tuple, ``None`` for the inputs that
  get no gradient (index expressions, factors, states);
- ``max_backward`` is the derivative of ``np.maximum(a, 0)`` (ReLU's), and
  ``sum_backward`` spreads a (kept-dims) gradient back over ``a``;
- ``matmul_backward`` returns the course's plain formula ``(g @ b.T, a.T @ g)``
  when the shapes don't chain, instead of raising.

The course's other functions (``add_backward``, ``mul_backward``,
``log_backward``, ...) are new_grad's own, returning tuples. The binary ones are
broadcasting-aware when called by hand: each gradient comes back at its input's
shape (the engine sums broadcast axes itself, so the op's own backward leaves that
to it). new_grad's ops whose plain name is taken here keep their richer backward
as ``NAME_op_backward`` (``sum_op_backward(g, x, axis, keepdims)``, ...).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backends import namespace
from ..errors import ShapeError, shape_str
from ..ops import elementwise
from ..ops._core import unbroadcast as _unbroadcast
from ..ops.elementwise import exp_backward, log_backward
from ..ops.linalg import matmul_backward, outer_backward
from ..ops.nn_ops import SoftmaxCrossEntropy_backward

__all__ = [
    "identity_backward",
    "add_backward",
    "sub_backward",
    "matmul_backward",
    "outer_backward",
    "mul_backward",
    "div_backward",
    "log_backward",
    "exp_backward",
    "max_backward",
    "sum_backward",
    "tanh_backward",
    "transpose_backward",
    "slice_backward",
    "expand_dims_backward",
    "squeeze_backward",
    "unbroadcast",
    "SoftmaxCrossEntropy_backward",
]


def _like(grad: Any, a: Any, fn: str) -> Any:
    """``grad`` as an array of ``a``'s shape: as is, reshaped (same size), or summed where it was broadcast."""
    g = namespace(grad, a).asarray(grad)
    if g.shape == a.shape:
        return g
    if g.size == a.size:
        return g.reshape(a.shape)
    g = unbroadcast(g, a.shape)
    if g.shape != a.shape:
        raise ShapeError(
            f"{fn}: gradient {shape_str(grad)} cannot be brought to its input's shape {shape_str(a)}; "
            "pass the gradient of this function's output"
        )
    return g


def _at_input_shapes(backward: Any) -> Any:
    """``backward(grad_output, a, b)`` with each gradient summed back to its input's shape."""

    def course(grad_output: Any, a: Any, b: Any) -> tuple:
        ga, gb = backward(grad_output, a, b)
        return (
            None if ga is None else _unbroadcast(ga, a),
            None if gb is None else _unbroadcast(gb, b),
        )

    course.__name__ = course.__qualname__ = backward.__name__
    course.__doc__ = backward.__doc__
    return course


add_backward = _at_input_shapes(elementwise.add_backward)
sub_backward = _at_input_shapes(elementwise.sub_backward)
mul_backward = _at_input_shapes(elementwise.mul_backward)
div_backward = _at_input_shapes(elementwise.div_backward)


def identity_backward(grad_output: Any, a: Any) -> Any:
    """The identity passes its gradient through (summed back if it was broadcast)."""
    return _like(grad_output, a, "identity_backward")


def max_backward(grad_output: Any, a: Any, b: Any = None) -> Any:
    """Derivative of ``np.maximum(a, 0)`` (ReLU): the gradient where ``a > 0``, else 0.

    With a second operand, ``np.maximum(a, b)``: each side gets the gradient where it
    is the larger, ties split evenly (PyTorch's rule); returns ``(da, db)``.
    """
    xp = namespace(grad_output, a)
    if b is None:
        return xp.where(a > 0, grad_output, 0).astype(np.result_type(a, grad_output), copy=False)
    g = xp.asarray(grad_output)
    share = xp.where(a > b, 1.0, xp.where(a == b, 0.5, 0.0))
    da = unbroadcast(g * share, xp.shape(a))
    db = unbroadcast(g * (1.0 - share), b.shape) if isinstance(b, xp.ndarray) else None
    return da, db


def sum_backward(grad_output: Any, a: Any) -> Any:
    """The gradient of a sum reaches every summed element: ``grad_output`` spread over ``a``.

    ``grad_output`` may be a scalar, a kept-dims gradient (``np.sum(a, axis, keepdims=True)``)
    or one with the summed axes dropped (they are put back where it fits).
    """
    xp = namespace(grad_output, a)
    g = xp.asarray(grad_output)
    shape = a.shape
    try:
        np.broadcast_shapes(g.shape, shape)  # shapes only: NumPy's works for every backend
    except ValueError:
        g = g.reshape(_kept_dims(g.shape, shape))
    return g * xp.ones(shape, dtype=np.result_type(a.dtype, g.dtype))


def _kept_dims(gshape: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """``gshape`` with size-1 axes put back where ``shape``'s reduced axes were (first fit, left to right)."""
    out: list[int] = []
    rest = list(gshape)
    for n in shape:
        if rest and rest[0] == n:
            out.append(rest.pop(0))
        else:
            out.append(1)
    if rest or len(out) != len(shape):
        raise ShapeError(
            f"sum_backward: gradient {gshape} does not fit input {shape}; pass the gradient of "
            "np.sum(a, axis, keepdims=True)"
        )
    return tuple(out)


def tanh_backward(grad_output: Any, a: Any, state: Any = None) -> Any:
    """∂tanh a/∂a = 1 − tanh²a, from the saved output ``state`` when the op recorded it.

    Recorded with inputs ``[x]`` it returns one array; with ``[x, state]`` it returns
    ``(dx, None)`` (the state is the output, not a separate input).
    """
    xp = namespace(grad_output, a)
    t = xp.tanh(a) if state is None else state
    da = _like(grad_output * (1 - t * t), a, "tanh_backward")
    return da if state is None else (da, None)


def transpose_backward(grad_output: Any, a: Any) -> Any:
    """The gradient of ``a.T`` is the gradient transposed back: one array."""
    g = namespace(grad_output).asarray(grad_output).T
    if g.shape != a.shape:
        raise ShapeError(
            f"transpose_backward: gradient {shape_str(grad_output)} transposed is {g.shape}, not the "
            f"input's {shape_str(a)}; pass the gradient of a.T"
        )
    return g


def _index(indices: Any) -> Any:
    """The index expression an object array carries (the course wraps it so it can sit on the tape)."""
    if isinstance(indices, np.ndarray) and indices.dtype == object:
        if indices.ndim == 0:
            return indices.item()
        return tuple(indices.tolist())
    return indices


def slice_backward(grad_output: Any, a: Any, indices: Any) -> tuple[Any, None]:
    """The gradient of ``a[indices]``: ``grad_output`` scattered back (repeated indices add up).

    ``indices`` is what went inside the brackets, or a NumPy object array holding it
    (0-d: the expression itself; 1-d: the items of a tuple index).
    """
    xp = namespace(grad_output, a)
    key = _index(indices)
    da = xp.zeros(a.shape, dtype=np.result_type(a, grad_output))
    xp.add.at(da, key, grad_output)
    return da, None


def expand_dims_backward(grad_output: Any, a: Any, *axis: Any) -> Any:
    """Drop the inserted axes: the gradient reshaped to ``a``'s shape (``None`` for an axis input)."""
    da = _like(grad_output, a, "expand_dims_backward")
    return (da, *([None] * len(axis))) if axis else da


def squeeze_backward(grad_output: Any, a: Any, *axis: Any) -> Any:
    """Put the squeezed axes back: the gradient reshaped to ``a``'s shape (``None`` for an axis input)."""
    da = _like(grad_output, a, "squeeze_backward")
    return (da, *([None] * len(axis))) if axis else da


def unbroadcast(grad: Any, shape: tuple[int, ...], to_keep: int = 0) -> Any:
    """Sum ``grad`` down to ``shape``: the leading axes broadcasting added, then the stretched size-1 axes.

    The last ``to_keep`` axes are left as they are (the course's signature).
    """
    shape = tuple(shape)
    grad = namespace(grad).asarray(grad)
    if grad.ndim < len(shape):  # fewer axes than the target: broadcasting would add them in front
        grad = grad.reshape((1,) * (len(shape) - grad.ndim) + grad.shape)
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for i in range(len(shape) - to_keep):
        if grad.shape[i] != shape[i]:
            grad = grad.sum(axis=i, keepdims=True)
    return grad
