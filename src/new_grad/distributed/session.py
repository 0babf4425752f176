"""One distributed run's communication, with bounded-time failure.

MPI's own collectives wait forever: if one process raises, leaves its training loop
early or hangs, the others block in their next allreduce until somebody kills the
job. A :class:`Session` makes every way of failing end the whole job in bounded time:

* **a process that dies** (SIGKILL, segfault): the launcher (``mpiexec``, ``srun``)
  already ends the job;
* **an uncaught exception** on any process: an ``excepthook`` prints the traceback
  and calls ``MPI_Abort``, which the launcher turns into the end of every process;
* **a process that stops early** (leaves the loop, returns an error status, calls
  ``sys.exit``): when it closes its session (at the latest at interpreter exit) it
  tells every other process how many collectives it took part in. A process that
  waits on a collective numbered higher than that knows it will never complete and
  raises :class:`~new_grad.errors.DistributedError` naming the process that left;
* **anything else** (a process alive but stuck): every wait polls its non-blocking
  request with a deadline (``timeout`` seconds without completion, default 60, or
  ``NEW_GRAD_DIST_TIMEOUT``) and then raises.

A session that raised is broken: closing it (or exiting the interpreter) calls
``MPI_Abort``, because ``MPI_Finalize`` with a collective still pending would hang.

Collectives run on a duplicate of the user's communicator, and the "I stopped"
notices on a second duplicate, so neither mixes with the user's own messages.
"""

from __future__ import annotations

import atexit
import os
import sys
import time
from typing import Any

import numpy as np

from ..errors import DistributedError, NewGradError

DEFAULT_TIMEOUT = 60.0
ABORT_GRACE_S = 0.5  # how long an aborting process lets the launcher forward what the others wrote
_yield = getattr(os, "sched_yield", lambda: time.sleep(0))
_TAG_DONE = 7
_SESSIONS: dict[int, Session] = {}
_HOOKS_INSTALLED = False
_ABORTING = False


def mpi() -> Any:
    """The ``mpi4py.MPI`` module, or a clear error saying which extra to install."""
    try:
        from mpi4py import MPI
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise NewGradError(
            f"new_grad.distributed needs mpi4py and an MPI library: pip install 'new_grad[mpi]' ({err})"
        ) from None
    return MPI


def _timeout_from_env() -> float:
    text = os.environ.get("NEW_GRAD_DIST_TIMEOUT")
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        raise DistributedError(f"NEW_GRAD_DIST_TIMEOUT={text!r} is not a number of seconds") from None
    if not value > 0:
        raise DistributedError(f"NEW_GRAD_DIST_TIMEOUT={text!r} must be a positive number of seconds")
    return value


class Pending:
    """A started non-blocking collective: its request, its number in the session, what it is for."""

    __slots__ = ("request", "index", "what")

    def __init__(self, request: Any, index: int, what: str) -> None:
        self.request, self.index, self.what = request, index, what


class Session:
    """Tracked, time-bounded collectives over ``comm`` (default ``COMM_WORLD``)."""

    def __init__(self, comm: Any = None, timeout: float | None = None) -> None:
        MPI = mpi()
        self.MPI = MPI
        self.world = comm if comm is not None else MPI.COMM_WORLD
        self.rank = int(self.world.Get_rank())
        self.size = int(self.world.Get_size())
        self.timeout = float(timeout) if timeout is not None else _timeout_from_env()
        _install_hooks()
        _SESSIONS[id(self)] = self
        self.comm = self.world.Dup()  # gradients and other collectives
        self.ctl = self.world.Dup()  # point-to-point "stopped after k collectives" notices
        self.issued = 0  # collectives started here, numbered from 1
        self.finished: dict[int, int] = {}  # peer -> collectives it started before it stopped
        self.broken: str | None = None
        self.closed = False
        self._open: dict[int, Pending] = {}

    # -- collectives ----------------------------------------------------------------------------
    def start(self, what: str, make: Any) -> Pending:
        """Start a non-blocking collective: ``make(comm)`` returns its request."""
        self._usable()
        self.issued += 1
        p = Pending(make(self.comm), self.issued, what)
        self._open[id(p)] = p
        return p

    def allreduce(self, buf: np.ndarray, what: str, op: Any = None) -> np.ndarray:
        """Sum (or ``op``) ``buf`` over every process, in place; returns it."""
        MPI = self.MPI
        self.wait([self.start(what, lambda c: c.Iallreduce(MPI.IN_PLACE, buf, op=op or MPI.SUM))])
        return buf

    def bcast(self, buf: np.ndarray, what: str, root: int = 0) -> np.ndarray:
        self.wait([self.start(what, lambda c: c.Ibcast(buf, root=root))])
        return buf

    def allgather(self, send: np.ndarray, what: str) -> np.ndarray:
        """Every process's ``send`` (same shape everywhere), stacked along a new first axis."""
        send = np.ascontiguousarray(send)
        recv = np.empty((self.size, *send.shape), dtype=send.dtype)
        self.wait([self.start(what, lambda c: c.Iallgather(send, recv))])
        return recv

    def test(self, pending: list[Pending]) -> bool:
        """Let MPI progress ``pending`` without blocking; True when all are complete."""
        return bool(self.MPI.Request.Testall([p.request for p in pending]))

    def wait(self, pending: list[Pending]) -> None:
        """Wait for ``pending`` to complete, failing in bounded time if a process left or hangs."""
        if not pending:
            return
        reqs = [p.request for p in pending]
        testall = self.MPI.Request.Testall
        start = time.monotonic()
        deadline = start + self.timeout
        next_check = start
        while not testall(reqs):
            now = time.monotonic()
            if now >= next_check:
                first = min(pending, key=lambda p: p.index)
                self._check_peers(first)
                if now >= deadline:
                    self._fail(
                        f"no progress for {self.timeout:g} s in {first.what} (collective #{first.index}): another "
                        "process is stuck or stopped without saying so; raise NEW_GRAD_DIST_TIMEOUT if one step "
                        "legitimately takes longer"
                    )
                next_check = now + 0.005
            # give the core away while waiting (processes may outnumber cores), sleeping longer the longer
            # the wait: yield for the first millisecond, 50 µs naps up to 0.1 s, then 1 ms
            waited = now - start
            if waited < 1e-3:
                _yield()
            else:
                time.sleep(5e-5 if waited < 0.1 else 1e-3)
        for p in pending:
            self._open.pop(id(p), None)

    # -- failure ------------------------------------------------------------------------------------
    def _usable(self) -> None:
        if self.broken is not None:
            raise DistributedError(f"this distributed session already failed: {self.broken}")
        if self.closed:
            raise DistributedError("this distributed session is closed; start a new one")

    def _receive_notices(self) -> None:
        MPI = self.MPI
        status = MPI.Status()
        while self.ctl.Iprobe(source=MPI.ANY_SOURCE, tag=_TAG_DONE, status=status):
            buf = np.empty(1, dtype=np.int64)
            src = status.Get_source()
            self.ctl.Recv(buf, source=src, tag=_TAG_DONE)
            self.finished[src] = int(buf[0])

    def _check_peers(self, waiting: Pending) -> None:
        self._receive_notices()
        gone = {r: k for r, k in self.finished.items() if k < waiting.index}
        if gone:
            r, k = min(gone.items())
            self._fail(
                f"process {r} stopped after {k} collectives while this process waits in {waiting.what} (collective "
                f"#{waiting.index}); every process must run the same steps (process {r} raised an error, "
                "left its loop early or exited: see its output)"
            )

    def _fail(self, message: str) -> None:
        self.broken = message
        raise DistributedError(f"process {self.rank} of {self.size}: {message}")

    def abort(self, message: str, code: int = 1) -> None:
        """Print ``message`` and end every process of the job (``MPI_Abort``)."""
        global _ABORTING
        if not _ABORTING:
            _ABORTING = True
            # the process ends here, so nobody above can report it: the one place the library writes to stderr
            sys.stderr.write(f"new_grad.distributed: process {self.rank} of {self.size}: {message}; stopping all processes\n")
            sys.stderr.flush()
            # MPI_Abort ends every process at once, and the launcher drops output it has not forwarded yet:
            # give the others' last words (the error that started this) a moment to arrive.
            time.sleep(ABORT_GRACE_S)
            self.world.Abort(code)
        os._exit(code)  # MPI_Abort may return to the caller; nothing of this process may run on

    # -- the end ----------------------------------------------------------------------------------
    def close(self) -> None:
        """Tell the others how many collectives this process ran and wait for theirs (bounded).

        Called by the command at the end of a run, and at interpreter exit for any session
        still open. A broken session, or one whose processes disagree, aborts the job.
        """
        if self.closed:
            return
        self.closed = True
        _SESSIONS.pop(id(self), None)
        if self.broken is not None:
            self.abort(self.broken)
        if self._open:
            what = ", ".join(p.what for p in self._open.values())
            self.abort(f"closed with collectives still pending ({what})")
        mine = np.array([self.issued], dtype=np.int64)
        sends = [self.ctl.Isend(mine, dest=r, tag=_TAG_DONE) for r in range(self.size) if r != self.rank]
        deadline = time.monotonic() + self.timeout
        while True:
            self._receive_notices()
            if len(self.finished) == self.size - 1:
                break
            if time.monotonic() >= deadline:
                missing = sorted(set(range(self.size)) - set(self.finished) - {self.rank})
                self.abort(
                    f"ran {self.issued} collectives and stopped, but processes {missing} did not finish within "
                    f"{self.timeout:g} s"
                )
            time.sleep(1e-3)
        other = {r: k for r, k in self.finished.items() if k != self.issued}
        if other:
            self.abort(f"ran {self.issued} collectives, but processes stopped after {other}")
        self.MPI.Request.Waitall(sends)
        self.comm.Free()
        self.ctl.Free()


def _excepthook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
    _PREVIOUS_HOOK(kind, value, tb)
    for s in list(_SESSIONS.values()):
        if not s.closed and s.size > 1:
            s.abort(f"uncaught {kind.__name__}: {value}")


def _at_exit() -> None:
    for s in list(_SESSIONS.values()):
        try:
            s.close()
        except Exception as err:  # noqa: BLE001 - at exit, any failure must still end the job
            s.abort(f"{type(err).__name__} while closing: {err}")


_PREVIOUS_HOOK = sys.excepthook


def _install_hooks() -> None:
    global _HOOKS_INSTALLED, _PREVIOUS_HOOK
    if _HOOKS_INSTALLED:
        return
    _HOOKS_INSTALLED = True
    _PREVIOUS_HOOK = sys.excepthook
    sys.excepthook = _excepthook
    atexit.register(_at_exit)  # runs before mpi4py's MPI_Finalize (registered earlier, at import)


_DEFAULT: dict[int, Session] = {}


def session_for(comm: Any = None, timeout: float | None = None) -> Session:
    """The open session over ``comm`` (created on first use; one per communicator)."""
    if isinstance(comm, Session):
        return comm
    key = id(comm if comm is not None else mpi().COMM_WORLD)
    s = _DEFAULT.get(key)
    if s is None or s.closed:
        s = Session(comm, timeout)
        _DEFAULT[key] = s
    elif timeout is not None:
        s.timeout = float(timeout)
    return s


__all__ = ["DEFAULT_TIMEOUT", "Pending", "Session", "mpi", "session_for"]
