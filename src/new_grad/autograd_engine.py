"""The engine: a tape of operations and one reverse loop over it (the course's ``Autograd``).

Recording: every differentiable op appends an :class:`Operation` to
``operation_list`` and gives each of its array inputs a slot in the
``memory_buffer``. Because ops are appended in the order they ran, the list is
already a valid order for backpropagation: ``backward`` walks it last to first,
asks each op's backward function for its inputs' gradients and adds them into
the slots. No graph, no topological sort.

This module imports nothing of new_grad but the errors, the backend helpers and
the memory buffer: it is the bottom layer.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .backends import is_array, namespace
from .errors import (
    AnomalyError,
    DtypeError,
    EmptyTapeError,
    GradientError,
    TapeConsumedError,
    TapeError,
    TapeGrowthWarning,
    UntrackedViewWarning,
    complex_error,
    shape_str,
    user_stacklevel,
)
from .utils import MemoryBuffer, slot_dtype

ndarray = np.ndarray
Backward = Callable[..., Sequence[Any]]


# -- recording state -----------------------------------------------------------------------


class _State(threading.local):
    """Which engine functional ops record on right now (``None``: record nothing).

    One per thread (like PyTorch's grad mode): ``with engine:`` in one thread never
    redirects the ops of another, and a thread that dies leaves nothing behind.
    """

    def __init__(self) -> None:
        self.engine: Autograd | None = None
        self.stack: list[Autograd | None] = []
        self.no_grad_depth = 0


STATE = _State()


class no_grad:
    """``with new_grad.no_grad():`` (or ``@no_grad()``) records nothing, on any engine."""

    __slots__ = ()

    def __enter__(self) -> None:
        STATE.stack.append(STATE.engine)
        STATE.no_grad_depth += 1
        STATE.engine = None

    def __exit__(self, *exc: object) -> None:
        STATE.no_grad_depth -= 1
        STATE.engine = STATE.stack.pop()

    def __call__(self, fn: Callable) -> Callable:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with no_grad():
                return fn(*args, **kwargs)

        wrapped.__wrapped__ = fn  # type: ignore[attr-defined]
        return wrapped


def active_engine() -> Autograd | None:
    """The engine functional ops record on (set by ``with engine:``), or ``None``."""
    return STATE.engine


def is_grad_enabled() -> bool:
    return STATE.no_grad_depth == 0


# -- constants, parameters, versions -------------------------------------------------------------
# ndarrays are weak-referenceable but not hashable, so these registries are keyed by id()
# and clean themselves up when the array dies.

_CONSTANTS: dict[int, weakref.ref] = {}
_PARAM_GRADS: dict[int, Any] = {}  # id(param) -> its gradient array, updated in place
_PARAM_REFS: dict[int, weakref.ref] = {}
_VERSIONS: dict[int, int] = {}  # id(param) -> how many times it was changed in place (optimiser steps)
_LAST_BOUND: dict[int, weakref.ref] = {}  # id(gradient array) -> the parameter last bound to it


def _forget(registry: dict, k: int, ref: weakref.ref) -> None:
    if registry.get(k) is ref:
        del registry[k]


def constant(x: Any) -> Any:
    """Mark ``x`` as a constant (a data batch, labels): no gradient is ever computed for it."""
    if is_array(x):
        k = id(x)
        _CONSTANTS[k] = weakref.ref(x, lambda r, k=k: _forget(_CONSTANTS, k, r))
    return x


def is_constant(x: Any) -> bool:
    return id(x) in _CONSTANTS


def bind_gradient(param: Any, grad: Any) -> None:
    """Route the gradient of ``param`` into ``grad`` (same shape), in place, like the course's ``dW``."""
    if getattr(grad, "shape", None) != param.shape:
        raise GradientError(
            f"bind_gradient: gradient array {shape_str(grad)} must have the parameter's shape "
            f"{shape_str(param)}"
        )
    if grad.dtype.kind not in "fc" or param.dtype.kind not in "fc":
        raise DtypeError(
            f"bind_gradient: parameter {shape_str(param)} with gradient {shape_str(grad)}: both must be "
            "float arrays (an integer/boolean array never gets a gradient); convert with astype(numpy.float64)"
        )
    k, kg = id(param), id(grad)

    def cleanup(r: weakref.ref, k: int = k) -> None:
        if _PARAM_REFS.get(k) is r:
            del _PARAM_REFS[k]
            _PARAM_GRADS.pop(k, None)
            _VERSIONS.pop(k, None)
        if _LAST_BOUND.get(kg) is r:
            del _LAST_BOUND[kg]

    _PARAM_REFS[k] = _LAST_BOUND[kg] = weakref.ref(param, cleanup)
    _PARAM_GRADS[k] = grad


def bound_gradient(param: Any) -> Any:
    """The gradient array bound to ``param`` by :func:`bind_gradient`, or ``None``."""
    return _PARAM_GRADS.get(id(param))


def bound_parameter(grad: Any) -> Any:
    """The parameter most recently bound to the gradient array ``grad`` (``None`` if none is alive): a module
    that replaces a parameter binds the new array to the same gradient, so this names the one in use."""
    r = _LAST_BOUND.get(id(grad))
    return None if r is None else r()


def mark_modified(param: Any) -> None:
    """Note that ``param`` was changed in place (optimisers call this after each update).

    A tape that read ``param`` before the change refuses to backpropagate through it:
    its gradient would be that of the new values, not of the ones the forward used.
    """
    k = id(param)
    if k in _PARAM_GRADS:
        _VERSIONS[k] = _VERSIONS.get(k, 0) + 1


# -- the tape ---------------------------------------------------------------------------------


class Operation:
    """One tape entry: ``output = f(*inputs)`` and how to send gradients back through ``f``.

    ``needs`` says, per input, whether it wants a gradient (an array with a slot or a bound
    gradient). The library's ops fill it when they record; their backward is then called
    ``backward_operation(grad_output, *inputs, out, needs)``. An entry made through the
    course's raw door (``add_operation``, or built by hand) has ``needs=None`` and gets the
    course's call, ``backward_operation(grad_output, *inputs)``.
    """

    __slots__ = ("inputs", "output", "gradients_to_update", "backward_operation", "name", "needs")

    def __init__(
        self,
        inputs: Sequence[Any],
        output: Any,
        gradients_to_update: Sequence[Any],
        backward_operation: Backward,
        name: str | None = None,
        needs: Sequence[bool] | None = None,
    ) -> None:
        self.inputs = inputs
        self.output = output
        self.gradients_to_update = gradients_to_update
        self.backward_operation = backward_operation
        self.name = name or getattr(backward_operation, "__name__", "op").removesuffix("_backward")
        self.needs = needs

    def __repr__(self) -> str:
        ins = ", ".join(shape_str(x) for x in self.inputs)
        return f"Operation({self.name}: ({ins}) -> {shape_str(self.output)})"


_new_operation = object.__new__  # record() fills the slots itself: cheaper than calling __init__


def _warn_untracked_view(name: str, i: int, x: Any) -> None:
    warnings.warn(
        f"{name}: input {i} {shape_str(x)} is a view of an array on the tape made "
        "outside new_grad (x.T, x.reshape, x[...] in plain NumPy); its gradient stops "
        f"here. Use new_grad's ops (new_grad.transpose, new_grad.reshape, "
        "new_grad.getitem) so the view is recorded.",
        UntrackedViewWarning,
        stacklevel=user_stacklevel(),
    )


_NO_SLOT = object()  # mem.get's default: "this array has no slot" (None is a lazy slot)
_NONES: list[tuple[None, ...]] = [(None,) * n for n in range(8)]


def _nones(n: int) -> tuple[None, ...]:
    return _NONES[n] if n < 8 else (None,) * n


_REAL = np.dtype(np.float64)  # what record assumes of an output without a dtype
_PLAIN = frozenset({int, float, bool, complex, str, type(None), tuple, list, slice})  # never arrays
_GROWTH_PASSES = 20  # retained backwards in a row over a growing tape before we warn


class Autograd:
    """The tape (``operation_list``) and the gradients (``memory_buffer``) of one computation.

    Any number of engines may exist. ``with engine:`` makes it the one ops record on in
    this thread; a module given an engine records there unless another engine is active
    (the active engine always wins, so nothing is recorded where nobody backpropagates).
    """

    def __init__(self, detect_anomaly: bool = False, debug: bool = False) -> None:
        self.memory_buffer = MemoryBuffer()
        self.operation_list: list[Operation] = []
        self.detect_anomaly = detect_anomaly or debug
        self._consumed = False
        self._retained = False  # the last backward kept the tape: its intermediate gradients are stale
        self._owned: set[int] = set()
        self._borrowed: dict[int, Any] = {}  # slots that hold a gradient by reference (made in this pass)
        self._versions: dict[int, tuple[Any, int]] = {}  # parameters read by the tape, at their version
        self._snapshots: dict[int, list[tuple[Any, Any]]] = {}  # anomaly mode: id(op) -> copies of its inputs
        self._growth = (0, 0)  # (tape length at the last retained backward, passes in a row it grew)
        # Record ops on constants too (they get no gradient): replay re-runs them, e.g. a model that flattens
        # its input batch, so that their outputs are recomputed from each call's arguments.
        self.record_constants = False

    @property
    def debug(self) -> bool:
        """The course's later name for :attr:`detect_anomaly`."""
        return self.detect_anomaly

    @debug.setter
    def debug(self, value: bool) -> None:
        self.detect_anomaly = bool(value)

    @property
    def consumed(self) -> bool:
        """Was the tape used up by a backward (so another backward is an error until something is recorded)?"""
        return self._consumed

    @consumed.setter
    def consumed(self, value: bool) -> None:  # replay runs a whole step's backward outside the loop
        self._consumed = bool(value)

    @property
    def gradient_buffer(self) -> MemoryBuffer:
        """The course's later name for :attr:`memory_buffer`."""
        return self.memory_buffer

    # -- context manager: the active engine ----------------------------------------------------
    def __enter__(self) -> Autograd:
        st = STATE
        st.stack.append(st.engine)
        st.engine = self if st.no_grad_depth == 0 else None
        return self

    def __exit__(self, *exc: object) -> None:
        st = STATE
        st.engine = st.stack.pop()

    # -- recording -------------------------------------------------------------------------------
    def add_operation(
        self,
        inputs: Sequence[Any],
        output: Any,
        gradients_to_update: Sequence[Any],
        backward_operation: Backward,
    ) -> None:
        """The course's raw door: record ``output`` as computed from ``inputs``.

        Every array input gets a (lazy) slot; ``gradients_to_update[i]`` is an array
        to accumulate input *i*'s gradient into in place, or ``None`` for its slot.
        """
        if not callable(backward_operation):  # caught here, not as a bare TypeError deep inside backward
            raise TapeError(
                f"add_operation: backward_operation is {type(backward_operation).__name__}, not a function; pass "
                "the backward function itself (mul_backward), not its result (mul_backward(...))"
            )
        if len(inputs) != len(gradients_to_update):
            raise TapeError(
                f"add_operation({getattr(backward_operation, '__name__', 'op')}): got {len(inputs)} "
                f"inputs but {len(gradients_to_update)} gradients_to_update; give one entry per "
                "input (None where the input's gradient goes to the memory buffer)"
            )
        for i, (x, upd) in enumerate(zip(inputs, gradients_to_update)):
            if upd is not None and (not is_array(upd) or upd.dtype.kind not in "fc"):
                raise DtypeError(
                    f"add_operation: gradients_to_update[{i}] is {shape_str(upd)}; it must be a "
                    "float array that gradients can be added into (or None)"
                )
            if is_array(x):
                self.memory_buffer.add_spot(x)
        self.memory_buffer.track(output)
        self._append(Operation(inputs, output, gradients_to_update, backward_operation))

    def record(self, name: str, backward: Backward, inputs: Sequence[Any], output: Any) -> Any:
        """Record ``output = name(*inputs)`` if any input needs a gradient; return ``output``.

        The hot path of every op. Inputs that need a gradient are float arrays that
        are not constants; only they get slots, and ``needs`` remembers which they are
        (so backward functions skip the others). An op none of whose inputs needs one
        is not recorded (and its float output becomes a constant).
        """
        buf = self.memory_buffer
        mem = buf.memory
        known = buf.tracked
        params = _PARAM_GRADS
        gtu: Any = None
        needs = [False] * len(inputs)
        i = -1
        for x in inputs:
            i += 1
            t = type(x)
            if t is not ndarray and (t in _PLAIN or not is_array(x)):
                continue
            if x is output:  # an op must return a new object, or input and output share a slot
                output = output.view()
            k = id(x)
            if k not in mem:  # not slotted yet: slot it if it can take a gradient
                if k in _CONSTANTS or x.dtype.kind not in "fc":
                    continue
                if k not in known and x.base is not None and id(x.base) in known:
                    _warn_untracked_view(name, i, x)
                mem[k] = None
                known[k] = x
            needs[i] = True
            if k in params:
                if gtu is None:
                    gtu = list(_nones(len(inputs)))
                gtu[i] = params[k]
                if k not in self._versions:
                    self._versions[k] = (x, _VERSIONS.get(k, 0))
        if True not in needs:
            if (type(output) is ndarray or is_array(output)) and output.dtype.kind in "fc":
                constant(output)  # a NumPy or a device array: later ops need no gradient for it
            if not self.record_constants:
                return output
        if type(output) is not ndarray and isinstance(output, np.generic):
            output = np.asarray(output)  # 0-d results must be arrays to get a slot
        if getattr(output, "dtype", _REAL).kind == "c" and name not in COMPLEX_OPS:  # no complex rule: refuse
            raise complex_error(name, output)
        known[id(output)] = output
        op = _new_operation(Operation)
        op.inputs = inputs
        op.output = output
        op.gradients_to_update = gtu or _nones(len(inputs))
        op.backward_operation = backward
        op.name = name
        op.needs = needs
        self.operation_list.append(op)
        if self.detect_anomaly:
            self._snapshot(op)
            self._check_finite(op, output, "output")
        return output

    def _append(self, op: Operation) -> None:
        if self._consumed:  # recording after a backward starts a new step on this engine
            self._consumed = False
        self.operation_list.append(op)
        if self.detect_anomaly:
            self._snapshot(op)
            self._check_finite(op, op.output, "output")

    # -- backpropagation -------------------------------------------------------------------------
    def backward(
        self,
        divergence: Any = 1.0,
        retain_graph: bool = False,
        create_graph: bool = False,
        *,
        output: Any = None,
    ) -> None:
        """Backpropagate ``divergence`` through the tape, from ``output`` (default: the last op's).

        One loop, last op to first. ``output=loss`` names the array to start from and
        refuses one that is not a recorded output of this tape (a loss finished in plain
        NumPy would otherwise silently differentiate the last recorded op instead).
        Without ``retain_graph`` each op is dropped once processed (its saved inputs
        and its output's gradient are freed), and the tape is consumed. With
        ``create_graph`` the backward pass is itself recorded on the active engine
        (see :func:`new_grad.grad`), for higher derivatives.
        """
        ops = self.operation_list
        if divergence is None:
            raise GradientError(
                "backward: divergence is None; pass the gradient of the output (1.0 for a scalar loss, "
                "or an array of the output's shape)"
            )
        if not ops:
            if self._consumed:
                raise TapeConsumedError(
                    "backward: this tape was already consumed by an earlier backward (its saved "
                    "arrays are freed). Record the computation again (after zero_grad()), or pass "
                    "retain_graph=True to the first backward to run it twice."
                )
            raise EmptyTapeError(
                "backward: the operation list is empty; nothing was recorded. Ops record only on "
                "an active engine (`with engine:` or a module given the engine) outside no_grad(), "
                "and only when an input needs a gradient (float, not a constant)."
            )
        if output is not None and ops[-1].output is not output:
            ops = self._start_at(output, retain_graph)
        out = ops[-1].output
        self._check_snapshots(ops)
        mem = self.memory_buffer.memory
        known = self.memory_buffer.tracked
        if self._retained:  # after a retained pass, intermediates start from zero again (no double count)
            for op in ops:
                if id(op.output) in mem:
                    mem[id(op.output)] = None
        self._watch_growth(retain_graph)
        self._retained = retain_graph
        mem[id(out)] = initial_gradient(divergence, out)
        known[id(out)] = out
        owned_before, self._owned = self._owned, set()  # slots holding a sum this pass made (safe to add into)
        borrowed_before, self._borrowed = self._borrowed, {}
        saved = STATE.engine
        if create_graph:  # record the backward pass on the (other) active engine
            if saved is None or saved is self:
                raise TapeError(
                    "backward(create_graph=True) records the backward pass on a second engine: "
                    "run it inside `with other_engine:` (new_grad.grad does this for you)"
                )
            if mem[id(out)] is not divergence:  # a seed made here is a constant, not a new leaf
                constant(mem[id(out)])
            outer = saved.memory_buffer
            if any(not outer.tracks(op.output) for op in ops[:-1]):
                warnings.warn(
                    "backward(create_graph=True): the forward pass was not recorded on the engine that records "
                    "the backward, so derivatives through intermediate values are lost. Record the forward on "
                    "the outer engine too, or use new_grad.grad / hessian / hvp, which do.",
                    stacklevel=2,
                )
        else:
            STATE.engine = None  # backward functions use new_grad ops: don't record them
        try:
            self._loop(ops, mem, known, create_graph, retain_graph)
            if not retain_graph:
                self.operation_list = []
                self._consumed = True
                self._versions = {}
                self._snapshots = {}
            if not create_graph:
                self._unshare(mem)
        finally:
            STATE.engine = saved
            self._owned = owned_before  # a backward nested in this one (transforms) keeps its own
            self._borrowed = borrowed_before

    def _start_at(self, output: Any, retain: bool) -> list[Operation]:
        """The stretch of tape that computed ``output`` (the ops after it cannot have contributed).

        A retained pass keeps the ops after it on the tape, for a later backward from a later output;
        otherwise they are dropped, with the arrays the buffer kept for their outputs.
        """
        ops = self.operation_list
        for i in range(len(ops) - 1, -1, -1):
            if ops[i].output is output:
                if retain:
                    return ops[: i + 1]
                buf, used = self.memory_buffer, {id(x) for op in ops[: i + 1] for x in op.inputs}
                for op in ops[i + 1 :]:
                    if id(op.output) not in used:  # (a custom op may return an array the kept ops read)
                        buf.memory.pop(id(op.output), None)
                        buf.tracked.pop(id(op.output), None)
                self.operation_list = ops[: i + 1]
                return self.operation_list
        raise TapeError(
            f"backward(output=...): the array {shape_str(output)} is not an output recorded on this engine's tape "
            "(it was computed in plain NumPy, under no_grad(), on another engine, or from constants only). "
            "Compute the loss with new_grad ops inside `with engine:` and pass that array."
        )

    def _check_snapshots(self, ops: list[Operation]) -> None:
        """Anomaly mode: refuse to backpropagate through inputs changed in place after they were recorded."""
        if self._snapshots:
            for n, op in enumerate(ops):
                for x, before in self._snapshots.get(id(op), ()):
                    if x.shape != before.shape or not namespace(x).array_equal(x, before, equal_nan=x.dtype.kind in "fc"):
                        raise AnomalyError(
                            f"anomaly: input {shape_str(x)} of op #{n} {op.name} was modified in place after it "
                            "was recorded (x += ..., x[...] = ..., out=); the backward needs the values the forward "
                            "used. Compute a new array instead (x = x + 1), or record the forward again."
                        )

    def _modified_parameter(self, op: Operation, x: Any) -> GradientError:
        return GradientError(
            f"backward: {op.name} read a parameter {shape_str(x)} that was modified in place afterwards (an "
            "optimiser step between forward and backward?); its gradient would be that of the new values. Call "
            "backward before optimizer.step(), then zero_grad() and run the forward again."
        )

    def _snapshot(self, op: Operation) -> None:
        # object arrays (an index expression, ragged lists on the course's tape) hold no values to compare
        self._snapshots[id(op)] = [(x, x.copy()) for x in op.inputs if is_array(x) and x.dtype != object]

    def _watch_growth(self, retain_graph: bool) -> None:
        """Warn once when retained backwards keep running over an ever longer tape (a forgotten zero_grad)."""
        n = len(self.operation_list)
        last, streak = self._growth
        if not retain_graph:
            self._growth = (0, 0)
            return
        streak = streak + 1 if n > last and last else 0
        self._growth = (n, streak)
        if streak == _GROWTH_PASSES:
            warnings.warn(
                f"backward(retain_graph=True): the tape grew across {streak} backward passes in a row "
                f"({n} ops now); each pass runs over every op recorded since the last zero_grad(). Call "
                "engine.zero_grad() after each step, or drop retain_graph=True.",
                TapeGrowthWarning,
                stacklevel=3,
            )

    def _unshare(self, mem: dict) -> None:
        """Give every gradient stored by reference in this pass its own memory.

        A backward may pass its incoming gradient through unchanged (``add`` does), so
        two slots, or a slot and the caller's divergence, could be one array: scaling
        one in place would scale the others.
        """
        for k, g in self._borrowed.items():
            if mem.get(k) is g and k not in self._owned:
                mem[k] = g.copy()

    def _loop(self, ops: list[Operation], mem: dict, known: dict, create_graph: bool, retain: bool) -> None:
        """The reverse loop: send each op's output gradient to its inputs, last op first.

        Without ``retain`` each op is popped as it is processed and its output's slot freed.
        The first gradient a slot gets is stored by reference and never mutated (it may
        alias another input's gradient); a second one makes a new sum that this pass owns,
        and later ones are added into that sum in place.
        """
        owned, borrowed, anomaly = self._owned, self._borrowed, self.detect_anomaly
        get, pop_op, forget, take, plain = mem.get, ops.pop, known.pop, mem.pop, FIRST_ORDER.get
        for n in range(len(ops) - 1, -1, -1):
            op = ops[n]
            if retain:
                g = get(id(op.output))
            else:
                pop_op()
                k = id(op.output)
                forget(k, None)
                g = take(k, None)
            if g is None:  # nothing downstream produced a gradient for this op
                continue
            ins = op.inputs
            needs = op.needs
            backward = op.backward_operation
            if not create_graph:  # the same backward on plain arrays: the ops it calls skip their wrappers
                backward = plain(backward) or _first_order(backward)
            if needs is None:  # the course's raw door: its own call
                grads = backward(g, *ins)
            else:  # under create_graph ``out`` is None: recomputed, so recorded as a function of the inputs
                grads = backward(g, *ins, None if create_graph else op.output, needs)
            if type(grads) is not tuple or len(grads) != len(ins):
                grads = self._as_tuple(op, grads)
            for x, gx, upd in zip(ins, grads, op.gradients_to_update):
                if gx is None:
                    continue
                if upd is not None:
                    self._into_bound(op, x, gx, upd)
                    continue
                k = id(x)
                cur = get(k, _NO_SLOT)
                if cur is _NO_SLOT:  # numbers, constants, ints: no slot, no gradient
                    continue
                if type(gx) is not type(x) or gx.shape != x.shape or gx.dtype is not x.dtype:
                    gx = self._fix_grad(op, x, gx, x.shape, slot_dtype(x))
                if anomaly:
                    self._check_finite(op, gx, "gradient")
                if cur is None:
                    mem[k] = borrowed[k] = gx
                elif create_graph:
                    mem[k] = _add(cur, gx)
                elif k in owned:
                    cur += gx
                    mem[k] = cur  # the same array; but a 0-d sum is a NumPy scalar, which += rebinds
                else:
                    mem[k] = cur + gx
                    owned.add(k)

    def _into_bound(self, op: Operation, x: Any, gx: Any, upd: Any) -> None:
        """Add a parameter's gradient into its bound array (the course's ``dW``), in place."""
        if _VERSIONS and _VERSIONS.get(id(x), 0) != self._versions.get(id(x), (x, 0))[1]:
            raise self._modified_parameter(op, x)
        if getattr(gx, "shape", None) != upd.shape or getattr(gx, "dtype", upd.dtype).kind != upd.dtype.kind:
            gx = self._fix_grad(op, x, gx, upd.shape, upd.dtype)
        if self.detect_anomaly:
            self._check_finite(op, gx, "gradient")
        upd += gx

    @staticmethod
    def _as_tuple(op: Operation, grads: Any) -> tuple:
        """Check what a backward returned: one gradient (or None) per input.

        A list is accepted, and a bare array for a one-input op (as the course's later
        handouts return). This is the one check of backward results, for every op.
        """
        n = len(op.inputs)
        if isinstance(grads, list):
            grads = tuple(grads)
        elif n == 1 and (grads is None or is_array(grads) or isinstance(grads, (int, float, np.generic))):
            grads = (grads,)
        elif not isinstance(grads, tuple):
            raise GradientError(
                f"{op.name}: backward returned {type(grads).__name__}; it must return a tuple with one gradient "
                f"(or None) per input, {n} here (a one-input op may return the array itself)"
            )
        if len(grads) != n:
            raise GradientError(
                f"{op.name}: backward returned {len(grads)} gradients for {n} inputs "
                f"({', '.join(shape_str(x) for x in op.inputs)}); return one per input, None for constants"
            )
        return grads

    def _fix_grad(self, op: Operation, x: Any, gx: Any, shape: tuple, dtype: Any) -> Any:
        """Slow path: make a scalar an array, sum away broadcast axes, cast the dtype; or explain a wrong shape.

        Broadcasting is undone here, once for every op (as PyTorch's engine does): a
        gradient with the shape the input was broadcast to is summed back to the input's
        shape, so backward functions return the gradient of the broadcast operand.
        """
        if not hasattr(gx, "shape") or isinstance(gx, np.generic):
            gx = namespace(x).asarray(gx if dtype.kind == "c" else np.real(gx), dtype=dtype)  # real input: the real part
        shape = tuple(shape)
        if gx.shape != shape:
            if not _broadcasts_to(shape, gx.shape):
                i = next((j for j, y in enumerate(op.inputs) if y is x), "?")
                raise GradientError(
                    f"{op.name}: backward returned a gradient of shape {tuple(gx.shape)} for input {i} "
                    f"of shape {shape}; a backward must return its input's shape (or the shape the input "
                    "was broadcast to, which is summed back)"
                )
            gx = _unbroadcast_to(gx, shape)
        if gx.dtype.kind == "c" and dtype.kind != "c":  # a real input met a complex op: the real part
            gx = GRAPH_OPS["real"](gx)  # recorded under create_graph
        if gx.dtype != dtype:
            gx = gx.astype(dtype) if STATE.engine is None else _astype(gx, dtype)  # recorded under create_graph
        return gx

    def _check_finite(self, op: Operation, value: Any, what: str) -> None:
        if is_array(value) and value.dtype.kind in "fc" and not bool(namespace(value).isfinite(value).all()):
            idx = next((i for i, o in enumerate(self.operation_list) if o is op), None)
            where = f"op #{idx} " if idx is not None else ""
            raise AnomalyError(
                f"anomaly: {where}{op.name} produced a non-finite {what} of shape "
                f"{tuple(value.shape)} (inputs: {', '.join(shape_str(x) for x in op.inputs)}); "
                "check this op's inputs (log of 0? division by 0? overflow in exp?)"
            )

    # -- housekeeping ----------------------------------------------------------------------------
    def zero_grad(self) -> None:
        """Empty the memory buffer and the tape (parameter gradients are the optimiser's job)."""
        self.memory_buffer.clear()
        self.operation_list = []
        self._consumed = False
        self._retained = False
        self._versions = {}
        self._snapshots = {}
        self._growth = (0, 0)

    def summary(self) -> str:
        """The operation list as a table: what a student looks at to see autodiff happen."""
        from .tape_view import format_tape

        return format_tape(self)

    def to_dot(self) -> str:
        """The tape as a Graphviz DOT graph (arrays as boxes, ops as ellipses)."""
        from .tape_view import tape_to_dot

        return tape_to_dot(self)

    def _repr_html_(self) -> str:  # a Jupyter notebook shows the tape and the buffer as tables
        from .tape_html import tape_table_html

        return tape_table_html(self)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return f"<Autograd: {len(self.operation_list)} ops, {len(self.memory_buffer.memory)} slots>"


def initial_gradient(divergence: Any, out: Any) -> Any:
    """The gradient a backward pass starts from: ``divergence`` broadcast to the output's shape and dtype."""
    xp = namespace(out)
    shape = getattr(out, "shape", ())
    dtype = getattr(out, "dtype", None)
    if dtype is None or dtype.kind not in "fc":
        dtype = np.dtype(np.float64)
    dk = getattr(divergence, "dtype", None)  # a complex output needs a complex cotangent, a real one a real one
    if (dtype.kind == "c") != (dk.kind == "c" if dk is not None else np.iscomplexobj(divergence)):
        raise _complex_seed_error(divergence, out)
    d = xp.asarray(divergence, dtype=dtype)
    if d.shape == shape:
        return d
    try:
        return xp.broadcast_to(d, shape).copy()
    except ValueError:
        raise TapeError(
            f"backward: divergence of shape {d.shape} cannot be broadcast to the last output's "
            f"shape {shape}; pass a scalar or an array of shape {shape}"
        ) from None


def _complex_seed_error(divergence: Any, out: Any) -> GradientError:
    if getattr(out, "dtype", _REAL).kind == "c":
        return GradientError(
            f"backward: the output {shape_str(out)} is complex, and a gradient can be implicitly created only for "
            "real outputs. Reduce it to a real loss first (new_grad.real, new_grad.abs, ...), or pass a complex "
            "divergence of its shape (the cotangent: each input's gradient is then the vector-Jacobian product)"
        )
    return GradientError(
        f"backward: divergence {shape_str(divergence)} is complex but the output {shape_str(out)} is real; "
        "pass a real divergence"
    )


# the ops whose backward follows the complex convention (∂L/∂x − i·∂L/∂y); filled by the ops layer
COMPLEX_OPS: set[str] = set()

# create_graph needs recorded versions of + and astype. The ops layer fills this table when it is
# imported (new_grad.ops), so the engine never imports anything above it.
GRAPH_OPS: dict[str, Callable[..., Any]] = {}


#: backward function -> the same function on plain arrays (see new_grad.ops._core.first_order)
FIRST_ORDER: dict[Callable[..., Any], Callable[..., Any]] = {}


def _first_order(backward: Callable[..., Any]) -> Callable[..., Any]:
    if getattr(backward, "__closure__", None) is not None:  # made per call (joins, einsum): used as it is
        return backward
    fast = FIRST_ORDER[backward] = GRAPH_OPS["first_order"](backward)
    return fast


def _add(a: Any, b: Any) -> Any:
    return GRAPH_OPS["add"](a, b)


def _unbroadcast_to(grad: Any, shape: tuple) -> Any:
    """Sum ``grad`` down to ``shape`` with the ops layer's recorded sum (so create_graph sees it)."""
    return GRAPH_OPS["unbroadcast_to"](grad, shape)


def _broadcasts_to(shape: tuple, target: tuple) -> bool:
    """Does an array of ``shape`` broadcast to ``target`` (so a gradient of ``target`` sums back to it)?"""
    if len(shape) > len(target):
        return False
    return all(n == m or n == 1 for n, m in zip(shape[::-1], target[::-1]))


def _astype(a: Any, dtype: Any) -> Any:
    return GRAPH_OPS["astype"](a, dtype)
