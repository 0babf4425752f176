"""Differential fuzzing: random straight-line programs over the op registry, checked against PyTorch float64.

A program starts from one to three random arrays and applies 5–30 steps. A step is
an op from ``tests/cases`` (every case whose shapes may be any broadcastable
shapes, with its own keyword-argument drawer), an op with a Python number as one
operand, or a view (``getitem`` with basic, advanced and boolean keys,
``reshape``, ``transpose``). Operands are drawn from every value made so far, so
values fan out (``multiply(x, x)``, one value feeding many steps). The loss is
``Σ sum(w_i · v_i)`` over *every* value with fixed random weights: no step is
dead code, so a wrong gradient anywhere reaches the inputs. PyTorch replays the
same program in float64 from the same inputs; every value and the gradient of
every input must agree. Programs in float32 are compared with a tolerance for
float32 rounding, and every value and gradient must stay float32. (A float32 value
within rounding of a kink — ``relu`` at 0, ``maximum`` of near-equal values — may
legitimately fall on the other side; a report then says whether the same program
in float64 agrees.)

Programs are drawn by Hypothesis, so a failure is shrunk to a short program and
printed as code. The suite runs a short budget in a fixed order; run a long one
with::

    python -m tests.fuzz --programs 20000            # add --float32, --seconds N, --random
    NEW_GRAD_FUZZ_PROGRAMS=20000 python -m pytest tests/test_fuzz.py
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import new_grad as ng

from . import opcheck
from .cases import ALL_CASES
from .cases.indexing import _advanced_key, _t_getitem
from .opcheck import OpCase

# ops left out: astype changes the precision mid-program (the float64 comparison would then measure rounding)
EXCLUDED = {"astype", "astype-float32-roundtrip"}
# not in float32 programs: float_power computes in float64 whatever its input (NumPy's definition), and steps
# whose value jumps (floor, ceil, round) turn float32 rounding into differences of a whole unit
NOT_FLOAT32 = {"float_power", "floor", "ceil", "round"}
DOMAINS = (None, opcheck.positive, opcheck.unit_open, opcheck.away_from_zero)
LIMIT = 1e4  # steps whose values leave [-LIMIT, LIMIT] (or are not finite) are dropped


def fuzzable_cases() -> list[OpCase]:
    """Cases that accept any mutually broadcastable shapes, have a PyTorch twin and a gradient to compare."""
    return [
        c
        for c in ALL_CASES
        if c.shapes is None
        and c.torch_fn is not None
        and c.grad
        and not c.nondiff
        and c.domain in DOMAINS
        and c.id not in EXCLUDED
        and c.nargs >= 1
    ]


CASES = fuzzable_cases()
CASES_32 = [c for c in CASES if c.op not in NOT_FLOAT32]


# -- programs --------------------------------------------------------------------------------------


@dataclass
class Step:
    """``values.append(ng_fn(*values[args]))``, and the same with ``torch_fn`` on tensors."""

    text: str  # how the report prints it, e.g. "getitem(v2, key=(slice(0, 2), [1, 1]))"
    args: tuple[int, ...]
    ng_fn: Callable[..., Any]
    torch_fn: Callable[..., Any]
    op: str


@dataclass
class Program:
    dtype: Any
    inputs: list[np.ndarray]
    steps: list[Step] = field(default_factory=list)
    weights: list[np.ndarray] = field(default_factory=list)  # one per value, inputs included

    def ops(self) -> set[str]:
        return {s.op for s in self.steps}

    def __str__(self) -> str:
        lines = [f"# {np.dtype(self.dtype).name} program"]
        for i, x in enumerate(self.inputs):
            lines.append(f"v{i} = input {x.shape}")
        for j, s in enumerate(self.steps):
            lines.append(f"v{len(self.inputs) + j} = {s.text}")
        lines.append(f"loss = sum over v0..v{len(self.inputs) + len(self.steps) - 1} of sum(w_i * v_i)")
        return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return f"array({v.tolist()})" if v.size <= 12 else f"array(shape={v.shape})"
    if isinstance(v, tuple):
        return "(" + ", ".join(_fmt(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    return repr(v)


class _Drawer:
    """Draws one program from Hypothesis data, executing it with new_grad (no engine) as it grows."""

    def __init__(self, data: st.DataObject, dtype: Any, require: str | None) -> None:
        self.data, self.dtype, self.require = data, np.dtype(dtype), require
        self.rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="values"))
        n_inputs = data.draw(st.integers(1, 3), label="inputs")
        shapes = data.draw(
            hnp.mutually_broadcastable_shapes(num_shapes=n_inputs, min_dims=0, max_dims=3, min_side=1, max_side=4),
            label="input shapes",
        ).input_shapes
        self.program = Program(self.dtype, [self.rng.standard_normal(s).astype(self.dtype) for s in shapes])
        self.values: list[np.ndarray] = list(self.program.inputs)

    # operands: recent values more often (long chains), any value possible (fan-out)
    def operand(self, ok: Callable[[np.ndarray], bool] = lambda v: True) -> int | None:
        choices = [i for i, v in enumerate(self.values) if ok(v)]
        if not choices:
            return None
        if self.data.draw(st.booleans(), label="recent"):
            return choices[-1 - self.data.draw(st.integers(0, min(2, len(choices) - 1)), label="back")]
        return self.data.draw(st.sampled_from(choices), label="operand")

    def add(self, text: str, args: tuple[int, ...], ng_fn: Callable, torch_fn: Callable, op: str) -> int | None:
        """Run the step; keep it if its value is a finite float array of moderate size."""
        try:
            with np.errstate(all="ignore"):
                out = ng_fn(*(self.values[i] for i in args))
        except ng.errors.NewGradError:
            return None  # an operand combination the op refuses (it says so clearly; the op tests check that)
        if not isinstance(out, np.ndarray) or out.dtype.kind != "f" or out.size == 0:
            return None
        if not np.all(np.isfinite(out)) or np.max(np.abs(out)) > LIMIT:
            return None
        self.program.steps.append(Step(text, args, ng_fn, torch_fn, op))
        self.values.append(out)
        return len(self.values) - 1

    # -- the kinds of step ---------------------------------------------------------------------------
    def domain(self, i: int, domain: Any) -> int | None:
        """Map value ``i`` into an op's domain with recorded steps (so the gradient flows through them too)."""
        if domain is None:
            return i
        if domain is opcheck.positive:
            j = self.add(f"abs(v{i})", (i,), ng.abs, torch.abs, "abs")
            return None if j is None else self.add(f"add(v{j}, 0.5)", (j,), lambda v: ng.add(v, 0.5),
                                                    lambda t: t + 0.5, "add")
        if domain is opcheck.unit_open:
            j = self.add(f"tanh(v{i})", (i,), ng.tanh, torch.tanh, "tanh")
            return None if j is None else self.add(f"multiply(v{j}, 0.9)", (j,), lambda v: ng.multiply(v, 0.9),
                                                    lambda t: t * 0.9, "multiply")
        if domain is opcheck.away_from_zero:
            # the branch is chosen once, from new_grad's value: PyTorch's float64 replay of a float32 value
            # near 0 could otherwise take the other branch
            mask = np.asarray(self.values[i]) >= 0
            return self.add(
                f"where({_fmt(mask)}, v{i} + 0.5, v{i} - 0.5)",
                (i,),
                lambda v: ng.where(mask, ng.add(v, 0.5), ng.subtract(v, 0.5)),
                lambda t: torch.where(torch.as_tensor(mask), t + 0.5, t - 0.5),
                "where",
            )
        raise AssertionError(domain)

    def case_step(self, case: OpCase) -> int | None:
        def fits(v: np.ndarray) -> bool:
            return case.min_dims <= v.ndim <= case.max_dims and all(s >= case.min_side for s in v.shape)

        first = self.operand(fits)
        if first is None:
            return None
        args = [first]
        for _ in range(case.nargs - 1):
            shape = self.values[first].shape
            nxt = self.operand(lambda v, shape=shape: fits(v) and _broadcastable(v.shape, shape))
            if nxt is None:
                return None
            args.append(nxt)
        mapped = [self.domain(i, case.domain) for i in args]
        if any(m is None for m in mapped):
            return None
        shapes = [self.values[i].shape for i in mapped]
        kwargs = case.kwargs(self.data, shapes) if callable(case.kwargs) else dict(case.kwargs)
        ng_fn = case.ng_fn or getattr(ng, case.op)
        text = f"{case.id}({', '.join(f'v{i}' for i in mapped)}{''.join(f', {k}={_fmt(v)}' for k, v in kwargs.items())})"
        return self.add(text, tuple(mapped), lambda *v: ng_fn(*v, **kwargs),
                        lambda *t: case.torch_fn(*t, **kwargs), case.op)

    def scalar_step(self) -> int | None:
        i = self.operand()
        c = float(self.data.draw(st.sampled_from([0.5, -1.5, 2.0, 3.0, -0.25]), label="number"))
        kind = self.data.draw(st.sampled_from(["add", "radd", "subtract", "rsubtract", "multiply", "divide",
                                               "power2", "power3"]), label="scalar op")
        table: dict[str, tuple[str, Callable, Callable]] = {
            "add": (f"add(v{i}, {c})", lambda v: ng.add(v, c), lambda t: t + c),
            "radd": (f"add({c}, v{i})", lambda v: ng.add(c, v), lambda t: c + t),
            "subtract": (f"subtract(v{i}, {c})", lambda v: ng.subtract(v, c), lambda t: t - c),
            "rsubtract": (f"subtract({c}, v{i})", lambda v: ng.subtract(c, v), lambda t: c - t),
            "multiply": (f"multiply({c}, v{i})", lambda v: ng.multiply(c, v), lambda t: c * t),
            "divide": (f"divide(v{i}, {c})", lambda v: ng.divide(v, c), lambda t: t / c),
            "power2": (f"power(v{i}, 2)", lambda v: ng.power(v, 2), lambda t: t**2),
            "power3": (f"power(v{i}, 3)", lambda v: ng.power(v, 3), lambda t: t**3),
        }
        text, f, g = table[kind]
        return self.add(text, (i,), f, g, kind.lstrip("r").rstrip("23"))

    def view_step(self, kind: str | None = None) -> int | None:
        kind = kind or self.data.draw(st.sampled_from(["basic", "advanced", "mask", "reshape", "transpose"]),
                                      label="view")
        i = self.operand(lambda v: v.ndim >= 1) if kind in ("advanced", "mask", "transpose") else self.operand()
        if i is None:
            return None
        shape = self.values[i].shape
        if kind in ("basic", "advanced", "mask"):
            if kind == "basic":
                key = self.data.draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True), label="key")
            elif kind == "advanced":
                key = _advanced_key(self.data, shape)
            else:
                k = self.data.draw(st.integers(1, len(shape)), label="mask ndim")
                key = self.data.draw(hnp.arrays(np.bool_, shape[:k]), label="mask")
            return self.add(f"getitem(v{i}, {_fmt(key)})", (i,), lambda v: ng.getitem(v, key),
                            lambda t: _t_getitem(t, key), "getitem")
        if kind == "reshape":
            size = math.prod(shape)
            divisors = [d for d in range(1, size + 1) if size % d == 0]
            d = self.data.draw(st.sampled_from(divisors), label="rows")
            new = self.data.draw(st.sampled_from([(size,), (d, size // d), (size // d, 1, d)]), label="new shape")
            return self.add(f"reshape(v{i}, {new})", (i,), lambda v: ng.reshape(v, new),
                            lambda t: t.reshape(new), "reshape")
        axes = tuple(self.data.draw(st.permutations(range(len(shape))), label="axes"))
        return self.add(f"transpose(v{i}, {axes})", (i,), lambda v: ng.transpose(v, axes),
                        lambda t: t.permute(axes), "transpose")

    def draw(self, min_steps: int, max_steps: int) -> Program:
        target = self.data.draw(st.integers(min_steps, max_steps), label="steps")
        attempts = 0
        while len(self.program.steps) < target and attempts < 4 * max_steps:
            attempts += 1
            if self.require == "getitem" and attempts % 3 == 1:
                self.view_step(self.data.draw(st.sampled_from(["basic", "advanced", "mask"]), label="index"))
                continue
            kind = self.data.draw(st.sampled_from(["case"] * 6 + ["scalar", "view", "view"]), label="kind")
            if kind == "case":
                cases = CASES if self.dtype == np.float64 else CASES_32
                self.case_step(self.data.draw(st.sampled_from(cases), label="op"))
            elif kind == "scalar":
                self.scalar_step()
            else:
                self.view_step()
        self.program.weights = [self.rng.standard_normal(v.shape).astype(self.dtype) for v in self.values]
        return self.program


def _broadcastable(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return all(x == y or x == 1 or y == 1 for x, y in zip(a[::-1], b[::-1]))


def draw_program(data: st.DataObject, dtype: Any = np.float64, min_steps: int = 5, max_steps: int = 30,
                 require: str | None = None) -> Program:
    return _Drawer(data, dtype, require).draw(min_steps, max_steps)


# -- running and comparing -------------------------------------------------------------------------


def run_new_grad(p: Program) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Every value and the gradient of the loss with respect to every input, on a fresh engine."""
    inputs = [x.copy() for x in p.inputs]
    engine = ng.Autograd()
    with engine, np.errstate(all="ignore"):
        values = list(inputs)
        for s in p.steps:
            values.append(s.ng_fn(*(values[i] for i in s.args)))
        loss = None
        for v, w in zip(values, p.weights):
            term = ng.sum(ng.multiply(v, ng.constant(w.copy())))
            loss = term if loss is None else ng.add(loss, term)
    engine.backward(np.ones((), dtype=p.dtype))
    buf = engine.memory_buffer
    grads = [np.array(buf.get_param(x)) if buf.is_in_memory(x) else np.zeros_like(x) for x in inputs]
    return [np.array(v) for v in values], grads


def run_torch(p: Program) -> tuple[list[np.ndarray], list[np.ndarray]]:
    inputs = [torch.tensor(x.astype(np.float64), requires_grad=True) for x in p.inputs]
    values = list(inputs)
    for s in p.steps:
        values.append(s.torch_fn(*(values[i] for i in s.args)))
    loss = sum((v * torch.tensor(w.astype(np.float64))).sum() for v, w in zip(values, p.weights))
    grads = torch.autograd.grad(loss, inputs, allow_unused=True)
    as_np = [v.detach().numpy() for v in values]
    return as_np, [np.zeros(x.shape) if g is None else g.numpy() for x, g in zip(p.inputs, grads)]


def tolerance(dtype: Any) -> tuple[float, float]:
    return (1e-6, 1e-9) if np.dtype(dtype) == np.float64 else (2e-3, 2e-3)


def compare(p: Program) -> str | None:
    """None when new_grad agrees with PyTorch on every value and gradient; else what differs."""
    values, grads = run_new_grad(p)
    t_values, t_grads = run_torch(p)
    rtol, atol = tolerance(p.dtype)
    pairs = [(f"v{i}", a, b) for i, (a, b) in enumerate(zip(values, t_values))]
    pairs += [(f"gradient of v{i}", a, b) for i, (a, b) in enumerate(zip(grads, t_grads))]
    for what, a, b in pairs:
        if a.shape != b.shape:
            return f"{what}: shape {a.shape}, PyTorch {b.shape}"
        if a.dtype != p.dtype:
            return f"{what}: dtype {a.dtype} in a {np.dtype(p.dtype).name} program"
        scale = max(1.0, float(np.max(np.abs(b))) if b.size else 1.0)
        if not np.allclose(a, b, rtol=rtol, atol=atol * scale, equal_nan=True):
            worst = float(np.max(np.abs(a.astype(np.float64) - b)))
            msg = f"{what}: differs from PyTorch by up to {worst:.3g} (scale {scale:.3g})\n{a}\nPyTorch:\n{b}"
            if np.dtype(p.dtype) == np.float32:
                as64 = Program(np.float64, [x.astype(np.float64) for x in p.inputs], p.steps,
                               [w.astype(np.float64) for w in p.weights])
                verdict = "agrees" if compare(as64) is None else "differs too"
                msg += f"\n(the same program in float64 {verdict}"
                msg += ": float32 rounding near a kink or jump?)" if verdict == "agrees" else ")"
            return msg
    return None


def check(p: Program) -> None:
    note(str(p))
    problem = compare(p)
    assert problem is None, f"{problem}\n\n{p}"


# -- how strong is it: a deliberate error the fuzzer must find --------------------------------------


@contextlib.contextmanager
def faulty_backward(op: Callable[..., Any], kind: str = "scale", error: float = 1e-3) -> Iterator[None]:
    """Inside the block, ``op``'s backward is wrong by ``error`` (relative): ``"scale"`` scales its whole
    gradient, ``"largest"`` only its largest entry."""
    real = op.backward  # type: ignore[attr-defined]

    def wrong(g: Any, *inputs: Any, **kw: Any) -> Any:
        grads = list(real(g, *inputs, **kw))
        ga = np.array(grads[0], copy=True)
        if kind == "scale":
            ga *= 1 + error
        else:
            k = int(np.argmax(np.abs(ga))) if ga.size else 0
            if ga.size:
                ga.flat[k] *= 1 + error
        grads[0] = ga
        return tuple(grads)

    cells = [c for c in (op.__closure__ or ()) if c.cell_contents is real]
    assert cells, f"cannot find the backward of {op.__name__} to break"
    for c in cells:
        c.cell_contents = wrong
    try:
        yield
    finally:
        for c in cells:
            c.cell_contents = real


def detection_rate(fault: str, programs: int, require: str = "getitem") -> tuple[int, int]:
    """(programs that used ``require``, those the fuzzer flagged) with ``require``'s backward broken by 0.1 %."""
    used, caught = [0], [0]

    @settings(max_examples=programs, deadline=None, derandomize=True, database=None, suppress_health_check=HEALTH)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        p = draw_program(data, np.float64, min_steps=5, max_steps=20, require=require)
        if require not in p.ops():
            return
        used[0] += 1
        with faulty_backward(getattr(ng, require), fault):
            caught[0] += compare(p) is not None

    run()
    return used[0], caught[0]


# -- entry points ----------------------------------------------------------------------------------

HEALTH = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]


def fuzz_test(programs: int, dtype: Any = np.float64, derandomize: bool = True) -> Callable[[], None]:
    """A Hypothesis test over ``programs`` programs (derandomized: the same programs on every run)."""

    @settings(max_examples=programs, deadline=None, derandomize=derandomize, database=None,
              suppress_health_check=HEALTH, print_blob=True)
    @given(data=st.data())
    def test(data: st.DataObject) -> None:
        check(draw_program(data, dtype))

    return test


def budget(default: int) -> int:
    """Programs per test: ``NEW_GRAD_FUZZ_PROGRAMS`` overrides the suite's short budget."""
    return int(os.environ.get("NEW_GRAD_FUZZ_PROGRAMS", default))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n\n")[0])
    ap.add_argument("--programs", type=int, default=5000, help="programs to run (default 5000)")
    ap.add_argument("--seconds", type=float, default=None, help="stop after this long instead")
    ap.add_argument("--float32", action="store_true", help="float32 programs (default float64)")
    ap.add_argument("--random", action="store_true", help="fresh programs each run (default: a fixed sequence)")
    args = ap.parse_args(argv)
    dtype = np.float32 if args.float32 else np.float64
    start, done = time.perf_counter(), 0
    chunk = 200 if args.seconds else args.programs
    while True:
        fuzz_test(chunk, dtype, derandomize=not args.random)()
        done += chunk
        if args.seconds is None or time.perf_counter() - start > args.seconds:
            break
        args.random = True  # later chunks: new programs
    print(f"{done} {np.dtype(dtype).name} programs agreed with PyTorch in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
