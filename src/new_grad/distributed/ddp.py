"""``DistributedDataParallel``: average gradients across processes while backward is still running.

Backward walks the operation list from last to first, so before it starts, the tape
already says when each parameter's gradient is final: right after the *earliest* op
that used the parameter has been processed — nothing processed later can add to it.
The parameters are grouped into buckets in the order their gradients become final
(the last layer's first); a bucket's non-blocking allreduce (``MPI_Iallreduce``) is
started as soon as the reverse loop moves past the op that finalises it, and the
remaining ops' backward computation runs while the message travels.

The hook touches no engine code: before backward, each op on the tape whose turn
comes after a bucket is final gets its ``backward_operation`` wrapped (the course's
attribute, which the reverse loop calls) by a function that first starts the buckets
that are ready and lets MPI progress those in flight, then calls the original. The
wrappers are removed after backward. Whatever path computes the gradients (an op
whose gradient is ``None`` so its backward is skipped, a replayed step),
:meth:`synchronize` starts every bucket not started yet, so the result never depends
on the hook having fired.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from ..errors import DistributedError
from .parameters import _host, _unpack, broadcast_parameters, check_parameters, named_pairs
from .session import Pending, session_for

DEFAULT_BUCKET_BYTES = 1 << 20


class _Bucket:
    __slots__ = ("members", "grads", "flat", "pending", "base")

    def __init__(self, members: list[int], grads: list[Any]) -> None:
        self.members = members
        self.grads = grads
        self.flat = np.empty(sum(int(g.size) for g in grads), dtype=grads[0].dtype)
        self.pending: Pending | None = None
        self.base: np.ndarray | None = None  # the previous step's sums still held (not zeroed): counted once


class _Progress(threading.Thread):
    """Drives MPI's progress on the buckets in flight while backward computes.

    MPI moves a non-blocking collective forward only inside MPI calls; between two ops
    of the reverse loop (a long matmul) nothing would happen. This thread tests the
    started requests every 50 µs; NumPy releases the GIL inside BLAS, so it runs
    while the big backward products do. The main thread stops it before waiting.
    """

    def __init__(self, session: Any) -> None:
        super().__init__(name="new_grad-allreduce-progress", daemon=True)
        self.session = session
        self.pending: list[Pending] = []
        self.lock = threading.Lock()
        self.done = threading.Event()

    def add(self, p: Pending) -> None:
        with self.lock:
            self.pending.append(p)

    def run(self) -> None:
        testall = self.session.MPI.Request.Testall
        while not self.done.is_set():
            with self.lock:
                reqs = [p.request for p in self.pending]
            if reqs:
                testall(reqs)
            self.done.wait(5e-5)

    def finish(self) -> None:
        self.done.set()
        self.join()


class DistributedDataParallel:
    """Wrap a Module so that ``ddp.backward(engine)`` leaves every process with the averaged gradient.

    ``broadcast`` (default) copies process 0's parameters to the others at construction;
    either way the processes' parameter names, shapes and dtypes are checked to agree
    first. ``overlap=False`` starts every allreduce after backward (the baseline the
    overlap is measured against). ``bucket_bytes`` bounds a bucket's size: smaller
    buckets start earlier, larger ones pay the per-message latency fewer times.
    ``progress_thread`` tests the buckets in flight from a helper thread while
    backward computes (MPI advances a collective only inside MPI calls); it helps
    where each process has a spare core, and is off by default.

    Call it like the module; attribute access falls through to the module.
    """

    def __init__(
        self,
        module: Any,
        comm: Any = None,
        *,
        overlap: bool = True,
        bucket_bytes: int = DEFAULT_BUCKET_BYTES,
        broadcast: bool = True,
        timeout: float | None = None,
        progress_thread: bool = False,
    ) -> None:
        self.module = module
        self.session = session_for(comm, timeout)
        self.named = named_pairs(module)
        if not self.named:
            raise DistributedError(f"DistributedDataParallel: {type(module).__name__} has no parameters to average")
        if broadcast:
            broadcast_parameters(self.named, self.session)
        else:
            check_parameters(self.named, self.session)
        self.overlap = overlap
        self.bucket_bytes = int(bucket_bytes)
        self.buckets: list[_Bucket] | None = None
        self._index = {id(p): k for k, (_, (p, _)) in enumerate(self.named)}
        self._ready: list[int] = []
        self._next = 0
        self._hooked: list[tuple[Any, Any]] = []
        self._synced = False  # a synchronize has run: each bucket's ``flat`` holds the sums it wrote
        self._prepared = False  # prepare ran for this step: the carried sums are known
        self.progress_thread = progress_thread and self.session.MPI.Query_thread() == self.session.MPI.THREAD_MULTIPLE
        self._progress: _Progress | None = None
        # what the last steps did, for measuring overlap
        self.stats = {"steps": 0, "buckets_started_in_backward": 0, "buckets_done_before_wait": 0, "wait_seconds": 0.0}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name == "module":
            raise AttributeError(name)
        return getattr(self.module, name)

    # -- one step ---------------------------------------------------------------------------------
    def backward(self, engine: Any, divergence: Any = 1.0, *, weight: float | None = None, **kwargs: Any) -> None:
        """``engine.backward`` with the allreduces overlapped, then wait: gradients are averaged on return.

        ``weight`` scales this process's contribution before the sum: ``1/size`` by default
        (equal shards); ``len(local batch) / len(global batch)`` when shards differ, so the
        result is the gradient of the mean loss over the whole global batch.
        """
        w = 1.0 / self.session.size if weight is None else float(weight)
        self.prepare(engine)
        try:
            engine.backward(divergence * w if w != 1.0 else divergence, **kwargs)
        finally:
            self._unhook()
        self.synchronize()

    def prepare(self, engine: Any) -> None:
        """Plan the buckets from the tape (first step) and hook the ops after which they are final."""
        ops = engine.operation_list
        first = [-1] * len(self.named)
        for i, op in enumerate(ops):
            for x in op.inputs:
                k = self._index.get(id(x))
                if k is not None and first[k] < 0:
                    first[k] = i
        if self.buckets is None:
            self._plan(first)
        assert self.buckets is not None
        self._carry()
        # a bucket is final once the op that first used any of its parameters is processed
        n = len(ops)
        self._ready = [min((first[k] for k in b.members if first[k] >= 0), default=n) for b in self.buckets]
        self._next = 0
        if not self.overlap or not ops:
            return
        for j in range(min(n, max(self._ready))):
            op = ops[j]
            orig = op.backward_operation
            op.backward_operation = self._hook(j, orig)
            self._hooked.append((op, orig))

    def _carry(self) -> None:
        """Find the gradients still holding the last synchronize's sums (nobody zeroed them).

        Every process holds the same sums, so summing them again would count them once per
        process. They are taken out before the allreduce and added back after: gradients
        accumulated over steps without ``zero_grad`` add up as on one process. Checked
        before backward adds anything (or, for a step without backward, at synchronize).
        """
        self._prepared = True
        if not self._synced:
            return
        assert self.buckets is not None
        for b in self.buckets:
            b.base = None
            start = 0
            for g in b.grads:
                seg = b.flat[start : start + g.size]
                flat = g.reshape(-1)
                # the first entry rules out a zeroed gradient (the usual step) without reading it all
                if seg.any() and _host(flat[:1])[0] == seg[0] and np.array_equal(_host(flat), seg):
                    if b.base is None:
                        b.base = np.zeros_like(b.flat)
                    b.base[start : start + g.size] = seg
                start += g.size

    def _hook(self, j: int, orig: Any) -> Any:
        def backward_then_allreduce(*args: Any, **kwargs: Any) -> Any:
            self._reached(j)
            return orig(*args, **kwargs)

        backward_then_allreduce.__name__ = getattr(orig, "__name__", "backward")
        return backward_then_allreduce

    def _reached(self, j: int) -> None:
        """The reverse loop is about to process op ``j``: every op after it is done."""
        buckets = self.buckets
        assert buckets is not None
        while self._next < len(buckets) and self._ready[self._next] > j:
            self._start(buckets[self._next], in_backward=True)
            self._next += 1
            self.stats["buckets_started_in_backward"] += 1
        if self._progress is None and self._next:
            started = [b.pending for b in buckets[: self._next] if b.pending is not None]
            self.session.test(started)  # MPI progresses a non-blocking collective only when called

    def _unhook(self) -> None:
        for op, orig in self._hooked:
            op.backward_operation = orig
        self._hooked = []

    def _start(self, b: _Bucket, in_backward: bool = False) -> None:
        start = 0
        for g in b.grads:
            b.flat[start : start + g.size] = _host(g).reshape(-1)
            start += g.size
        if b.base is not None:
            b.flat -= b.base
        MPI = self.session.MPI
        flat = b.flat
        b.pending = self.session.start("the gradient allreduce", lambda c: c.Iallreduce(MPI.IN_PLACE, flat, op=MPI.SUM))
        if in_backward and self.progress_thread:
            if self._progress is None:
                self._progress = _Progress(self.session)
                self._progress.start()
            self._progress.add(b.pending)

    def synchronize(self) -> None:
        """Start the buckets not started yet, wait for all, and write the sums into the gradients.

        Also the whole step of a process whose shard of the batch is empty: it
        contributes its (zeroed) gradients and receives the others'.
        """
        if self.buckets is None:
            self._plan([-1] * len(self.named))
        assert self.buckets is not None
        if not self._prepared:  # no backward through ddp this step (an empty slice): the gradients are untouched
            self._carry()
        if self._progress is not None:
            self._progress.finish()
            self._progress = None
        early = [b.pending for b in self.buckets[: self._next] if b.pending is not None]
        if early and self.session.test(early):  # what overlap achieved: complete before anyone waits
            self.stats["buckets_done_before_wait"] += len(early)
        for b in self.buckets[self._next :]:
            self._start(b)
        self._next = len(self.buckets)
        tic = time.perf_counter()
        self.session.wait([b.pending for b in self.buckets if b.pending is not None])
        self.stats["wait_seconds"] += time.perf_counter() - tic
        for b in self.buckets:
            if b.base is not None:
                b.flat += b.base
                b.base = None
            _unpack(b.flat, b.grads)
            b.pending = None
        self._next = 0
        self._synced, self._prepared = True, False
        self.stats["steps"] += 1

    # -- buckets ----------------------------------------------------------------------------------
    def _plan(self, first: list[int]) -> None:
        """Group parameters in the order their gradients become final; process 0's order for everyone.

        Buckets must be started in the same order on every process (MPI matches
        collectives by order), so the order is computed once, on process 0's first tape,
        and broadcast.
        """
        n = len(self.named)
        unused_first = sorted(range(n), key=lambda k: (first[k] >= 0, -first[k], -k))
        order = np.array(unused_first, dtype=np.int64)
        if self.session.size > 1:
            self.session.bcast(order, "the gradient bucket plan")
        buckets: list[_Bucket] = []
        members: list[int] = []
        nbytes = 0
        for k in order.tolist():
            g = self.named[k][1][1]
            if members and (g.dtype != self.named[members[0]][1][1].dtype or nbytes >= self.bucket_bytes):
                buckets.append(_Bucket(members, [self.named[m][1][1] for m in members]))
                members, nbytes = [], 0
            members.append(k)
            nbytes += g.nbytes
        buckets.append(_Bucket(members, [self.named[m][1][1] for m in members]))
        self.buckets = buckets


__all__ = ["DEFAULT_BUCKET_BYTES", "DistributedDataParallel"]
