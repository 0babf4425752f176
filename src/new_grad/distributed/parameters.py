"""Parameters across processes: check that every process has the same model, then broadcast one.

A model that differs between processes (another width, a layer more, the same
sizes in another order, float32 on one and float64 on another) must be an error
on every process, never a hang (a broadcast of mismatched sizes blocks forever) nor
a silently different model (same total size, other order). So the layout —
names, shapes, dtypes in order — is compared first, by a fixed-size digest that
every process gathers; only when they differ are the full descriptions gathered,
to say what differs.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from ..errors import DistributedError
from ..nn.module import param_grads
from .session import Session, session_for

Named = list[tuple[str, tuple[Any, Any]]]


def named_pairs(params: Any) -> Named:
    """``(name, (param, grad))`` for what ``nn.param_grads`` reads (a Module, pairs), or an already named list."""
    if isinstance(params, list) and params and all(isinstance(x, tuple) and isinstance(x[0], str) for x in params):
        return params
    if hasattr(params, "named_parameters"):
        return list(params.named_parameters())
    return [(name, (p, g)) for name, p, g in param_grads(params, "new_grad.distributed")]


def _describe(named: Named) -> str:
    return "\n".join(f"{name} {tuple(p.shape)} {p.dtype}" for name, (p, _) in named)


def check_parameters(params: Any, comm: Any = None) -> None:
    """Raise :class:`DistributedError` on every process unless all have the same names, shapes and dtypes."""
    s = session_for(comm)
    named = named_pairs(params)
    if s.size == 1:
        return
    text = _describe(named).encode()
    meta = np.frombuffer(hashlib.sha256(text).digest() + np.int64(len(text)).tobytes(), dtype=np.uint8)
    everyone = s.allgather(meta, "the parameter layout check")
    if all((row == everyone[0]).all() for row in everyone):
        return
    longest = int(max(np.frombuffer(row[32:].tobytes(), dtype=np.int64)[0] for row in everyone))
    padded = np.zeros(longest, dtype=np.uint8)
    padded[: len(text)] = np.frombuffer(text, dtype=np.uint8)
    texts = [bytes(row).rstrip(b"\0").decode() for row in s.allgather(padded, "the parameter layout report")]
    raise DistributedError(_mismatch(texts))


def _mismatch(texts: list[str]) -> str:
    ref = texts[0].splitlines()
    parts = []
    for r, t in enumerate(texts[1:], start=1):
        lines = t.splitlines()
        if lines == ref:
            continue
        if len(lines) != len(ref):
            what = f"has {len(lines)} parameters, process 0 has {len(ref)}"
        else:
            i = next(i for i, (a, b) in enumerate(zip(lines, ref)) if a != b)
            what = f"parameter #{i} is '{lines[i]}', on process 0 '{ref[i]}'"
        parts.append(f"process {r} {what}")
    return (
        "the processes hold different models (" + "; ".join(parts) + "). Build the same model, with its "
        "parameters registered in the same order and of the same dtype, on every process"
    )


def broadcast_parameters(params: Any, comm: Any = None, root: int = 0) -> None:
    """Copy the root process's parameters into every process's, in place, after checking the layouts agree.

    One message per dtype (the parameters are packed into one buffer). CuPy
    arrays travel through host memory: MPI is not assumed to be CUDA-aware.
    """
    s = session_for(comm)
    named = named_pairs(params)
    check_parameters(named, s)
    if s.size == 1:
        return
    for group in _by_dtype([p for _, (p, _) in named]):
        flat = np.concatenate([_host(p).reshape(-1) for p in group]) if s.rank == root else None
        if flat is None:
            flat = np.empty(sum(int(p.size) for p in group), dtype=group[0].dtype)
        s.bcast(flat, "the parameter broadcast", root=root)
        if s.rank != root:
            _unpack(flat, group)


def _by_dtype(arrays: list[Any]) -> list[list[Any]]:
    groups: dict[str, list[Any]] = {}
    for a in arrays:
        groups.setdefault(str(a.dtype), []).append(a)
    return list(groups.values())


def _host(a: Any) -> np.ndarray:
    return a if isinstance(a, np.ndarray) else a.get()  # CuPy: stage through host memory


def _unpack(flat: np.ndarray, arrays: list[Any]) -> None:
    start = 0
    for a in arrays:
        part = flat[start : start + a.size].reshape(a.shape)
        if isinstance(a, np.ndarray):
            a[...] = part
        else:
            a.set(part) if hasattr(a, "set") else a.__setitem__(Ellipsis, part)
        start += a.size


__all__ = ["broadcast_parameters", "check_parameters", "named_pairs", "Session"]
