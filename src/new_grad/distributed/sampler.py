"""Each process's share of the data: contiguous slices of every global batch.

Every process runs the same shuffled ``DataLoader`` (same seed, same generator
state), so all agree on each epoch's permutation and on its global batches without
any message; each takes its slice of every global batch. The slices of one batch are
disjoint and cover it, so one epoch covers the data set exactly once, reshuffled every
epoch. Because the global batches do not depend on the number of processes, neither
does training: N processes follow the trajectory of one, and a checkpoint (whose
loader state is the shared generator's) resumes on any number of processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import DistributedError


def shard_bounds(n: int, size: int, rank: int) -> tuple[int, int]:
    """``[start, stop)`` of process ``rank``'s slice of ``n`` items (sizes differ by at most one)."""
    if not 0 <= rank < size:
        raise DistributedError(f"shard_bounds: rank {rank} is not in [0, {size})")
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


class DistributedSampler:
    """Iterate over this process's slice of each of ``loader``'s global batches.

    Yields ``(batch, weight)`` with ``weight = len(slice) / len(global batch)``: pass it to
    :meth:`DistributedDataParallel.backward` so that the summed gradients are those of
    the mean loss over the global batch even when slices differ in size. A slice may be
    empty (a last batch smaller than the number of processes): then ``batch`` is
    ``None`` and the process takes part with ``ddp.synchronize()`` alone.

    ``rank``/``size`` default to the communicator's. ``state_dict``/``load_state_dict``
    are the loader's: a run saved with N processes resumes with M.
    """

    def __init__(self, loader: Any, comm: Any = None, *, rank: int | None = None, size: int | None = None) -> None:
        if rank is None or size is None:
            from .session import session_for

            s = session_for(comm)
            rank = s.rank if rank is None else rank
            size = s.size if size is None else size
        if not 0 <= rank < size:
            raise DistributedError(f"DistributedSampler: rank {rank} is not in [0, {size})")
        self.loader, self.rank, self.size = loader, int(rank), int(size)

    def __len__(self) -> int:
        return len(self.loader)

    def batch_indices(self) -> list[tuple[np.ndarray, int]]:
        """This epoch's ``(my slice of the global batch's indices, global batch size)``, drawing the shuffle."""
        out = []
        for idx in self.loader.batch_indices():
            a, b = shard_bounds(len(idx), self.size, self.rank)
            out.append((idx[a:b], len(idx)))
        return out

    def __iter__(self) -> Iterator[tuple[Any, float]]:
        for local, n in self.batch_indices():
            yield (self.loader.fetch(local) if len(local) else None), len(local) / n

    def state_dict(self) -> dict[str, Any]:
        return self.loader.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.loader.load_state_dict(state)


__all__ = ["DistributedSampler", "shard_bounds"]
