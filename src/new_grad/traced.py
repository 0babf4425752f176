"""Traced values: what the function transforms hand to your function instead of the raw arrays.

Inside ``new_grad.grad`` (and ``value_and_grad``, ``vjp``, ``jvp``, ``jacobian``,
``hessian``, ``hvp``) your function receives :class:`Traced` values. A traced value
wraps the plain array that sits on the tape and speaks NumPy: operators
(``x * y``, ``x ** 2``, ``x @ w``, ``-x``), attributes and methods (``x.T``,
``x.shape``, ``x[1:]``, ``x.reshape(...)``, ``x.sum()``) and NumPy functions
(``np.sum(x)``, ``np.tanh(x)``, ``np.dot(x, w)``, through NumPy's
``__array_ufunc__``/``__array_function__`` protocols) all dispatch to new_grad's
registered ops, so plain NumPy code is recorded and differentiated, as in HIPS
autograd. The tape itself still holds plain arrays; code outside the transforms
never sees a traced value.

What cannot be differentiated raises instead of silently returning zeros: a NumPy
function new_grad has no gradient for (the error names it and the op to use),
converting to a plain array or a Python float (``np.asarray(x)``, ``float(x)``),
in-place assignment (``x[0] = 1``), and a traced value used after its transform
returned. ``x.detach()`` is the explicit way to take a value as a constant.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from . import ops
from .autograd_engine import STATE, constant
from .errors import NewGradError, UnsupportedError, shape_str
from .ops import _core
from .ops._core import REGISTRY

__all__ = ["Traced", "TracingError"]


class TracingError(NewGradError, TypeError):
    """A traced value was used in a way that would lose its gradient (converted, assigned, or escaped)."""


# -- scopes: one per running transform ------------------------------------------------------------


class _Scope:
    """One transform's run. Its traced values are valid only while it is live."""

    __slots__ = ("live", "who")

    def __init__(self, who: str) -> None:
        self.live = True
        self.who = who


class _Stack(threading.local):
    def __init__(self) -> None:
        self.scopes: list[_Scope] = []


_STACK = _Stack()
_COUNT_LOCK = threading.Lock()


def current_scope() -> _Scope | None:
    """The innermost transform running in this thread, or ``None`` (also inside :class:`untraced`)."""
    s = _STACK.scopes
    return s[-1] if s else None


class untraced:
    """``with untraced():`` library code (a backward pass) that may call transforms gets plain results."""

    __slots__ = ()

    def __enter__(self) -> None:
        _STACK.scopes.append(None)  # type: ignore[arg-type]

    def __exit__(self, *exc: object) -> None:
        _STACK.scopes.pop()


class scope:
    """``with scope("grad") as s:`` — a transform runs; ops look for traced values meanwhile."""

    __slots__ = ("s",)

    def __init__(self, who: str) -> None:
        self.s = _Scope(who)

    def __enter__(self) -> _Scope:
        _STACK.scopes.append(self.s)
        with _COUNT_LOCK:
            _core.set_tracing(+1)
        return self.s

    def __exit__(self, *exc: object) -> None:
        self.s.live = False
        _STACK.scopes.pop()
        with _COUNT_LOCK:
            _core.set_tracing(-1)


# -- wrapping and unwrapping ---------------------------------------------------------------------------


def _escaped(t: Traced) -> TracingError:
    return TracingError(
        f"a traced value {shape_str(t._value)} from {t._scope.who} was used after that transform returned "
        "(kept in a global, a module attribute or a closure). Return what you need from the function "
        "(has_aux=True for extra values), or keep x.detach() as a constant."
    )


def unwrap(x: Any) -> Any:
    """The plain array behind a traced value (also inside lists/tuples); anything else unchanged."""
    t = type(x)
    if t is Traced:
        if not x._scope.live:
            raise _escaped(x)
        return x._value
    if t is list or t is tuple:
        return t(unwrap(v) for v in x)
    return x


def unwrap_tree(x: Any) -> Any:
    """Every traced value in nested lists/tuples/dicts replaced by its plain array."""
    if type(x) is Traced:
        return unwrap(x)
    if isinstance(x, dict):
        return {k: unwrap_tree(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        items = [unwrap_tree(v) for v in x]
        if isinstance(x, list):
            return items
        return type(x)(*items) if hasattr(x, "_fields") else type(x)(items)
    return x


_NONE: frozenset[int] = frozenset()


def wrap(x: Any, s: _Scope | None, deps: frozenset[int] = _NONE) -> Any:
    """Float arrays in ``x`` (an array, or lists/tuples/namedtuples/dicts of them) as traced values of ``s``.

    ``deps`` are the transform inputs (ids of their leaf arrays) the values were computed from. Under
    ``no_grad()`` nothing was recorded: the values are constants, as ``x.detach()`` gives.
    """
    if s is None:
        return x
    if STATE.no_grad_depth:
        deps = _NONE
    if isinstance(x, np.generic) and x.dtype.kind in "fc":
        return Traced(np.asarray(x), s, deps)  # a 0-d result computed from traced values (never on the tape)
    if type(x) is np.ndarray or (hasattr(x, "__array_namespace__") and hasattr(x, "dtype")):
        return Traced(x, s, deps) if x.dtype.kind in "fc" else x
    if isinstance(x, dict):
        return {k: wrap(v, s, deps) for k, v in x.items()}
    if isinstance(x, (list, tuple)) and type(x) is not Traced:
        items = [wrap(v, s, deps) for v in x]
        if isinstance(x, list):
            return items
        return type(x)(*items) if hasattr(x, "_fields") else type(x)(items)
    return x


def _has_traced(args: Any, kwargs: dict | None = None) -> bool:
    for a in args:
        t = type(a)
        if t is Traced or ((t is list or t is tuple) and _has_traced(a)):
            return True
    return _has_traced(tuple(kwargs.values())) if kwargs else False


def deps_of(*xs: Any) -> frozenset[int]:
    """The transform inputs the traced values among ``xs`` (also inside lists/tuples) were computed from."""
    out: frozenset[int] = _NONE
    for a in xs:
        t = type(a)
        if t is Traced:
            out = out | a._deps
        elif t is list or t is tuple:
            out = out | deps_of(*a)
    return out


def call(fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    """``fn`` on the plain arrays behind any traced arguments; float results traced again."""
    deps = deps_of(*args, *kwargs.values())
    out = fn(*[unwrap(a) for a in args], **{k: unwrap(v) for k, v in kwargs.items()})
    return wrap(out, current_scope(), deps)


def _hook(fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    """Installed in the op machinery: an op called with traced arguments runs on their plain arrays."""
    if not _has_traced(args, kwargs):
        return _core.UNTRACED
    return call(fn, args, kwargs)


_core.install_trace_hook(_hook)


# -- what NumPy functions map to ---------------------------------------------------------------------

_ALIASES = {
    "true_divide": "divide",
    "absolute": "abs",
    "amax": "max",
    "amin": "min",
    "around": "round",
    "round_": "round",
    "rint": "round",
    "concat": "concatenate",
    "permute_dims": "transpose",
    "copy": "identity",
    "fabs": "abs",
    "mod": "remainder",
    "conjugate": "conj",
    "acos": "arccos",
    "asin": "arcsin",
    "atan": "arctan",
    "atan2": "arctan2",
    "acosh": "arccosh",
    "asinh": "arcsinh",
    "atanh": "arctanh",
    "pow": "power",
}

# Results that carry no gradient (booleans, indices, shapes, fresh constants): computed on the plain values.
_NO_GRADIENT = frozenset(
    {
        "shape", "ndim", "size", "zeros_like", "ones_like", "empty_like", "allclose", "isclose",
        "array_equal", "array_equiv", "argmax", "argmin", "argsort", "argwhere", "nonzero", "flatnonzero",
        "count_nonzero", "result_type", "iscomplexobj", "isrealobj", "searchsorted", "digitize", "any", "all",
        "may_share_memory", "shares_memory", "array_repr", "array_str", "array2string", "can_cast",
        "min_scalar_type", "isfinite", "isnan", "isinf", "signbit", "isneginf", "isposinf", "iscomplex", "isreal",
        "trunc", "fix", "floor_divide", "equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
        "logical_and", "logical_or", "logical_xor", "logical_not", "bitwise_and", "bitwise_or", "bitwise_xor",
        "invert", "sign", "floor", "ceil",
    }
)

# Where new_grad has no op of that name: what to write instead.
_INSTEAD = {
    "unique": "new_grad.sort and a gather of the first of each run (new_grad.take)",
}


def _unsupported(what: str, name: str) -> UnsupportedError:
    instead = _INSTEAD.get(name)
    hint = f"Write it as {instead}" if instead else "Write it with new_grad's ops (new_grad.<op>, see docs/ops.md)"
    return UnsupportedError(
        f"{what} was called on a traced value, and new_grad has no gradient for it. {hint}, or give it one "
        "with new_grad.custom_op; x.detach() takes the value as a constant if no gradient should flow."
    )


def _op_for(name: str, linalg: bool = False) -> Callable[..., Any] | None:
    key = _ALIASES.get(name, name)
    info = REGISTRY.get(("linalg." if linalg else "") + key)
    if info is None or not info.differentiable or getattr(info, "user", False):
        return None
    # The op registered under a NumPy name may be one part of that function's result (modf's fractional
    # part, slogdet's log-determinant): the public function of that name returns all of it, as NumPy does.
    public = getattr(ops.linalg if linalg else ops, key, None)
    return public if callable(public) else info.public


def _call_op(what: str, op: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    if kwargs.get("out") is not None:
        raise TracingError(
            f"{what}(..., out=...) on a traced value: writing into an existing array is not recorded. "
            "Assign the result instead (y = f(x))."
        )
    kwargs = {k: v for k, v in kwargs.items() if not (k == "out" and v is None)}
    try:
        return call(op, args, kwargs)
    except TypeError as err:
        if isinstance(err, NewGradError):
            raise
        raise UnsupportedError(
            f"{what} on a traced value: new_grad.{getattr(op, '__name__', what)} does not take these arguments "
            f"({err}). Its signature follows NumPy's main arguments; see docs/ops.md."
        ) from err


def _plain(fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    """A result with no gradient, computed on the plain values (returned plain)."""
    return fn(*[unwrap_tree(a) for a in args], **{k: unwrap_tree(v) for k, v in kwargs.items()})


# -- the traced value ---------------------------------------------------------------------------------


def _c_order(method: str, order: str) -> None:
    if order != "C":
        raise UnsupportedError(
            f"x.{method}(order={order!r}) on a traced value: only order='C' is supported; Fortran order is "
            "x.T.ravel() for x.ravel('F'), and x.T.reshape(shape[::-1]).T for x.reshape(shape, order='F')"
        )


def _binary(name: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    def fwd(self: Traced, other: Any) -> Any:
        return call(getattr(ops, name), (self, other), {})

    def rev(self: Traced, other: Any) -> Any:
        return call(getattr(ops, name), (other, self), {})

    return fwd, rev


def _compare(name: str) -> Callable[..., Any]:
    def cmp(self: Traced, other: Any) -> Any:
        return _plain(getattr(np, name), (self, other), {})

    return cmp


class Traced:
    """A value inside a transform: the plain array on the tape, dispatching NumPy to new_grad's ops."""

    __slots__ = ("_value", "_scope", "_deps")
    __array_priority__ = 100.0

    def __init__(self, value: Any, scope: _Scope, deps: frozenset[int] = _NONE) -> None:
        self._value = value
        self._scope = scope
        self._deps = deps  # ids of the transform inputs (leaf arrays) this value was computed from

    # -- NumPy's protocols -------------------------------------------------------------------------
    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        name = ufunc.__name__
        what = f"numpy.{name}" + ("" if method == "__call__" else f".{method}")
        if method == "reduce" and name in ("add", "multiply", "maximum", "minimum"):
            op = {"add": ops.sum, "multiply": ops.prod, "maximum": ops.max, "minimum": ops.min}[name]
            return _call_op(what, op, (inputs[0],), {"axis": kwargs.get("axis", 0), "keepdims": kwargs.get("keepdims", False)})
        if method == "accumulate" and name in ("add", "multiply"):
            op = ops.cumsum if name == "add" else ops.cumprod
            return _call_op(what, op, (inputs[0],), {"axis": kwargs.get("axis", 0)})
        if method != "__call__":
            raise _unsupported(what, name)
        if name in _NO_GRADIENT:
            if kwargs.get("out") is not None:
                raise TracingError(f"{what}(..., out=...) on a traced value: assign the result instead")
            return _plain(ufunc, inputs, kwargs)
        op = _op_for(name)
        if op is None:
            raise _unsupported(what, name)
        if set(kwargs) - {"out"}:
            raise UnsupportedError(
                f"{what} on a traced value with {sorted(set(kwargs) - {'out'})}: new_grad.{op.__name__} takes "
                "the operands only; convert dtypes with new_grad.astype, select with new_grad.where"
            )
        return _call_op(what, op, inputs, kwargs)

    def __array_function__(self, func: Any, types: Any, args: tuple, kwargs: dict) -> Any:
        name = func.__name__
        module = getattr(func, "__module__", "numpy") or "numpy"
        linalg = module.endswith("linalg")
        what = f"{module}.{name}"
        if not linalg and (name in _NO_GRADIENT or (name == "where" and len(args) + len(kwargs) == 1)):
            return _plain(func, args, kwargs)
        op = _op_for(name, linalg)
        if op is None or module.split(".")[1:2] not in ([], ["linalg"]):
            raise _unsupported(what, name)
        return _call_op(what, op, args, kwargs)

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        raise TracingError(
            f"a traced value {shape_str(self._value)} was converted to a plain NumPy array (numpy.asarray, "
            "numpy.array, or a list of traced values given to NumPy), which would drop its gradient. Keep using "
            "it directly (NumPy functions on it are recorded); combine several with new_grad.stack or "
            "new_grad.concatenate; or call x.detach() to take its value as a constant."
        )

    # -- what an ndarray has ------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self._value.shape

    @property
    def ndim(self) -> int:
        return self._value.ndim

    @property
    def size(self) -> int:
        return self._value.size

    @property
    def dtype(self) -> Any:
        return self._value.dtype

    @property
    def T(self) -> Any:  # noqa: N802 - NumPy's name
        return call(ops.transpose, (self,), {})

    @property
    def real(self) -> Any:
        return call(ops.real, (self,), {})

    @property
    def imag(self) -> Any:
        return call(ops.imag, (self,), {})

    def conj(self) -> Any:
        return call(ops.conj, (self,), {})

    conjugate = conj

    def __len__(self) -> int:
        return len(self._value)

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self._value)):
            yield self[i]

    def __getitem__(self, key: Any) -> Any:
        if type(key) is Traced or (type(key) is tuple and any(type(k) is Traced for k in key)):
            raise TracingError("indexing with a traced (float) value: indices must be integers, slices or masks")
        return call(ops.getitem, (self, key), {})

    def __setitem__(self, key: Any, value: Any) -> None:
        raise TracingError(
            f"x[{key!r}] = ... on a traced value {shape_str(self._value)}: assignment in place is not recorded. "
            "Build a new array instead: new_grad.index_update(x, key, value) (or new_grad.where with a mask)."
        )

    def reshape(self, *shape: Any, order: str = "C") -> Any:
        _c_order("reshape", order)
        return call(ops.reshape, (self, shape[0] if len(shape) == 1 else shape), {})

    def transpose(self, *axes: Any) -> Any:
        return call(ops.transpose, (self, (axes[0] if len(axes) == 1 else axes) or None), {})

    def swapaxes(self, axis1: int, axis2: int) -> Any:
        return call(ops.swapaxes, (self, axis1, axis2), {})

    def squeeze(self, axis: Any = None) -> Any:
        return call(ops.squeeze, (self, axis), {})

    def ravel(self, order: str = "C") -> Any:
        _c_order("ravel", order)
        return call(ops.ravel, (self,), {})

    def flatten(self, order: str = "C") -> Any:
        _c_order("flatten", order)
        return call(ops.reshape, (self, -1), {})

    def astype(self, dtype: Any, copy: bool = True) -> Any:
        if np.dtype(dtype).kind not in "fc":
            return _plain(np.asarray, (self,), {}).astype(dtype)  # an integer copy carries no gradient
        return call(ops.astype, (self, dtype), {})

    def copy(self) -> Any:
        return call(ops.identity, (self,), {})

    def sum(self, axis: Any = None, keepdims: bool = False) -> Any:
        return call(ops.sum, (self, axis, keepdims), {})

    def mean(self, axis: Any = None, keepdims: bool = False) -> Any:
        return call(ops.mean, (self, axis, keepdims), {})

    def max(self, axis: Any = None, keepdims: bool = False) -> Any:
        return call(ops.max, (self, axis, keepdims), {})

    def min(self, axis: Any = None, keepdims: bool = False) -> Any:
        return call(ops.min, (self, axis, keepdims), {})

    def prod(self, axis: Any = None, keepdims: bool = False) -> Any:
        return call(ops.prod, (self, axis, keepdims), {})

    def var(self, axis: Any = None, ddof: float = 0, keepdims: bool = False) -> Any:
        return call(ops.var, (self, axis), {"ddof": ddof, "keepdims": keepdims})

    def std(self, axis: Any = None, ddof: float = 0, keepdims: bool = False) -> Any:
        return call(ops.std, (self, axis), {"ddof": ddof, "keepdims": keepdims})

    def cumsum(self, axis: Any = None) -> Any:
        return call(ops.cumsum, (self, axis), {})

    def cumprod(self, axis: Any = None) -> Any:
        return call(ops.cumprod, (self, axis), {})

    def clip(self, min: Any = None, max: Any = None) -> Any:  # noqa: A002 - NumPy's names
        return call(ops.clip, (self, min, max), {})

    def dot(self, b: Any) -> Any:
        return call(ops.dot, (self, b), {})

    def round(self, decimals: int = 0) -> Any:
        return call(ops.round, (self, decimals), {})

    def repeat(self, repeats: Any, axis: Any = None) -> Any:
        return call(ops.repeat, (self, repeats, axis), {})

    def take(self, indices: Any, axis: Any = None) -> Any:
        return call(ops.take, (self, indices, axis), {})

    def diagonal(self, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
        return call(ops.diagonal, (self, offset, axis1, axis2), {})

    def trace(self, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
        return call(ops.trace, (self, offset, axis1, axis2), {})

    def argmax(self, axis: Any = None) -> Any:
        return np.argmax(unwrap(self), axis)

    def argmin(self, axis: Any = None) -> Any:
        return np.argmin(unwrap(self), axis)

    def argsort(self, axis: int = -1) -> Any:
        return np.argsort(unwrap(self), axis)

    def any(self, axis: Any = None) -> Any:
        return unwrap(self).any(axis)

    def all(self, axis: Any = None) -> Any:
        return unwrap(self).all(axis)

    def nonzero(self) -> Any:
        return unwrap(self).nonzero()

    def detach(self) -> Any:
        """The value as a plain constant array (a copy): no gradient flows through it."""
        return constant(self._value.copy())

    def item(self, *args: Any) -> Any:
        raise TracingError(
            "x.item() on a traced value: a Python number drops the gradient. Keep the value as it is (a 0-d "
            "array works wherever a number does), or use x.detach().item() for a constant."
        )

    def tolist(self) -> Any:
        raise TracingError("x.tolist() on a traced value drops the gradient; use x.detach().tolist() for constants")

    def __float__(self) -> float:
        raise TracingError(
            "float(x) on a traced value drops the gradient (math.exp, float(), f-strings with numbers do this). "
            "Use new_grad's ops on x itself, or float(x.detach()) for a constant."
        )

    __complex__ = __float__

    def __int__(self) -> int:
        return int(self._value)  # integers carry no gradient

    def __bool__(self) -> bool:
        return bool(self._value)  # control flow on a value is fine: the branch taken is recorded

    def __format__(self, spec: str) -> str:
        return format(self._value, spec) if spec else str(self)

    def __repr__(self) -> str:
        return f"Traced({self._value!r})"

    def __str__(self) -> str:
        return str(self._value)

    __hash__ = None  # type: ignore[assignment]

    # -- operators ---------------------------------------------------------------------------------
    __add__, __radd__ = _binary("add")
    __sub__, __rsub__ = _binary("subtract")
    __mul__, __rmul__ = _binary("multiply")
    __truediv__, __rtruediv__ = _binary("divide")
    __pow__, __rpow__ = _binary("power")
    __matmul__, __rmatmul__ = _binary("matmul")
    __eq__ = _compare("equal")  # type: ignore[assignment]
    __ne__ = _compare("not_equal")  # type: ignore[assignment]
    __lt__ = _compare("less")
    __le__ = _compare("less_equal")
    __gt__ = _compare("greater")
    __ge__ = _compare("greater_equal")

    def __floordiv__(self, other: Any) -> Any:
        return _plain(np.floor_divide, (self, other), {})  # piecewise constant: no gradient

    def __rfloordiv__(self, other: Any) -> Any:
        return _plain(np.floor_divide, (other, self), {})

    def __mod__(self, other: Any) -> Any:
        raise _unsupported("x % y", "remainder")

    __rmod__ = __mod__

    def __neg__(self) -> Any:
        return call(ops.negative, (self,), {})

    def __pos__(self) -> Any:
        return call(ops.positive, (self,), {})

    def __abs__(self) -> Any:
        return call(ops.abs, (self,), {})

    def __getattr__(self, name: str) -> Any:
        if hasattr(np.ndarray, name) and not name.startswith("__"):
            raise UnsupportedError(
                f"x.{name} on a traced value is not supported (no gradient rule for it). Write it with new_grad's "
                "ops on x, or use x.detach() for a constant."
            )
        raise AttributeError(f"'Traced' object has no attribute {name!r}")
