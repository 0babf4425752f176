"""A CPU stand-in for a device: NumPy's arithmetic behind an array type NumPy refuses.

Code written for every backend takes its array module from its inputs
(``xp = namespace(x)``). The usual GPU bug is a ``np.`` call hard-wired where ``xp``
belongs: CuPy then raises, or the result silently lands in host memory. Without a
GPU that bug stays hidden, because NumPy accepts NumPy arrays. Arrays of this
backend (device ``standin``) behave like CuPy's:

- ``xp`` (:data:`xp`) mirrors NumPy's namespace, limited to the names CuPy's has; its
  functions take and return :class:`StandInArray`, and reductions give 0-d arrays, not
  NumPy scalars;
- a plain NumPy function refuses them (``np.exp(a)``, ``np.asarray(a)``,
  ``np.concatenate([a, b])`` raise ``TypeError``, like CuPy's implicit-conversion error);
- a plain ``numpy.ndarray`` meeting one (``a + host``, ``xp.where(host_mask, a, b)``,
  ``a[...] = host``) raises ``TypeError``: arrays of two devices;
- ``a.get()`` and :func:`to_host` copy back to a NumPy array, :func:`from_host` copies in.

Tests run the op registry, the layers, the optimisers and a training run on it.
"""

from __future__ import annotations

import operator
from types import ModuleType
from typing import Any

import numpy as np

from ._cupy_names import CUPY, CUPY_LINALG, CUPY_RANDOM

_PLAIN_OK = {"asarray", "array", "asanyarray", "ascontiguousarray"}  # the host -> device doors
# NumPy functions CuPy answers for its arrays (NumPy hands them over): they only look at shapes and dtypes
_NUMPY_FUNCTIONS_OK = {"shape", "ndim", "size", "result_type"}


def _refuse_host(value: Any) -> None:
    raise TypeError(
        f"a numpy.ndarray {value.shape} {value.dtype} meets a stand-in device array: arrays on two devices "
        "(convert with new_grad.backends.to_device(x, 'standin') or the namespace's asarray)"
    )


class StandInArray:
    """An n-d array on the stand-in device: a NumPy array inside, refused by plain NumPy outside."""

    __slots__ = ("_a", "_base", "__weakref__")
    __array_ufunc__ = None  # NumPy ufuncs refuse it; ``host + a`` falls through to ``a.__radd__``
    __hash__ = None  # type: ignore[assignment] - unhashable, like ndarray

    def __init__(self, a: np.ndarray, base: StandInArray | None = None) -> None:
        self._a = a
        self._base = base

    # -- what NumPy refuses ------------------------------------------------------------------------
    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError(
            "Implicit conversion of a stand-in device array to a NumPy array is not allowed (a numpy call "
            "hard-wired where the input's namespace belongs?); use new_grad.namespace(x) or x.get()"
        )

    def __array_function__(self, func: Any, types: Any, args: tuple, kwargs: dict) -> Any:
        if func.__name__ in _NUMPY_FUNCTIONS_OK:
            return func(*_open(args), **_open(kwargs))
        raise TypeError(
            f"numpy.{func.__name__} got a stand-in device array (a numpy call hard-wired where the input's "
            f"namespace belongs?); use new_grad.namespace(x).{func.__name__}"
        )

    # -- host copies -------------------------------------------------------------------------------
    def get(self) -> np.ndarray:
        """A NumPy copy in host memory (CuPy's ``get``)."""
        return self._a.copy()

    # -- attributes and methods, delegated ------------------------------------------------------------
    @property
    def base(self) -> StandInArray | None:
        return self._base

    @property
    def shape(self) -> tuple[int, ...]:
        return self._a.shape

    @property
    def dtype(self) -> np.dtype:
        return self._a.dtype

    @property
    def ndim(self) -> int:
        return self._a.ndim

    @property
    def size(self) -> int:
        return self._a.size

    @property
    def T(self) -> StandInArray:
        return _wrap(self._a.T, (self,))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if not callable(attr):
            return _wrap(attr, (self,))

        def method(*args: Any, **kwargs: Any) -> Any:
            if name in _SORTS and kwargs.get("kind") is None:
                kwargs["kind"] = "stable"
            return _wrap(attr(*_unwrap(args), **_unwrap(kwargs)), (self, *args, *kwargs.values()))

        method.__name__ = name
        return method

    def __len__(self) -> int:
        return len(self._a)

    def __iter__(self) -> Any:
        for i in range(len(self._a)):
            yield self[i]

    def __getitem__(self, key: Any) -> StandInArray:
        return _wrap(self._a[_unwrap(key)], (self,))

    def __setitem__(self, key: Any, value: Any) -> None:
        self._a[_unwrap(key)] = _unwrap(value)

    def __float__(self) -> float:
        return float(self._a)

    def __int__(self) -> int:
        return int(self._a)

    def __complex__(self) -> complex:
        return complex(self._a)

    def __bool__(self) -> bool:
        return bool(self._a)

    def __repr__(self) -> str:
        return f"standin({np.array2string(self._a, separator=', ')}, dtype={self._a.dtype})"

    __str__ = __repr__

    def __copy__(self) -> StandInArray:
        return StandInArray(self._a.copy())

    def __deepcopy__(self, memo: dict) -> StandInArray:
        return StandInArray(self._a.copy())

    def __reduce__(self) -> Any:
        return (from_host, (self._a.copy(),))


def _binary(name: str, dunder: str) -> Any:
    fn = getattr(operator, name)

    def op(self: StandInArray, other: Any) -> Any:
        if isinstance(other, np.ndarray):
            _refuse_host(other)
        if not isinstance(other, (StandInArray, int, float, complex, bool, np.generic)):
            return NotImplemented
        return _wrap(fn(self._a, _unwrap(other)), (self, other))

    def rop(self: StandInArray, other: Any) -> Any:
        if isinstance(other, np.ndarray):
            _refuse_host(other)
        if not isinstance(other, (int, float, complex, bool, np.generic)):
            return NotImplemented
        return _wrap(fn(other, self._a), (self,))

    def iop(self: StandInArray, other: Any) -> Any:
        if isinstance(other, np.ndarray):
            _refuse_host(other)
        getattr(self._a, f"__i{dunder}__")(_unwrap(other))
        return self

    return op, rop, iop


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor", "lshift", "rshift"):
    _fn = {"and": "and_", "or": "or_"}.get(_name, _name)
    _op, _rop, _iop = _binary(_fn, _name)
    setattr(StandInArray, f"__{_name}__", _op)
    setattr(StandInArray, f"__r{_name}__", _rop)
    setattr(StandInArray, f"__i{_name}__", _iop)
for _name in ("lt", "le", "eq", "ne", "gt", "ge"):
    setattr(StandInArray, f"__{_name}__", _binary(_name, _name)[0])
for _name in ("neg", "pos", "abs", "invert"):
    setattr(StandInArray, f"__{_name}__", (lambda f: lambda self: _wrap(f(self._a), (self,)))(getattr(operator, _name)))


# -- wrapping ------------------------------------------------------------------------------------------


def _unwrap(v: Any) -> Any:
    """Arguments for NumPy: stand-in arrays opened, plain ndarrays refused (another device)."""
    if type(v) is StandInArray:
        return v._a
    if isinstance(v, np.ndarray):
        _refuse_host(v)
    if isinstance(v, tuple):
        return tuple(_unwrap(x) for x in v)
    if isinstance(v, list):
        return [_unwrap(x) for x in v]
    if isinstance(v, dict):
        return {k: _unwrap(x) for k, x in v.items()}
    return v


def _open(v: Any) -> Any:
    """Stand-in arrays opened (also inside tuples, lists and dicts); everything else as it is."""
    if type(v) is StandInArray:
        return v._a
    if isinstance(v, (tuple, list)):
        return type(v)(_open(x) for x in v)
    if isinstance(v, dict):
        return {k: _open(x) for k, x in v.items()}
    return v


def _owner(a: StandInArray) -> StandInArray:
    return a if a._base is None else a._base


def _wrap(r: Any, inputs: tuple = ()) -> Any:
    """NumPy results as stand-in arrays (NumPy scalars as 0-d arrays, like CuPy); views keep their base."""
    if isinstance(r, np.ndarray):
        base = None
        for x in inputs:
            if type(x) is StandInArray:
                if r is x._a:
                    return x  # an in-place result (out=, x.__iadd__) is the array itself
                if base is None and r.base is not None and (r.base is x._a or r.base is x._a.base):
                    base = _owner(x)
        return StandInArray(r, base)
    if isinstance(r, np.generic):
        return StandInArray(np.asarray(r))
    if isinstance(r, tuple):
        items = [_wrap(x, inputs) for x in r]
        return type(r)(*items) if hasattr(r, "_fields") else tuple(items)
    if isinstance(r, list):
        return [_wrap(x, inputs) for x in r]
    return r


_SORTS = {"sort", "argsort"}  # CuPy's sorts are stable, and kind=None means 'stable' there


def _function(name: str, fn: Any, plain_ok: bool = False) -> Any:
    def f(*args: Any, **kwargs: Any) -> Any:
        if name in _SORTS and kwargs.get("kind") is None:
            kwargs["kind"] = "stable"
        if plain_ok and args and isinstance(args[0], np.ndarray):
            return StandInArray(np.array(args[0], *_unwrap(args[1:]), **_unwrap(kwargs)))
        ins = (*args, *kwargs.values())
        return _wrap(fn(*_unwrap(args), **_unwrap(kwargs)), tuple(x for x in ins if type(x) is StandInArray))

    f.__name__ = name
    f.__doc__ = getattr(fn, "__doc__", None)
    return f


class _Ufunc:
    """A NumPy ufunc on stand-in arrays: call, ``at``, ``reduce``, ``accumulate``, ``outer``."""

    def __init__(self, uf: np.ufunc) -> None:
        self._uf = uf
        self.__name__ = uf.__name__
        self.nin, self.nout, self.identity = uf.nin, uf.nout, uf.identity
        self._call = _function(uf.__name__, uf)
        for m in ("reduce", "accumulate", "outer", "reduceat"):
            setattr(self, m, _function(m, getattr(uf, m)))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(*args, **kwargs)

    def at(self, a: StandInArray, indices: Any, b: Any = None) -> None:
        if b is None:
            self._uf.at(_unwrap(a), _unwrap(indices))
        else:
            self._uf.at(_unwrap(a), _unwrap(indices), _unwrap(b))


class _Namespace:
    """NumPy's namespace (and its ``linalg``, ``random``, ``fft``) over stand-in arrays, CuPy's names only."""

    def __init__(self, module: Any, name: str, names: frozenset[str] | None = None) -> None:
        self.__name__ = name
        self._module = module
        self._names = names  # None: every name NumPy's module has

    def __repr__(self) -> str:
        return f"<stand-in namespace {self.__name__}>"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if self._names is not None and name not in self._names:
            raise AttributeError(
                f"{self.__name__}.{name}: CuPy's namespace has no {name!r}, so a device array cannot use it; "
                "compute it from functions CuPy has (or on the host, with new_grad.backends.to_numpy)"
            )
        attr = getattr(self._module, name)
        if isinstance(attr, np.ufunc):
            out: Any = _Ufunc(attr)
        elif isinstance(attr, ModuleType):
            out = _Namespace(attr, f"{self.__name__}.{name}")
        elif isinstance(attr, type) or not callable(attr):
            out = attr  # dtypes, finfo, errstate, constants: as NumPy's
        else:
            out = _function(name, attr, plain_ok=name in _PLAIN_OK)
        setattr(self, name, out)
        return out


class _Random(_Namespace):
    """``xp.random``: draws made by NumPy's generator, handed over as stand-in arrays."""

    def default_rng(self, seed: Any = None) -> Any:
        gen = np.random.default_rng(seed)
        return _Namespace(gen, "Generator")


xp = _Namespace(np, "standin", CUPY)
xp.linalg = _Namespace(np.linalg, "standin.linalg", CUPY_LINALG)
xp.fft = _Namespace(np.fft, "standin.fft")
xp.lib = _Namespace(np.lib, "standin.lib")
xp.random = _Random(np.random, "standin.random", CUPY_RANDOM)
xp.ndarray = StandInArray


def from_host(a: Any) -> StandInArray:
    """A stand-in array holding a copy of ``a`` (a NumPy array or anything ``np.array`` takes)."""
    return StandInArray(np.array(a))


def to_host(a: StandInArray) -> np.ndarray:
    """A NumPy copy of a stand-in array."""
    return a.get()


def asnumpy(a: Any) -> np.ndarray:
    """CuPy's ``asnumpy``: stand-in arrays copied out, anything else through ``np.asarray``."""
    return a.get() if type(a) is StandInArray else np.asarray(a)


xp.asnumpy = asnumpy


def _erf(a: StandInArray) -> StandInArray:
    """erf on the stand-in (CuPy has it as ``cupyx.scipy.special.erf``): SciPy's, or ``math.erf`` per element."""
    try:
        from scipy.special import erf
    except ImportError:  # pragma: no cover - scipy is optional
        import math

        erf = np.vectorize(math.erf, otypes=[a.dtype if a.dtype.kind == "f" else np.float64])
    return StandInArray(np.asarray(erf(_unwrap(a))))


xp.erf = _erf
