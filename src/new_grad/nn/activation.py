"""Activations as modules: the seed's ``Identity``, ``Sigmoid``, ``Tanh``, ``ReLU``, and PyTorch's others.

The seed's four take ``(autograd_engine)``; the others take PyTorch's options first and the engine
as a keyword. Each keeps its last output in ``.state``, as the course's did.
"""

from __future__ import annotations

from typing import Any

from .. import ops
from ..autograd_engine import Autograd
from .module import Module


class Activation(Module):
    """An elementwise activation; subclasses name the op in ``fn``."""

    fn: Any = staticmethod(ops.identity)

    def __init__(self, autograd_engine: Autograd | None = None, *, dtype: Any = None) -> None:
        super().__init__(autograd_engine)  # dtype: accepted for a uniform signature; nothing to allocate
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


# -- PyTorch's parametrised activations: their options first, the engine as a keyword ----------------


class LeakyReLU(Activation):
    """max(0, x) + negative_slope · min(0, x)."""

    def __init__(
        self, negative_slope: float = 0.01, inplace: bool = False, *, autograd_engine: Autograd | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(autograd_engine)
        self.negative_slope = negative_slope

    def forward(self, x: Any) -> Any:
        self.state = ops.leaky_relu(x, self.negative_slope)
        return self.state

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(Activation):
    """x for x > 0, alpha · (eˣ − 1) otherwise."""

    def __init__(
        self, alpha: float = 1.0, inplace: bool = False, *, autograd_engine: Autograd | None = None, dtype: Any = None
    ) -> None:
        super().__init__(autograd_engine)
        self.alpha = alpha

    def forward(self, x: Any) -> Any:
        self.state = ops.elu(x, self.alpha)
        return self.state

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class GELU(Activation):
    """x · Φ(x); ``approximate='tanh'`` for the tanh formula."""

    def __init__(
        self, approximate: str = "none", *, autograd_engine: Autograd | None = None, dtype: Any = None
    ) -> None:
        super().__init__(autograd_engine)
        self.approximate = approximate

    def forward(self, x: Any) -> Any:
        self.state = ops.gelu(x, self.approximate)
        return self.state

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(Activation):
    """x · σ(x)."""

    def __init__(
        self, inplace: bool = False, *, autograd_engine: Autograd | None = None, dtype: Any = None
    ) -> None:
        super().__init__(autograd_engine)

    fn = staticmethod(ops.silu)


class Softplus(Activation):
    """log(1 + e^(βx))/β (x itself where βx > threshold)."""

    def __init__(
        self, beta: float = 1.0, threshold: float = 20.0, *, autograd_engine: Autograd | None = None, dtype: Any = None
    ) -> None:
        super().__init__(autograd_engine)
        self.beta, self.threshold = beta, threshold

    def forward(self, x: Any) -> Any:
        self.state = ops.softplus(x, self.beta, self.threshold)
        return self.state

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


def _softmax_dim(dim: int | None, ndim: int) -> int:
    """PyTorch's implicit choice when ``dim`` is None: 0 for 0-, 1- and 3-d inputs, else 1."""
    if dim is not None:
        return dim
    return 0 if ndim in (0, 1, 3) else 1


class Softmax(Activation):
    """exp(x)/Σexp(x) along ``dim``."""

    def __init__(
        self, dim: int | None = None, *, autograd_engine: Autograd | None = None, dtype: Any = None
    ) -> None:
        super().__init__(autograd_engine)
        self.dim = dim

    def forward(self, x: Any) -> Any:
        self.state = ops.softmax(x, _softmax_dim(self.dim, x.ndim))
        return self.state

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Activation):
    """log softmax along ``dim`` (stable)."""

    def __init__(
        self, dim: int | None = None, *, autograd_engine: Autograd | None = None, dtype: Any = None
    ) -> None:
        super().__init__(autograd_engine)
        self.dim = dim

    def forward(self, x: Any) -> Any:
        self.state = ops.log_softmax(x, _softmax_dim(self.dim, x.ndim))
        return self.state

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
