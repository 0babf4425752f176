"""NumPy's functions at inputs the property tests do not draw: integer and boolean arrays, Python numbers, NaN and
inf, empty slices, tuple axes. Values against NumPy, gradients against PyTorch or central differences."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import new_grad as ng
from new_grad.errors import ArgumentError, GradientError, ShapeError

from .test_higher_order import close


def _numpy(f, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy warns on NaN and empty slices
        return f(*args, **kw)


# -- quantiles ------------------------------------------------------------------------------------------------------

_QUANTILE_INPUTS = {
    "int-even": (np.array([4, 1, 3, 2]), {}),
    "int-axis": (np.array([[1, 2], [3, 4]]), {"axis": 0}),
    "bool": (np.array([True, False]), {}),
    "python-float": (3.0, {}),
    "list": ([3.0, 1.0], {}),
    "nan": (np.array([1.0, np.nan, 2.0, 0.5]), {}),
    "nan-row": (np.array([[1.0, np.nan, 2.0], [3.0, 1.0, 2.0]]), {"axis": 1}),
    "inf-middle": (np.array([1.0, np.inf, np.inf]), {}),
    "inf-pair": (np.array([np.inf, np.inf]), {}),
    "tuple-axis": (np.arange(24.0).reshape(2, 3, 4) % 7, {"axis": (0, 2)}),
    "tuple-axis-keepdims": (np.arange(24.0).reshape(2, 3, 4) % 5, {"axis": (2, 0), "keepdims": True}),
    "empty-axis": (np.zeros((0, 3)), {"axis": 0}),
    "empty": (np.zeros((2, 0)), {}),
}


@pytest.mark.parametrize("name", list(_QUANTILE_INPUTS))
@pytest.mark.parametrize("fn", ["median", "nanmedian", "quantile", "percentile", "nanquantile"])
def test_quantiles_give_numpys_value(fn, name):
    a, kw = _QUANTILE_INPUTS[name]
    extra = {"quantile": (0.3,), "nanquantile": ([0.3, 0.5],), "percentile": ([10, 75],)}.get(fn, ())
    if fn in ("quantile", "percentile") and name.startswith("empty"):
        with pytest.raises(ShapeError, match="empty slice"):  # NumPy raises IndexError
            getattr(ng, fn)(a, *extra, **kw)
        return
    if "median" not in fn and name in ("bool", "inf-middle"):
        return  # NumPy's quantile refuses booleans, and interpolates between 1 and inf as NaN
    ours = getattr(ng, fn)(a, *extra, **kw)
    ref = _numpy(getattr(np, fn), a, *extra, **kw)
    if fn == "nanquantile" and name.startswith("empty"):  # NumPy drops q's axis here (it keeps it otherwise)
        ref = np.stack([ref, ref])
    assert np.shape(ours) == np.shape(ref) and np.asarray(ours).dtype == np.asarray(ref).dtype
    np.testing.assert_allclose(ours, ref, rtol=1e-12, equal_nan=True)


def test_median_over_tuple_axes_and_nan_slices_differentiates():
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    assert ng.gradcheck(lambda a: ng.median(a, axis=(0, 2)), x)
    assert ng.gradcheck(lambda a: ng.quantile(a, [0.3, 0.6], axis=(2, 1), keepdims=True), x)
    # a slice holding a NaN is NaN and passes no gradient; the others are as PyTorch's
    y = np.array([[1.0, np.nan, 2.0], [3.0, 1.0, 2.0]])
    g = ng.grad(lambda a: ng.nansum(ng.median(a, axis=1)))(y)
    np.testing.assert_array_equal(g, [[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert ng.grad(lambda a: ng.sum(ng.median(a, axis=0)))(np.zeros((0, 3))).shape == (0, 3)


@pytest.mark.parametrize("axis", [3, (0, 0), (0, -4)])
def test_quantile_axis_out_of_range_is_an_argument_error(axis):
    with pytest.raises(ArgumentError, match="axis"):
        ng.median(np.zeros((2, 3, 4)), axis=axis)


def test_median_of_float32_matches_torch():
    x = np.array([[3.0, 1.0, 2.0, 5.0], [0.5, 0.25, 4.0, 8.0]], dtype=np.float32)
    g = ng.grad(lambda a: ng.sum(ng.multiply(ng.median(a, axis=1), np.array([1.0, 2.0], np.float32))))(x)
    t = torch.tensor(x, requires_grad=True)
    (tg,) = torch.autograd.grad((torch.quantile(t, 0.5, dim=1) * torch.tensor([1.0, 2.0])).sum(), t)
    assert g.dtype == np.float32
    close(g, tg, what="median float32")


# -- einsum: an axis one operand has at size 1, another at full size ----------------------------------------------


@pytest.mark.parametrize(
    ("subscripts", "shapes"),
    [("ij,ij->i", [(2, 1), (2, 3)]), ("ij,ij,ij->j", [(2, 1), (2, 3), (1, 3)]), ("...j,...j->...", [(2, 1), (1, 3)])],
)
def test_einsum_size_one_broadcast_matches_torch(subscripts, shapes):
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(s) for s in shapes]
    gs = ng.grad(lambda *a: ng.sum(ng.einsum(subscripts, *a)), argnums=tuple(range(len(xs))))(*xs)
    ts = [torch.tensor(x, requires_grad=True) for x in xs]
    tgs = torch.autograd.grad(torch.einsum(subscripts, *[t.expand(torch.broadcast_shapes(*shapes)) for t in ts]).sum(), ts)
    for g, tg in zip(gs, tgs):
        close(g, tg, what=subscripts)


# -- take_along_axis: indices broadcast against the array off the axis, as in NumPy --------------------------------


@pytest.mark.parametrize(("shape", "ishape", "axis"), [((4, 5), (1, 3), 1), ((1, 5), (4, 3), 1), ((4, 1, 5), (1, 3, 2), 2)])
def test_take_along_axis_with_broadcast_indices_matches_torch(shape, ishape, axis):
    rng = np.random.default_rng(0)
    a, idx = rng.standard_normal(shape), rng.integers(0, shape[axis], ishape)
    w = rng.standard_normal(np.take_along_axis(a, idx, axis=axis).shape)
    g = ng.grad(lambda a: ng.sum(ng.multiply(ng.take_along_axis(a, idx, axis=axis), w)))(a)
    t = torch.tensor(a, requires_grad=True)
    out_shape = torch.broadcast_shapes(tuple(1 if i == axis else n for i, n in enumerate(shape)), ishape)
    ti = torch.tensor(idx).expand(out_shape)
    tt = t.expand(tuple(n if i == axis else out_shape[i] for i, n in enumerate(shape)))
    (tg,) = torch.autograd.grad((torch.take_along_dim(tt, ti, axis) * torch.tensor(w)).sum(), t)
    close(g, tg, what="take_along_axis")


# -- det at a singular matrix: no inverse, but the gradient (the cofactor matrix) exists -------------------------

_SINGULAR = {
    "rank-1": np.array([[1.0, 2.0], [2.0, 4.0]]),
    "rank-2": np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]]),
    "zeros": np.zeros((3, 3)),
    "batch-one-singular": np.array([[[1.0, 2.0], [2.0, 4.0]], [[1.0, 0.5], [0.0, 3.0]]]),
    "1x1-zero": np.zeros((1, 1)),
}


@pytest.mark.parametrize("name", list(_SINGULAR))
def test_det_gradient_at_a_singular_matrix_matches_torch(name):
    a = _SINGULAR[name]
    g = ng.grad(lambda a: ng.sum(ng.linalg.det(a)))(a)
    t = torch.tensor(a, requires_grad=True)
    (tg,) = torch.autograd.grad(torch.linalg.det(t).sum(), t, create_graph=True)
    close(g, tg, what=f"det {name}")
    if name == "rank-2":  # distinct singular values: the second derivative too
        h = ng.grad(lambda a: ng.sum(ng.grad(lambda b: ng.sum(ng.linalg.det(b)))(a)))(a)
        (th,) = torch.autograd.grad(tg.sum(), t)
        np.testing.assert_allclose(h, th.numpy(), atol=1e-12)


def test_det_gradient_at_a_singular_complex_matrix():
    z = np.array([[1 + 1j, 2.0], [2 + 2j, 4.0]])
    assert ng.gradcheck(lambda a: ng.real(ng.linalg.det(a)), z)
    assert ng.gradcheck(lambda a: ng.imag(ng.linalg.det(a)), z)


def test_slogdet_gradient_at_a_singular_matrix_is_a_clear_error():
    with pytest.raises(GradientError, match=r"linalg.slogdet: the matrix \(2, 2\) float64 is singular"):
        ng.grad(lambda a: ng.linalg.slogdet(a)[1])(_SINGULAR["rank-1"])


# -- NaN-ignoring reductions of integers and booleans: NumPy's plain reductions (its value and dtype) -------------


@pytest.mark.parametrize("fn", ["nansum", "nanprod", "nanmax", "nanmin", "nancumsum", "nancumprod", "nanmean",
                                "nanvar", "nanstd"])
@pytest.mark.parametrize("dtype", [np.int64, np.bool_])
@pytest.mark.parametrize("axis", [None, 1])
def test_nan_reductions_of_integers_and_booleans_are_numpys(fn, dtype, axis):
    a = np.array([[1, 0, 3], [4, 5, 1]]).astype(dtype)
    ours, ref = getattr(ng, fn)(a, axis=axis), getattr(np, fn)(a, axis=axis)
    assert np.asarray(ours).dtype == np.asarray(ref).dtype
    np.testing.assert_allclose(ours, ref)


# -- Python lists and numbers, accepted as NumPy accepts them (constants: no gradient for them) --------------------

_L = [[0.3, 0.6, 0.2], [0.1, 0.4, 0.8]]
_LIST_CALLS = {
    "negative": lambda m: m.negative(_L), "positive": lambda m: m.positive(_L), "deg2rad": lambda m: m.deg2rad(_L),
    "rad2deg": lambda m: m.rad2deg(_L), "degrees": lambda m: m.degrees(_L), "radians": lambda m: m.radians(_L),
    "reciprocal": lambda m: m.reciprocal(_L), "diff": lambda m: m.diff(_L), "fliplr": lambda m: m.fliplr(_L),
    "flipud": lambda m: m.flipud(_L), "rot90": lambda m: m.rot90(_L), "matrix_transpose": lambda m: m.matrix_transpose(_L),
    "vander": lambda m: m.vander(_L[0]), "gradient": lambda m: m.gradient(_L[0]),
    "trapezoid": lambda m: m.trapezoid(_L), "cumulative_sum": lambda m: m.cumulative_sum(0.5),
    "cumulative_prod": lambda m: m.cumulative_prod(_L[0]), "nanmean": lambda m: m.nanmean(_L),
    "nanvar": lambda m: m.nanvar(0.5), "nanstd": lambda m: m.nanstd(_L, axis=0), "svd": lambda m: m.linalg.svd(_L)[1],
    "qr": lambda m: np.abs(m.linalg.qr(_L)[1]), "full_like": lambda m: m.full_like(_L, 2.0),
    "matvec": lambda m: m.matvec(_L, [1.0, 2.0, 3.0]), "lstsq": lambda m: m.linalg.lstsq(_L, [1.0, 2.0])[0],
    "polyval": lambda m: m.polyval([1.0, 2.0], _L),
}
_ACTIVATIONS = {
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "softmax": lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True),
    "log_softmax": lambda x: x - np.log(np.exp(x).sum(-1, keepdims=True)), "logsumexp": lambda x: np.log(np.exp(x).sum()),
    "silu": lambda x: x / (1 + np.exp(-x)), "softplus": lambda x: np.log1p(np.exp(x)), "elu": lambda x: x,
    "selu": lambda x: 1.0507009873554805 * x, "leaky_relu": lambda x: x, "gelu": None,
}


@pytest.mark.parametrize("name", list(_LIST_CALLS))
def test_a_python_list_or_number_is_taken_as_numpy_takes_it(name):
    ours = _LIST_CALLS[name](ng)
    np.testing.assert_allclose(ours, _LIST_CALLS[name](np), rtol=1e-12)
    with ng.Autograd():  # recording: the list is a constant, the op still computes
        np.testing.assert_allclose(_LIST_CALLS[name](ng), ours, rtol=1e-12)


@pytest.mark.parametrize("name", list(_ACTIVATIONS))
def test_activations_take_python_lists(name):
    ours = getattr(ng, name)(_L)
    np.testing.assert_allclose(ours, getattr(ng, name)(np.array(_L)), rtol=1e-12)
    if _ACTIVATIONS[name] is not None:
        np.testing.assert_allclose(ours, _ACTIVATIONS[name](np.array(_L)), rtol=1e-12)


@pytest.mark.parametrize("side", [0, 1])
@pytest.mark.parametrize("name", ["power", "float_power", "arctan2"])
def test_a_list_operand_of_a_binary_op_has_no_gradient_and_the_array_has_its_own(name, side):
    a, other = np.array([[0.5, 1.5], [2.0, 0.7]]), [[1.0, 2.0], [0.5, 3.0]]

    def f(x):
        return ng.sum(getattr(ng, name)(x, other) if side == 0 else getattr(ng, name)(other, x))

    g = ng.grad(f)(a)
    t, o = torch.tensor(a, requires_grad=True), torch.tensor(other)
    tfn = {"power": torch.pow, "float_power": torch.float_power, "arctan2": torch.atan2}[name]
    (tg,) = torch.autograd.grad((tfn(t, o) if side == 0 else tfn(o, t)).sum(), t)
    close(g, tg, what=name)


# -- arctan2 at the origin: no derivative there; 0 as PyTorch's, not a NaN that poisons every other entry ---------


def test_arctan2_gradient_at_the_origin_matches_torch():
    y, x = np.array([0.0, 1.0, 0.0]), np.array([0.0, 1.0, 2.0])
    gy, gx = ng.grad(lambda y, x: ng.sum(ng.arctan2(y, x)), argnums=(0, 1))(y, x)
    ty, tx = torch.tensor(y, requires_grad=True), torch.tensor(x, requires_grad=True)
    tgy, tgx = torch.autograd.grad(torch.atan2(ty, tx).sum(), (ty, tx))
    close(gy, tgy, what="∂/∂y")
    close(gx, tgx, what="∂/∂x")


# -- geomspace between two negative numbers, as NumPy ---------------------------------------------------------------


@pytest.mark.parametrize(("start", "stop"), [(-1.0, -8.0), (np.array([-1.0, 2.0]), np.array([-8.0, 32.0]))])
@pytest.mark.parametrize("axis", [0, -1])
def test_geomspace_of_negative_ends(start, stop, axis):
    np.testing.assert_allclose(ng.geomspace(start, stop, 4, axis=axis), np.geomspace(start, stop, 4, axis=axis))
    assert ng.gradcheck(lambda a, b: ng.geomspace(a, b, 4, axis=axis), (np.asarray(start), np.asarray(stop)))


# -- polynomials: NumPy's coefficient arrays (polymul drops leading zeros; a constant's derivative is empty) -------


@pytest.mark.parametrize(("fn", "args"), [
    ("polymul", ([0.0, 1.0, 2.0], [3.0, 1.0])), ("polymul", ([0.0, 0.0], [3.0, 1.0])), ("polymul", ([1.0, 2.0], [0.0])),
    ("polyder", ([1.0, 2.0, 3.0], 5)), ("polyder", ([1.0, 2.0, 3.0], 3)), ("polyder", ([5.0], 1)),
])
def test_polynomial_coefficients_are_numpys(fn, args):
    a = [np.array(x) if isinstance(x, list) else x for x in args]
    ours, ref = getattr(ng, fn)(*a), getattr(np, fn)(*a)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref)


def test_polymul_gradient_skips_a_leading_zero():
    a, b = np.array([0.0, 1.0, 2.0]), np.array([3.0, 1.0])
    ga, gb = ng.grad(lambda a, b: ng.sum(ng.multiply(ng.polymul(a, b), np.array([1.0, 2.0, 4.0]))), argnums=(0, 1))(a, b)
    np.testing.assert_allclose(ga, [0.0, 5.0, 10.0])  # the leading zero is not a coefficient of NumPy's product
    np.testing.assert_allclose(gb, [5.0, 10.0])
    assert ng.grad(lambda p: ng.sum(ng.polyder(p, 3)))(np.array([1.0, 2.0, 3.0])).shape == (3,)


# -- interp: the abscissae xp are an input like the others (their gradient was silently zero) ---------------------


def test_interp_differentiates_its_abscissae():
    x, xp, fp = np.array([-0.5, 0.3, 1.2, 1.7, 2.5]), np.array([0.0, 1.0, 2.0]), np.array([0.4, -1.0, 2.0])
    assert ng.gradcheck(lambda x, xp, fp: ng.interp(x, xp, fp), (x, xp, fp))
    assert ng.gradcheck(lambda x, xp, fp: ng.interp(x, xp, fp, left=-1.0, right=2.0), (x, xp, fp))
    g = ng.grad(lambda xp: ng.sum(ng.interp(x.astype(np.float32), xp, fp)))(xp.astype(np.float32))
    assert g.dtype == np.float32 and np.abs(g).sum() > 0
