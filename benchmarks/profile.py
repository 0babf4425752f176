"""Where new_grad's time goes: the breakdown behind docs/benchmarks.md, reproducible.

``python -m benchmarks.profile`` measures CPU time of the calling thread (``time.thread_time``,
so other processes on the machine do not count) with one BLAS thread (all work on that thread):

- row A as a ladder, with array and with Python-number operands: from the bare tape design (a list, a
  dict, NumPy operators) up to the whole engine, one part at a time, next to PyTorch and the target;
- row A split per op: NumPy's own call, the op wrapper, recording, the backward function, the
  engine's backward bookkeeping, and the same op replayed;
- row B split: forward, backward, zero_grad, adding into the bound gradients, SGD step, against the floor;
- row F: the GRU cell by cell, eager and replayed, and sigmoid's forward against 1/(1+e⁻ˣ).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import time  # noqa: E402
import timeit  # noqa: E402
from collections.abc import Callable, Iterable, Iterator  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

import new_grad as ng  # noqa: E402
from new_grad.autograd_engine import FIRST_ORDER, Operation  # noqa: E402
from new_grad.ops._core import REGISTRY, first_order  # noqa: E402
from new_grad.ops.elementwise import add_backward, mul_backward  # noqa: E402

from . import impl_floor, impl_new_grad, impl_replay  # noqa: E402
from .common import GRU, chain_data, mlp_data  # noqa: E402


def cpu_us(fn: Callable[[], object], number: int = 2000, repeat: int = 7) -> float:
    """Best per-call CPU time of the calling thread, in µs."""
    return min(timeit.repeat(fn, number=number, repeat=repeat, timer=time.thread_time)) / number * 1e6


def bare_tape_chain(n: int, numbers: bool = False) -> Callable[[], tuple]:
    """Row A on the bare design and nothing else: a list of (backward, inputs, output), one reverse loop, a dict
    of gradients keyed by id. No constants, views, parameters, versions, aliasing, dtypes or errors: the floor
    of the tape design in Python, for comparison with the whole engine."""
    d = chain_data(n, numbers)
    x, w, b = d["x"], d["w"], d["b"]

    def mul_b(g: np.ndarray, p: np.ndarray, q: np.ndarray) -> tuple:
        return g * q, None if numbers else g * p

    def add_b(g: np.ndarray, p: np.ndarray, q: np.ndarray) -> tuple:
        return g, g

    def step() -> tuple:
        tape = []
        y = x
        for _ in range(n // 2):
            z = y * w
            tape.append((mul_b, (y, w), z))
            y = z + b
            tape.append((add_b, (z, b), y))
        grads = {id(y): np.ones_like(y)}  # the gradient of y's sum
        for bw, ins, out in reversed(tape):
            g = grads.pop(id(out))
            for xi, gx in zip(ins, bw(g, *ins)):
                if gx is None:
                    continue
                k = id(xi)
                cur = grads.get(k)
                grads[k] = gx if cur is None else cur + gx
        return tuple(grads.get(id(a)) if isinstance(a, np.ndarray) else None for a in (x, w, b))

    return step


class _ListTape:
    """A stand-in engine for :func:`ladder`: ``record`` appends ``(backward, inputs, output, needs)``, checks nothing."""

    def __init__(self) -> None:
        self.tape: list = []

    def record(self, name: str, backward: Callable, inputs: tuple, output: object) -> object:
        self.tape.append((backward, inputs, output, [type(x) is np.ndarray for x in inputs]))
        return output

    def entries(self) -> Iterable:
        return reversed(self.tape)


class _SlotTape(_ListTape):
    """The least a recording engine must do: an ``Operation`` per op, a slot per float array input, ``needs``.

    No constants, bound parameters, versions, views, dtype or complex checks: every ndarray input is slotted."""

    def __init__(self) -> None:
        super().__init__()
        self.memory: dict = {}

    def record(self, name: str, backward: Callable, inputs: tuple, output: object) -> object:
        mem = self.memory
        needs = []
        for x in inputs:
            if type(x) is np.ndarray:
                k = id(x)
                if k not in mem:
                    mem[k] = None
                needs.append(True)
            else:  # a Python number
                needs.append(False)
        op = Operation.__new__(Operation)  # as Autograd.record builds it: cheaper than calling __init__
        op.inputs, op.output, op.backward_operation, op.name, op.needs = inputs, output, backward, name, needs
        self.tape.append(op)
        return output

    def entries(self) -> Iterable:
        return _entries(self.tape)


def _reverse(entries: Iterable, out: np.ndarray) -> dict:
    """The bare reverse loop: gradients keyed by id, each backward called first-order."""
    grads = {id(out): np.ones_like(out)}
    for bw, ins, o, needs in entries:
        g = grads.pop(id(o))
        for xi, gx in zip(ins, FIRST_ORDER.get(bw, bw)(g, *ins, o, needs)):
            if gx is None:
                continue
            k = id(xi)
            cur = grads.get(k)
            grads[k] = gx if cur is None else cur + gx
    return grads


def _entries(ops: list) -> Iterator[tuple]:
    for op in reversed(ops):
        yield op.backward_operation, op.inputs, op.output, op.needs


_RUNGS = (
    "the bare tape design: NumPy operators, a list, a dict",
    "+ the op wrappers (ng.multiply, ng.add) and the library's backwards",
    "+ the least recording: an Operation, a slot per input, needs",
    "+ the rest of Autograd.record: constants, parameters, views, dtypes",
    "+ Autograd.backward's loop: the whole engine",
)


def ladder_steps(n: int = 200, numbers: bool = False) -> dict[str, Callable[[], tuple]]:
    """Row A from the bare tape design up to the whole engine, one layer at a time; each step returns the
    gradients of x, w and b (``None`` for a Python number), so tests can check every rung computes the same.

    Each rung adds one part of the real engine to the one before: the public op wrappers with the library's
    backward functions; the least any recording engine must do (an entry, slots, ``needs``); everything
    ``Autograd.record`` does besides (constants, bound parameters and their versions, views, dtypes); the
    engine's own reverse loop (aliasing, shape and dtype checks, broadcasting undone)."""
    from new_grad.autograd_engine import STATE

    d = chain_data(n, numbers)
    x, w, b = d["x"], d["w"], d["b"]
    for bw in (mul_backward, add_backward):
        FIRST_ORDER.setdefault(bw, first_order(bw))

    def picked(grads: dict) -> tuple:
        return tuple(grads.get(id(a)) if isinstance(a, np.ndarray) else None for a in (x, w, b))

    def forward() -> np.ndarray:
        y = x
        for _ in range(n // 2):
            y = ng.add(ng.multiply(y, w), b)
        return y

    def on(eng: Any) -> Callable[[], tuple]:
        def step() -> tuple:
            saved, STATE.engine = STATE.engine, eng()
            try:
                y = forward()
            finally:
                tape, STATE.engine = STATE.engine, saved
            return picked(_reverse(tape.entries(), y))

        return step

    def with_record() -> tuple:
        eng = ng.Autograd()
        with eng:
            y = forward()
        return picked(_reverse(_entries(eng.operation_list), y))

    def whole() -> tuple:
        eng = ng.Autograd()
        with eng:
            forward()
        eng.backward(1)
        return tuple(eng.memory_buffer.get_param(a) if isinstance(a, np.ndarray) else None for a in (x, w, b))

    return dict(zip(_RUNGS, (bare_tape_chain(n, numbers), on(_ListTape), on(_SlotTape), with_record, whole)))


def ladder(n: int = 200, numbers: bool = False) -> list[tuple[str, float]]:
    """The rungs of :func:`ladder_steps` timed (µs per op, forward + backward), then PyTorch and the target. The
    difference between two rungs is what that part of the engine costs per op."""
    from .impl_torch import chain as torch_chain

    rows = [(name, cpu_us(step, 20) / n) for name, step in ladder_steps(n, numbers).items()]
    torch_us = cpu_us(torch_chain(n, numbers).timed, 20) / n
    return [*rows, ("PyTorch eager", torch_us), ("the target, half of PyTorch eager", torch_us / 2)]


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

    computed = [(grad, grad.copy()) for _, grad in model.parameters()]

    def accumulate() -> None:  # what the engine does with a weight's gradient, where the floor keeps it as it is
        for bound, g in computed:
            bound += g

    floor = impl_floor.mlp(128)
    new, rep = impl_new_grad.mlp(128), impl_replay.mlp(128)
    for _ in range(3):
        rep.timed()
    out = [
        ("forward", cpu_us(forward_only, 20)),
        ("zero_grad + forward + backward", cpu_us(forward_backward, 20)),
        ("SGD step", cpu_us(opt.step, 50)),
        ("zero_grad", cpu_us(opt.zero_grad, 50)),
        ("dW += gW into the 6 bound gradients", cpu_us(accumulate, 50)),
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
    for numbers in (False, True):
        print(f"Row A with {'Python-number' if numbers else 'array'} operands, layer by layer (µs per op, forward + backward)")
        for name, v in ladder(numbers=numbers):
            print(f"  {name:72s} {v:7.3f}")
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
