"""``DataLoader``: batches of a dataset, shuffled with a seeded NumPy generator.

Every array in a batch is marked :func:`new_grad.constant`, so the engine never
computes (or allocates) a gradient for data or labels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..autograd_engine import constant
from ..backends import is_array, namespace
from ..errors import DataError
from .dataset import as_generator


def default_collate(samples: list[Any]) -> Any:
    """Stack a list of samples into a batch: tuples field by field, arrays and numbers along a new axis 0."""
    first = samples[0]
    if isinstance(first, tuple) and hasattr(first, "_fields"):  # a namedtuple stays one, as in PyTorch
        return type(first)(*(default_collate([s[i] for s in samples]) for i in range(len(first))))
    if isinstance(first, (tuple, list)):
        return tuple(default_collate([s[i] for s in samples]) for i in range(len(first)))
    if isinstance(first, dict):
        return {k: default_collate([s[k] for s in samples]) for k in first}
    if is_array(first):
        return namespace(first).stack(samples)
    return np.asarray(samples)


def _mark_constant(batch: Any) -> Any:
    if is_array(batch):
        return constant(batch)
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a namedtuple takes its fields positionally
        return type(batch)(*(_mark_constant(b) for b in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(_mark_constant(b) for b in batch)
    if isinstance(batch, dict):
        return {k: _mark_constant(v) for k, v in batch.items()}
    return batch


class DataLoader:
    """Iterate over ``dataset`` in batches (PyTorch's ``DataLoader``, single process).

    ``shuffle`` draws a new permutation every epoch from ``generator`` (a NumPy
    ``Generator``) or from a generator seeded with ``seed``: the same seed gives
    the same batches in the same order, every run. ``drop_last`` drops a final
    short batch. ``collate_fn`` turns a list of samples into a batch (the default
    stacks arrays); datasets with ``__getitems__`` (``ArrayDataset``) are batched
    by one fancy index instead, unless a ``collate_fn`` is given (a ``__getitems__``
    that returns a list of samples, as PyTorch's does, is collated).
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        generator: np.random.Generator | int | None = None,
        seed: int | None = None,
    ) -> None:
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
            raise DataError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        if generator is not None and seed is not None:
            raise DataError("DataLoader: give either generator or seed, not both")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.collate_fn = collate_fn
        self.generator = as_generator(generator if generator is not None else seed)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def batch_indices(self) -> list[np.ndarray]:
        """This epoch's batches as index arrays (draws the permutation when shuffling)."""
        n = len(self.dataset)
        order = self.generator.permutation(n) if self.shuffle else np.arange(n)
        stop = (n // self.batch_size) * self.batch_size if self.drop_last else n
        return [order[i : min(i + self.batch_size, stop)] for i in range(0, stop, self.batch_size)]

    def fetch(self, indices: np.ndarray) -> Any:
        """The batch of samples at ``indices``, collated and marked constant."""
        if self.collate_fn is None and hasattr(self.dataset, "__getitems__"):
            batch = self.dataset.__getitems__(indices)
            if isinstance(batch, list):  # samples, as PyTorch's __getitems__ returns (a Subset of a plain dataset)
                batch = default_collate(batch)
        else:
            collate = self.collate_fn or default_collate
            batch = collate([self.dataset[int(i)] for i in indices])
        return _mark_constant(batch)

    def __iter__(self) -> Iterator[Any]:
        for idx in self.batch_indices():
            yield self.fetch(idx)

    # the shuffling state, so an interrupted run can replay the same epochs
    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.bit_generator.state = state["generator"]

    def __repr__(self) -> str:
        return (
            f"DataLoader({len(self.dataset)} samples, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"drop_last={self.drop_last}, {len(self)} batches)"
        )
