"""Where new_grad's time goes: the breakdown behind docs/benchmarks.md, reproducible.

``python -m benchmarks.profile`` measures CPU time of the calling thread (``time.thread_time``,
so other processes on the machine do not count) with one BLAS thread (all work on that thread):

- row A split per op: NumPy's own call, the op wrapper, recording, the backward function, the
  engine's backward bookkeeping, and the same op replayed;
- row B split: forward, backward, zero_grad + SGD step, against the floor's forward and backward;
- row F: the GRU cell by cell, eager and replayed, and sigmoid's forward against 1/(1+e⁻ˣ).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import time  # noqa: E402
import timeit  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

import new_grad as ng  # noqa: E402
from new_grad.ops._core import REGISTRY, first_order  # noqa: E402
from new_grad.ops.elementwise import add_backward, mul_backward  # noqa: E402

from . import impl_floor, impl_new_grad, impl_replay  # noqa: E402
from .common import GRU, chain_data, mlp_data  # noqa: E402


def cpu_us(fn: Callable[[], object], number: int = 2000, repeat: int = 7) -> float:
    """Best per-call CPU time of the calling thread, in µs."""
    return min(timeit.repeat(fn, number=number, repeat=repeat, timer=time.thread_time)) / number * 1e6


def bare_tape_chain(n: int) -> Callable[[], object]:
    """Row A on the bare design and nothing else: a list of (backward, inputs, output), one reverse loop, a dict
    of gradients keyed by id. No constants, views, parameters, versions, aliasing, dtypes or errors: the floor
    of the tape design in Python, for comparison with the whole engine."""
    d = chain_data(n)
    x, w, b = d["x"], d["w"], d["b"]

    def mul_b(g: np.ndarray, p: np.ndarray, q: np.ndarray) -> tuple:
        return g * q, g * p

    def add_b(g: np.ndarray, p: np.ndarray, q: np.ndarray) -> tuple:
        return g, g

    def step() -> object:
        tape = []
        y = x
        for _ in range(n // 2):
            z = y * w
            tape.append((mul_b, (y, w), z))
            y = z + b
            tape.append((add_b, (z, b), y))
        grads = {id(y): np.ones_like(y)}
        for bw, ins, out in reversed(tape):
            g = grads.pop(id(out))
            for xi, gx in zip(ins, bw(g, *ins)):
                k = id(xi)
                cur = grads.get(k)
                grads[k] = gx if cur is None else cur + gx
        return grads

    return step


def per_op() -> list[tuple[str, float]]:
    from .impl_torch import chain as torch_chain

    d = chain_data(200)
    x, w = d["x"], d["w"]
    g = np.ones_like(x)
    eng = ng.Autograd()
    needs = [True, True]
    plain_mul = first_order(mul_backward)

    def record_100() -> None:
        eng.operation_list = []
        for _ in range(100):
            eng.record("multiply", mul_backward, (x, w), x * w)

    tape = impl_new_grad.tape(200)
    total = 0.0
    for _ in range(200):
        tape.prepare()
        t = time.thread_time()
        tape.timed()
        total += time.thread_time() - t
    chain, replay = impl_new_grad.chain(200), impl_replay.chain(200)
    for _ in range(3):
        replay.timed()
    return [
        ("NumPy x * w on (8,)", cpu_us(lambda: x * w)),
        ("new_grad.multiply, nothing recording (the op wrapper)", cpu_us(lambda: ng.multiply(x, w))),
        ("x * w + Autograd.record", cpu_us(record_100, 20) / 100),
        ("mul_backward through the op wrappers (create_graph)", cpu_us(lambda: mul_backward(g, x, w, None, needs))),
        ("mul_backward on the first-order path", cpu_us(lambda: plain_mul(g, x, w, None, needs))),
        ("add_backward", cpu_us(lambda: add_backward(g, x, w, None, needs))),
        ("backward per op, whole engine (200 ops)", total / 200 / 200 * 1e6),
        ("row A per op, eager (forward + backward)", cpu_us(chain.timed, 20) / 200),
        ("row A per op, replayed", cpu_us(replay.timed, 20) / 200),
        ("row A per op, the bare tape design (no checks at all)", cpu_us(bare_tape_chain(200), 20) / 200),
        ("row A per op, PyTorch eager", cpu_us(torch_chain(200).timed, 20) / 200),
        ("row A per op, NumPy floor", cpu_us(impl_floor.chain(200).timed, 20) / 200),
    ]


def mlp_step() -> list[tuple[str, float]]:
    d = mlp_data(128)
    eng = ng.Autograd()
    model = impl_new_grad.MLP(d["params"], eng)
    opt = ng.optim.SGD(model.parameters(), lr=d["lr"])
    x, y = ng.constant(d["x"]), ng.constant(d["y"])

    def forward() -> None:
        with eng:
            ng.softmax_cross_entropy(model(x), y)

    def forward_backward() -> None:
        opt.zero_grad()
        forward()
        eng.backward(1)

    def forward_only() -> None:
        forward()
        eng.zero_grad()

    floor = impl_floor.mlp(128)
    new, rep = impl_new_grad.mlp(128), impl_replay.mlp(128)
    for _ in range(3):
        rep.timed()
    out = [
        ("forward", cpu_us(forward_only, 20)),
        ("zero_grad + forward + backward", cpu_us(forward_backward, 20)),
        ("SGD step", cpu_us(opt.step, 50)),
        ("zero_grad", cpu_us(opt.zero_grad, 50)),
        ("whole step, eager", cpu_us(new.timed, 20)),
        ("whole step, replayed", cpu_us(rep.timed, 20)),
        ("whole step, NumPy floor", cpu_us(floor.timed, 20)),
    ]
    return [(k, v / 1000) for k, v in out]


def gru() -> list[tuple[str, float]]:
    a = np.random.default_rng(0).standard_normal((GRU["batch"], GRU["hidden"])).astype(np.float32)
    eager, rep, floor = impl_new_grad.gru(**GRU), impl_replay.gru(**GRU), impl_floor.gru(**GRU)
    for _ in range(3):
        rep.timed()
    return [
        ("sigmoid forward on (16, 64), µs", cpu_us(lambda: REGISTRY["sigmoid"].forward(a))),
        ("1 / (1 + exp(-x)) on (16, 64), µs", cpu_us(lambda: 1 / (1 + np.exp(-a)))),
        ("GRU 50 steps, eager, ms", cpu_us(eager.timed, 3) / 1000),
        ("GRU 50 steps, replayed, ms", cpu_us(rep.timed, 3) / 1000),
        ("GRU 50 steps, NumPy floor, ms", cpu_us(floor.timed, 3) / 1000),
    ]


def main() -> None:
    print("Row A, per op (µs, CPU time of one thread)")
    for name, v in per_op():
        print(f"  {name:58s} {v:7.3f}")
    print("Row B, MLP 784-256-256-10 batch 128 (ms, one BLAS thread)")
    for name, v in mlp_step():
        print(f"  {name:58s} {v:7.3f}")
    print("Row F, GRU over 50 steps")
    for name, v in gru():
        print(f"  {name:58s} {v:7.3f}")


if __name__ == "__main__":
    main()
