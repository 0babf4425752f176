"""Tape replay: record a training step once, then run it again straight from the recorded list.

A step records the same operation list every time. :func:`compile` records it once
(an ordinary eager step), then turns the tape into one straight-line Python function:
each op's forward called directly (elementwise ops writing into output buffers kept
from step to step), then each op's backward in reverse, with the gradients in local
variables instead of the memory buffer. None of the per-op bookkeeping runs again
(no slots, no checks, no ``Operation`` objects). The results are those of the eager
step to the last bit: the same NumPy calls in the same order (``step.source`` shows
them).

What is replayed is what was recorded. Arrays the step receives as arguments are
re-read on each call; every other array the tape used (parameters, captured constants)
is used by reference, so parameters must be updated in place (optimisers do). Control
flow is frozen: a step whose ops depend on the data must stay eager, or pass
``check_every=N`` to re-record every N-th call and raise :class:`ReplayError` when the
operation list changed. Shapes, dtypes and constant-ness of the arguments are checked
on every call.
"""

from __future__ import annotations

import builtins
import math
import operator
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from .autograd_engine import STATE, Autograd, Operation, bound_gradient, bound_parameter, initial_gradient, is_constant
from .backends import is_array
from .errors import ReplayError, shape_str

__all__ = ["compile", "CompiledStep"]

# Forwards that are one ufunc call: replayed as ``ufunc(a, b, out=buffer)`` (bitwise the same values).
_UFUNCS: dict[str, Callable[..., Any]] = {
    "add": np.add,
    "subtract": np.subtract,
    "multiply": np.multiply,
    "divide": np.divide,
    "negative": np.negative,
    "exp": np.exp,
    "log": np.log,
    "tanh": np.tanh,
}



def _registry() -> dict:
    from .ops._core import REGISTRY

    return REGISTRY


_MODES = [0]  # bumped when a module's train/eval flag changes: a compiled step then checks its plan eagerly


def note_mode_change() -> None:
    """Called by ``Module.train``: a recorded plan may hold the other mode's ops (dropout, batch norm)."""
    _MODES[0] += 1


def compile(  # noqa: A001
    step: Callable[..., Any], engine: Autograd | None = None, check_every: int = 0, has_aux: bool = False
) -> CompiledStep:
    """Wrap ``step(*args) -> loss`` (new_grad ops recording on ``engine``) as a replayed training step.

    Each call of the result does what ``with engine: loss = step(*args)`` then
    ``engine.backward(1)`` does, and returns (a copy of) the loss: the first two calls
    eagerly (the first records the plan, the second checks that the step records the same
    ops on the same captured arrays), later calls by replay.

    With ``has_aux=True`` the step returns ``(loss, aux)``, ``aux`` being one array or a
    tuple of arrays computed by the step's ops (the logits, say); each call then returns
    ``(loss, aux)`` with copies of their current values.
    """
    return CompiledStep(step, engine, check_every, has_aux)


class _Plan:
    """The generated function and what it checks before running."""

    __slots__ = ("run", "source", "arg_sig", "bindings", "signature", "leaves", "captured", "aux", "aliasing")

    def __init__(self, run: Callable[..., Any], source: str, arg_sig: list, bindings: list, signature: list,
                 leaves: list) -> None:
        self.run = run
        self.source = source
        self.arg_sig = arg_sig  # per argument: (shape, dtype, is_constant), or _Frozen(value) for non-arrays
        self.bindings = bindings  # (param, bound gradient) pairs that must still be bound
        self.signature = signature  # (name, input shapes) per op: the control-flow fingerprint
        self.leaves = leaves  # (slot name, key source) for gradients written back to the memory buffer
        self.captured: list[tuple[int, int, int]] = []  # see _captures
        self.aux: tuple[int, ...] | int | None = None  # tape positions of the values returned beside the loss
        self.aliasing: tuple[int, ...] = ()  # see _aliasing


class _Frozen:
    """A non-array argument of the recorded call: replay requires the same value."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _aliasing(args: tuple) -> tuple[int, ...]:
    """Per argument, the first argument that is the same array (-1 for non-arrays): the program reads one
    variable for all of them, so later calls must pass the same pattern."""
    first: dict[int, int] = {}
    return tuple(first.setdefault(id(a), i) if is_array(a) else -1 for i, a in enumerate(args))


def _same_value(a: Any, b: Any) -> bool:
    try:
        return a is b or (type(a) is type(b) and bool(a == b))
    except Exception:  # values that do not compare to a bool (lists of arrays...)
        return False


def _op_signature(ops: list[Operation]) -> list[tuple]:
    return [(op.name, tuple(_input_signature(x) for x in op.inputs)) for op in ops]


_VALUES = (int, float, complex, str, slice, np.generic, np.dtype, type(None), type(Ellipsis))


class _Shape(tuple):
    """An array input's shape in a signature (told apart from a tuple of numbers, such as an axis)."""

    __slots__ = ()


def _input_signature(x: Any) -> Any:
    """An array input by its shape; a number, flag, axis or index key by its value, which replay freezes."""
    if is_array(x):
        return _Shape(x.shape)
    if isinstance(x, (tuple, list)):
        return type(x)(_input_signature(y) for y in x)
    return x if isinstance(x, _VALUES) else type(x)


def _captures(ops: list[Operation], args: tuple) -> list[tuple[int, int, int]]:
    """(op, input, id) of every array the tape uses that is neither an argument nor an op's output:
    what replay uses by reference, so it must be the same object on every call."""
    own = {id(a) for a in args}
    out = []
    for n, op in enumerate(ops):
        for j, x in enumerate(op.inputs):
            if is_array(x) and id(x) not in own:
                out.append((n, j, id(x)))
            elif isinstance(x, (tuple, list)):  # an index key holding arrays: replay keeps the key itself
                out += [(n, j, id(y)) for y in x if is_array(y) and id(y) not in own]
        own.add(id(op.output))
    return out


class CompiledStep:
    """A training step recorded once and replayed from its operation list (see :func:`compile`)."""

    def __init__(
        self, step: Callable[..., Any], engine: Autograd | None = None, check_every: int = 0, has_aux: bool = False
    ) -> None:
        self.step = step
        self.has_aux = has_aux
        self.engine = engine
        self.check_every = check_every
        self.calls = 0
        self._plan: _Plan | None = None  # replaying
        self._candidate: _Plan | None = None  # recorded once, confirmed by the second (eager) call
        self._modes = _MODES[0]  # the train/eval changes count when the plan was last checked

    @property
    def source(self) -> str:
        """The generated straight-line program (after the first call)."""
        plan = self._plan or self._candidate
        if plan is None:
            raise ReplayError("compile: nothing recorded yet; call the step once first")
        return plan.source

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        plan = self._plan
        modes = _MODES[0]
        if plan is None or (self.check_every and self.calls % self.check_every == 0) or modes != self._modes:
            if plan or self._candidate:
                self._check_args(plan or self._candidate, args)
            try:
                out = self._eager(args)
            except ReplayError as e:
                if modes != self._modes and (plan or self._candidate):
                    raise ReplayError(
                        f"{e}\n(a module was switched between train and eval mode since this step was recorded; "
                        "compile one step per mode)"
                    ) from None
                raise
            self._modes = modes
            return out
        self._check_args(plan, args)
        eng = self._engine()
        saved = STATE.engine
        STATE.engine = None  # backward functions use new_grad ops: nothing may record
        try:
            loss = plan.run(eng.memory_buffer, *args)
        finally:
            STATE.engine = saved
        eng.operation_list = []
        eng.consumed = True
        return loss

    # -- recording ---------------------------------------------------------------------------------
    def _engine(self) -> Autograd:
        if self.engine is None:
            self.engine = STATE.engine if STATE.engine is not None else Autograd()
        return self.engine

    def _eager(self, args: tuple) -> Any:
        eng = self._engine()
        if eng.detect_anomaly:
            raise ReplayError("compile: the engine is in anomaly mode, which replay does not check; run eagerly")
        if eng.operation_list:
            raise ReplayError(
                f"compile: the engine's tape already holds {len(eng.operation_list)} ops; a compiled step "
                "records a whole step on an empty tape (call engine.zero_grad() or backward first)"
            )
        eng.record_constants = True  # constant preprocessing inside the step is replayed from the arguments
        try:
            with eng:
                loss = self.step(*args)
        except BaseException:
            eng.zero_grad()  # the tape held only this call's ops: drop them, so that the next call records afresh
            raise
        finally:
            eng.record_constants = False
        aux: Any = None
        if self.has_aux:
            if not isinstance(loss, tuple) or len(loss) != 2:
                raise ReplayError("compile(has_aux=True): the step must return a pair (loss, aux)")
            loss, aux = loss
        ops = list(eng.operation_list)
        mem = eng.memory_buffer.memory
        if not any(id(x) in mem for op in ops for x in op.inputs) and not any(
            u is not None for op in ops for u in op.gradients_to_update
        ):  # only ops on constants: nothing to differentiate
            eng.zero_grad()
            ops = []
        if not ops:
            raise ReplayError(
                "compile: the step recorded no ops that need a gradient on this engine (is any input a non-constant float array? do "
                "the modules record on another engine? pass that one: new_grad.compile(step, engine))"
            )
        if loss is not ops[-1].output:
            raise ReplayError(
                f"compile: the step must return the last value it computed with new_grad ops (the loss); it "
                f"returned {shape_str(loss)} but the last op recorded was {ops[-1].name} -> "
                f"{shape_str(ops[-1].output)}"
            )
        aux_at = _aux_positions(ops, aux) if self.has_aux else None
        known = self._plan or self._candidate
        if known is not None:  # a second recording (or a check_every one) must match the first
            self._compare(known, ops, args, eng)
            if aux_at != known.aux:
                eng.zero_grad()
                raise ReplayError("compile(has_aux=True): aux came from other ops than in the first recorded call")
            eng.backward(1)
            self._plan, self._candidate = known, None
        else:
            self._candidate = _build(ops, args, eng, aux_at)  # before backward: it frees what the plan reads
            eng.backward(1)
        if self.has_aux:
            return loss, _copies(aux)
        return loss

    @staticmethod
    def _compare(plan: _Plan, ops: list[Operation], args: tuple, eng: Autograd) -> None:
        signature = _op_signature(ops)
        if signature != plan.signature:
            eng.zero_grad()
            at = next((n for n, (a, b) in enumerate(zip(signature, plan.signature)) if a != b), None)
            if at is not None and len(signature) == len(plan.signature) and _shapes(signature[at]) == _shapes(
                plan.signature[at]
            ):
                raise ReplayError(
                    f"compile: op #{at} {ops[at].name} was called with another number, flag or index than in the "
                    f"first recorded call ({_values(signature[at])} instead of {_values(plan.signature[at])}); "
                    "replay freezes them, so it would keep using the first. Pass a number that changes as an "
                    "argument array (new_grad.constant(numpy.asarray(value)) is re-read on each call), or run "
                    "this step eagerly"
                )
            raise ReplayError(
                f"compile: this call recorded {len(ops)} ops that differ from the {len(plan.signature)} recorded "
                "first (data-dependent control flow or shapes); replay would be wrong here: run this step eagerly"
            )
        for (n, j, k), (_, _, k0) in zip(_captures(ops, args), plan.captured):
            if k != k0:
                eng.zero_grad()
                x = ops[n].inputs[j]
                what = f"an array in input {j}" if isinstance(x, (tuple, list)) else f"input {j}"
                raise ReplayError(
                    f"compile: {what} of op #{n} {ops[n].name} ({shape_str(x)}) is a new array "
                    "on each call, made inside the step in plain NumPy or by ops recording on another engine; "
                    "replay would keep using the first one. Compute it with new_grad ops on this engine, pass it "
                    "as an argument, or make it once outside the step"
                )

    @staticmethod
    def _check_args(plan: _Plan, args: tuple) -> None:
        if len(args) != len(plan.arg_sig):
            raise ReplayError(f"replay: the step was recorded with {len(plan.arg_sig)} arguments, got {len(args)}")
        for i, (a, sig) in enumerate(zip(args, plan.arg_sig)):
            if type(sig) is _Frozen:  # numbers, flags, axes: the recording used their values
                if not _same_value(a, sig.value):
                    raise ReplayError(
                        f"replay: argument {i} is {a!r} but the step was recorded with {sig.value!r}; arguments "
                        "that are not arrays are frozen into the replayed step (compile one step per value, or "
                        "pass it as an array)"
                    )
                continue
            shape, dtype, const = sig
            if not is_array(a) or a.shape != shape or a.dtype != dtype or is_constant(a) != const:
                got = f"{shape_str(a)}{' constant' if is_constant(a) else ''}"
                raise ReplayError(
                    f"replay: argument {i} is {got} but the step was recorded with {shape} {dtype}"
                    f"{' constant' if const else ''}; shapes, dtypes and constant-ness must match (compile "
                    "another step for another shape)"
                )
        aliasing = _aliasing(args)
        if aliasing != plan.aliasing:
            i = next(i for i, (a, b) in enumerate(zip(aliasing, plan.aliasing)) if a != b)
            j = aliasing[i] if aliasing[i] != i else plan.aliasing[i]
            now, then = ("is", "was not") if aliasing[i] != i else ("is not", "was")
            raise ReplayError(
                f"replay: argument {i} {now} the same array as argument {j}, but it {then} in the recorded call; "
                "the replayed program reads the arguments as they were passed then (compile one step per "
                "pattern, or pass a copy)"
            )
        for p, grad in plan.bindings:
            if bound_gradient(p) is not grad or bound_parameter(grad) is not p:
                raise ReplayError(
                    f"replay: the gradient array bound to parameter {shape_str(p)} changed since the step was "
                    "recorded (a parameter or its gradient was replaced, not updated in place); compile again"
                )


def _shapes(entry: tuple) -> tuple:
    """An op's signature with its number, flag and index values left out (what the shapes say)."""
    return entry[0], tuple(v if type(v) is _Shape else None for v in entry[1])


def _values(entry: tuple) -> str:
    return ", ".join(repr(v) for v in entry[1] if type(v) is not _Shape)


# -- code generation ----------------------------------------------------------------------------------------


def _aux_positions(ops: list[Operation], aux: Any) -> tuple[int, ...] | int:
    """Where on the tape the step's aux arrays were produced (an int for a lone array)."""
    at = {id(op.output): n for n, op in enumerate(ops)}
    items = aux if isinstance(aux, (tuple, list)) else (aux,)
    found = []
    for a in items:
        if id(a) not in at:
            raise ReplayError(
                f"compile(has_aux=True): aux {shape_str(a)} is not the output of an op the step recorded; return "
                "arrays computed by new_grad ops on the step's engine"
            )
        found.append(at[id(a)])
    return tuple(found) if isinstance(aux, (tuple, list)) else found[0]


def _copies(aux: Any) -> Any:
    if isinstance(aux, (tuple, list)):
        return tuple(a.copy() for a in aux)
    return aux.copy()


def _as_array(v: Any) -> Any:
    """A 0-d result as an array: NumPy scalars become arrays, a device's 0-d arrays stay on the device."""
    return v if is_array(v) else np.asarray(v)


def _build(ops: list[Operation], args: tuple, eng: Autograd, aux: tuple[int, ...] | int | None = None) -> _Plan:
    from .ops._core import REGISTRY

    mem = eng.memory_buffer.memory
    ns: dict[str, Any] = {"_np": np, "_asarray": _as_array, "_iadd": operator.iadd}
    names: dict[int, str] = {}  # id(array) -> its variable in the generated code
    produced: set[int] = set()
    arg_sig: list = []
    for i, a in enumerate(args):
        if is_array(a):
            names.setdefault(id(a), f"a{i}")
            arg_sig.append((a.shape, a.dtype, is_constant(a)))
        else:
            arg_sig.append(_Frozen(a))
    used = set()
    for op in ops:
        used.update(id(x) for x in op.inputs if is_array(x))
    for i, a in enumerate(args):
        if is_array(a) and id(a) not in used and not is_constant(a):
            raise ReplayError(
                f"compile: argument {i} {shape_str(a)} is not an input of any recorded op (it was changed in plain "
                "NumPy first?); replay could not re-read it: compute from it with new_grad ops, or do the "
                "preprocessing outside the step"
            )

    def const(value: Any, hint: str) -> str:
        name = f"{hint}{len(ns)}"
        ns[name] = value
        return name

    def ref(x: Any) -> str:
        """How the generated code names an input: its variable, a literal, or a captured reference."""
        if id(x) in names:
            return names[id(x)]
        if x is None or type(x) in (bool, int) or (type(x) is float and math.isfinite(x)):
            return repr(x)
        names[id(x)] = const(x, "c")  # parameters and captured constants: by reference
        return names[id(x)]

    fwd: list[str] = []
    for n, op in enumerate(ops):
        info = REGISTRY.get(op.name)
        forward = info.forward if info is not None and op.backward_operation is info.backward else None
        if forward is None or forward is info.public:
            forward = _join_forward(op)
        if forward is None:
            raise ReplayError(
                f"compile: op #{n} {op.name} was recorded by hand (add_operation/record), so replay cannot "
                "re-run its forward; only ops built with @primitive (and the joins: stack, concatenate, "
                "hstack, vstack) can be replayed"
            )
        ins = [ref(x) for x in op.inputs]
        out = op.output
        v = f"v{n}"
        ufunc = _UFUNCS.get(op.name)
        if ufunc is not None and type(out) is np.ndarray and all(
            type(x) is np.ndarray and x.dtype == out.dtype or isinstance(x, (int, float)) for x in op.inputs
        ):
            ns[f"O{n}"] = np.empty_like(out)  # the reused output buffer
            fwd.append(f"{v} = {const(ufunc, 'u')}({', '.join(ins)}, out=O{n})")
        else:
            call = f"{const(forward, 'f')}({', '.join(ins)})"
            fwd.append(f"{v} = _asarray({call})" if out.ndim == 0 else f"{v} = {call}")
            fwd.append(f"if {v}.shape != {tuple(out.shape)!r}: raise _shape_changed({n}, {v})")
        names[id(out)] = v
        produced.add(id(out))
    ns["_shape_changed"] = lambda n, v: ReplayError(
        f"replay: op #{n} {ops[n].name} produced {shape_str(v)} instead of {shape_str(ops[n].output)} (a "
        "data-dependent shape); run this step eagerly"
    )

    # Which inputs want a gradient is fixed by the recording: slotted arrays and bound parameters.
    grad_of: dict[int, str] = {}  # id(array) -> gradient variable
    leaves: list[tuple[str, Any]] = []
    bindings: list[tuple[Any, Any]] = []
    for op in ops:
        for x in op.inputs:
            if (is_array(x) and id(x) in mem and id(x) not in produced and id(x) not in grad_of
                    and bound_gradient(x) is None):
                var = f"l{len(leaves)}"
                grad_of[id(x)] = var
                leaves.append((var, x))
    for n, op in enumerate(ops):
        grad_of.setdefault(id(op.output), f"g{n}")
    for x, upd in ((x, u) for op in ops for x, u in zip(op.inputs, op.gradients_to_update)):
        if upd is not None and all(upd is not b for _, b in bindings):
            bindings.append((x, upd))

    seed = initial_gradient(1.0, ops[-1].output)
    lines = [
        "def replay(_buf, " + ", ".join(f"a{i}" for i in range(len(args))) + "):",
        "    _mem = _buf.memory",
        *(f"    {line}" for line in fwd),
    ]
    for var, x in leaves:  # leaves accumulate onto what their slot holds, as in eager
        key = ref(x)
        lines.append(f"    {var} = _p{var} = _mem.get(id({key}))")
    # What is known of each gradient variable while the backward is generated: "none" (nothing has
    # arrived: the op is skipped, as eager skips it), "set" (an array, maybe shared), "owned" (an array
    # made here that nothing else holds) or "maybe" (decided at run time).
    state = {var: "maybe" for var, _ in leaves}
    state[f"g{len(ops) - 1}"] = "set"
    init_at = len(lines)  # variables first assigned under an ``if`` start as None here
    lines.append(f"    g{len(ops) - 1} = {const(seed, 's')}")
    # Free as eager frees: a forward value once the last backward that reads it has run (its own op's,
    # or a consumer's), a gradient once its op has sent it on. Holding them all to the end of the step
    # would keep the whole step's memory alive and make every allocation of the next step a cold one.
    last_read = {n: n for n in range(len(ops))}
    for m, op in enumerate(ops):
        for x in op.inputs:
            if id(x) in produced:
                j = int(names[id(x)][1:])
                last_read[j] = min(last_read[j], m)
    free_after: dict[int, list[str]] = {}
    kept = set(aux if isinstance(aux, tuple) else () if aux is None else (aux,))
    for j, m in last_read.items():
        if j != len(ops) - 1 and j not in kept:  # the loss (and the aux values) are returned
            free_after.setdefault(m, []).append(f"v{j}")

    for n in range(len(ops) - 1, -1, -1):
        op = ops[n]
        own = state.get(f"g{n}", "none").rstrip("*")
        targets = []  # per input: ("upd", name) | ("slot", var) | None
        for x, upd in zip(op.inputs, op.gradients_to_update):
            if upd is not None:
                targets.append(("upd", ref(upd)))
            elif is_array(x) and id(x) in mem and id(x) in grad_of:
                targets.append(("slot", grad_of[id(x)]))
            else:
                targets.append(None)
        if own != "none" and any(t is not None for t in targets):  # else eager skips it too
            cond = own == "maybe"
            body = _rule(op, n, targets, ref, state, cond)
            lines += [f"    if g{n} is not None:", *(f"        {line}" for line in body)] if cond else [
                f"    {line}" for line in body
            ]
        dead = free_after.get(n, []) + ([f"g{n}"] if own != "none" and n != len(ops) - 1 else [])
        if dead:
            lines.append(f"    del {', '.join(dead)}")

    inits = sorted(v for v, st in state.items() if st == "maybe*")
    lines[init_at:init_at] = [f"    {v} = None" for v in inits]
    for var, x in leaves:  # back into the memory buffer, keyed by the array as eager does
        key = ref(x)
        # An empty slot's gradient may have arrived by reference (the seed, another slot's, a reused buffer): the
        # caller gets its own copy, as eager's ``_unshare`` gives it (scaling it must change no later step). A
        # gradient added to what the slot held is a new array already.
        lines.append(f"    if _p{var} is None and {var} is not None: {var} = {var}.copy()")
        lines.append(f"    _mem[id({key})] = {var}")
        lines.append(f"    _buf.tracked[id({key})] = {key}")
    loss = f"v{len(ops) - 1}"
    ret = f"{loss}.copy() if type({loss}) is _np.ndarray else {loss}"
    if isinstance(aux, tuple):
        ret = f"({ret}), ({''.join(f'v{n}.copy(), ' for n in aux)})"
    elif aux is not None:
        ret = f"({ret}), v{aux}.copy()"
    lines.append(f"    return {ret}")
    source = "\n".join(lines) + "\n"
    ns["_fix"] = _fix
    exec(builtins.compile(source, "<new_grad replay>", "exec"), ns)  # noqa: S102 - our own generated code
    plan = _Plan(ns["replay"], source, arg_sig, bindings, _op_signature(ops), leaves)
    plan.captured = _captures(ops, args)
    plan.aliasing = _aliasing(args)
    plan.aux = aux
    return plan


def _join_forward(op: Operation) -> Callable[..., Any] | None:
    """The forward of a recorded join (its axis lives in its backward's closure): the one NumPy join of the
    recorded inputs that gives the recorded output's shape, checked bitwise against the recorded output."""
    ins, out = op.inputs, op.output
    if op.name not in ("stack", "concatenate", "hstack", "vstack") or not all(type(x) is np.ndarray for x in ins):
        return None
    if op.name in ("hstack", "vstack"):
        candidates = [np.hstack if op.name == "hstack" else np.vstack]
    elif op.name == "stack":
        candidates = [_partial_join(np.stack, ax) for ax in range(out.ndim)]
    elif all(x.ndim == out.ndim for x in ins):
        candidates = [_partial_join(np.concatenate, ax) for ax in range(out.ndim)]
    else:  # concatenate(axis=None) flattens first
        candidates = [lambda *a: np.concatenate([x.reshape(-1) for x in a])]
    fits = []
    for f in candidates:
        try:
            r = f(*ins)
        except ValueError:
            continue
        if r.shape == out.shape and np.array_equal(r, out):
            fits.append(f)
    return fits[0] if len(fits) == 1 else None


def _partial_join(join: Callable[..., Any], axis: int) -> Callable[..., Any]:
    def forward(*arrays: Any) -> Any:
        return join(arrays, axis=axis)

    return forward


def _rule(op: Operation, n: int, targets: list, ref: Callable[[Any], str], state: dict, cond: bool) -> list[str]:
    """The backward of op #n as lines: its op's replay rule (one NumPy expression per input), or a call of
    its backward."""
    ins = op.inputs
    refs = [ref(x) for x in ins]
    out_shape = getattr(op.output, "shape", None)
    info = _registry().get(op.name)
    rule = info.extras.get("replay") if info is not None else None
    same = all(
        type(x) is type(op.output) and x.dtype == op.output.dtype
        and (x.shape == out_shape or (op.name == "linear" and op.output.ndim == 2))
        for x, t in zip(ins, targets)
        if t is not None
    ) and all(is_array(x) or isinstance(x, (int, float)) or x is None for x in ins)
    lines: list[str] = []
    if rule is not None and same:
        env = {"g": f"g{n}", "o": f"v{n}", **{f"i{j}": r for j, r in enumerate(refs)}}
        for j, t in enumerate(targets):
            if t is not None:
                expr = rule[j]
                assert expr is not None
                for k in sorted(env, key=len, reverse=True):
                    expr = re.sub(rf"\b{k}\b", env[k], expr)
                lines += _accumulate(t, f"({expr})", state, cond)
        return lines
    args = ", ".join([f"g{n}", *refs])
    if op.needs is not None:
        needs = tuple(t is not None for t in targets)
        lines.append(f"_r = {ref(op.backward_operation)}({args}, v{n}, {needs!r})")
    else:
        lines.append(f"_r = {ref(op.backward_operation)}({args})")
    for j, t in enumerate(targets):
        if t is not None:
            lines.append(f"_t = _r[{j}]")
            lines.append("if _t is not None:")
            x = refs[j]  # a backward may return a scalar, another dtype or a broadcast shape: eager's _fix_grad
            lines.append(
                f"    if type(_t) is not type({x}) or _t.dtype is not {x}.dtype or _t.shape != {x}.shape: "
                f"_t = _fix(_t, {x})"
            )
            lines += [f"    {line}" for line in _accumulate(t, "_t", state, True)]
    return lines


def _accumulate(target: tuple, expr: str, state: dict, cond: bool) -> list[str]:
    """Eager's accumulation: in place into a bound gradient, else first by reference, then ``cur + g``."""
    if target[0] == "upd":
        return [f"_iadd({target[1]}, {expr})"]  # eager's ``upd += gx``, on a captured array
    var = target[1]
    was = state.get(var, "none")
    if was == "none":  # the first gradient, by reference (maybe*: assigned under an ``if``, starts as None)
        state[var] = "maybe*" if cond else "set"
        return [f"{var} = {expr}"]
    if was == "set":  # the second makes a new array, which this variable then owns
        state[var] = "set" if cond else "owned"
        return [f"{var} = {var} + {expr}"]
    if was == "owned":  # an array nobody else holds: add in place (the same sum, one allocation less)
        return [f"{var} += {expr}"]
    return [f"{var} = {expr} if {var} is None else {var} + {expr}"]


def _fix(gx: Any, x: Any) -> Any:
    from .backends import namespace
    from .ops._core import unbroadcast_to

    if not hasattr(gx, "shape") or isinstance(gx, np.generic):
        gx = namespace(x).asarray(gx, dtype=x.dtype)
    if gx.shape != x.shape:
        gx = unbroadcast_to(gx, x.shape)
    if gx.dtype.kind == "c" and x.dtype.kind != "c":  # a real input met a complex op: the real part, as the engine
        gx = gx.real
    return gx.astype(x.dtype) if gx.dtype != x.dtype else gx

