"""Indexing: ``a[key]`` and its functional updates, for every key NumPy accepts.

There is no ``a[key] = v`` on the tape (it would change an array the tape saved);
updates are functional and return new arrays: ``index_update`` (``a[key] = v``)
and ``index_add`` (``a[key] += v``, repeated indices accumulating like
``np.add.at``). The three ops are each other's backward, so every derivative of
an indexing expression is again an indexing expression (higher order for free):

    getitem(a, key)        ↔  index_add(zeros_like(a), key, g)
    index_add(a, key, v)   ↔  (g, ·, g[key])
    index_update(a, key, v) ↔ (g with g[key] = 0, ·, g[key])
"""

from __future__ import annotations

import importlib
from typing import Any

from ..autograd_engine import active_engine, constant
from ..backends import is_array, namespace
from ..errors import IndexingError, shape_str
from ._core import EVERY, primitive


def _key_str(key: Any) -> str:
    """A short, readable rendering of an index for error messages (arrays by shape)."""
    parts = key if isinstance(key, tuple) else (key,)
    out = []
    for k in parts:
        if is_array(k):
            out.append(f"<{k.dtype} array {tuple(k.shape)}>")
        elif isinstance(k, slice):
            out.append(
                ":".join("" if v is None else str(v) for v in (k.start, k.stop))
                + ("" if k.step is None else f":{k.step}")
            )
        elif k is Ellipsis:
            out.append("...")
        else:
            out.append(repr(k))
    return "[" + ", ".join(out) + "]"


def _index_error(op: str, a: Any, key: Any, err: Exception) -> IndexingError:
    return IndexingError(
        f"{op}: index {_key_str(key)} does not fit array {shape_str(a)}: {err}. "
        "Indices must lie in [-n, n) for an axis of size n, and boolean masks must match the axes they index."
    )


def _may_repeat(key: Any) -> bool:
    """Can ``key`` name one element twice? Only integer arrays (or lists) can; slices, ints, masks cannot."""
    for k in key if isinstance(key, tuple) else (key,):
        if isinstance(k, (list, tuple)) or (is_array(k) and k.dtype.kind != "b" and k.ndim > 0):
            return True
    return False


def _add_at(out: Any, key: Any, values: Any) -> None:
    """``out[key] += values`` with repeated indices accumulating (NumPy's ``np.add.at``), in place."""
    if not _may_repeat(key):  # no element named twice: plain in-place addition (~10x faster than add.at)
        out[key] += values
        return
    xp = namespace(out)
    # ufunc.at does not always broadcast ``values`` over a[key] (NumPy 2 adds a (2,) row once into a (2, 2)
    # selection of one repeated element): broadcast it first, so every selected element gets its value
    values = xp.broadcast_to(xp.asarray(values, dtype=out.dtype), out[key].shape)
    if xp.__name__ == "numpy":
        xp.add.at(out, key, values)
        return
    at = getattr(getattr(xp, "add", None), "at", None)
    if at is not None:
        at(out, key, values)
        return
    importlib.import_module("cupyx").scatter_add(out, key, values)  # older CuPy


def _zeros_constant(shape: tuple[int, ...], like: Any) -> Any:
    """A zero array of ``like``'s namespace and dtype that never gets a gradient slot."""
    return constant(namespace(like).zeros(shape, dtype=like.dtype))


# -- getitem -------------------------------------------------------------------------------------


def getitem_backward(grad_output: Any, a: Any, key: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    """Scatter the gradient back where the elements came from; repeats accumulate."""
    if active_engine() is None:  # not recording the backward: scatter straight into fresh zeros
        g = namespace(grad_output).zeros(a.shape, dtype=grad_output.dtype)
        _add_at(g, key, grad_output)
        return g, None
    return index_add(_zeros_constant(a.shape, grad_output), key, grad_output), None


@primitive(getitem_backward, formula="∂a[k]/∂a = scatter-add of the gradient at k")
def getitem(a: Any, key: Any) -> Any:
    """``a[key]`` for any NumPy key: ints, slices, None, Ellipsis, integer/boolean arrays, mixtures."""
    try:
        out = a[key]
    except IndexError as err:
        raise _index_error("getitem", a, key, err) from err
    if not is_array(out):  # a[i, j] of a full index is a NumPy scalar: make it a 0-d array
        out = namespace(a).asarray(out)
    return out


# -- functional updates -------------------------------------------------------------------------


def index_add_backward(grad_output: Any, a: Any, key: Any, values: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return grad_output if needs[0] else None, None, getitem(grad_output, key) if needs[2] else None


@primitive(index_add_backward, formula="∂/∂a = 1, ∂/∂v = g[k] (summed over broadcasting)")
def index_add(a: Any, key: Any, values: Any) -> Any:
    """A copy of ``a`` with ``values`` added at ``key``; repeated indices accumulate (``np.add.at``)."""
    out = a.copy()
    try:
        _add_at(out, key, values)
    except IndexError as err:
        raise _index_error("index_add", a, key, err) from err
    return out


def index_update_backward(
    grad_output: Any, a: Any, key: Any, values: Any, out: Any = None, needs: Any = EVERY
) -> tuple:
    ga = index_update(grad_output, key, 0.0) if needs[0] else None  # overwritten elements had no influence
    return ga, None, getitem(grad_output, key) if needs[2] else None


@primitive(index_update_backward, formula="∂/∂a = 1 off k, 0 on k; ∂/∂v = g[k]")
def index_update(a: Any, key: Any, values: Any) -> Any:
    """A copy of ``a`` with ``a[key] = values`` (the functional form of item assignment).

    With repeated indices the last write wins in the forward, and each written value
    still receives the gradient of the element it was written to.
    """
    out = a.copy()
    try:
        out[key] = values
    except IndexError as err:
        raise _index_error("index_update", a, key, err) from err
    return out
