"""Shape ops: views and rearrangements. Their backward puts the gradient back in shape."""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from ..backends import is_array, mixed_devices, namespace
from ..errors import ShapeError, shape_str
from ._core import EVERY, primitive, record, register, reject_complex_input, traceable, unbroadcast_to
from .elementwise import as_array
from .elementwise import multiply as _multiply


def reshape_backward(grad_output: Any, x: Any, shape: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return reshape(grad_output, x.shape), None


@primitive(reshape_backward, formula="reshape the gradient back to x's shape")
def reshape(x: Any, shape: Any) -> Any:
    if type(x) is np.ndarray:  # the method: NumPy's function form adds a dispatch layer (0.5 µs against 0.1)
        return x.reshape(shape)
    return namespace(x).reshape(x, shape)


def transpose_op_backward(grad_output: Any, x: Any, axes: Any = None, out: Any = None, needs: Any = EVERY) -> tuple:
    if axes is None:
        return transpose(grad_output), None
    inverse = [0] * len(axes)
    for i, a in enumerate(axes):
        inverse[a % len(axes)] = i
    return transpose(grad_output, tuple(inverse)), None


@primitive(transpose_op_backward, formula="transpose the gradient by the inverse permutation")
def transpose(x: Any, axes: Any = None) -> Any:
    if type(x) is np.ndarray:
        return x.transpose(axes)
    return namespace(x).transpose(x, axes)


def swapaxes_backward(grad_output: Any, x: Any, axis1: int, axis2: int, out: Any = None, needs: Any = EVERY) -> tuple:
    return swapaxes(grad_output, axis1, axis2), None, None


@primitive(swapaxes_backward, formula="swap the same axes of the gradient")
def swapaxes(x: Any, axis1: int, axis2: int) -> Any:
    if type(x) is np.ndarray:
        return x.swapaxes(axis1, axis2)
    return namespace(x).swapaxes(x, axis1, axis2)


def expand_dims_op_backward(grad_output: Any, x: Any, axis: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return reshape(grad_output, x.shape), None


@primitive(expand_dims_op_backward, formula="drop the inserted axes of the gradient")
def expand_dims(x: Any, axis: Any) -> Any:
    return namespace(x).expand_dims(x, axis)


def broadcast_to_backward(grad_output: Any, x: Any, shape: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return unbroadcast_to(grad_output, x.shape), None


@primitive(broadcast_to_backward, formula="sum the gradient over the broadcast axes")
def broadcast_to(x: Any, shape: Any) -> Any:
    return namespace(x).broadcast_to(x, shape)


def identity_op_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return (grad_output,)


@primitive(identity_op_backward, formula="∂x/∂x = 1")
def identity(x: Any) -> Any:
    """A new view of ``x`` (a recorded op must never return its input object)."""
    x = as_array(x)
    return x.view()


# -- helpers shared by the ops below ---------------------------------------------------------------


def _axis(axis: int, ndim: int, op: str) -> int:
    if not -ndim <= axis < ndim:
        raise ShapeError(f"{op}: axis {axis} is out of bounds for an array of {ndim} dimensions; use -{ndim}..{ndim - 1}")
    return axis % ndim


def _scatter(grad: Any, shape: tuple[int, ...], key: Any) -> Any:
    """A zero array of ``shape`` with ``grad`` added at ``key``: the backward of every gather."""
    from .indexing import _zeros_constant, index_add

    return index_add(_zeros_constant(shape, grad), key, grad)


def _slice_along(x: Any, axis: int, start: int, stop: int) -> Any:
    from .indexing import getitem

    return getitem(x, (slice(None),) * axis + (slice(start, stop),))


# -- reshaping ---------------------------------------------------------------------------------------


def ravel_backward(grad_output: Any, a: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return (reshape(grad_output, a.shape),)


@primitive(ravel_backward, formula="reshape the gradient back to a's shape")
def ravel(a: Any) -> Any:
    return namespace(a).reshape(a, (-1,))


def squeeze_op_backward(grad_output: Any, a: Any, axis: Any = None, out: Any = None, needs: Any = EVERY) -> tuple:
    return reshape(grad_output, a.shape), None


@primitive(squeeze_op_backward, formula="reshape the gradient back (re-insert the size-1 axes)")
def squeeze(a: Any, axis: Any = None) -> Any:
    return namespace(a).squeeze(a, axis=axis)


def moveaxis_backward(
    grad_output: Any, a: Any, source: Any, destination: Any, out: Any = None, needs: Any = EVERY
) -> tuple:
    return moveaxis(grad_output, destination, source), None, None


@primitive(moveaxis_backward, formula="move the gradient's axes back")
def moveaxis(a: Any, source: Any, destination: Any) -> Any:
    return namespace(a).moveaxis(a, source, destination)


# -- joining (variadic: recorded with record()) --------------------------------------------------------


def _joined_backward(pieces: list[tuple[int, tuple[int, ...]]], axis: int) -> Any:
    """Backward of a join: slice each input's stretch of ``axis`` out of the gradient, reshape it back."""

    def join_backward(grad_output: Any, *args: Any) -> tuple:
        *_arrays, _out, needs = args
        grads = []
        start = 0
        for i, (size, shape) in enumerate(pieces):
            grads.append(reshape(_slice_along(grad_output, axis, start, start + size), shape) if needs[i] else None)
            start += size
        return tuple(grads)

    return join_backward


def _join(name: str, arrays: Any, axis: int, lift: Any) -> Any:
    """Concatenate ``lift(a)`` (a plain NumPy reshape of each input) along ``axis``; record one op."""
    arrays = tuple(arrays)
    if not arrays:
        raise ShapeError(f"{name}: need at least one array to join")
    xp = namespace(*arrays)
    if xp is not np and (mixed := mixed_devices(name, arrays)) is not None:  # a device's asarray would copy
        raise mixed
    try:
        lifted = [lift(xp.asarray(a)) for a in arrays]
        out = xp.concatenate(lifted, axis=axis)
    except TypeError as err:  # arrays of two devices (CuPy refuses NumPy's, and the reverse)
        mixed = mixed_devices(name, arrays)
        if mixed is None:
            raise
        raise mixed from err
    except ValueError as err:
        shapes = ", ".join(shape_str(a) for a in arrays)
        raise ShapeError(
            f"{name}({shapes}, axis={axis}): {err}. All arrays must have the same shape except along the "
            "joined axis"
        ) from err
    ax = axis % out.ndim
    pieces = [(b.shape[ax], getattr(a, "shape", ())) for a, b in zip(arrays, lifted)]
    return record(name, _joined_backward(pieces, ax), arrays, out)


@traceable
def concatenate(arrays: Any, axis: int | None = 0) -> Any:
    """Join arrays along an existing axis (``axis=None``: flatten them first)."""
    if axis is None:
        return _join("concatenate", arrays, 0, lambda a: a.reshape(-1))
    return _join("concatenate", arrays, axis, lambda a: a)


@traceable
def stack(arrays: Any, axis: int = 0) -> Any:
    """Join arrays along a new axis."""
    arrays = tuple(arrays)
    nd = getattr(arrays[0], "ndim", 0) + 1 if arrays else 1
    ax = _axis(axis, nd, "stack")
    return _join("stack", arrays, ax, lambda a: namespace(a).expand_dims(a, ax))


@traceable
def hstack(tup: Any) -> Any:
    """Join along the second axis (the first for 1-d arrays), like ``np.hstack``."""
    tup = tuple(tup)
    one_d = bool(tup) and namespace(*tup).ndim(tup[0]) <= 1  # NumPy decides by the first array
    return _join("hstack", tup, 0 if one_d else 1, lambda a: a.reshape(-1) if a.ndim == 0 else a)


@traceable
def vstack(tup: Any) -> Any:
    """Join along the first axis after making every input at least 2-d, like ``np.vstack``."""
    tup = tuple(tup)
    return _join("vstack", tup, 0, lambda a: a.reshape(1, -1) if a.ndim < 2 else a)


register("concatenate", None, concatenate, formula="slice each input's part out of the gradient")
register("stack", None, stack, formula="take each input's index along the new axis of the gradient")
register("hstack", None, hstack, formula="slice each input's part out of the gradient")
register("vstack", None, vstack, formula="slice each input's part out of the gradient")


# -- splitting: several outputs, so each piece is its own recorded slice -----------------------------------


def _split_points(n: int, indices_or_sections: Any, op: str, even: bool) -> list[int]:
    if isinstance(indices_or_sections, int) or getattr(indices_or_sections, "ndim", 1) == 0:
        sections = int(indices_or_sections)
        if sections <= 0:
            raise ShapeError(f"{op}: number of sections must be larger than 0, got {sections}")
        if even and n % sections:
            raise ShapeError(
                f"{op}: an axis of size {n} does not split into {sections} equal sections; "
                "use array_split for unequal ones"
            )
        size, extra = divmod(n, sections)
        bounds = [0]
        for i in range(sections):
            bounds.append(bounds[-1] + size + (1 if i < extra else 0))
        return bounds
    return [0, *[int(i) for i in indices_or_sections], n]


def _split(op: str, ary: Any, indices_or_sections: Any, axis: int, even: bool) -> list[Any]:
    ax = _axis(axis, ary.ndim, op)
    n = ary.shape[ax]
    b = _split_points(n, indices_or_sections, op, even)
    pieces = []
    for lo, hi in zip(b[:-1], b[1:]):
        lo = min(max(lo + n if lo < 0 else lo, 0), n)
        hi = min(max(hi + n if hi < 0 else hi, 0), n)
        pieces.append(_slice_along(ary, ax, lo, max(lo, hi)))
    return pieces


@traceable
def split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list[Any]:
    """Split into equal sections (or at the given indices); each piece is a recorded slice."""
    return _split("split", ary, indices_or_sections, axis, even=True)


@traceable
def array_split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list[Any]:
    """Like :func:`split`, but the sections may differ in size by one."""
    return _split("array_split", ary, indices_or_sections, axis, even=False)


register("split", None, split, formula="each piece is a getitem slice: its gradient fills its slice")
register("array_split", None, array_split, formula="each piece is a getitem slice: its gradient fills its slice")


# -- rearranging -------------------------------------------------------------------------------------------


def flip_backward(grad_output: Any, m: Any, axis: Any = None, out: Any = None, needs: Any = EVERY) -> tuple:
    return flip(grad_output, axis), None


@primitive(flip_backward, formula="flip the gradient back")
def flip(m: Any, axis: Any = None) -> Any:
    return namespace(m).flip(m, axis)


def roll_backward(grad_output: Any, a: Any, shift: Any, axis: Any = None, out: Any = None, needs: Any = EVERY) -> tuple:
    back = -shift if isinstance(shift, int) else tuple(-s for s in shift)
    return roll(grad_output, back, axis), None, None


@primitive(roll_backward, formula="roll the gradient back by −shift")
def roll(a: Any, shift: Any, axis: Any = None) -> Any:
    return namespace(a).roll(a, shift, axis)


def tile_backward(grad_output: Any, A: Any, reps: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    from .reductions import sum as _sum

    reps = (reps,) if isinstance(reps, int) else tuple(reps)
    d = builtins.max(A.ndim, len(reps))
    shape = (1,) * (d - A.ndim) + tuple(A.shape)
    reps = (1,) * (d - len(reps)) + reps
    # output axis i is (reps[i] copies) × (shape[i]): split it in two and sum the copies away
    split_shape = tuple(v for r, s in zip(reps, shape) for v in (r, s))
    g = _sum(reshape(grad_output, split_shape), axis=tuple(range(0, 2 * d, 2)))
    return reshape(g, A.shape), None


@primitive(tile_backward, formula="sum the gradient over the copies")
def tile(A: Any, reps: Any) -> Any:
    return namespace(A).tile(A, reps)


def repeat_backward(
    grad_output: Any, a: Any, repeats: Any, axis: Any = None, out: Any = None, needs: Any = EVERY
) -> tuple:
    xp = namespace(a)
    if axis is None:  # a was flattened first
        idx = xp.repeat(xp.arange(a.size), repeats)
        return reshape(_scatter(grad_output, (a.size,), idx), a.shape), None, None
    ax = axis % a.ndim
    idx = xp.repeat(xp.arange(a.shape[ax]), repeats)
    return _scatter(grad_output, a.shape, (slice(None),) * ax + (idx,)), None, None


@primitive(repeat_backward, formula="sum the gradient over each element's repeats")
def repeat(a: Any, repeats: Any, axis: Any = None) -> Any:
    return namespace(a).repeat(a, repeats, axis)


def _pad_widths(pad_width: Any, ndim: int) -> list[tuple[int, int]]:
    return [(int(lo), int(hi)) for lo, hi in np.broadcast_to(np.asarray(pad_width, dtype=int), (ndim, 2))]


def pad_backward(
    grad_output: Any, array: Any, pad_width: Any, mode: str = "constant", constant_values: Any = 0, out: Any = None, needs: Any = EVERY
) -> tuple:
    from .indexing import getitem

    widths = _pad_widths(pad_width, array.ndim)
    if mode == "constant":  # the padding is constant: keep the centre
        key = tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, array.shape))
        return getitem(grad_output, key), None, None, None
    # the other modes gather: the output at i is the input at src[i] on each axis
    xp = namespace(array)
    src = [xp.asarray(np.pad(np.arange(n), w, mode=mode)) for n, w in zip(array.shape, widths)]
    return _scatter(grad_output, array.shape, xp.ix_(*src)), None, None, None


@primitive(pad_backward, formula="constant: the gradient's centre; other modes: scatter-add to the source")
def pad(array: Any, pad_width: Any, mode: str = "constant", constant_values: Any = 0) -> Any:
    """``np.pad``: modes constant (with ``constant_values``), edge, reflect, symmetric, wrap."""
    xp = namespace(array)
    if mode == "constant":
        return xp.pad(array, pad_width, mode="constant", constant_values=constant_values)
    if mode not in ("edge", "reflect", "symmetric", "wrap"):
        raise ShapeError(f"pad: mode {mode!r} is not supported; use constant, edge, reflect, symmetric or wrap")
    return xp.pad(array, pad_width, mode=mode)


# -- diagonals and triangles -----------------------------------------------------------------------------


def _diag_key(shape: tuple[int, ...], offset: int, xp: Any) -> tuple[tuple[int, ...], Any]:
    """The index of the ``offset`` diagonal of the last two axes: ``(..., rows, cols)``."""
    n, m = shape[-2], shape[-1]
    k = builtins.max(0, builtins.min(n + builtins.min(offset, 0), m - builtins.max(offset, 0)))
    i = xp.arange(k)
    return (Ellipsis, i + builtins.max(-offset, 0), i + builtins.max(offset, 0))


def _diag_scatter(grad: Any, shape: tuple[int, ...], offset: int, axis1: int, axis2: int) -> Any:
    """Zeros of ``shape`` with ``grad`` (diagonal last) added onto the (axis1, axis2) diagonal."""
    nd = len(shape)
    a1, a2 = axis1 % nd, axis2 % nd
    rest = [s for i, s in enumerate(shape) if i not in (a1, a2)]
    moved = (*rest, shape[a1], shape[a2])
    z = _scatter(grad, moved, _diag_key(moved, offset, namespace(grad)))
    return moveaxis(z, (-2, -1), (a1, a2))


def diagonal_backward(
    grad_output: Any, a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1, out: Any = None, needs: Any = EVERY
) -> tuple:
    return _diag_scatter(grad_output, a.shape, offset, axis1, axis2), None, None, None


@primitive(diagonal_backward, formula="put the gradient back on the diagonal")
def diagonal(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    return namespace(a).diagonal(a, offset, axis1, axis2)


def diag_backward(grad_output: Any, v: Any, k: int = 0, out: Any = None, needs: Any = EVERY) -> tuple:
    if v.ndim == 1:
        return diagonal(grad_output, k), None
    return _diag_scatter(grad_output, v.shape, k, 0, 1), None


@primitive(diag_backward, formula="1-d: the gradient's k-th diagonal; 2-d: put it back on the diagonal")
def diag(v: Any, k: int = 0) -> Any:
    return namespace(v).diag(v, k)


def trace_backward(
    grad_output: Any, a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1, out: Any = None, needs: Any = EVERY
) -> tuple:
    nd = a.ndim
    a1, a2 = axis1 % nd, axis2 % nd
    n, m = a.shape[a1], a.shape[a2]
    k = builtins.max(0, builtins.min(n + builtins.min(offset, 0), m - builtins.max(offset, 0)))
    g = broadcast_to(expand_dims(grad_output, -1), (*grad_output.shape, k))
    return _diag_scatter(g, a.shape, offset, a1, a2), None, None, None


@primitive(trace_backward, formula="∂tr(A)/∂A = I (on the offset diagonal)")
def trace(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    return namespace(a).asarray(namespace(a).trace(a, offset, axis1, axis2))


def triu_backward(grad_output: Any, m: Any, k: int = 0, out: Any = None, needs: Any = EVERY) -> tuple:
    return unbroadcast_to(triu(grad_output, k), m.shape), None


@primitive(triu_backward, formula="the gradient's upper triangle")
def triu(m: Any, k: int = 0) -> Any:
    return namespace(m).triu(m, k)


def tril_backward(grad_output: Any, m: Any, k: int = 0, out: Any = None, needs: Any = EVERY) -> tuple:
    return unbroadcast_to(tril(grad_output, k), m.shape), None


@primitive(tril_backward, formula="the gradient's lower triangle")
def tril(m: Any, k: int = 0) -> Any:
    return namespace(m).tril(m, k)


# -- gathers ---------------------------------------------------------------------------------------------------


def take_backward(
    grad_output: Any, a: Any, indices: Any, axis: Any = None, mode: str = "raise", out: Any = None, needs: Any = EVERY
) -> tuple:
    xp = namespace(a)
    idx = xp.asarray(indices)
    n = a.size if axis is None else a.shape[axis]
    if mode == "wrap":
        idx = idx % n
    elif mode == "clip":
        idx = xp.clip(idx, 0, n - 1)
    if axis is None:
        return reshape(_scatter(grad_output, (a.size,), idx), a.shape), None, None, None
    return _scatter(grad_output, a.shape, (slice(None),) * (axis % a.ndim) + (idx,)), None, None, None


@primitive(take_backward, formula="scatter-add the gradient to the taken positions")
def take(a: Any, indices: Any, axis: Any = None, mode: str = "raise") -> Any:
    try:
        return namespace(a).take(a, indices, axis=axis, mode=mode)
    except IndexError as err:
        from .indexing import _index_error

        raise _index_error("take", a, indices, err) from err


def _along_axis_key(arr: Any, indices: Any, axis: int) -> tuple:
    """The fancy index equivalent to ``take_along_axis(arr, indices, axis)``.

    Off ``axis``, ``arr`` and ``indices`` broadcast against each other (as in NumPy): each other axis is
    ``arr``'s own range, which broadcasts with ``indices`` to the output's shape.
    """
    xp = namespace(arr)
    nd = arr.ndim
    key = []
    for i in range(nd):
        if i == axis:
            key.append(indices)
        else:
            shape = [1] * nd
            shape[i] = arr.shape[i]
            key.append(xp.arange(arr.shape[i]).reshape(shape))
    return tuple(key)


def take_along_axis_backward(
    grad_output: Any, arr: Any, indices: Any, axis: Any = -1, out: Any = None, needs: Any = EVERY
) -> tuple:
    if axis is None:
        return reshape(_scatter(grad_output, (arr.size,), indices), arr.shape), None, None
    return _scatter(grad_output, arr.shape, _along_axis_key(arr, indices, axis % arr.ndim)), None, None


@primitive(take_along_axis_backward, formula="scatter-add the gradient along the axis")
def take_along_axis(arr: Any, indices: Any, axis: Any = -1) -> Any:
    try:
        return namespace(arr).take_along_axis(arr, indices, axis=axis)
    except IndexError as err:
        from .indexing import _index_error

        raise _index_error("take_along_axis", arr, indices, err) from err


# -- more of NumPy's shape functions (built from the recorded ops above: every derivative order comes free) ----


def hsplit(ary: Any, indices_or_sections: Any) -> list[Any]:
    """Split along the second axis (the first for 1-d arrays), like ``np.hsplit``."""
    if ary.ndim == 0:
        raise ShapeError("hsplit: a 0-d array cannot be split; give at least 1 dimension")
    return _split("hsplit", ary, indices_or_sections, 1 if ary.ndim > 1 else 0, even=True)


def vsplit(ary: Any, indices_or_sections: Any) -> list[Any]:
    """Split along the first axis of an array of at least 2 dimensions, like ``np.vsplit``."""
    if ary.ndim < 2:
        raise ShapeError(f"vsplit: needs at least 2 dimensions, got {shape_str(ary)}; use split for 1-d arrays")
    return _split("vsplit", ary, indices_or_sections, 0, even=True)


def dsplit(ary: Any, indices_or_sections: Any) -> list[Any]:
    """Split along the third axis of an array of at least 3 dimensions, like ``np.dsplit``."""
    if ary.ndim < 3:
        raise ShapeError(f"dsplit: needs at least 3 dimensions, got {shape_str(ary)}")
    return _split("dsplit", ary, indices_or_sections, 2, even=True)


for _n in ("hsplit", "vsplit", "dsplit"):
    register(_n, None, globals()[_n], formula="each piece is a getitem slice: its gradient fills its slice")


def column_stack(tup: Any) -> Any:
    """Stack 1-d arrays as columns (2-d arrays as they are) along the second axis, like ``np.column_stack``."""
    return _join("column_stack", tuple(tup), 1, lambda a: a.reshape(-1, 1) if a.ndim < 2 else a)


def row_stack(tup: Any) -> Any:
    """NumPy's ``row_stack``: the same as :func:`vstack`."""
    tup = tuple(tup)
    return _join("row_stack", tup, 0, lambda a: a.reshape(1, -1) if a.ndim < 2 else a)


def _lift3(a: Any) -> Any:
    if a.ndim == 0:
        return a.reshape(1, 1, 1)
    if a.ndim == 1:
        return a.reshape(1, -1, 1)
    return a.reshape(*a.shape, 1) if a.ndim == 2 else a


def dstack(tup: Any) -> Any:
    """Join along the third axis after making every input at least 3-d, like ``np.dstack``."""
    return _join("dstack", tuple(tup), 2, _lift3)


register("column_stack", None, column_stack, formula="slice each input's part out of the gradient")
register("row_stack", None, row_stack, formula="slice each input's part out of the gradient")
register("dstack", None, dstack, formula="slice each input's part out of the gradient")


def _atleast(name: str, arys: tuple, shape_of: Any) -> Any:
    res = []
    for a in arys:
        a = a if is_array(a) else np.asarray(a)
        want = shape_of(a.shape)
        res.append(a if want == a.shape else reshape(a, want))
    return res[0] if len(res) == 1 else res


def atleast_1d(*arys: Any) -> Any:
    """Each input with at least 1 dimension (a 0-d array becomes shape (1,))."""
    return _atleast("atleast_1d", arys, lambda s: s if len(s) >= 1 else (1,))


def atleast_2d(*arys: Any) -> Any:
    """Each input with at least 2 dimensions: (N,) becomes (1, N)."""
    return _atleast("atleast_2d", arys, lambda s: s if len(s) >= 2 else (1,) * (2 - len(s)) + s)


def atleast_3d(*arys: Any) -> Any:
    """Each input with at least 3 dimensions: (N,) becomes (1, N, 1) and (M, N) becomes (M, N, 1)."""
    lift = {0: lambda s: (1, 1, 1), 1: lambda s: (1, s[0], 1), 2: lambda s: (*s, 1)}
    return _atleast("atleast_3d", arys, lambda s: lift[len(s)](s) if len(s) < 3 else s)


for _n in ("atleast_1d", "atleast_2d", "atleast_3d"):
    register(_n, None, globals()[_n], formula="a reshape: the gradient reshaped back")


def flipud(m: Any) -> Any:
    """Reverse the first axis (``np.flipud``)."""
    m = as_array(m)
    if m.ndim < 1:
        raise ShapeError("flipud: needs at least 1 dimension, got a 0-d array")
    return flip(m, 0)


def fliplr(m: Any) -> Any:
    """Reverse the second axis (``np.fliplr``)."""
    m = as_array(m)
    if m.ndim < 2:
        raise ShapeError(f"fliplr: needs at least 2 dimensions, got {shape_str(m)}")
    return flip(m, 1)


register("flipud", None, flipud, formula="flip the gradient back")
register("fliplr", None, fliplr, formula="flip the gradient back")


def rot90(m: Any, k: int = 1, axes: Any = (0, 1)) -> Any:
    """Rotate by 90° ``k`` times in the plane of ``axes`` (NumPy's definition: flips and a transpose)."""
    m = as_array(m)
    axes = tuple(axes)
    if len(axes) != 2:
        raise ShapeError(f"rot90: axes must be two axes, got {axes!r}")
    a0, a1 = _axis(axes[0], m.ndim, "rot90"), _axis(axes[1], m.ndim, "rot90")
    if a0 == a1:
        raise ShapeError(f"rot90: the two axes must differ, got {axes!r}")
    k %= 4
    if k == 0:
        return identity(m)
    if k == 2:
        return flip(flip(m, a0), a1)
    perm = list(range(m.ndim))
    perm[a0], perm[a1] = perm[a1], perm[a0]
    if k == 1:
        return transpose(flip(m, a1), tuple(perm))
    return flip(transpose(m, tuple(perm)), a1)


def rollaxis(a: Any, axis: int, start: int = 0) -> Any:
    """Roll ``axis`` backwards until it lies before ``start`` (``np.rollaxis``; prefer ``moveaxis``)."""
    n = a.ndim
    ax = _axis(axis, n, "rollaxis")
    if start < 0:
        start += n
    if not 0 <= start < n + 1:
        raise ShapeError(f"rollaxis: start {start} is out of bounds for {n} dimensions; use 0..{n}")
    if ax < start:
        start -= 1
    if ax == start:
        return identity(a)
    perm = list(range(n))
    perm.remove(ax)
    perm.insert(start, ax)
    return transpose(a, tuple(perm))


register("rot90", None, rot90, formula="flips and a transpose: the gradient rotated back")
register("rollaxis", None, rollaxis, formula="a transpose: the gradient transposed back")


def linspace_backward(
    grad_output: Any, start: Any, stop: Any, num: int = 50, endpoint: bool = True, axis: int = 0, out: Any = None, needs: Any = EVERY
) -> tuple:
    from .reductions import sum as _sum

    xp = namespace(grad_output)
    t = _linspace_weights(num, endpoint, grad_output.dtype, xp)
    g = moveaxis(grad_output, axis, 0)
    t = t.reshape((num,) + (1,) * (g.ndim - 1))
    gstop = _sum(_multiply(g, t), axis=0)
    gstart = _sum(_multiply(g, 1 - t), axis=0)
    return gstart if needs[0] else None, gstop if needs[1] else None, None, None, None


def _linspace_weights(num: int, endpoint: bool, dtype: Any, xp: Any) -> Any:
    """t with out = start + t (stop − start); t = i/(num − 1), or i/num without the endpoint."""
    div = (num - 1) if endpoint else num
    return xp.arange(num, dtype=dtype) / div if div > 0 else xp.zeros(num, dtype=dtype)


@primitive(linspace_backward, formula="out = start + t(stop − start): ∂/∂start = Σ G(1 − t), ∂/∂stop = Σ G t")
def linspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True, axis: int = 0) -> Any:
    """``np.linspace``, differentiable in ``start`` and ``stop`` (scalars or arrays)."""
    return namespace(start, stop).linspace(start, stop, num, endpoint=endpoint, axis=axis)


def append(arr: Any, values: Any, axis: Any = None) -> Any:
    """``np.append``: a new array with ``values`` after ``arr`` (both flattened when ``axis`` is None)."""
    if axis is None:
        return _join("append", (arr, values), 0, lambda a: a.reshape(-1))
    return _join("append", (arr, values), axis, lambda a: a)


register("append", None, append, formula="slice each input's part out of the gradient")

concat = concatenate  # NumPy 2's array-API spelling


def permute_dims(a: Any, axes: Any = None) -> Any:
    """NumPy 2's ``permute_dims``: :func:`transpose`."""
    return transpose(a, None if axes is None else tuple(axes))


def matrix_transpose(x: Any) -> Any:
    """Swap the last two axes (``np.matrix_transpose``)."""
    x = as_array(x)
    if x.ndim < 2:
        raise ShapeError(f"matrix_transpose: needs at least 2 dimensions, got {shape_str(x)}")
    return swapaxes(x, -1, -2)


register("matrix_transpose", None, matrix_transpose, formula="swap the last two axes of the gradient back")


def diagflat(v: Any, k: int = 0) -> Any:
    """A 2-d array with the flattened ``v`` on its ``k``-th diagonal."""
    return diag(ravel(v), k)


register("diagflat", None, diagflat, formula="the gradient's k-th diagonal, reshaped to v")


def broadcast_arrays(*args: Any) -> list[Any]:
    """Each input broadcast against the others (recorded ``broadcast_to`` views)."""
    shape = np.broadcast_shapes(*(np.shape(a) for a in args))
    return [a if np.shape(a) == shape else broadcast_to(a, shape) for a in args]


register("broadcast_arrays", None, broadcast_arrays, formula="as broadcast_to, for each input")


def unstack(x: Any, axis: int = 0) -> tuple:
    """NumPy 2's ``unstack``: the slices along ``axis`` (recorded getitems)."""
    x = as_array(x)
    from .indexing import getitem

    ax = _axis(axis, x.ndim, "unstack")
    return tuple(getitem(x, (slice(None),) * ax + (i,)) for i in range(x.shape[ax]))


register("unstack", None, unstack, formula="each slice's gradient fills its place")


def meshgrid(*xi: Any, indexing: str = "xy") -> list[Any]:
    """Coordinate matrices from 1-d coordinate vectors (recorded reshapes and broadcasts)."""
    if indexing not in ("xy", "ij"):
        raise ShapeError(f"meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}")
    n = len(xi)
    sizes = [int(np.size(x)) for x in xi]
    if indexing == "xy" and n >= 2:
        sizes[0], sizes[1] = sizes[1], sizes[0]
    out = []
    for i, x in enumerate(xi):
        shape = [1] * n
        pos = i
        if indexing == "xy" and n >= 2 and i < 2:
            pos = 1 - i
        shape[pos] = -1
        out.append(broadcast_to(reshape(ravel(x), tuple(shape)), tuple(sizes)))
    return out


register("meshgrid", None, meshgrid, formula="each grid sums its gradient back onto its vector")


def delete(arr: Any, obj: Any, axis: Any = None) -> Any:
    """``np.delete``: the entries not named by ``obj`` (a recorded gather)."""
    if axis is None:
        arr = ravel(arr)
        axis = 0
    ax = _axis(axis, arr.ndim, "delete")
    keep = np.delete(np.arange(arr.shape[ax]), obj)
    return take(arr, namespace(arr).asarray(keep), ax)


def compress(condition: Any, a: Any, axis: Any = None) -> Any:
    """``np.compress``: the slices along ``axis`` where ``condition`` holds (a recorded gather)."""
    idx = namespace(a).asarray(np.nonzero(_host(condition))[0])
    if axis is None:
        return take(ravel(a), idx, 0)
    return take(a, idx, axis)


def extract(condition: Any, arr: Any) -> Any:
    """``np.extract``: the entries of the flattened ``arr`` where the flattened ``condition`` is true."""
    idx = namespace(arr).asarray(np.nonzero(_host(condition).reshape(-1))[0])
    return take(ravel(arr), idx, 0)


def _host(x: Any) -> Any:
    """A condition (list, NumPy or device array) as a NumPy array: indices are computed on the host."""
    from ..backends import to_numpy

    return to_numpy(x) if is_array(x) else np.asarray(x)


register("delete", None, delete, formula="a recorded gather of the kept entries")
register("compress", None, compress, formula="a recorded gather of the selected slices")
register("extract", None, extract, formula="a recorded gather of the selected entries")


def logspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True, base: Any = 10.0, axis: int = 0) -> Any:
    """``base ** linspace(start, stop)``: differentiable in ``start``, ``stop`` and ``base``."""
    from .elementwise import power

    y = linspace(start, stop, num, endpoint, axis)
    if is_array(base) and base.ndim:
        base = expand_dims(base, axis)
    return power(base, y)


def geomspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True, axis: int = 0) -> Any:
    """A geometric progression from ``start`` to ``stop``, differentiable in both. Both negative (as NumPy
    allows): the progression between their magnitudes, negated."""
    from ..backends import to_numpy
    from .elementwise import exp, log, multiply

    neg = to_numpy(start) < 0 if is_array(start) else np.asarray(start) < 0
    if not np.any(neg):
        return exp(linspace(log(start), log(stop), num, endpoint, axis))
    xp = namespace(start, stop)
    sign = np.where(neg, -1.0, 1.0)
    mags = exp(linspace(log(multiply(start, xp.asarray(sign))), log(multiply(stop, xp.asarray(sign))), num, endpoint,
                        axis))
    return multiply(mags, xp.asarray(np.linspace(sign, sign, num, endpoint, axis=axis)))


register("logspace", None, logspace, formula="power(base, linspace(start, stop))")
register("geomspace", None, geomspace, formula="exp(linspace(log start, log stop))")


def vander(x: Any, N: Any = None, increasing: bool = False) -> Any:
    """The Vandermonde matrix of a 1-d ``x``: columns x^(N−1) … x⁰ (increasing: x⁰ … x^(N−1))."""
    x = as_array(x)
    from .elementwise import power

    n = x.shape[0] if N is None else int(N)
    p = np.arange(n, dtype=x.dtype) if increasing else np.arange(n - 1, -1, -1, dtype=x.dtype)
    return power(expand_dims(x, -1), namespace(x).asarray(p))


def polyval(p: Any, x: Any) -> Any:
    """The polynomial with coefficients ``p`` (highest power first) at ``x``, by Horner's rule."""
    from .elementwise import add, multiply
    from .indexing import getitem

    p, x = as_array(p), as_array(x)
    n = np.shape(p)[0]
    y = getitem(p, 0) if is_array(p) else p[0]
    y = add(multiply(x, 0.0), y)
    for i in range(1, n):
        y = add(multiply(y, x), getitem(p, i) if is_array(p) else p[i])
    return y


register("vander", None, vander, formula="powers of x: ∂/∂x = k·x^(k−1) per column")
register("polyval", None, polyval, formula="Horner's rule in recorded ops: ∂/∂pᵢ = x^(n−1−i), ∂/∂x = p′(x)")


def copy_backward(grad_output: Any, a: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    return (grad_output,)


@primitive(copy_backward, formula="∂a/∂a = 1")
def copy(a: Any) -> Any:
    """A copy of ``a`` (NumPy's ``copy``)."""
    return namespace(a).array(a, copy=True)


@primitive(copy_backward, name="ascontiguousarray", formula="∂a/∂a = 1")
def ascontiguousarray(a: Any) -> Any:
    """``a`` in C order with at least one axis, always a new array (NumPy returns ``a`` itself when it already is: the tape needs a new
    object per recorded output, and the values are the same)."""
    return namespace(a).array(a, copy=True, order="C", ndmin=1)


@primitive(copy_backward, name="asfortranarray", formula="∂a/∂a = 1")
def asfortranarray(a: Any) -> Any:
    """``a`` in Fortran order, always a new array (see :func:`ascontiguousarray`)."""
    return namespace(a).array(a, copy=True, order="F", ndmin=1)


def resize(a: Any, new_shape: Any) -> Any:
    """``np.resize``: the flattened ``a`` repeated cyclically to fill ``new_shape`` (a recorded gather)."""
    shape = (new_shape,) if isinstance(new_shape, int) else tuple(new_shape)
    total = 1
    for s in shape:
        total *= s
    flat = ravel(a)
    if not flat.size or not total:
        return reshape(take(flat, namespace(flat).zeros(0, dtype=np.intp), 0), shape) if total == 0 else flat
    return reshape(take(flat, namespace(flat).arange(total) % flat.size, 0), shape)


def ediff1d(ary: Any, to_end: Any = None, to_begin: Any = None) -> Any:
    """Differences of the flattened array, with optional values before and after."""
    from .elementwise import subtract
    from .indexing import getitem

    flat = ravel(ary)
    d = subtract(getitem(flat, slice(1, None)), getitem(flat, slice(None, -1)))
    xp = namespace(flat)

    def piece(v: Any) -> Any:  # numbers and lists on the array's device
        return ravel(v) if is_array(v) else xp.asarray(v, dtype=d.dtype).reshape(-1)

    parts = ([piece(to_begin)] if to_begin is not None else []) + [d]
    parts += [piece(to_end)] if to_end is not None else []
    return concatenate(parts) if len(parts) > 1 else d


def _block_depth(x: Any) -> int:
    return 1 + _block_depth(x[0]) if isinstance(x, list) and x else (1 if isinstance(x, list) else 0)


def block(arrays: Any) -> Any:
    """``np.block``: assemble nested lists of arrays (the innermost lists join along the last axis)."""
    depth = _block_depth(arrays)

    def ndim_of(x: Any) -> int:
        return builtins.max((ndim_of(e) for e in x), default=0) if isinstance(x, list) else np.ndim(x)

    nd = builtins.max(depth, ndim_of(arrays))

    def build(x: Any, level: int) -> Any:
        if isinstance(x, list):
            if not x:
                raise ShapeError("block: lists must not be empty")
            return concatenate([build(e, level + 1) for e in x], axis=level - depth)
        x = x if is_array(x) else np.asarray(x)
        return x if x.ndim == nd else reshape(x, (1,) * (nd - x.ndim) + tuple(x.shape))

    return build(arrays, 0) if isinstance(arrays, list) else copy(arrays)


def interp(x: Any, xp: Any, fp: Any, left: Any = None, right: Any = None) -> Any:
    """Piecewise-linear interpolation (``np.interp``), differentiable in ``x``, ``xp`` and ``fp``."""
    from .elementwise import add, astype, divide, multiply, subtract, where

    reject_complex_input("interp", x, xp)  # the abscissae are ordered: real (fp may be complex)
    dev = namespace(x, fp, xp)
    xpa = dev.asarray(xp, dtype=np.float64)
    if xpa.ndim != 1 or xpa.size < 1:
        raise ShapeError(f"interp: xp must be a non-empty 1-d array, got {shape_str(xp)}")
    n = xpa.size
    xv = dev.asarray(x)
    fp = fp if is_array(fp) else dev.asarray(fp, dtype=np.float64)
    if n == 1:
        y = add(multiply(x, 0.0), take(fp, 0))
    else:
        i = dev.clip(dev.searchsorted(xpa, xv, side="right") - 1, 0, n - 2)
        # the abscissae as recorded float64 (NumPy computes in float64): a float xp gets its gradient too
        xpr = xpa  # a list, or an array of another device than x's: a constant on x's device
        if is_array(xp) and namespace(xp) is dev:
            xpr = xp if xp.dtype == np.float64 else astype(xp, np.float64)
        x0 = take(xpr, i)
        t = divide(subtract(x, x0), subtract(take(xpr, i + 1), x0))
        y0, y1 = take(fp, i), take(fp, i + 1)
        y = add(y0, multiply(t, subtract(y1, y0)))
        y = where(xv == xpa[-1], take(fp, n - 1), y)
    lo = take(fp, 0) if left is None else left
    hi = take(fp, n - 1) if right is None else right
    y = where(xv < xpa[0], lo, y)
    return where(xv > xpa[-1], hi, y)


register("copy", None, copy, formula="∂a/∂a = 1")
register("resize", None, resize, formula="a cyclic recorded gather: each entry sums the gradient of its copies")
register("ediff1d", None, ediff1d, formula="differences of recorded slices")
register("block", None, block, formula="nested recorded concatenations: each block's part of the gradient")
register("interp", None, interp, formula="fp[i] + t (fp[i+1] − fp[i]), t = (x − xp[i])/(xp[i+1] − xp[i]): recorded ops")


# -- the rest of the differentiable NumPy functions that are rearrangements of their inputs ------------------------


def unwrap(p: Any, discont: Any = None, axis: int = -1, *, period: float = 2 * np.pi) -> Any:
    """``np.unwrap``: p plus multiples of ``period`` (piecewise constant), so the gradient passes unchanged."""
    from ..backends import to_numpy
    from .elementwise import add

    host = to_numpy(p) if is_array(p) else np.asarray(p, dtype=float)
    shift = np.unwrap(host, discont, axis, period=period) - host
    return add(p, namespace(p).asarray(shift))


def real_if_close(a: Any, tol: float = 100) -> Any:
    """Real input: a copy of ``a`` (complex input is refused while recording, like ``real``)."""
    from .elementwise import real

    return real(a)


def frexp(x: Any) -> tuple:
    """(mantissa, exponent) with x = m·2^e: the mantissa is x·2^−e (e piecewise constant, an int array)."""
    from ..backends import to_numpy
    from .elementwise import ldexp

    e = np.frexp(to_numpy(x) if is_array(x) else np.asarray(x))[1]
    xp = namespace(x)
    return ldexp(x, xp.asarray(-e)), xp.asarray(e)


def trim_zeros(filt: Any, trim: str = "fb") -> Any:
    """A 1-d array without its leading (``f``) and trailing (``b``) zeros (a recorded slice)."""
    from ..backends import to_numpy
    from .indexing import getitem

    nz = np.nonzero(to_numpy(filt) if is_array(filt) else np.asarray(filt))[0]
    if not nz.size:
        return getitem(filt, slice(0, 0))
    lo = int(nz[0]) if "f" in trim.lower() else 0
    hi = int(nz[-1]) + 1 if "b" in trim.lower() else filt.shape[0]
    return getitem(filt, slice(lo, hi))


def full(shape: Any, fill_value: Any, dtype: Any = None) -> Any:
    """An array of ``shape`` filled with ``fill_value`` (an array fill broadcasts), differentiable in it."""
    if not is_array(fill_value):
        return np.full(shape, fill_value, dtype=dtype)
    v = fill_value if dtype is None else _astype(fill_value, dtype)
    return copy(broadcast_to(v, (shape,) if isinstance(shape, int) else tuple(shape)))


def full_like(a: Any, fill_value: Any, dtype: Any = None) -> Any:
    """An array like ``a`` filled with ``fill_value``; differentiable in the fill value (not in ``a``)."""
    a = as_array(a)
    if not is_array(fill_value):
        return namespace(a).full_like(a, fill_value, dtype=dtype)
    return full(a.shape, fill_value, a.dtype if dtype is None else dtype)


def _astype(x: Any, dtype: Any) -> Any:
    from .elementwise import astype

    return x if x.dtype == dtype else astype(x, dtype)


def choose(a: Any, choices: Any) -> Any:
    """``np.choose`` (mode 'raise'): ``choices[a]`` at each position; the chosen entries take the gradient."""
    from ..backends import to_numpy
    from ..errors import IndexingError
    from .elementwise import where

    choices = list(choices)
    n = len(choices)
    host = to_numpy(a) if is_array(a) else np.asarray(a)
    if host.size and (host.min() < 0 or host.max() >= n):
        raise IndexingError(f"choose: indices must lie in [0, {n}), got {int(host.min())}..{int(host.max())}")
    shape = np.broadcast_shapes(host.shape, *(np.shape(c) for c in choices))
    idx = namespace(*choices).asarray(host)  # on the choices' device
    out = choices[-1]
    for k in range(n - 2, -1, -1):
        out = where(idx == k, choices[k], out)
    return copy(broadcast_to(out, shape)) if n == 1 or np.shape(out) != shape else out


register("unwrap", None, unwrap, formula="p + 2πk, k piecewise constant: ∂/∂p = 1")
register("real_if_close", None, real_if_close, formula="real input: ∂x/∂x = 1")
register("frexp", None, frexp, formula="mantissa x·2^−e: ∂/∂x = 2^−e; the exponent is an integer")
register("trim_zeros", None, trim_zeros, formula="a recorded slice")
register("full", None, full, formula="the fill value broadcast: its gradient is G summed")
register("full_like", None, full_like, formula="the fill value broadcast: its gradient is G summed")
register("choose", None, choose, formula="a chain of where: each choice gets G where it is chosen")


def insert(arr: Any, obj: Any, values: Any, axis: Any = None) -> Any:
    """``np.insert`` (``obj`` an int, a sequence of ints or a slice): the result is a recorded gather from
    ``arr`` and ``values``, so both get their gradient."""
    from ..errors import IndexingError

    if axis is None:
        arr, axis = ravel(arr), 0
    ax = _axis(axis, arr.ndim, "insert")
    n = arr.shape[ax]
    if isinstance(obj, slice):
        obj = np.arange(n)[obj]
    o = np.asarray(obj)
    if o.dtype == bool:
        raise IndexingError("insert: boolean obj is not supported; give integer positions")
    vals = values if is_array(values) else namespace(arr).asarray(values, dtype=arr.dtype)
    if o.ndim == 0:
        v = reshape(vals, (1,) * (arr.ndim - vals.ndim) + tuple(vals.shape)) if vals.ndim < arr.ndim else vals
        v = moveaxis(v, 0, ax) if arr.ndim else v
        k = v.shape[ax] if arr.ndim else 1
    else:
        v, k = vals, o.size
    slab = list(arr.shape)
    slab[ax] = k
    v = broadcast_to(v, tuple(slab)) if tuple(np.shape(v)) != tuple(slab) else v
    try:
        src = np.insert(np.arange(n), obj, n + np.arange(k))
    except IndexError as err:
        raise IndexingError(f"insert: {err}") from err
    return take(concatenate([arr, v], ax), namespace(arr).asarray(src), ax)


register("insert", None, insert, formula="a recorded gather from arr and values: each gets its entries' gradient")


def apply_along_axis(func1d: Any, axis: int, arr: Any, *args: Any, **kwargs: Any) -> Any:
    """``np.apply_along_axis`` for a ``func1d`` written with new_grad's ops: every 1-d slice (a recorded
    getitem) goes through ``func1d``, and the results are stacked where the axis was."""
    from .indexing import getitem

    ax = _axis(axis, arr.ndim, "apply_along_axis")
    moved = moveaxis(arr, ax, -1)
    outer = moved.shape[:-1]
    res = [func1d(getitem(moved, idx), *args, **kwargs) for idx in np.ndindex(*outer)]
    if not res:
        raise ShapeError(f"apply_along_axis: {shape_str(arr)} has no slices along axis {axis}")
    stacked = stack([r if is_array(r) else namespace(arr).asarray(r) for r in res], 0)
    inner = stacked.shape[1:]
    out = reshape(stacked, (*outer, *inner))
    if not inner:
        return out
    k = len(inner)
    return moveaxis(out, tuple(range(len(outer), len(outer) + k)), tuple(range(ax, ax + k)))


register("apply_along_axis", None, apply_along_axis, formula="func1d's own recorded ops on recorded slices")
