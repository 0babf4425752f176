"""Shape ops: views and rearrangements. Their backward puts the gradient back in shape."""

from __future__ import annotations

from typing import Any

from ..backend import namespace
from ._core import primitive, unbroadcast_to


def reshape_backward(grad_output: Any, x: Any, shape: Any) -> tuple:
    return reshape(grad_output, x.shape), None


@primitive(reshape_backward, formula="reshape the gradient back to x's shape")
def reshape(x: Any, shape: Any) -> Any:
    return namespace(x).reshape(x, shape)


def transpose_backward(grad_output: Any, x: Any, axes: Any = None) -> tuple:
    if axes is None:
        return transpose(grad_output), None
    inverse = [0] * len(axes)
    for i, a in enumerate(axes):
        inverse[a % len(axes)] = i
    return transpose(grad_output, tuple(inverse)), None


@primitive(transpose_backward, formula="transpose the gradient by the inverse permutation")
def transpose(x: Any, axes: Any = None) -> Any:
    return namespace(x).transpose(x, axes)


def swapaxes_backward(grad_output: Any, x: Any, axis1: int, axis2: int) -> tuple:
    return swapaxes(grad_output, axis1, axis2), None, None


@primitive(swapaxes_backward, formula="swap the same axes of the gradient")
def swapaxes(x: Any, axis1: int, axis2: int) -> Any:
    return namespace(x).swapaxes(x, axis1, axis2)


def expand_dims_backward(grad_output: Any, x: Any, axis: Any) -> tuple:
    return reshape(grad_output, x.shape), None


@primitive(expand_dims_backward, formula="drop the inserted axes of the gradient")
def expand_dims(x: Any, axis: Any) -> Any:
    return namespace(x).expand_dims(x, axis)


def broadcast_to_backward(grad_output: Any, x: Any, shape: Any) -> tuple:
    return unbroadcast_to(grad_output, x.shape), None


@primitive(broadcast_to_backward, formula="sum the gradient over the broadcast axes")
def broadcast_to(x: Any, shape: Any) -> Any:
    return namespace(x).broadcast_to(x, shape)


def identity_backward(grad_output: Any, x: Any) -> tuple:
    return (grad_output,)


@primitive(identity_backward, formula="∂x/∂x = 1")
def identity(x: Any) -> Any:
    """A new view of ``x`` (a recorded op must never return its input object)."""
    return x.view()
