"""Activations as modules: the seed's ``Identity``, ``Sigmoid``, ``Tanh``, ``ReLU``.

Each takes ``(autograd_engine)`` and keeps its last output in ``.state``, as the course's did.
"""

from __future__ import annotations

from typing import Any

from .. import ops
from ..autograd_engine import Autograd
from .module import Module


class Activation(Module):
    """An elementwise activation; subclasses name the op in ``fn``."""

    fn: Any = staticmethod(ops.identity)

    def __init__(self, autograd_engine: Autograd | None = None) -> None:
        super().__init__(autograd_engine)
        self.state: Any = None

    def forward(self, x: Any) -> Any:
        self.state = type(self).fn(x)
        return self.state


class Identity(Activation):
    fn = staticmethod(ops.identity)


class Sigmoid(Activation):
    fn = staticmethod(ops.sigmoid)


class Tanh(Activation):
    fn = staticmethod(ops.tanh)


class ReLU(Activation):
    fn = staticmethod(ops.relu)
