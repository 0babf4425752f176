"""Data-parallel training over MPI processes (SPEC §5), with mpi4py.

The recipe is the usual one: every process holds the same model (broadcast it
once), takes its own slice of each global batch, runs forward and backward as
usual, then :func:`allreduce_gradients` averages the gradient arrays across the
processes before the optimiser step. With the same global batch, N processes
reach the same parameters as one. This layer sits beside ``nn``/``optim``: it
only averages gradients, it does not change how they are computed.

Run with ``mpiexec -n 4 python train.py``; needs the ``mpi`` extra
(``pip install "new_grad[mpi]"``: mpi4py and an MPI library).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import namespace
from ..errors import NewGradError
from ..nn.module import param_grads

Pair = tuple[Any, Any]


def _comm(comm: Any = None) -> Any:
    if comm is not None:
        return comm
    try:
        from mpi4py import MPI
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise NewGradError(
            f"new_grad.distributed needs mpi4py and an MPI library: pip install 'new_grad[mpi]' ({err})"
        ) from None
    return MPI.COMM_WORLD


def rank(comm: Any = None) -> int:
    return int(_comm(comm).Get_rank())


def world_size(comm: Any = None) -> int:
    return int(_comm(comm).Get_size())


def _pairs(params: Any) -> list[Pair]:
    return [(p, g) for _, p, g in param_grads(params, "new_grad.distributed")]


def broadcast_parameters(params: Any, comm: Any = None, root: int = 0) -> None:
    """Copy the root process's parameters into every process's, in place (call once after init)."""
    c = _comm(comm)
    for p, _ in _pairs(params):
        c.Bcast(_host(p), root=root) if isinstance(p, np.ndarray) else _bcast_device(c, p, root)


def allreduce_gradients(params: Any, comm: Any = None, average: bool = True) -> None:
    """Sum (or average) every gradient array across processes, in place, in one message.

    The gradients are packed into one contiguous buffer so the whole model costs a
    single ``Allreduce`` rather than one per parameter.
    """
    c = _comm(comm)
    pairs = _pairs(params)
    if not pairs:
        return
    grads = [g for _, g in pairs]
    dtypes = {g.dtype for g in grads}
    if len(dtypes) != 1:
        raise NewGradError(f"allreduce_gradients: gradients have mixed dtypes {sorted(map(str, dtypes))}; use one dtype")
    xp = namespace(grads[0])
    flat = xp.concatenate([g.reshape(-1) for g in grads])
    host = _host(flat)
    from mpi4py import MPI

    c.Allreduce(MPI.IN_PLACE, host, op=MPI.SUM)
    if average:
        host /= c.Get_size()
    flat = xp.asarray(host)
    start = 0
    for g in grads:
        g[...] = flat[start : start + g.size].reshape(g.shape)
        start += g.size


def shard(batch: Any, comm: Any = None) -> Any:
    """This process's contiguous slice of a global batch (sizes differ by at most one row)."""
    c = _comm(comm)
    n, size, r = len(batch), c.Get_size(), c.Get_rank()
    edges = np.linspace(0, n, size + 1).round().astype(int)
    return batch[edges[r] : edges[r + 1]]


def _host(a: Any) -> np.ndarray:
    if isinstance(a, np.ndarray):
        return a
    return a.get()  # a CuPy array: reduce on the host (CUDA-aware MPI not assumed)


def _bcast_device(c: Any, p: Any, root: int) -> None:
    host = p.get()
    c.Bcast(host, root=root)
    p[...] = namespace(p).asarray(host)


__all__ = ["allreduce_gradients", "broadcast_parameters", "rank", "shard", "world_size"]
