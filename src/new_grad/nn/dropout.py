"""``Dropout``: random zeroing in training, the identity in eval mode."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import ops
from ..autograd_engine import Autograd
from ..errors import ArgumentError
from .module import Module


class Dropout(Module):
    """Zero each element with probability ``p`` and scale the rest by 1/(1 − p) while training.

    ``generator``: an optional ``numpy.random.Generator`` for reproducible masks.
    """

    def __init__(
        self, p: float = 0.5, inplace: bool = False, *, generator: np.random.Generator | None = None,
        autograd_engine: Autograd | None = None, dtype: Any = None,
    ) -> None:
        super().__init__(autograd_engine)
        if not 0.0 <= p <= 1.0:
            raise ArgumentError(f"Dropout: p={p} must be a probability in [0, 1]")
        self.p, self.inplace, self.generator = p, inplace, generator

    def forward(self, x: Any) -> Any:
        return ops.dropout(x, self.p, self.training, self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"
