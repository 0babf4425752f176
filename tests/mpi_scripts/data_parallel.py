"""Run under mpiexec: N processes on slices of each global batch must match one process on the whole batch.

``python data_parallel.py MODE`` with MODE ``overlap`` (DistributedDataParallel, allreduces started during
backward), ``overlap-thread`` (and a thread driving MPI's progress meanwhile), ``no-overlap`` (started after
backward) or ``blocking`` (allreduce_gradients). The global batch of 33 splits unevenly over 2 processes
(17, 16), and each epoch's last batch of 2 over 3 leaves one process with nothing: the weights make the sum
the global mean's gradient.
"""

from __future__ import annotations

import sys

import numpy as np

import new_grad as ng
from new_grad import distributed as dist
from new_grad.data import ArrayDataset, DataLoader


def build(seed: int) -> ng.nn.Module:
    np.random.seed(seed)
    shared = ng.nn.Linear(16, 16)  # used twice: its gradient is final only after its first use
    return ng.nn.Sequential(
        ng.nn.Linear(6, 16), ng.nn.Tanh(), shared, ng.nn.ReLU(), shared, ng.nn.Tanh(), ng.nn.Linear(16, 3)
    )


def data() -> ArrayDataset:
    rng = np.random.default_rng(1)
    return ArrayDataset(rng.standard_normal((200, 6)), rng.integers(0, 3, 200))


def train(steps: int, mode: str | None) -> tuple[list[np.ndarray], dict]:
    # every process starts from another init: the broadcast must make them equal
    model = build(0 if mode is None else 7 * dist.rank())
    engine = ng.Autograd()
    loss_fn = ng.nn.CrossEntropyLoss()
    ddp = None
    if mode in ("overlap", "overlap-thread", "no-overlap"):
        ddp = dist.DistributedDataParallel(
            model, overlap=mode != "no-overlap", bucket_bytes=512, progress_thread=mode == "overlap-thread"
        )
    elif mode == "blocking":
        dist.broadcast_parameters(model)
    opt = ng.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loader = DataLoader(data(), batch_size=33, shuffle=True, seed=3)  # the last batch of 2 leaves a process idle
    sampler = dist.DistributedSampler(loader) if mode else None
    it = (item for _ in range(steps) for item in (sampler if sampler else ((b, 1.0) for b in loader)))
    for _ in range(steps):
        batch, weight = next(it)
        opt.zero_grad()
        engine.zero_grad()
        if batch is None:  # this process's slice of a short last batch is empty: it only takes part
            if ddp is not None:
                ddp.synchronize()
            else:
                dist.allreduce_gradients(model, average=False)
            opt.step()
            continue
        x, y = batch
        with engine:
            loss_fn(model(x), y)
        if ddp is not None:
            ddp.backward(engine, weight=weight)
        elif mode == "blocking":
            engine.backward(weight)
            dist.allreduce_gradients(model, average=False)
        else:
            engine.backward(1)
        opt.step()
    return [p.copy() for p, _ in model.parameters()], (ddp.stats if ddp else {})


def check_shards() -> None:
    """Across processes, each epoch's slices are disjoint, cover the data set, and differ between epochs."""
    loader = DataLoader(data(), batch_size=32, shuffle=True, seed=5)
    sampler = dist.DistributedSampler(loader)
    s = dist.session_for()
    epochs = []
    for _ in range(2):
        mine = np.full(200, -1, dtype=np.int64)
        pos = 0
        for local, n in sampler.batch_indices():
            a, _ = dist.shard_bounds(n, s.size, s.rank)
            mine[pos + a : pos + a + len(local)] = local
            pos += n
        everyone = s.allgather(mine, "the shard check")
        taken = everyone[everyone >= 0]
        assert sorted(taken.tolist()) == list(range(200)), "shards do not cover the data set exactly once"
        assert ((everyone >= 0).sum(axis=0) == 1).all(), "shards overlap"
        epochs.append(everyone.max(axis=0))
    assert not np.array_equal(epochs[0], epochs[1]), "not reshuffled between epochs"


if __name__ == "__main__":
    mode = sys.argv[1]
    check_shards()
    parallel, stats = train(10, mode)
    single, _ = train(10, None)
    worst = max(float(np.max(np.abs(a - b))) for a, b in zip(parallel, single))
    started = stats.get("buckets_started_in_backward", 0)
    print(f"rank {dist.rank()} of {dist.world_size()}: max |parallel - single| = {worst:.3e}; "
          f"buckets started during backward: {started}", flush=True)
    ok = worst < 1e-10 and (started > 0 if mode.startswith("overlap") else started == 0)
    sys.exit(0 if ok else 1)
