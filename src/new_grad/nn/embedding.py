"""``Embedding``: a lookup table of learned vectors, indexed by integer ids."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import ops
from ..autograd_engine import Autograd
from ..backends import get_default_dtype
from ..errors import ArgumentError, ShapeError, UnsupportedError
from . import init
from .module import Module


class Embedding(Module):
    """``weight`` (num_embeddings, embedding_dim) ~ N(0, 1); row ``padding_idx`` is zero and never trained."""

    def __init__(
        self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None, max_norm: float | None = None,
        norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False, _weight: Any = None,
        _freeze: bool = False, device: Any = None, dtype: Any = None, *, autograd_engine: Autograd | None = None,
    ) -> None:
        super().__init__(autograd_engine)
        if max_norm is not None or scale_grad_by_freq or sparse:
            raise UnsupportedError(
                "Embedding: max_norm, scale_grad_by_freq and sparse are not supported; leave them at their defaults "
                "(None, False, False)"
            )
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ArgumentError(
                    f"Embedding: padding_idx={padding_idx} must lie in [-{num_embeddings}, {num_embeddings})"
                )
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        dtype = np.dtype(dtype or get_default_dtype())
        if _weight is not None:
            w = np.array(_weight, dtype=dtype)
            if w.shape != (num_embeddings, embedding_dim):
                raise ShapeError(f"Embedding: _weight {w.shape} must be ({num_embeddings}, {embedding_dim})")
            self.register_parameter("weight", w)
        else:
            self.register_parameter("weight", np.empty((num_embeddings, embedding_dim), dtype=dtype))
            self.reset_parameters()

    def reset_parameters(self, generator: np.random.Generator | None = None) -> None:
        init.normal_(self.weight, generator=generator)
        if self.padding_idx is not None:
            self.weight[self.padding_idx] = 0

    @classmethod
    def from_pretrained(
        cls, embeddings: Any, freeze: bool = True, padding_idx: int | None = None, **kw: Any
    ) -> Embedding:
        """A layer holding ``embeddings``; ``freeze`` keeps them out of ``parameters()`` (a buffer)."""
        n, d = np.shape(embeddings)
        layer = cls(n, d, padding_idx, _weight=embeddings, dtype=kw.pop("dtype", None), **kw)
        if freeze:
            w = layer.weight
            del layer.weight
            layer.register_buffer("weight", w)
        return layer

    def forward(self, x: Any) -> Any:
        return ops.embedding(x, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        return s + (f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")
