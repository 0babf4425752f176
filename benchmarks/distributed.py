"""Data-parallel step times over MPI: run as ``mpiexec -n N python -m benchmarks.distributed [--steps S]``.

For each model (the command's MLP and CNN on digits-sized images, and the 784-256-256-10 MLP on MNIST-sized
ones) and global batch, process 0 prints one JSON line: the median step time with the allreduces overlapped with
backward and with them started after backward, the time each spends waiting for communication at the end of
backward (the exposed part), and the time of a lone blocking allreduce of the same gradient bytes. Also the
allreduce time for a range of message sizes, for fitting the cost model (docs/distributed.md).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from new_grad import distributed as dist
from new_grad import nn, optim
from new_grad.autograd_engine import Autograd, constant
from new_grad.models import build_model

CASES = [
    ("mlp", (1, 8, 8), 128, 64),
    ("mlp", (1, 8, 8), 128, 256),
    ("cnn", (1, 8, 8), 64, 64),
    ("cnn", (1, 8, 8), 64, 256),
    ("mlp", (1, 28, 28), 256, 128),
]


SYNC = False
PROGRESS = False


def step_times(name: str, shape: tuple, hidden: int, batch: int, steps: int, overlap: bool, bucket: int) -> dict:
    s = dist.session_for()
    np.random.seed(0)
    model = build_model(name, shape, 10, hidden, np.float32)
    ddp = dist.DistributedDataParallel(model, s, overlap=overlap, bucket_bytes=bucket, progress_thread=PROGRESS) if s.size > 1 else None
    engine = Autograd()
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(s.rank)
    a, b = dist.shard_bounds(batch, s.size, s.rank)
    x = constant(rng.standard_normal((b - a, *shape)).astype(np.float32))
    y = constant(rng.integers(0, 10, b - a))
    times, waits = [], []
    for i in range(steps + 5):
        if i == 5 and ddp is not None:
            ddp.stats.update(steps=0, wait_seconds=0.0, buckets_started_in_backward=0, buckets_done_before_wait=0)
        waited = ddp.stats["wait_seconds"] if ddp is not None else 0.0
        tic = time.perf_counter()
        opt.zero_grad()
        engine.zero_grad()
        with engine:
            loss_fn(model(x), y)
        if SYNC and ddp is not None:  # line the processes up before backward: the wait is then communication alone
            s.allreduce(np.zeros(1), "benchmark barrier")
        if ddp is not None:
            ddp.backward(engine, weight=(b - a) / batch)
        else:
            engine.backward(1)
        opt.step()
        times.append(time.perf_counter() - tic)
        waits.append((ddp.stats["wait_seconds"] if ddp is not None else 0.0) - waited)
    out = {"step_ms": 1e3 * float(np.median(times[5:]))}
    if ddp is not None:
        out["wait_ms"] = 1e3 * float(np.median(waits[5:]))  # median exposed wait per step
        out["buckets"] = len(ddp.buckets or [])
        out["started_in_backward_per_step"] = ddp.stats["buckets_started_in_backward"] / steps
        out["done_before_wait_per_step"] = ddp.stats["buckets_done_before_wait"] / steps
    grad_bytes = sum(g.nbytes for _, g in model.parameters())
    return {**out, "grad_bytes": grad_bytes, "parameters": int(model.num_parameters())}


def allreduce_ms(nbytes: int, reps: int) -> float:
    s = dist.session_for()
    buf = np.ones(max(1, nbytes // 4), dtype=np.float32)
    times = []
    for _ in range(reps):
        tic = time.perf_counter()
        s.allreduce(buf, "benchmark")
        times.append(time.perf_counter() - tic)
    return 1e3 * float(np.median(times))


def ring_seconds(n: int, nbytes: float, alpha: float, bandwidth: float) -> float:
    """The ring allreduce's cost: 2(n-1) messages of latency ``alpha`` and 2(n-1)/n of the bytes over each link."""
    return 2 * (n - 1) * alpha + 2 * (n - 1) / n * nbytes / bandwidth


def fit(path: str) -> None:
    """Least-squares fit of ``alpha`` and ``bandwidth`` to the measured allreduce curves in ``path`` (JSON lines)."""
    rows, ys = [], []
    for line in open(path):
        if line.startswith("{") and "allreduce_curve_ms" in line:
            rec = json.loads(line)
            n = rec["processes"]
            for size, ms in rec["allreduce_curve_ms"].items():
                rows.append([2 * (n - 1), 2 * (n - 1) / n * int(size)])
                ys.append(ms / 1e3)
    a, y = np.array(rows), np.array(ys)
    (alpha, inv_bw), *_ = np.linalg.lstsq(a / y[:, None], np.ones_like(y), rcond=None)  # relative errors
    print(json.dumps({"alpha_us": alpha * 1e6, "bandwidth_GBps": 1e-9 / inv_bw}))
    for (m, b), y in zip(rows, ys):
        print(f"  measured {1e3 * y:7.3f} ms  model {1e3 * (alpha * m + inv_bw * b):7.3f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--bucket", type=int, default=dist.DEFAULT_BUCKET_BYTES)
    ap.add_argument("--fit", metavar="JSONL", help="fit the cost model to a saved run's output and exit")
    ap.add_argument("--curve-only", action="store_true", help="only the allreduce curve (more sizes, more repeats)")
    ap.add_argument("--sync", action="store_true", help="line the processes up before each backward (no skew)")
    ap.add_argument("--progress-thread", action="store_true", help="DistributedDataParallel(progress_thread=True)")
    args = ap.parse_args()
    global SYNC, PROGRESS
    SYNC, PROGRESS = args.sync, args.progress_thread
    if args.fit:
        fit(args.fit)
        return
    if args.curve_only:
        s = dist.session_for()
        curve = {n: allreduce_ms(n, 200) for n in [8, 1 << 10, 1 << 13, 1 << 16, 1 << 18, 1 << 20, 1 << 22, 1 << 24]}
        if s.rank == 0:
            print(json.dumps({"processes": s.size, "allreduce_curve_ms": curve}), flush=True)
        s.close()
        return
    s = dist.session_for()
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    for name, shape, hidden, batch in CASES:
        row: dict = {"processes": s.size, "model": name, "input": shape, "hidden": hidden, "batch": batch}
        if s.size == 1:
            row.update(step_times(name, shape, hidden, batch, args.steps, True, args.bucket))
        else:
            for overlap in (True, False):
                r = step_times(name, shape, hidden, batch, args.steps, overlap, args.bucket)
                key = "overlap" if overlap else "after"
                row.update({f"{key}_{k}": v for k, v in r.items() if k not in ("grad_bytes", "parameters")})
                row.update(grad_bytes=r["grad_bytes"], parameters=r["parameters"])
            row["allreduce_ms"] = allreduce_ms(row["grad_bytes"], args.steps)
        if s.rank == 0:
            print(json.dumps(row), flush=True)
    if s.size > 1:
        sizes = [8, 1 << 10, 1 << 14, 1 << 17, 1 << 20, 1 << 22]
        curve = {n: allreduce_ms(n, 40) for n in sizes}
        if s.rank == 0:
            print(json.dumps({"processes": s.size, "allreduce_curve_ms": curve}), flush=True)
    s.close()


if __name__ == "__main__":
    main()
