"""The seed's losses: called ``loss(y, y_hat)`` (targets first), returning a (1,) mean.

``loss_val`` keeps the value; ``backward()`` runs the engine's backward from it.
"""

from __future__ import annotations

from typing import Any

from .. import ops
from ..autograd_engine import STATE, Autograd
from ..errors import EmptyTapeError, ShapeError
from .module import Module


class _SeedLoss(Module):
    def __init__(self, autograd_engine: Autograd | None = None) -> None:
        super().__init__(autograd_engine)
        self.loss_val: Any = None
        self._engine: Autograd | None = None

    def __call__(self, y: Any, y_hat: Any) -> Any:
        return self.forward(y, y_hat)

    def _finish(self, loss: Any) -> Any:
        self.loss_val = ops.reshape(loss, (1,))
        self._engine = STATE.engine
        return self.loss_val

    def backward(self) -> None:
        """Backpropagate from this loss through the engine that recorded it."""
        eng = self._engine or self.autograd_engine
        if eng is None:
            raise EmptyTapeError(
                f"{type(self).__name__}.backward: the loss was computed with no engine recording; "
                "give the loss (and the model) an Autograd engine or compute it inside `with engine:`"
            )
        eng.backward(1)


class MSELoss(_SeedLoss):
    """Mean over all elements of (y_hat − y)²."""

    def forward(self, y: Any, y_hat: Any) -> Any:
        if y.shape != y_hat.shape:
            raise ShapeError(f"MSELoss: targets {tuple(y.shape)} and predictions {tuple(y_hat.shape)} differ in shape")
        diff = ops.subtract(y_hat, y)
        return self._finish(ops.mean(ops.multiply(diff, diff)))


class SoftmaxCrossEntropy(_SeedLoss):
    """Mean over the batch of −Σ y·log softmax(y_hat), one fused op (targets one-hot or probabilities)."""

    def forward(self, y: Any, y_hat: Any) -> Any:
        return self._finish(ops.softmax_cross_entropy(y_hat, y))
