"""Datasets: anything with ``__len__`` and ``__getitem__``, as in PyTorch.

``ArrayDataset`` is PyTorch's ``TensorDataset`` on plain arrays; ``Subset`` and
``random_split`` carve one dataset into several without copying the data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import DataError, UnsupportedError


class Dataset:
    """Base class: subclasses define ``__len__`` and ``__getitem__(i)`` returning one sample."""

    def __len__(self) -> int:
        raise UnsupportedError(f"{type(self).__name__} has no __len__(); a Dataset subclass must define it")

    def __getitem__(self, index: int) -> Any:
        raise UnsupportedError(f"{type(self).__name__} has no __getitem__(); a Dataset subclass must define it")


class ArrayDataset(Dataset):
    """Samples are rows of equally long arrays: ``ArrayDataset(images, labels)[i] == (images[i], labels[i])``.

    Batches are fetched with one fancy index per array (``__getitems__``), not one
    Python call per sample, so a loader over it is as fast as slicing.
    """

    def __init__(self, *arrays: Any) -> None:
        if not arrays:
            raise DataError("ArrayDataset: give at least one array, e.g. ArrayDataset(images, labels)")
        n = len(arrays[0])
        lengths = [len(a) for a in arrays]
        if any(m != n for m in lengths):
            shapes = ", ".join(str(tuple(np.shape(a))) for a in arrays)
            raise DataError(
                f"ArrayDataset: arrays have different numbers of samples (shapes {shapes}); every array "
                "needs the same length along axis 0 (one row per sample)"
            )
        # a Python list of labels becomes an array: batches index every array with one index array
        self.arrays = tuple(a if hasattr(a, "shape") else np.asarray(a) for a in arrays)

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        return tuple(a[index] for a in self.arrays)

    def __getitems__(self, indices: Any) -> tuple[Any, ...]:
        """A whole batch at once: each array indexed by ``indices``."""
        return tuple(a[indices] for a in self.arrays)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{tuple(np.shape(a))} {getattr(a, 'dtype', '')}".strip() for a in self.arrays)
        return f"ArrayDataset({shapes})"


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices`` (a view: nothing is copied)."""

    def __init__(self, dataset: Any, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[int(self.indices[index])]

    def __getitems__(self, indices: Any) -> Any:
        inner = self.indices[np.asarray(indices, dtype=np.int64)]
        if hasattr(self.dataset, "__getitems__"):
            return self.dataset.__getitems__(inner)
        return [self.dataset[int(i)] for i in inner]

    def __repr__(self) -> str:
        return f"Subset({len(self)} of {len(self.dataset)} samples)"


def as_generator(generator: Any = None) -> np.random.Generator:
    """A NumPy ``Generator`` from a Generator, an int seed, or ``None`` (fresh entropy)."""
    if isinstance(generator, np.random.Generator):
        return generator
    if generator is None or isinstance(generator, (int, np.integer)):
        return np.random.default_rng(generator)
    raise DataError(
        f"expected a numpy.random.Generator, an int seed or None as generator, got {type(generator).__name__}"
    )


def _split_lengths(n: int, lengths: Sequence[float]) -> list[int]:
    """Absolute lengths, or fractions summing to 1 turned into lengths as PyTorch does."""
    if all(isinstance(x, (int, np.integer)) for x in lengths):
        ints = [int(x) for x in lengths]
        if sum(ints) != n or any(x < 0 for x in ints):
            raise DataError(
                f"random_split: lengths {ints} sum to {sum(ints)} but the dataset has {n} samples; "
                "give non-negative lengths that add up to len(dataset), or fractions that add up to 1"
            )
        return ints
    fracs = [float(x) for x in lengths]
    if any(f < 0 or f > 1 for f in fracs) or not math.isclose(sum(fracs), 1.0, abs_tol=1e-6):
        raise DataError(f"random_split: fractions {fracs} must lie in [0, 1] and add up to 1")
    out = [int(math.floor(n * f)) for f in fracs]
    for i in range(n - sum(out)):  # leftovers go round-robin, as in torch.utils.data.random_split
        out[i % len(out)] += 1
    return out


def random_split(dataset: Any, lengths: Sequence[float], generator: Any = None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random ``Subset``\\ s of the given lengths (or fractions).

    ``generator`` (a NumPy Generator or an int seed) makes the split reproducible.
    """
    n = len(dataset)
    sizes = _split_lengths(n, lengths)
    perm = as_generator(generator).permutation(n)
    out, start = [], 0
    for size in sizes:
        out.append(Subset(dataset, perm[start : start + size]))
        start += size
    return out
