"""``Linear``: the course's layer, now a Module built on the fused ``linear`` op."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..autograd_engine import Autograd
from ..backends import get_default_dtype
from ..errors import ShapeError, shape_str
from ..ops import linear, reshape
from .module import Module


class Linear(Module):
    """``y = x Wᵀ + b`` with ``W`` (out, in), ``b`` (out,); ``dW``, ``db`` filled by backward.

    The course's signature ``Linear(in_features, out_features, autograd_engine)`` is kept;
    ``bias`` and ``dtype`` follow PyTorch. Initialisation is PyTorch's:
    U(−1/√in, 1/√in) for both ``W`` and ``b``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        autograd_engine: Autograd | bool | None = None,
        bias: bool = True,
        dtype: Any = None,
    ) -> None:
        if isinstance(autograd_engine, bool):  # PyTorch order: Linear(in, out, bias)
            autograd_engine, bias = None, autograd_engine
        super().__init__(autograd_engine)
        self.in_features = in_features
        self.out_features = out_features
        dtype = np.dtype(dtype or get_default_dtype())
        bound = 1 / math.sqrt(in_features) if in_features else 0.0
        self.register_parameter("W", np.random.uniform(-bound, bound, (out_features, in_features)).astype(dtype))
        self.register_parameter(
            "b", np.random.uniform(-bound, bound, (out_features,)).astype(dtype) if bias else None
        )

    # PyTorch's names for the same arrays (assigning them assigns W and b: ``head.weight = emb.weight`` ties)
    @property
    def weight(self) -> Any:
        return self.W

    @weight.setter
    def weight(self, value: Any) -> None:
        self.W = value

    @property
    def bias(self) -> Any:
        return self.b

    @bias.setter
    def bias(self, value: Any) -> None:
        self.b = value

    def init_weights(self, W: Any, b: Any) -> None:
        """Use ``W`` (out, in) and ``b`` as the parameters (the course's method); their gradients start at zero.

        ``b`` may be (out,) or, as some course handouts shape it, (out, 1) or (1, out):
        ``db`` then has that shape too.
        """
        W, b = np.asarray(W), np.asarray(b) if b is not None else None
        if W.ndim != 2 or (b is not None and b.size != W.shape[0]):
            raise ShapeError(
                f"Linear.init_weights: W {shape_str(W)} must be (out_features, in_features) and b "
                f"{shape_str(b)} must hold out_features={W.shape[0] if W.ndim == 2 else '?'} values"
            )
        self.out_features, self.in_features = W.shape
        if "W" not in self._parameters:
            self.register_parameter("W", W)
        else:
            self.W = W
        if b is not None and "b" not in self._parameters:
            self.register_parameter("b", b)
        else:
            self.b = b
        self.zero_grad()

    def forward(self, x: Any) -> Any:
        """``x`` is (batch..., in_features), or one unbatched sample (in_features,)."""
        b = self.b
        if b is not None and b.ndim != 1:  # a course-shaped (out, 1) bias: a recorded reshape routes db back
            b = reshape(b, (b.size,))
        return linear(x, self.W, b)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.b is not None}"
