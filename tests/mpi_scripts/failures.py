"""Run under mpiexec: one process misbehaves; every process must stop in bounded time with a clear message.

``python failures.py MODE``: process 1 (the last one for ``exit``) raises (``raise``), leaves the training loop
early (``exit``), kills itself (``kill``) or hangs (``hang``) at step 3; or builds a model that differs from
process 0's: ``bigger``, ``smaller``, ``reordered``, ``dtype`` (then ``broadcast_parameters`` must raise on every
process), or ``order`` (same sizes in another order, no broadcast: ``DistributedDataParallel`` must raise).
"""

from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np

import new_grad as ng
from new_grad import distributed as dist
from new_grad.errors import DistributedError
from new_grad.models import default_dtype


def build(mode: str, me: int) -> ng.nn.Module:
    np.random.seed(0)
    odd = me == 1
    with default_dtype(np.float32 if (odd and mode == "dtype") else np.float64):
        return _layers(mode, odd)


def _layers(mode: str, odd: bool) -> ng.nn.Module:
    if odd and mode == "bigger":
        return ng.nn.Sequential(ng.nn.Linear(4, 9), ng.nn.ReLU(), ng.nn.Linear(9, 2))
    if odd and mode == "smaller":
        return ng.nn.Sequential(ng.nn.Linear(4, 8))
    if odd and mode in ("reordered", "order"):  # the same arrays, registered in the other order
        return ng.nn.Sequential(ng.nn.Linear(8, 2), ng.nn.ReLU(), ng.nn.Linear(4, 8))
    return ng.nn.Sequential(ng.nn.Linear(4, 8), ng.nn.ReLU(), ng.nn.Linear(8, 2))


def main(mode: str) -> None:
    me = dist.rank()
    model = build(mode, me)
    if mode in ("bigger", "smaller", "reordered", "dtype"):
        dist.broadcast_parameters(model)
        return
    ddp = dist.DistributedDataParallel(model, broadcast=mode != "order")
    engine = ng.Autograd()
    opt = ng.optim.SGD(model.parameters(), lr=0.01)
    rng = np.random.default_rng(me)
    odd = me == dist.world_size() - 1 if mode == "exit" else me == 1
    for step in range(100_000):
        if odd and step == 3:
            print(f"rank {me}: failing ({mode}) at t={time.time():.3f}", flush=True)
            if mode == "raise":
                raise RuntimeError("something went wrong on this process")
            if mode == "exit":
                print(f"rank {me}: leaving the loop early", flush=True)
                return
            if mode == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if mode == "hang":
                time.sleep(600)
        x, y = rng.standard_normal((8, 4)), rng.integers(0, 2, 8)
        opt.zero_grad()
        engine.zero_grad()
        with engine:
            ng.cross_entropy(ddp(ng.constant(x)), ng.constant(y))
        ddp.backward(engine)
        opt.step()
    print(f"rank {me}: finished 100000 steps", flush=True)


if __name__ == "__main__":
    mode = sys.argv[1]
    try:
        main(mode)
    except DistributedError as e:
        print(f"rank {dist.rank()}: DistributedError: {e}", flush=True)
        sys.exit(3)
