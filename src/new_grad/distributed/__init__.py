"""Data-parallel training over MPI processes, with mpi4py.

Every process holds the same model (:func:`broadcast_parameters`, which first checks
that all processes built the same one), takes its slice of each global batch
(:class:`DistributedSampler`), runs forward and backward as usual, and the gradients
are summed across processes before the optimiser step — by
:class:`DistributedDataParallel`, which starts non-blocking allreduces *during*
backward as soon as the tape says a bucket of gradients is final, or by the simple
blocking :func:`allreduce_gradients`. With the same global batch, N processes reach
the parameters of one. A process that fails, leaves early or hangs ends the whole job
in bounded time (see :mod:`new_grad.distributed.session`).

This layer sits beside ``nn``/``optim``: it averages gradients; it does not change
how they are computed. Run with ``mpiexec -n 4 python train.py`` (or ``srun``); needs
the ``mpi`` extra (``pip install "new_grad[mpi]"``: mpi4py and an MPI library).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backends import namespace
from ..errors import DistributedError
from .ddp import DEFAULT_BUCKET_BYTES, DistributedDataParallel
from .parameters import broadcast_parameters, check_parameters, named_pairs
from .sampler import DistributedSampler, shard_bounds
from .session import DEFAULT_TIMEOUT, Session, session_for


def rank(comm: Any = None) -> int:
    """This process's number, 0 … size−1."""
    c = comm if comm is not None and not isinstance(comm, Session) else session_for(comm).world
    return int(c.Get_rank())


def world_size(comm: Any = None) -> int:
    """How many processes take part."""
    c = comm if comm is not None and not isinstance(comm, Session) else session_for(comm).world
    return int(c.Get_size())


def allreduce_gradients(params: Any, comm: Any = None, average: bool = True) -> None:
    """Sum (or average) every gradient array across processes, in place, in one message per dtype.

    The blocking, no-overlap recipe (one ``Allreduce`` after backward); bounded in time
    like every collective here.
    """
    s = session_for(comm)
    grads = [g for _, (_, g) in named_pairs(params)]
    if not grads or s.size == 1:
        return
    groups: dict[str, list[Any]] = {}
    for g in grads:
        groups.setdefault(str(g.dtype), []).append(g)
    for group in groups.values():
        xp = namespace(group[0])
        flat = np.ascontiguousarray(_to_host(xp.concatenate([g.reshape(-1) for g in group])))
        s.allreduce(flat, "the gradient allreduce")
        if average:
            flat /= s.size
        start = 0
        for g in group:
            g[...] = xp.asarray(flat[start : start + g.size].reshape(g.shape))
            start += g.size


def shard(batch: Any, comm: Any = None) -> Any:
    """This process's contiguous slice of a global batch (sizes differ by at most one row)."""
    a, b = shard_bounds(len(batch), world_size(comm), rank(comm))
    return batch[a:b]


def _to_host(a: Any) -> np.ndarray:
    return a if isinstance(a, np.ndarray) else a.get()  # CuPy: reduce on the host (MPI not assumed CUDA-aware)


__all__ = [
    "DEFAULT_BUCKET_BYTES",
    "DEFAULT_TIMEOUT",
    "DistributedDataParallel",
    "DistributedError",
    "DistributedSampler",
    "Session",
    "allreduce_gradients",
    "broadcast_parameters",
    "check_parameters",
    "rank",
    "session_for",
    "shard",
    "shard_bounds",
    "world_size",
]
