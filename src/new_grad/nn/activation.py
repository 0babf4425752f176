"""Activations as modules: the course's ``Identity``, ``Sigmoid``, ``Tanh``, ``ReLU``, and PyTorch's others.

The course's four take ``(autograd_engine)``; the others take PyTorch's options first and the engine
as a keyword. Each keeps its last output in ``.state``, as the course's did.
"""

from __future__ import annotations

from typing import Any

from .. import ops
from ..autograd_engine import Autograd
from .module import Module


class Activation(Module):
    """An elementwise activation; subclasses name the op in ``fn`` and its options in ``options``."""

    fn: Any = staticmethod(ops.identity)
    options: tuple[str, ...] = ()  # attributes passed to ``fn`` after x, in order (and shown by repr)

    def __init__(self, autograd_engine: Autograd | None = None, *, dtype: Any = None) -> None:
        super().__init__(autograd_engine)  # dtype: accepted for a uniform signature; nothing to allocate
        self.state: Any = None

    def forward(self, x: Any) -> Any:
        self.state = type(self).fn(x, *self._fn_args(x))
        return self.state

    def _fn_args(self, x: Any) -> tuple:
        return tuple(getattr(self, name) for name in self.options)

    def extra_repr(self) -> str:
        values = ((name, getattr(self, name)) for name in self.options)
        return ", ".join(f"{name}={v!r}" if isinstance(v, str) else f"{name}={v}" for name, v in values)


class Identity(Activation):
    """Returns its input; like PyTorch's, it accepts and ignores any other arguments."""

    fn = staticmethod(ops.identity)

    def __init__(self, autograd_engine: Autograd | None = None, *args: Any, dtype: Any = None, **kwargs: Any) -> None:
        super().__init__(autograd_engine if isinstance(autograd_engine, Autograd) else None)


class Sigmoid(Activation):
    fn = staticmethod(ops.sigmoid)


class Tanh(Activation):
    fn = staticmethod(ops.tanh)


class ReLU(Activation):
    """max(0, x). ``ReLU(inplace=True)`` / ``ReLU(True)`` as in PyTorch: same values (computed out of place)."""

    fn = staticmethod(ops.relu)

    def __init__(
        self, autograd_engine: Autograd | bool | None = None, inplace: bool = False, *, dtype: Any = None
    ) -> None:
        if isinstance(autograd_engine, bool):  # PyTorch's positional inplace, not an engine
            autograd_engine = None
        super().__init__(autograd_engine)


# -- PyTorch's parametrised activations: their options first, the engine as a keyword ----------------


class LeakyReLU(Activation):
    """max(0, x) + negative_slope · min(0, x)."""

    fn = staticmethod(ops.leaky_relu)
    options = ("negative_slope",)

    def __init__(
        self, negative_slope: float = 0.01, inplace: bool = False, *, autograd_engine: Autograd | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(autograd_engine)
        self.negative_slope = negative_slope


class ELU(Activation):
    """x for x > 0, alpha · (eˣ − 1) otherwise."""

    fn = staticmethod(ops.elu)
    options = ("alpha",)

    def __init__(
        self, alpha: float = 1.0, inplace: bool = False, *, autograd_engine: Autograd | None = None, dtype: Any = None
    ) -> None:
        super().__init__(autograd_engine)
        self.alpha = alpha


class GELU(Activation):
    """x · Φ(x); ``approximate='tanh'`` for the tanh formula."""

    fn = staticmethod(ops.gelu)
    options = ("approximate",)

    def __init__(
        self, approximate: str = "none", *, autograd_engine: Autograd | None = None, dtype: Any = None
    ) -> None:
        super().__init__(autograd_engine)
        self.approximate = approximate


class SiLU(Activation):
    """x · σ(x)."""

    fn = staticmethod(ops.silu)

    def __init__(
        self, inplace: bool = False, *, autograd_engine: Autograd | None = None, dtype: Any = None
    ) -> None:
        super().__init__(autograd_engine)


class Softplus(Activation):
    """log(1 + e^(βx))/β (x itself where βx > threshold)."""

    fn = staticmethod(ops.softplus)
    options = ("beta", "threshold")

    def __init__(
        self, beta: float = 1.0, threshold: float = 20.0, *, autograd_engine: Autograd | None = None, dtype: Any = None
    ) -> None:
        super().__init__(autograd_engine)
        self.beta, self.threshold = beta, threshold


def _softmax_dim(dim: int | None, ndim: int) -> int:
    """PyTorch's implicit choice when ``dim`` is None: 0 for 0-, 1- and 3-d inputs, else 1."""
    if dim is not None:
        return dim
    return 0 if ndim in (0, 1, 3) else 1


class _SoftmaxActivation(Activation):
    """Softmax and LogSoftmax: one option, ``dim``, resolved as PyTorch does when None."""

    options = ("dim",)

    def __init__(
        self, dim: int | None = None, *, autograd_engine: Autograd | None = None, dtype: Any = None
    ) -> None:
        super().__init__(autograd_engine)
        self.dim = dim

    def _fn_args(self, x: Any) -> tuple:
        return (_softmax_dim(self.dim, x.ndim),)


class Softmax(_SoftmaxActivation):
    """exp(x)/Σexp(x) along ``dim``."""

    fn = staticmethod(ops.softmax)


class LogSoftmax(_SoftmaxActivation):
    """log softmax along ``dim`` (stable)."""

    fn = staticmethod(ops.log_softmax)
