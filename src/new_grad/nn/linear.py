"""``Linear``: the seed's layer, now a Module built on the fused ``linear`` op."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..autograd_engine import Autograd
from ..backend import get_default_dtype
from ..ops import linear
from .module import Module


class Linear(Module):
    """``y = x Wᵀ + b`` with ``W`` (out, in), ``b`` (out,); ``dW``, ``db`` filled by backward.

    The seed signature ``Linear(in_features, out_features, autograd_engine)`` is kept;
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

    # PyTorch's names for the same arrays
    @property
    def weight(self) -> Any:
        return self.W

    @property
    def bias(self) -> Any:
        return self.b

    def forward(self, x: Any) -> Any:
        return linear(x, self.W, self.b)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.b is not None}"
