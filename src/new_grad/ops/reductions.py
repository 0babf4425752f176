"""Reductions: their backward spreads the gradient back over the reduced axes.

``axis`` is None (all axes), an int or a tuple, negatives allowed; ``keepdims``
as in NumPy. ``max``/``min`` (alias ``amax``/``amin``) share the gradient among
tied extrema, like PyTorch's ``amax``. ``argmax``, ``argmin`` and ``argsort``
return indices and are never recorded; ``sort``'s values are differentiable.
"""

from __future__ import annotations

import builtins
import math
from typing import Any

import numpy as np

from ..autograd_engine import constant
from ..backends import is_array, namespace
from ._core import EVERY, primitive, register, reject_complex_input, unbroadcast_to
from .elementwise import _nondiff, add, as_array, conj, divide, multiply, real, subtract, where
from .shape import broadcast_to, concatenate, expand_dims, flip, moveaxis, reshape


def normalize_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    """``axis`` (None, int or tuple, negatives allowed) as a sorted tuple of non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(sorted(a % ndim if ndim else a for a in axes))


def expand_reduced(grad: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    """Give a reduction's gradient back its reduced axes (size 1), then broadcast to ``x``."""
    if not keepdims and x.ndim:
        grad = expand_dims(grad, normalize_axes(axis, x.ndim))
    return broadcast_to(grad, x.shape)


def keep_reduced(y: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    """A reduction's result (or gradient) with its reduced axes back as size 1, to broadcast against ``x``."""
    if keepdims or not x.ndim:
        return y
    return expand_dims(y, normalize_axes(axis, x.ndim))


def sum_op_backward(
    grad_output: Any, x: Any, axis: Any = None, keepdims: bool = False, out: Any = None, needs: Any = EVERY
) -> tuple:
    return expand_reduced(grad_output, x, axis, keepdims), None, None


@primitive(sum_op_backward, formula="∂Σx/∂xᵢ = 1")
def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001 - NumPy's name
    if type(x) is np.ndarray:  # the method: NumPy's function form adds a dispatch layer
        return x.sum(axis=axis, keepdims=keepdims)
    return namespace(x).sum(x, axis=axis, keepdims=keepdims)


def _count(x: Any, axis: Any) -> int:
    n = 1
    for a in normalize_axes(axis, x.ndim):
        n *= x.shape[a]
    return n


def mean_backward(
    grad_output: Any, x: Any, axis: Any = None, keepdims: bool = False, out: Any = None, needs: Any = EVERY
) -> tuple:
    return expand_reduced(divide(grad_output, builtins.max(_count(x, axis), 1)), x, axis, keepdims), None, None


@primitive(mean_backward, formula="∂mean(x)/∂xᵢ = 1/n")
def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    if type(x) is np.ndarray:
        return x.mean(axis=axis, keepdims=keepdims)
    return namespace(x).mean(x, axis=axis, keepdims=keepdims)


def max_op_backward(
    grad_output: Any, x: Any, axis: Any = None, keepdims: bool = False, out: Any = None, needs: Any = EVERY
) -> tuple:
    # the gradient goes to the maxima; ties share it equally (PyTorch's amax rule)
    xp = namespace(x)
    top = xp.max(x, axis=axis, keepdims=True)
    mask = x == top
    share = (mask / xp.sum(mask, axis=axis, keepdims=True)).astype(x.dtype)  # a constant
    return multiply(expand_reduced(grad_output, x, axis, keepdims), share), None, None


@primitive(max_op_backward, formula="∂max(x)/∂xᵢ = [xᵢ = max] / #ties")
def max(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001 - NumPy's name
    if type(x) is np.ndarray:
        return x.max(axis=axis, keepdims=keepdims)
    return namespace(x).max(x, axis=axis, keepdims=keepdims)


def min_backward(
    grad_output: Any, x: Any, axis: Any = None, keepdims: bool = False, out: Any = None, needs: Any = EVERY
) -> tuple:
    # the gradient goes to the minima; ties share it equally (PyTorch's amin rule)
    xp = namespace(x)
    mask = x == xp.min(x, axis=axis, keepdims=True)
    share = (mask / xp.sum(mask, axis=axis, keepdims=True)).astype(x.dtype)  # a constant
    return multiply(expand_reduced(grad_output, x, axis, keepdims), share), None, None


@primitive(min_backward, formula="∂min(x)/∂xᵢ = [xᵢ = min] / #ties")
def min(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001 - NumPy's name
    if type(x) is np.ndarray:
        return x.min(axis=axis, keepdims=keepdims)
    return namespace(x).min(x, axis=axis, keepdims=keepdims)


amax = max  # NumPy's aliases (PyTorch's amax/amin are these: ties share the gradient)
amin = min


def _prod_of_others(x: Any, axis: Any) -> Any:
    """For each element, the product of the others in its reduced slice (exact with zeros)."""
    xp = namespace(x)
    axes = normalize_axes(axis, x.ndim)
    k = len(axes)
    moved = xp.moveaxis(x, axes, tuple(range(x.ndim - k, x.ndim)))
    flat = moved.reshape(moved.shape[: x.ndim - k] + (-1,))
    one = xp.ones(flat.shape[:-1] + (1,), dtype=x.dtype)
    left = xp.concatenate([one, xp.cumprod(flat[..., :-1], axis=-1)], axis=-1)  # Π_{j<i}
    right = xp.flip(xp.concatenate([one, xp.cumprod(xp.flip(flat[..., 1:], -1), axis=-1)], axis=-1), -1)  # Π_{j>i}
    others = (left * right).reshape(moved.shape)
    return xp.moveaxis(others, tuple(range(x.ndim - k, x.ndim)), axes)


def _exclusive_cumprod(a: Any) -> Any:
    """[1, a₀, a₀a₁, …] along the last axis, with recorded ops (exact with zeros: no division)."""
    from .indexing import getitem

    one = namespace(a).ones(a.shape[:-1] + (1,), dtype=a.dtype)
    return concatenate([one, cumprod(getitem(a, (Ellipsis, slice(None, -1))), -1)], -1)


def _prod_of_others_recorded(x: Any, axis: Any) -> Any:
    """``_prod_of_others`` with recorded ops (prefix × suffix exclusive products), for ``create_graph``."""
    axes = normalize_axes(axis, x.ndim)
    k = len(axes)
    last = tuple(range(x.ndim - k, x.ndim))
    moved = moveaxis(x, axes, last)
    flat = reshape(moved, moved.shape[: x.ndim - k] + (-1,))
    right = flip(_exclusive_cumprod(flip(flat, -1)), -1)
    return moveaxis(reshape(multiply(_exclusive_cumprod(flat), right), moved.shape), last, axes)


def prod_backward(
    grad_output: Any, x: Any, axis: Any = None, keepdims: bool = False, out: Any = None, needs: Any = EVERY
) -> tuple:
    """∂Πx/∂xᵢ = Π_{j≠i} xⱼ: prod/xᵢ when no factor is 0, else exclusive products.

    With zeros, first order computes them in array code; a recorded backward (``out is None``)
    builds them from recorded cumulative products, so second derivatives stay exact.
    """
    xp = namespace(x)
    g = keep_reduced(grad_output, x, axis, keepdims)
    if x.size and not bool(xp.any(x == 0)):
        p = prod(x, axis, True) if out is None else keep_reduced(out, x, axis, keepdims)
        return multiply(g, divide(p, x)), None, None
    if x.ndim == 0 or x.size == 0:
        return multiply(g, xp.ones_like(x)), None, None
    others = _prod_of_others_recorded(x, axis) if out is None else _prod_of_others(x, axis)
    return multiply(g, others), None, None


@primitive(prod_backward, formula="∂Πx/∂xᵢ = Π_{j≠i} xⱼ")
def prod(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    if type(x) is np.ndarray:
        return x.prod(axis=axis, keepdims=keepdims)
    return namespace(x).prod(x, axis=axis, keepdims=keepdims)


def _dof(x: Any, axis: Any, ddof: float) -> float:
    return _count(x, axis) - ddof


def var_backward(
    grad_output: Any, x: Any, axis: Any = None, ddof: float = 0, keepdims: bool = False, out: Any = None, needs: Any = EVERY
) -> tuple:
    n = _dof(x, axis, ddof)
    scale = 2.0 / n if n else math.inf
    d = _conj_if_complex(subtract(x, mean(x, axis, True)))
    return multiply(keep_reduced(grad_output, x, axis, keepdims), multiply(d, scale)), None, None, None


def _conj_if_complex(d: Any) -> Any:
    """var and std of complex z are of |z − z̄|²: their gradient carries the conjugate of z − mean."""
    return conj(d) if d.dtype.kind == "c" else d


@primitive(var_backward, formula="∂var/∂xᵢ = 2(xᵢ − x̄)/(N − ddof) (complex: its conjugate)")
def var(x: Any, axis: Any = None, *, ddof: float = 0, keepdims: bool = False) -> Any:
    """Variance with NumPy's default ``ddof=0`` (PyTorch's ``var`` defaults to ``correction=1``)."""
    return namespace(x).var(x, axis=axis, ddof=ddof, keepdims=keepdims)


def std_backward(
    grad_output: Any, x: Any, axis: Any = None, ddof: float = 0, keepdims: bool = False, out: Any = None, needs: Any = EVERY,
) -> tuple:
    """∂std/∂xᵢ = (xᵢ − x̄)/((N − ddof)·std), and 0 where std = 0 (PyTorch's choice, not NaN)."""
    s = std(x, axis, ddof=ddof, keepdims=True) if out is None else keep_reduced(out, x, axis, keepdims)
    n = _dof(x, axis, ddof)
    zero = s == 0
    coef = divide(keep_reduced(grad_output, x, axis, keepdims), multiply(where(zero, 1, s), n if n else math.nan))
    d = _conj_if_complex(subtract(x, mean(x, axis, True)))
    return multiply(where(zero, 0, coef), d), None, None, None


@primitive(std_backward, formula="∂std/∂xᵢ = (xᵢ − x̄)/((N − ddof)·std) (complex: its conjugate)")
def std(x: Any, axis: Any = None, *, ddof: float = 0, keepdims: bool = False) -> Any:
    """Standard deviation with NumPy's default ``ddof=0`` (PyTorch's defaults to ``correction=1``)."""
    return namespace(x).std(x, axis=axis, ddof=ddof, keepdims=keepdims)


def average_backward(
    grad_output: Any, a: Any, axis: Any = None, weights: Any = None, keepdims: bool = False, out: Any = None, needs: Any = EVERY,
) -> tuple:
    """avg = Σwx/Σw:  ∂a = w/Σw,  ∂w = (a − avg)/Σw."""
    if weights is None:
        return mean_backward(grad_output, a, axis, keepdims)[0], None, None, None
    w_is_array = is_array(weights)
    if not w_is_array:  # a list or number the forward accepted: it gets no gradient
        weights = constant(namespace(a).asarray(weights, dtype=a.dtype if a.dtype.kind == "f" else None))
    wb = weights if weights.shape == a.shape else reshape(weights, _weights_shape(a, axis, weights))
    total = sum(wb, axis, True)
    g = keep_reduced(grad_output, a, axis, keepdims)
    ga = gw = None
    if needs[0]:
        ga = unbroadcast_to(multiply(g, divide(wb, total)), a.shape)
    if needs[2] and w_is_array:
        avg = average(a, axis, weights, keepdims=True) if out is None else keep_reduced(out, a, axis, keepdims)
        gwb = unbroadcast_to(multiply(g, divide(subtract(a, avg), total)), wb.shape)
        gw = gwb if wb is weights else reshape(gwb, weights.shape)
    return ga, None, gw, None


def _weights_shape(a: Any, axis: Any, weights: Any) -> tuple[int, ...]:
    """1-D (or per-axes) weights laid out along ``axis`` so they broadcast against ``a``."""
    shape = [1] * a.ndim
    for i, ax in enumerate(normalize_axes(axis, a.ndim) if axis is not None else ()):
        shape[ax] = weights.shape[i]
    return tuple(shape)


@primitive(average_backward, formula="∂a = w/Σw, ∂w = (a − avg)/Σw")
def average(a: Any, axis: Any = None, weights: Any = None, *, keepdims: bool = False) -> Any:
    """Weighted mean Σwa/Σw over ``axis``; the weights are differentiable too."""
    return namespace(a).average(a, axis=axis, weights=weights, keepdims=keepdims)


# -- cumulative ------------------------------------------------------------------------------------


def _reverse_cumsum(g: Any, axis: int) -> Any:
    """Σ_{j ≥ i} g_j along ``axis``: the adjoint of cumsum."""
    return flip(cumsum(flip(g, axis), axis), axis)


def cumsum_backward(grad_output: Any, x: Any, axis: Any = None, out: Any = None, needs: Any = EVERY) -> tuple:
    if axis is None:
        return reshape(_reverse_cumsum(grad_output, 0), x.shape), None
    return _reverse_cumsum(grad_output, axis), None


@primitive(cumsum_backward, formula="∂x = reverse cumulative sum of the gradient")
def cumsum(x: Any, axis: Any = None) -> Any:
    """Running sum along ``axis`` (None: over the flattened array, as NumPy)."""
    return namespace(x).cumsum(x, axis=axis)


def _cumprod_grad_with_zeros(g: Any, x: Any, axis: int) -> Any:
    """∂x_k = Σ_{i ≥ k} g_i Π_{j ≤ i, j ≠ k} x_j, exactly, in O(n²): used only when x has zeros."""
    xp = namespace(x)
    xm, gm = xp.moveaxis(x, axis, -1), xp.moveaxis(g, axis, -1)
    n = xm.shape[-1]
    res = xp.empty_like(xm)
    one = xp.ones(xm.shape[:-1] + (1,), dtype=x.dtype)
    for k in range(n):
        prefix = xp.prod(xm[..., :k], axis=-1, keepdims=True)
        tail = xp.concatenate([one, xp.cumprod(xm[..., k + 1 :], axis=-1)], axis=-1)
        res[..., k] = xp.sum(gm[..., k:] * prefix * tail, axis=-1)
    return xp.moveaxis(res, -1, axis)


def _cumprod_grad_with_zeros_recorded(g: Any, x: Any, axis: int) -> Any:
    """``_cumprod_grad_with_zeros`` with recorded ops, for ``create_graph``: O(n²) memory per slice.

    ∂x_k = L_k Σ_{i≥k} g_i M[k, i], with L the exclusive prefix products and
    M[k, i] = Π_{k<j≤i} x_j: the cumulative product along i of x_i where i > k, 1 elsewhere.
    """
    xp = namespace(x)
    xm, gm = moveaxis(x, axis, -1), moveaxis(g, axis, -1)
    n = xm.shape[-1]
    after = xp.triu(xp.ones((n, n), dtype=bool), 1)  # i > k
    reach = xp.triu(xp.ones((n, n), dtype=x.dtype))  # i ≥ k
    m = cumprod(where(after, expand_dims(xm, -2), 1.0), -1)
    s = sum(multiply(m, multiply(expand_dims(gm, -2), reach)), -1)
    return moveaxis(multiply(_exclusive_cumprod(xm), s), -1, axis)


def cumprod_backward(grad_output: Any, x: Any, axis: Any = None, out: Any = None, needs: Any = EVERY) -> tuple:
    """∂x_k = Σ_{i ≥ k} g_i y_i / x_k (y the output) when no x is 0; an exact O(n²) sum otherwise."""
    xp = namespace(x)
    xf = x if axis is not None else reshape(x, (-1,))
    ax = 0 if axis is None else axis
    if xf.size and bool(xp.any(x == 0)):
        if out is None:  # the backward is being recorded
            gx = _cumprod_grad_with_zeros_recorded(grad_output, xf, ax)
        else:
            gx = _cumprod_grad_with_zeros(grad_output, xf, ax)
    else:
        y = cumprod(xf, ax) if out is None else out
        gx = divide(_reverse_cumsum(multiply(grad_output, y), ax), xf)
    return (gx if axis is not None else reshape(gx, x.shape)), None


@primitive(cumprod_backward, formula="∂x_k = Σ_{i≥k} gᵢ yᵢ / x_k")
def cumprod(x: Any, axis: Any = None) -> Any:
    """Running product along ``axis`` (None: over the flattened array, as NumPy)."""
    return namespace(x).cumprod(x, axis=axis)


# -- sorting ---------------------------------------------------------------------------------------


def _stable(xp: Any, kind: Any = "stable") -> Any:
    """``kind`` for NumPy; None for CuPy, whose sorts are always stable and take no other kind."""
    return kind if xp.__name__ == "numpy" else None


def sort_backward(grad_output: Any, x: Any, axis: Any = -1, out: Any = None, needs: Any = EVERY) -> tuple:
    """Sorting permutes: send each gradient back to where its value came from (inverse permutation)."""
    from .shape import take_along_axis

    xp = namespace(x)
    xf = x.reshape(-1) if axis is None else x
    ax = 0 if axis is None else axis
    order = xp.argsort(xf, axis=ax, kind=_stable(xp))
    inverse = xp.argsort(order, axis=ax, kind=_stable(xp))
    gx = take_along_axis(grad_output, inverse, ax)
    return (gx if axis is not None else reshape(gx, x.shape)), None


@primitive(sort_backward, formula="∂x = the gradient un-permuted by the sort's indices")
def sort(x: Any, axis: Any = -1) -> Any:
    """Sorted copy along ``axis`` (None: flattened). Ties keep their order (stable)."""
    xp = namespace(x)
    return xp.sort(x, axis=axis, kind=_stable(xp))


@_nondiff
def argmax(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    return namespace(x).argmax(x, axis=axis, keepdims=keepdims)


@_nondiff
def argmin(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    return namespace(x).argmin(x, axis=axis, keepdims=keepdims)


@_nondiff
def argsort(x: Any, axis: Any = -1, kind: Any = None) -> Any:
    xp = namespace(x)
    return xp.argsort(x, axis=axis, kind=_stable(xp, kind))




# -- differences and partitions (built from recorded slices: every derivative order comes free) ----------------


def _along(x: Any, axis: int, sl: slice) -> Any:
    from .indexing import getitem

    return getitem(x, (slice(None),) * axis + (sl,))


def diff(a: Any, n: int = 1, axis: int = -1, prepend: Any = None, append: Any = None) -> Any:
    """The ``n``-th forward difference along ``axis`` (``np.diff``), with optional ``prepend``/``append``."""
    a = as_array(a)
    from .shape import _axis

    if n < 0:
        from ..errors import ArgumentError

        raise ArgumentError(f"diff: order n must be non-negative, got {n}")
    if n == 0:
        return a
    ax = _axis(axis, a.ndim, "diff")
    def lift(extra: Any) -> Any:  # a scalar prepend/append becomes a size-1 slab along the axis
        if is_array(extra) and extra.ndim:
            return extra
        shape = list(a.shape)
        shape[ax] = 1
        return broadcast_to(namespace(a).asarray(extra, dtype=a.dtype), tuple(shape))

    parts = ([lift(prepend)] if prepend is not None else []) + [a] + ([lift(append)] if append is not None else [])
    x = concatenate(parts, ax) if len(parts) > 1 else a
    for _ in range(n):
        x = subtract(_along(x, ax, slice(1, None)), _along(x, ax, slice(None, -1)))
    return x


def gradient(f: Any, *varargs: Any, axis: Any = None, edge_order: int = 1) -> Any:
    """``np.gradient`` with uniform spacing: central differences inside, one-sided (first or second order)
    at the edges. Spacing per axis is a scalar (coordinate arrays are not supported)."""
    f = as_array(f)
    from ..errors import ArgumentError
    from .shape import _axis

    axes = tuple(range(f.ndim)) if axis is None else ((axis,) if isinstance(axis, int) else tuple(axis))
    axes = tuple(_axis(a, f.ndim, "gradient") for a in axes)
    if len(varargs) == 0:
        spacing = [1.0] * len(axes)
    elif len(varargs) == 1:
        spacing = list(varargs) * len(axes)
    elif len(varargs) == len(axes):
        spacing = list(varargs)
    else:
        raise ArgumentError(f"gradient: {len(varargs)} spacings for {len(axes)} axes; give one, or one per axis")
    if not all(isinstance(h, (int, float)) or (is_array(h) and h.ndim == 0) for h in spacing):
        raise ArgumentError("gradient: only scalar (uniform) spacings are supported, not coordinate arrays")
    if edge_order not in (1, 2):
        raise ArgumentError(f"gradient: edge_order must be 1 or 2, got {edge_order}")
    res = []
    for ax, h in zip(axes, spacing):
        n = f.shape[ax]
        if n < edge_order + 1:
            from ..errors import ShapeError

            raise ShapeError(
                f"gradient: axis {ax} has {n} points; at least edge_order + 1 = {edge_order + 1} are needed"
            )
        h = float(h)
        inner = divide(subtract(_along(f, ax, slice(2, None)), _along(f, ax, slice(None, -2))), 2.0 * h)

        def pt(i: int, ax: int = ax) -> Any:
            return _along(f, ax, slice(i, i + 1 if i != -1 else None))

        if edge_order == 1:
            first = divide(subtract(pt(1), pt(0)), h)
            last = divide(subtract(pt(-1), pt(-2)), h)
        else:
            first = divide(add(add(multiply(pt(0), -1.5), multiply(pt(1), 2.0)), multiply(pt(2), -0.5)), h)
            last = divide(add(add(multiply(pt(-1), 1.5), multiply(pt(-2), -2.0)), multiply(pt(-3), 0.5)), h)
        res.append(concatenate([first, inner, last], ax))
    return res[0] if len(res) == 1 else res


register("diff", None, diff, formula="differences of recorded slices: G moves back with opposite signs")
register("gradient", None, gradient, formula="central differences of recorded slices (linear in f)")


def partition(a: Any, kth: Any, axis: Any = -1) -> Any:
    """``np.partition``: the k-th value in its sorted place, smaller ones before, larger after.

    The values are gathered by ``argpartition``'s indices (the same arrangement NumPy returns), so the
    gradient goes back to where each value came from.
    """
    from .shape import take_along_axis

    reject_complex_input("partition", a)  # an order of complex numbers has no gradient meaning
    xp = namespace(a)
    if axis is None:
        a = reshape(a, (-1,))
        axis = -1
    idx = xp.argpartition(a, kth, axis=axis)
    return take_along_axis(a, idx, axis)


register("partition", None, partition, formula="a gather by argpartition's indices: G scattered back")


def ptp(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Peak to peak, max − min (``np.ptp``); ties share the gradient like ``max`` and ``min``."""
    return subtract(max(a, axis, keepdims), min(a, axis, keepdims))


register("ptp", None, ptp, formula="∂ = [x = max]/#ties − [x = min]/#ties")


@_nondiff
def argpartition(a: Any, kth: Any, axis: Any = -1) -> Any:
    return namespace(a).argpartition(a, kth, axis=axis)


# -- NaN-ignoring reductions: NaNs are replaced (a recorded where) by the reduction's identity -----------------


def _isnan(a: Any) -> Any:
    return namespace(a).isnan(a)


def _no_nans(a: Any) -> bool:
    """An integer or boolean array holds no NaN: NumPy's nan-functions are then the plain ones (same dtype)."""
    return is_array(a) and a.dtype.kind in "biu"


def nansum(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Sum treating NaNs as 0; they get no gradient."""
    if _no_nans(a):
        return sum(a, axis, keepdims)
    return sum(where(_isnan(a), 0.0, a), axis, keepdims)


def nanprod(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Product treating NaNs as 1; they get no gradient."""
    if _no_nans(a):
        return prod(a, axis, keepdims)
    return prod(where(_isnan(a), 1.0, a), axis, keepdims)


def _nancount(a: Any, axis: Any, keepdims: bool) -> Any:
    xp = namespace(a)
    return xp.sum(~xp.isnan(a), axis=axis, keepdims=keepdims).astype(a.real.dtype)  # real for complex a


def nanmean(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Mean of the non-NaN values (NaN for an all-NaN slice, as NumPy)."""
    a = as_array(a)
    if _no_nans(a):
        return mean(a, axis, keepdims)
    with np.errstate(invalid="ignore", divide="ignore"):  # NumPy only (CuPy never warns)
        return divide(nansum(a, axis, keepdims), _nancount(a, axis, keepdims))


def _nan_extreme(a: Any, axis: Any, keepdims: bool, fill: float, reduce: Any) -> Any:
    xp = namespace(a)
    nan = xp.isnan(a)
    out = reduce(where(nan, fill, a), axis, keepdims)
    all_nan = xp.all(nan, axis=axis, keepdims=keepdims)
    return where(all_nan, math.nan, out) if bool(xp.any(all_nan)) else out


def nanmax(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Max ignoring NaNs (NaN for an all-NaN slice); ties share the gradient like ``max``."""
    if _no_nans(a):
        return max(a, axis, keepdims)
    return _nan_extreme(a, axis, keepdims, -math.inf, max)


def nanmin(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Min ignoring NaNs (NaN for an all-NaN slice); ties share the gradient like ``min``."""
    if _no_nans(a):
        return min(a, axis, keepdims)
    return _nan_extreme(a, axis, keepdims, math.inf, min)


def nanvar(a: Any, axis: Any = None, ddof: float = 0, keepdims: bool = False) -> Any:
    """Variance of the non-NaN values."""
    a = as_array(a)
    if _no_nans(a):
        return var(a, axis, ddof=ddof, keepdims=keepdims)
    nan = _isnan(a)
    d = where(nan, 0.0, subtract(a, nanmean(a, axis, True)))
    sq = multiply(d, d) if d.dtype.kind != "c" else real(multiply(d, conj(d)))  # |d|², real as NumPy's
    with np.errstate(invalid="ignore", divide="ignore"):  # NumPy only (CuPy never warns)
        return divide(sum(sq, axis, keepdims), subtract(_nancount(a, axis, keepdims), ddof))


def nanstd(a: Any, axis: Any = None, ddof: float = 0, keepdims: bool = False) -> Any:
    """Standard deviation of the non-NaN values."""
    from .elementwise import sqrt

    return sqrt(nanvar(a, axis, ddof, keepdims))


def nancumsum(a: Any, axis: Any = None) -> Any:
    """Running sum treating NaNs as 0."""
    if _no_nans(a):
        return cumsum(a, axis)
    return cumsum(where(_isnan(a), 0.0, a), axis)


def nancumprod(a: Any, axis: Any = None) -> Any:
    """Running product treating NaNs as 1."""
    if _no_nans(a):
        return cumprod(a, axis)
    return cumprod(where(_isnan(a), 1.0, a), axis)


for _n, _f in [("nansum", "Σ over the non-NaN values: ∂ = 1 there, 0 at NaNs"),
               ("nanprod", "Π over the non-NaN values: ∂ = Π of the others there, 0 at NaNs"),
               ("nanmean", "∂ = 1/#non-NaN there, 0 at NaNs"),
               ("nanmax", "as max over the non-NaN values"), ("nanmin", "as min over the non-NaN values"),
               ("nanvar", "as var over the non-NaN values"), ("nanstd", "as std over the non-NaN values"),
               ("nancumsum", "as cumsum with NaNs as 0"), ("nancumprod", "as cumprod with NaNs as 1")]:
    register(_n, None, globals()[_n], formula=_f)


def _with_initial(out: Any, x: Any, axis: int, value: float) -> Any:
    xp = namespace(x)
    shape = list(out.shape)
    shape[axis] = 1
    return concatenate([xp.full(tuple(shape), value, dtype=out.dtype), out], axis)


def _cumulative_axis(x: Any, axis: Any, name: str) -> int:
    if axis is None:
        if x.ndim > 1:
            from ..errors import ArgumentError

            raise ArgumentError(f"{name}: axis is required for arrays of more than 1 dimension, got {x.shape}")
        return 0
    return axis % builtins.max(x.ndim, 1)


def cumulative_sum(x: Any, axis: Any = None, include_initial: bool = False) -> Any:
    """NumPy 2's ``cumulative_sum`` (``cumsum``, optionally starting with 0)."""
    x = as_array(x)
    ax = _cumulative_axis(x, axis, "cumulative_sum")
    out = cumsum(x, ax)
    return _with_initial(out, x, ax, 0.0) if include_initial else out


def cumulative_prod(x: Any, axis: Any = None, include_initial: bool = False) -> Any:
    """NumPy 2's ``cumulative_prod`` (``cumprod``, optionally starting with 1)."""
    x = as_array(x)
    ax = _cumulative_axis(x, axis, "cumulative_prod")
    out = cumprod(x, ax)
    return _with_initial(out, x, ax, 1.0) if include_initial else out


register("cumulative_sum", None, cumulative_sum, formula="as cumsum")
register("cumulative_prod", None, cumulative_prod, formula="as cumprod")


def trapezoid(y: Any, x: Any = None, dx: float = 1.0, axis: int = -1) -> Any:
    """The trapezoidal rule along ``axis`` (``np.trapezoid``); differentiable in ``y`` and in ``x``."""
    y = as_array(y)
    from .shape import _axis

    ax = _axis(axis, y.ndim, "trapezoid")
    if x is None:
        d = dx
    else:
        d = diff(x, axis=-1 if x.ndim == 1 else ax)
        if x.ndim == 1:
            shape = [1] * y.ndim
            shape[ax] = d.shape[0]
            d = reshape(d, tuple(shape))
    mid = add(_along(y, ax, slice(1, None)), _along(y, ax, slice(None, -1)))
    return divide(sum(multiply(d, mid), ax), 2.0)


register("trapezoid", None, trapezoid, formula="Σ Δx (y_i + y_{i+1})/2 of recorded slices")


# -- quantiles: a recorded sort and linear interpolation between neighbours ----------------------------------------


def _quantile_args(name: str, a: Any, q: Any, axis: Any) -> tuple[np.ndarray, Any, int, tuple[int, ...]]:
    """``q`` as a float array checked to lie in [0, 1]; the array to sort with the reduced axes made one (the
    whole array flattened for ``axis=None``), that axis, and the result's shape under ``keepdims``.

    Python numbers and lists become arrays, and integers and booleans float64 (NumPy's quantiles of them are
    float64; they get no gradient).
    """
    from ..errors import ArgumentError
    from .shape import transpose

    qa = np.asarray(q, dtype=np.float64)
    if qa.size and (qa.min() < 0 or qa.max() > 1):
        raise ArgumentError(f"{name}: q must lie in [0, 1], got {q!r}")
    if not is_array(a):
        a = np.asarray(a)
    if a.dtype.kind in "biu":
        a = a.astype(np.float64)
    if axis is None:
        return qa, reshape(a, (-1,)), 0, (1,) * a.ndim
    try:
        axes = np.lib.array_utils.normalize_axis_tuple(axis, a.ndim)
    except (TypeError, ValueError) as err:
        raise ArgumentError(f"{name}: axis {axis!r} does not fit an array of shape {a.shape}: {err}") from err
    kshape = tuple(1 if i in axes else n for i, n in enumerate(a.shape))
    if len(axes) == 1:
        return qa, a, axes[0], kshape
    rest = [i for i in range(a.ndim) if i not in axes]  # the kept axes first, the reduced ones made one, last
    n = math.prod(a.shape[i] for i in axes)
    return qa, reshape(transpose(a, (*rest, *axes)), (*(a.shape[i] for i in rest), n)), len(rest), kshape


def _quantile_shape(val: Any, qa: np.ndarray, ax: int, kshape: tuple[int, ...], keepdims: bool) -> Any:
    """``val`` (the quantiles along ``ax``) with q's axes first, then the kept axes (size 1 under ``keepdims``)."""
    val = moveaxis(val, ax, 0)
    return reshape(val, (*qa.shape, *(kshape if keepdims else val.shape[1:])))


def _empty_quantile(src: Any, qa: np.ndarray, ax: int, kshape: tuple[int, ...], keepdims: bool) -> Any:
    """NaN for each quantile of an empty slice, as NumPy's ``median``/``nanquantile`` (``quantile`` raises)."""
    nan = add(sum(src, ax, keepdims=True), math.nan)  # recorded: the input gets its (empty) zero gradient
    shape = list(nan.shape)
    shape[ax] = qa.size
    return _quantile_shape(broadcast_to(nan, tuple(shape)), qa, ax, kshape, keepdims)


def quantile(a: Any, q: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """``np.quantile`` with the default (linear) method: sort, then interpolate between neighbours.

    The gradient goes to the (one or two) sorted values each quantile interpolates. ``q`` is a scalar or
    an array in [0, 1] (its axes come first in the result, as in NumPy). A slice holding a NaN gives NaN,
    as in NumPy (and no gradient there).
    """
    from ..errors import ShapeError

    qa, src, ax, kshape = _quantile_args("quantile", a, q, axis)
    if src.shape[ax] == 0:
        raise ShapeError(f"quantile: no quantile of an empty slice (shape {np.shape(a)}, axis {axis!r}); "
                         "NumPy raises IndexError here too (np.median gives NaN)")
    return _quantile_shape(_quantile_sorted(src, qa, ax), qa, ax, kshape, keepdims)


def _quantile_sorted(src: Any, qa: np.ndarray, ax: int, median: bool = False) -> Any:
    """The quantiles ``qa`` (flattened) of ``src`` along ``ax``, in place of that axis; NaN where a slice has one."""
    from .shape import take

    xp = namespace(src)
    s = sort(src, ax)
    n = s.shape[ax]
    if median:  # NumPy's median: the middle value, or the mean of the two (inf stays inf)
        lo_v = take(s, xp.asarray([(n - 1) // 2]), ax)
        val = lo_v if n % 2 else multiply(add(lo_v, take(s, xp.asarray([n // 2]), ax)), 0.5)
    else:
        pos = qa.reshape(-1) * (n - 1)
        lo = np.floor(pos).astype(np.intp)
        hi = np.minimum(lo + 1, n - 1)
        t = (pos - lo).astype(src.dtype)
        lo_v = take(s, xp.asarray(lo), ax)
        hi_v = take(s, xp.asarray(hi), ax)
        tshape = [1] * s.ndim
        tshape[ax] = qa.size
        val = add(lo_v, multiply(subtract(hi_v, lo_v), xp.asarray(t.reshape(tshape))))  # lo + (hi − lo)·t
    if src.dtype.kind in "fc":
        last = xp.take(s, xp.asarray([n - 1]), axis=ax)  # NaNs sort last
        has_nan = xp.isnan(last)
        if bool(xp.any(has_nan)):
            val = where(has_nan, math.nan, val)
    return val


def percentile(a: Any, q: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """``np.percentile`` (linear method): :func:`quantile` at q/100."""
    return quantile(a, np.asarray(q, dtype=np.float64) / 100.0, axis, keepdims)


def median(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """``np.median``: the middle value, or the mean of the two middle values; they take the gradient.

    NaN for an empty slice or one holding a NaN, as in NumPy.
    """
    qa, src, ax, kshape = _quantile_args("median", a, 0.5, axis)
    if src.shape[ax] == 0:
        return _empty_quantile(src, qa, ax, kshape, keepdims)
    return _quantile_shape(_quantile_sorted(src, qa, ax, median=True), qa, ax, kshape, keepdims)


register("quantile", None, quantile, formula="a recorded sort, then lo + (hi − lo)·t: G to the one or two neighbours")
register("percentile", None, percentile, formula="quantile at q/100")
register("median", None, median, formula="quantile at ½: G/2 to each middle value (all to the middle one)")


def nanquantile(a: Any, q: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """``np.nanquantile`` (linear method): :func:`quantile` of the non-NaN values of each slice (NaN where a
    slice has none). NaNs sort last, so each slice interpolates among its first ``count`` sorted values."""
    return _nanquantile(a, q, axis, keepdims)


def _nanquantile(a: Any, q: Any, axis: Any, keepdims: bool, median: bool = False) -> Any:
    """``median``: a slice with an odd count takes its middle value as it is (NumPy's median, where an
    interpolation between two infinities would be NaN)."""
    from ..backends import to_numpy
    from .shape import stack, take_along_axis

    xp = namespace(a)
    qa, src, ax, kshape = _quantile_args("nanquantile", a, q, axis)
    if src.shape[ax] == 0:
        return _empty_quantile(src, qa, ax, kshape, keepdims)
    s = sort(src, ax)
    count = to_numpy(xp.sum(~xp.isnan(src), axis=ax, keepdims=True))  # per slice, on the host
    last = np.maximum(count - 1, 0)
    vals = []
    for qi in qa.reshape(-1):
        pos = qi * last
        lo = np.floor(pos).astype(np.intp)
        hi = np.minimum(lo + 1, last).astype(np.intp)
        t = xp.asarray((pos - lo).astype(src.dtype))
        lo_v = take_along_axis(s, xp.asarray(lo), ax)
        hi_v = take_along_axis(s, xp.asarray(hi), ax)
        v = add(lo_v, multiply(subtract(hi_v, lo_v), t))
        if median:
            mid = multiply(add(lo_v, hi_v), 0.5)
            v = where(xp.asarray(pos == lo), lo_v, mid) if bool(np.any(pos == lo)) else mid
        empty = xp.asarray(count == 0)
        vals.append(where(empty, math.nan, v) if bool(np.any(count == 0)) else v)
    out = stack(vals, 0)  # (q, ..., 1 at ax, ...)
    rest = tuple(d for i, d in enumerate(out.shape[1:]) if i != ax)
    return reshape(out, (*qa.shape, *(kshape if keepdims else rest)))


def nanpercentile(a: Any, q: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """``np.nanpercentile`` (linear method): :func:`nanquantile` at q/100."""
    return nanquantile(a, np.asarray(q, dtype=np.float64) / 100.0, axis, keepdims)


def nanmedian(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """``np.nanmedian``: the median of the non-NaN values of each slice."""
    return _nanquantile(a, 0.5, axis, keepdims, median=True)


register("nanquantile", None, nanquantile, formula="as quantile over each slice's non-NaN values")
register("nanpercentile", None, nanpercentile, formula="nanquantile at q/100")
register("nanmedian", None, nanmedian, formula="nanquantile at ½")
