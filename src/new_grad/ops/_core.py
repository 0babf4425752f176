"""The op machinery: turn a forward and a backward into a recorded op.

An op is two functions side by side in its family's file::

    def exp_backward(grad_output, x, out=None, needs=EVERY):
        return multiply(grad_output, exp(x) if out is None else out)

    @primitive(exp_backward, formula="∂/∂x eˣ = eˣ")
    def exp(x):
        return namespace(x).exp(x)

``primitive`` wraps the forward: it computes the value, then (if an engine is
active) records one tape entry whose backward is ``exp_backward``. Every backward
is called the same way, ``backward(grad_output, *inputs, out, needs)``: ``out`` is
the forward's output (``None`` when the backward pass is itself recorded, so that it
is recomputed from the inputs), ``needs[i]`` says whether input *i* wants a gradient
(skip the work when not). Called by hand the course's way, ``backward(grad_output,
*inputs)``, the defaults mean "recompute" and "every input". Backward functions are
written with new_grad's own ops, so the backward pass can be recorded
(``create_graph=True``) for higher derivatives. They return the gradient of each
input as the op used it: where an input was broadcast, the engine sums it back.

Everything shared by all ops lives here, once: argument binding, error
wrapping, the registry and :func:`unbroadcast`.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..autograd_engine import STATE, is_constant, no_grad
from ..backends import is_array, mixed_devices
from ..errors import IndexingError, NewGradError, ShapeError, complex_error, shape_str

_REQUIRED = object()


class _Every:
    """``needs`` when a backward is called by hand (the course's way): every input wants its gradient."""

    __slots__ = ()

    def __getitem__(self, i: int) -> bool:
        return True

    def __repr__(self) -> str:
        return "EVERY"


EVERY: Any = _Every()


@dataclass
class OpInfo:
    """What the registry knows of an op: enough to test it and to document it."""

    name: str
    forward: Callable[..., Any]
    backward: Callable[..., Any] | None
    public: Callable[..., Any]
    family: str
    formula: str = ""
    differentiable: bool = True
    extras: dict[str, Any] = field(default_factory=dict)
    user: bool = False  # defined with new_grad.custom_op / defvjp, not one of the library's own


#: every op, the library's own and the user's (``OpInfo.user``), by name
REGISTRY: dict[str, OpInfo] = {}


def builtin_ops() -> dict[str, OpInfo]:
    """The library's own ops (what the tests walk and docs/ops.md lists)."""
    return {k: v for k, v in REGISTRY.items() if not v.user}


def _family(module: str) -> str:
    return module.rsplit(".", 1)[-1]


def _wrap_error(name: str, args: tuple, kwargs: dict, err: Exception) -> Exception:
    """NumPy's message, kept whole, prefixed with the op and the operand shapes."""
    shapes = ", ".join(shape_str(a) for a in args if is_array(a) or isinstance(a, (int, float)))
    extra = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    what = f"{name}({shapes}{', ' if shapes and extra else ''}{extra})"
    cls = IndexingError if isinstance(err, IndexError) and not isinstance(err, ValueError) else ShapeError
    return cls(f"{what}: {err}")


def _course_call(backward: Callable[..., Any]) -> Callable[..., Any]:
    """A user's backward takes the course's arguments, ``(grad_output, *inputs)``; it may also declare
    ``out`` and ``needs`` (keyword-only) to receive what the library's own backward functions get."""
    params = inspect.signature(backward).parameters
    wanted = [k for k in ("out", "needs") if k in params]

    def call(g: Any, *args: Any) -> Any:
        *inputs, out, needs = args
        given = {"out": out, "needs": needs}
        return backward(g, *inputs, **{k: given[k] for k in wanted})

    functools.update_wrapper(call, backward)
    return call


def _user_forward(opname: str, forward: Callable[..., Any]) -> Callable[..., Any]:
    """A user's forward runs without recording (its inner new_grad ops never reach the tape) and must
    return one array."""

    def run(*args: Any, **kwargs: Any) -> Any:
        with no_grad():
            out = forward(*args, **kwargs)
        if isinstance(out, np.generic):
            return np.asarray(out)  # NumPy scalars become 0-d arrays
        if not is_array(out) and STATE.engine is not None:
            raise NewGradError(f"custom op {opname}: the forward returned {type(out).__name__}; it must return one array")
        return out

    return run


# -- traced values (new_grad.traced): while a transform runs, ops unwrap them -----------------------

UNTRACED = object()  # the hook's answer when no argument is traced
_tracing = 0  # transforms running now (any thread): while nonzero, ops ask the hook
_trace_hook: Callable[[Callable[..., Any], tuple, dict], Any] | None = None


def set_tracing(delta: int) -> None:
    global _tracing
    _tracing += delta


def install_trace_hook(hook: Callable[[Callable[..., Any], tuple, dict], Any]) -> None:
    """``hook(op, args, kwargs)`` runs ``op`` on the arrays behind traced arguments, or returns UNTRACED."""
    global _trace_hook
    _trace_hook = hook


def traceable(fn: Callable[..., Any]) -> Callable[..., Any]:
    """For ops not built with :func:`primitive` (variadic, multi-output): accept traced arguments too."""

    @functools.wraps(fn)
    def public(*args: Any, **kwargs: Any) -> Any:
        if _tracing and _trace_hook is not None:
            res = _trace_hook(public, args, kwargs)
            if res is not UNTRACED:
                return res
        return fn(*args, **kwargs)

    public._traceable = True  # type: ignore[attr-defined]
    return public


def primitive(
    backward: Callable[..., Any],
    *,
    name: str | None = None,
    formula: str = "",
    user: bool = False,
    replay: tuple[str | None, ...] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: make ``forward`` a recorded op whose gradient rule is ``backward``.

    The public function has the forward's signature. When recording, all its
    parameters are passed positionally (defaults filled in) as the op's inputs, so
    ``backward(grad_output, *inputs)`` sees exactly what the forward saw and returns
    one gradient per parameter (``None`` for axes, flags, numbers, constants).
    The engine checks what it returns, for every op alike. ``user=True`` is what
    :func:`new_grad.custom_op` uses: the forward then runs without recording.

    ``replay`` spells the backward as plain NumPy expressions, one per input, that
    :func:`new_grad.compile` inlines when nothing is broadcast: ``g`` is the output's
    gradient, ``o`` the output, ``i0``, ``i1``, ... the inputs. They must be exactly the
    NumPy calls the backward makes (tests/test_replay.py checks each bitwise).
    """

    def deco(forward: Callable[..., Any]) -> Callable[..., Any]:
        opname = name or getattr(forward, "__name__", "custom_op")
        params = list(inspect.signature(forward).parameters.values())
        if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
            raise TypeError(
                f"op {opname}: the forward must have a fixed parameter list (no *args/**kwargs); the backward "
                "gets one argument per parameter (the library's variadic ops use record() directly)"
            )
        defaults = tuple(_REQUIRED if p.default is p.empty else p.default for p in params)
        index = {p.name: i for i, p in enumerate(params)}
        nparams = len(params)
        backward_ = _course_call(backward) if user else backward
        run = _user_forward(opname, forward) if user else forward

        def bind(args: tuple, kwargs: dict) -> tuple:
            full = list(args) + list(defaults[len(args) :])
            for k, v in kwargs.items():
                full[index[k]] = v
            return tuple(full)

        @functools.wraps(forward)
        def op(*args: Any, **kwargs: Any) -> Any:
            if _tracing:  # a transform is running: traced arguments run on their plain arrays
                res = _trace_hook(op, args, kwargs)  # type: ignore[misc]
                if res is not UNTRACED:
                    return res
            try:
                out = run(*args, **kwargs) if kwargs else run(*args)
            except NewGradError:
                raise
            except (ValueError, IndexError) as err:
                raise _wrap_error(opname, args, kwargs, err) from err
            except TypeError as err:  # CuPy meeting a NumPy array (or the reverse): say so
                mixed = mixed_devices(opname, args, kwargs)
                if mixed is None:
                    raise
                raise mixed from err
            eng = STATE.engine
            if eng is None:
                return out
            if kwargs or len(args) != nparams:
                args = bind(args, kwargs)
            return eng.record(opname, backward_, args, out)

        op.backward = backward  # type: ignore[attr-defined]
        if not user:  # a first-order backward pass calls the forward directly (see first_order)
            _FORWARDS[id(op)] = (op, forward)
        op.formula = formula  # type: ignore[attr-defined]
        fam = "custom" if user else _family(forward.__module__)
        info = OpInfo(opname, forward, backward, op, fam, formula, user=user)
        if replay is not None:
            info.extras["replay"] = replay
        REGISTRY[opname] = info
        return op

    return deco


# -- the first-order path: the same backward, run on plain arrays ---------------------------------------
# A backward is written once, with new_grad's ops, so that under create_graph it is itself recorded. When
# it is not (the usual, first-order backward), recording is off and each op would only add its wrapper's
# cost to the forward it calls. first_order() gives the engine the same function with every library op
# it names bound straight to that op's forward: the same NumPy calls, without the wrappers.

_FORWARDS: dict[int, tuple[Callable[..., Any], Callable[..., Any]]] = {}  # id(public op) -> (op, forward)
_PLAIN_GLOBALS: dict[int, dict[str, Any]] = {}  # id(module globals) -> a copy with ops bound to forwards


def first_order(backward: Callable[..., Any]) -> Callable[..., Any]:
    """``backward`` with the library's ops it calls bound to their forwards (no recording wrapper)."""
    code = getattr(backward, "__code__", None)
    glob = getattr(backward, "__globals__", None)
    if code is None or glob is None or not getattr(backward, "__module__", "").startswith("new_grad."):
        return backward  # a user's function runs as it is: its module's names may change between calls
    plain = _PLAIN_GLOBALS.get(id(glob))
    if plain is None or len(plain) != len(glob):
        plain = dict(glob)
        for k, v in glob.items():
            hit = _FORWARDS.get(id(v))
            if hit is not None and hit[0] is v:
                plain[k] = hit[1]
        _PLAIN_GLOBALS[id(glob)] = plain
    if not any(k in plain and plain[k] is not glob.get(k) for k in code.co_names):
        return backward  # it names no op: nothing to gain
    fast = types.FunctionType(code, plain, code.co_name, backward.__defaults__, backward.__closure__)
    fast.__kwdefaults__ = backward.__kwdefaults__
    return fast


def nondifferentiable(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Register a function that is never recorded (comparisons, argmax, ...)."""
    REGISTRY[fn.__name__] = OpInfo(fn.__name__, fn, None, fn, _family(fn.__module__), differentiable=False)
    return fn


def record(name: str, backward: Callable[..., Any], inputs: tuple, output: Any) -> Any:
    """Record ``output`` on the active engine (for ops whose inputs are not a fixed signature).

    ``backward`` is called like every op's: ``backward(grad_output, *inputs, out, needs)``.
    """
    eng = STATE.engine
    if eng is None:
        return output
    return eng.record(name, backward, inputs, output)


def reject_complex_input(name: str, *xs: Any) -> None:
    """For ops whose output is real even for complex input (abs, real, norm, ...): refuse complex input when
    it would be recorded (an engine is active and the input is not a constant)."""
    if STATE.engine is None:
        return
    for x in xs:
        if type(x) is np.ndarray and x.dtype.kind == "c" and not is_constant(x):
            raise complex_error(name, x)


def register(name: str, backward: Callable[..., Any] | None, public: Callable[..., Any], formula: str = "") -> None:
    """Put an op built with :func:`record` into the registry (so tests and docs see it)."""
    REGISTRY[name] = OpInfo(name, public, backward, public, _family(public.__module__), formula)


# -- broadcasting, undone once for every op --------------------------------------------------------


_NOT_ARRAYS = frozenset({int, float, bool, complex, str, type(None), tuple, list, slice})


def unbroadcast(grad: Any, like: Any) -> Any:
    """Reduce ``grad`` to the shape of ``like`` by summing the axes broadcasting added.

    ``like`` that is not an array (a Python number, an axis) gets ``None``: no gradient.
    """
    t = type(like)
    if t is not np.ndarray and (t in _NOT_ARRAYS or not is_array(like)):
        return None
    shape = like.shape
    if grad.shape == shape:
        return grad
    return unbroadcast_to(grad, shape)


def unbroadcast_to(grad: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``grad`` over the leading axes and the size-1 axes that broadcasting stretched."""
    from .reductions import sum as _sum
    from .shape import reshape

    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1
    )
    if axes:
        grad = _sum(grad, axis=axes)
    return reshape(grad, shape) if grad.shape != shape else grad
