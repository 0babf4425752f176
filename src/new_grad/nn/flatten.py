"""``Flatten`` and ``Unflatten``: reshapes as layers (a recorded reshape, so gradients flow)."""

from __future__ import annotations

import math
from typing import Any

from .. import ops
from ..autograd_engine import Autograd
from ..errors import ShapeError
from .module import Module


class Flatten(Module):
    """Merge axes ``start_dim``..``end_dim`` into one: (N, C, H, W) -> (N, C·H·W) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1, *, autograd_engine: Autograd | None = None,
                 dtype: Any = None) -> None:
        super().__init__(autograd_engine)
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Any) -> Any:
        if x.ndim == 0:
            return ops.reshape(x, (1,))
        s, e = self.start_dim % x.ndim, self.end_dim % x.ndim
        if s > e:
            raise ShapeError(f"Flatten: start_dim={self.start_dim} comes after end_dim={self.end_dim} for input "
                             f"{tuple(x.shape)}")
        shape = x.shape[:s] + (math.prod(x.shape[s : e + 1]),) + x.shape[e + 1 :]
        return ops.reshape(x, shape)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split axis ``dim`` into ``unflattened_size`` (one entry may be -1)."""

    def __init__(self, dim: int, unflattened_size: Any, *, autograd_engine: Autograd | None = None,
                 dtype: Any = None) -> None:
        super().__init__(autograd_engine)
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x: Any) -> Any:
        d = self.dim % x.ndim
        size = self.unflattened_size
        known = math.prod(v for v in size if v != -1)
        if (-1 not in size and known != x.shape[d]) or (known and x.shape[d] % known):
            raise ShapeError(f"Unflatten: axis {self.dim} of input {tuple(x.shape)} (size {x.shape[d]}) cannot be "
                             f"split into {size}")
        return ops.reshape(x, x.shape[:d] + size + x.shape[d + 1 :])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
