"""Loss modules: PyTorch's (``loss(input, target)``) and the course's (``loss(y, y_hat)``).

Every loss is a thin Module over one fused op of :mod:`new_grad.ops.losses`
(``new_grad.nn.functional.cross_entropy`` etc.), keeps its last value in
``loss_val`` and has a ``backward()`` that runs the recording engine's backward.

The course's two losses keep the course's convention exactly: ``MSELoss(engine)``
and ``SoftmaxCrossEntropy(engine)`` are called ``loss(y, y_hat)`` (targets
first) and return the mean as an array of shape (1,). ``MSELoss`` is also
PyTorch's: built without an engine, or with a ``reduction``, it returns PyTorch's
shapes (0-d for ``'mean'``/``'sum'``). Squared error is symmetric, so the
argument order does not change its value or gradients; only the (1,) shape marks
the course's mode.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import ops
from ..autograd_engine import STATE, Autograd
from ..backends import get_default_dtype, namespace
from ..errors import ArgumentError, EmptyTapeError, ShapeError
from .module import Module


class _Loss(Module):
    """Base: ``reduction``, ``loss_val``, ``backward()``; subclasses define ``forward``."""

    def __init__(self, reduction: str = "mean", autograd_engine: Autograd | None = None) -> None:
        super().__init__(autograd_engine)
        if reduction not in self._reductions:
            raise ArgumentError(f"{type(self).__name__}: reduction={reduction!r} is not one of {self._reductions}")
        self.reduction = reduction
        self.loss_val: Any = None
        self._engine: Autograd | None = None

    _reductions: tuple[str, ...] = ("none", "mean", "sum")

    def _finish(self, loss: Any) -> Any:
        self.loss_val = loss
        self._engine = STATE.engine
        return loss

    def backward(self) -> None:
        """Backpropagate from this loss through the engine that recorded it."""
        eng = self._engine or self.autograd_engine
        if eng is None:
            raise EmptyTapeError(
                f"{type(self).__name__}.backward: the loss was computed with no engine recording; "
                "give the loss (and the model) an Autograd engine or compute it inside `with engine:`"
            )
        eng.backward(1, output=self.loss_val)  # from this loss, even if more was recorded after it

    def _weight_buffer(self, name: str, value: Any, dtype: Any) -> None:
        if value is not None:
            xp = namespace(value)
            value = xp.asarray(value)
            if dtype is not None:
                value = value.astype(np.dtype(dtype))
            elif value.dtype.kind != "f":
                value = value.astype(get_default_dtype())
        self.register_buffer(name, value)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class _OpLoss(_Loss):
    """A loss that is one op called ``fn(input, target, *options)``; ``args`` names the options in order."""

    fn: Any = None
    args: tuple[str, ...] = ("reduction",)

    def forward(self, input: Any, target: Any) -> Any:  # noqa: A002
        return self._finish(type(self).fn(input, target, *(getattr(self, name) for name in self.args)))


class _CourseLoss(_Loss):
    """The course's losses: ``loss(y, y_hat)``, targets first, a (1,) mean."""

    def __init__(self, autograd_engine: Autograd | None = None) -> None:
        super().__init__("mean", autograd_engine)

    def __call__(self, y: Any, y_hat: Any) -> Any:
        return self.forward(y, y_hat)

    def _finish(self, loss: Any) -> Any:
        return super()._finish(ops.reshape(loss, (1,)))


class MSELoss(_Loss):
    """Mean (or sum, or none) of the squared error.

    ``MSELoss(engine)``: the course's loss, called ``loss(y, y_hat)``, returning a (1,) mean.
    ``MSELoss(reduction=...)`` / ``MSELoss()``: PyTorch's, called ``loss(input, target)``.
    """

    def __init__(
        self,
        autograd_engine: Autograd | str | None = None,
        reduction: str | None = None,
        dtype: Any = None,
    ) -> None:
        if isinstance(autograd_engine, str):  # MSELoss('sum'): PyTorch style, positionally
            autograd_engine, reduction = None, autograd_engine
        if isinstance(dtype, str) and dtype in self._reductions:  # MSELoss(None, None, 'sum'): PyTorch's old form
            raise ArgumentError(
                f"MSELoss: {dtype!r} was given as the third argument, which is the dtype here (PyTorch's deprecated "
                f"MSELoss(size_average, reduce, reduction) form is not supported); pass reduction={dtype!r}"
            )
        self.__dict__["course_style"] = autograd_engine is not None and reduction is None
        super().__init__(reduction or "mean", autograd_engine)

    def forward(self, input: Any, target: Any) -> Any:  # noqa: A002
        if self.course_style:  # (y, y_hat): same value and gradients, the course's (1,) shape
            if np.shape(input) != np.shape(target):
                raise ShapeError(
                    f"MSELoss: targets {tuple(np.shape(input))} and predictions {tuple(np.shape(target))} "
                    "differ in shape"
                )
            return self._finish(ops.reshape(ops.mse_loss(target, input), (1,)))
        return self._finish(ops.mse_loss(input, target, self.reduction))


class SoftmaxCrossEntropy(_CourseLoss):
    """Mean over the batch of −Σ y·log softmax(y_hat), one fused op (targets one-hot or probabilities)."""

    def forward(self, y: Any, y_hat: Any) -> Any:
        return self._finish(ops.softmax_cross_entropy(y_hat, y))


class L1Loss(_OpLoss):
    """|input − target|, reduced."""

    fn = staticmethod(ops.l1_loss)

    def __init__(self, *, reduction: str = "mean", autograd_engine: Autograd | None = None, dtype: Any = None) -> None:
        super().__init__(reduction, autograd_engine)


class SmoothL1Loss(_OpLoss):
    """Quadratic for |d| < ``beta``, linear beyond (``beta=0``: L1)."""

    fn = staticmethod(ops.smooth_l1_loss)
    args = ("reduction", "beta")

    def __init__(
        self, *, reduction: str = "mean", beta: float = 1.0, autograd_engine: Autograd | None = None, dtype: Any = None
    ) -> None:
        super().__init__(reduction, autograd_engine)
        self.beta = beta


class HuberLoss(_OpLoss):
    """Quadratic for |d| < ``delta``, then linear with slope ``delta``."""

    fn = staticmethod(ops.huber_loss)
    args = ("reduction", "delta")

    def __init__(
        self, *, reduction: str = "mean", delta: float = 1.0, autograd_engine: Autograd | None = None, dtype: Any = None
    ) -> None:
        super().__init__(reduction, autograd_engine)
        self.delta = delta


class BCELoss(_OpLoss):
    """Binary cross-entropy of probabilities; ``weight`` rescales each element."""

    fn = staticmethod(ops.binary_cross_entropy)
    args = ("weight", "reduction")

    def __init__(
        self,
        weight: Any = None,
        *,
        reduction: str = "mean",
        autograd_engine: Autograd | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(reduction, autograd_engine)
        self._weight_buffer("weight", weight, dtype)


class BCEWithLogitsLoss(_OpLoss):
    """Sigmoid + binary cross-entropy, stable; ``pos_weight`` (per class) weights positive targets."""

    fn = staticmethod(ops.binary_cross_entropy_with_logits)
    args = ("weight", "reduction", "pos_weight")

    def __init__(
        self,
        weight: Any = None,
        *,
        reduction: str = "mean",
        pos_weight: Any = None,
        autograd_engine: Autograd | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(reduction, autograd_engine)
        self._weight_buffer("weight", weight, dtype)
        self._weight_buffer("pos_weight", pos_weight, dtype)


class KLDivLoss(_OpLoss):
    """KL(target ‖ exp(input)) for log-probability inputs; use ``reduction='batchmean'`` for the true KL."""

    fn = staticmethod(ops.kl_div)
    args = ("reduction", "log_target")

    _reductions = ("none", "mean", "sum", "batchmean")

    def __init__(
        self,
        *,
        reduction: str = "mean",
        log_target: bool = False,
        autograd_engine: Autograd | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(reduction, autograd_engine)
        self.log_target = log_target


class NLLLoss(_OpLoss):
    """Negative log-likelihood of class indices given log-probabilities (N, C, ...)."""

    fn = staticmethod(ops.nll_loss)
    args = ("weight", "ignore_index", "reduction")

    def __init__(
        self,
        weight: Any = None,
        *,
        ignore_index: int = -100,
        reduction: str = "mean",
        autograd_engine: Autograd | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(reduction, autograd_engine)
        self._weight_buffer("weight", weight, dtype)
        self.ignore_index = ignore_index


class CrossEntropyLoss(_OpLoss):
    """log_softmax + NLL of logits (N, C, ...): class-index or probability targets.

    ``weight`` per class, ``ignore_index``, ``label_smoothing``; the weighted mean
    is PyTorch's (divided by the summed weights of the targets not ignored).
    """

    fn = staticmethod(ops.cross_entropy)
    args = ("weight", "ignore_index", "reduction", "label_smoothing")

    def __init__(
        self,
        weight: Any = None,
        *,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
        autograd_engine: Autograd | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(reduction, autograd_engine)
        self._weight_buffer("weight", weight, dtype)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, ignore_index={self.ignore_index}, label_smoothing={self.label_smoothing}"


class CTCLoss(_Loss):
    """Connectionist temporal classification: ``loss(log_probs, targets, input_lengths, target_lengths)``."""

    def __init__(
        self,
        blank: int = 0,
        *,
        reduction: str = "mean",
        zero_infinity: bool = False,
        autograd_engine: Autograd | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(reduction, autograd_engine)
        self.blank = blank
        self.zero_infinity = zero_infinity

    def __call__(self, log_probs: Any, targets: Any, input_lengths: Any, target_lengths: Any) -> Any:
        return self.forward(log_probs, targets, input_lengths, target_lengths)

    def forward(self, log_probs: Any, targets: Any, input_lengths: Any, target_lengths: Any) -> Any:
        return self._finish(
            ops.ctc_loss(
                log_probs, targets, input_lengths, target_lengths, self.blank, self.reduction, self.zero_infinity
            )
        )
