"""Run under mpiexec: N processes on slices of each global batch must match one process on the whole batch."""

from __future__ import annotations

import sys

import numpy as np

import new_grad as ng
from new_grad import distributed as dist


def build(engine):
    np.random.seed(0)
    return ng.nn.Linear(6, 16, engine), ng.nn.ReLU(engine), ng.nn.Linear(16, 3, engine)


def train(global_steps, use_mpi):
    engine = ng.Autograd()
    layers = build(engine)
    params = [pair for layer in layers for pair in layer.parameters()]
    if use_mpi:
        dist.broadcast_parameters(params)
    loss_fn = ng.nn.SoftmaxCrossEntropy(engine)
    opt = ng.optim.SGD(params, lr=0.1, momentum=0.9)
    rng = np.random.default_rng(1)
    for _ in range(global_steps):
        x = rng.standard_normal((32, 6))
        y = np.eye(3)[rng.integers(0, 3, 32)]
        if use_mpi:
            x, y = dist.shard(x), dist.shard(y)
        opt.zero_grad()
        engine.zero_grad()
        h = ng.constant(x)
        for layer in layers:
            h = layer(h)
        loss_fn(ng.constant(y), h)
        loss_fn.backward()
        if use_mpi:
            dist.allreduce_gradients(params)
        opt.step()
    return [p.copy() for p, _ in params]


if __name__ == "__main__":
    parallel = train(20, use_mpi=True)
    single = train(20, use_mpi=False)
    worst = max(float(np.max(np.abs(a - b))) for a, b in zip(parallel, single))
    print(f"rank {dist.rank()} of {dist.world_size()}: max |parallel - single| = {worst:.3e}")
    sys.exit(0 if worst < 1e-10 else 1)
