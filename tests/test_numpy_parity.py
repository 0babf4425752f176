"""NumPy's functions at their edges: the cases a NumPy user meets first, each against PyTorch or by definition."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import new_grad as ng

from .test_higher_order import close

# -- power at 0: derivatives that vanish are 0, not NaN ------------------------------------------------------------


@pytest.mark.parametrize(
    ("exponent", "order"),
    [(0.0, 1), (1.0, 2), (2.0, 3), (0, 1), (1, 2), (2, 3), (np.zeros(3), 1), (np.ones(3), 2), (np.full(3, 2.0), 3)],
)
def test_power_derivatives_at_zero_match_torch(exponent, order):
    x = np.array([0.0, 0.0, 1.5])
    g = lambda z: ng.power(z, exponent)  # noqa: E731
    for _ in range(order):
        g = (lambda h: ng.grad(lambda z: ng.sum(h(z))))(g)
    ours = g(x)
    t = torch.tensor(x, requires_grad=True)
    e = torch.tensor(exponent) if isinstance(exponent, np.ndarray) else exponent
    y = torch.pow(t, e)
    for k in range(order):
        (y,) = torch.autograd.grad(y.sum(), t, create_graph=k < order - 1)
    assert np.isfinite(ours).all()
    close(ours, y, what=f"d^{order}/dx^{order} x^{exponent}")


def test_power_exponent_gradient_at_zero_base():
    a, b = np.array([0.0, 2.0]), np.array([0.0, 0.0])
    ga, gb = ng.grad(lambda a, b: ng.sum(ng.power(a, b)), argnums=(0, 1))(a, b)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    ta_g, tb_g = torch.autograd.grad(torch.pow(ta, tb).sum(), (ta, tb))
    close(ga, ta_g, what="∂/∂a")
    close(gb, tb_g, what="∂/∂b")


# -- Python numbers and lists the forward accepts: the backward accepts them too ----------------------------------

A = np.array([1.0, 2.0, 3.0])

_PRODUCTS = {
    "dot-number": (lambda a: ng.dot(a, 2.0), lambda t: t * 2.0),
    "dot-number-left": (lambda a: ng.dot(2.0, a), lambda t: 2.0 * t),
    "dot-list": (lambda a: ng.dot(a, [1.0, -2.0, 0.5]), lambda t: t @ torch.tensor([1.0, -2.0, 0.5], dtype=t.dtype)),
    "inner-number": (lambda a: ng.inner(a, 2.0), lambda t: t * 2.0),
    "inner-list": (lambda a: ng.inner([1.0, -2.0, 0.5], a), lambda t: torch.tensor([1.0, -2.0, 0.5], dtype=t.dtype) @ t),
    "outer-number": (lambda a: ng.outer(a, 2.0), lambda t: torch.outer(t, torch.tensor([2.0], dtype=t.dtype))),
    "outer-list": (lambda a: ng.outer([1.0, 3.0], a), lambda t: torch.outer(torch.tensor([1.0, 3.0], dtype=t.dtype), t)),
    "tensordot-number": (lambda a: ng.tensordot(a, 2.0, 0), lambda t: t * 2.0),
    "einsum-number": (lambda a: ng.einsum("i,->i", a, 2.0), lambda t: t * 2.0),
    "einsum-list": (lambda a: ng.einsum("i,i->", a, [1.0, 2.0, 3.0]),
                    lambda t: (t * torch.tensor([1.0, 2.0, 3.0], dtype=t.dtype)).sum()),
    "vdot-list": (lambda a: ng.vdot(a, [1.0, 2.0, 3.0]), lambda t: (t * torch.tensor([1.0, 2.0, 3.0], dtype=t.dtype)).sum()),
    "average-list-weights": (lambda a: ng.average(a, weights=[1.0, 2.0, 3.0]),
                             lambda t: (t * torch.tensor([1.0, 2.0, 3.0], dtype=t.dtype)).sum() / 6.0),
    "average-list-weights-axis": (
        lambda a: ng.average(ng.reshape(a, (1, 3)), axis=1, weights=[1.0, 2.0, 3.0]),
        lambda t: (t.reshape(1, 3) * torch.tensor([1.0, 2.0, 3.0], dtype=t.dtype)).sum(1) / 6.0,
    ),
}


@pytest.mark.parametrize("name", list(_PRODUCTS))
def test_python_number_or_list_operand(name):
    f, f_t = _PRODUCTS[name]
    g = ng.grad(lambda a: ng.sum(f(a)))(A.copy())
    t = torch.tensor(A, requires_grad=True)
    (g_t,) = torch.autograd.grad(f_t(t).sum(), t)
    close(g, g_t, what=name)
    # and the second derivative goes through (zero: every one of these is linear in a)
    h = ng.grad(lambda a: ng.sum(ng.multiply(ng.grad(lambda b: ng.sum(ng.multiply(f(b), f(b))))(a), A)))(A.copy())
    t = torch.tensor(A, requires_grad=True)
    (gg,) = torch.autograd.grad((f_t(t) * f_t(t)).sum(), t, create_graph=True)
    (h_t,) = torch.autograd.grad((gg * torch.tensor(A)).sum(), t)
    close(h, h_t, what=f"{name}: second derivative")


def test_reciprocal_of_a_python_number():
    assert float(ng.reciprocal(0.5)) == 2.0
    assert float(ng.reciprocal(4)) == 0.25
    assert float(ng.grad(ng.reciprocal)(0.5)) == pytest.approx(-4.0)


# -- eigh and cholesky read one triangle: the gradient is that of the function as computed ------------------------


def _nonsymmetric(n=4, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n))
    return a @ a.T + n * np.eye(n) + np.triu(rng.standard_normal((n, n)), 1)  # a junk upper triangle


@pytest.mark.parametrize("uplo", ["L", "U"])
def test_eigh_gradcheck_on_its_own_function(uplo):
    S = _nonsymmetric()
    if uplo == "U":
        S = S.T.copy()
    assert ng.gradcheck(lambda a: ng.linalg.eigh(a, uplo)[0], (S,))
    assert ng.gradcheck(lambda a: ng.multiply(ng.linalg.eigh(a, uplo)[1], ng.linalg.eigh(a, uplo)[1]), (S,))
    sym = np.tril(S) + np.tril(S, -1).T if uplo == "L" else np.triu(S) + np.triu(S, 1).T
    assert ng.gradcheck(lambda a: ng.linalg.eigh(a, uplo)[0], (sym,))


def test_eigh_gradient_lives_on_the_triangle_read():
    S = _nonsymmetric()
    g = ng.grad(lambda a: ng.sum(ng.multiply(ng.linalg.eigh(a)[0], np.arange(1.0, 5.0))))(S)
    assert np.all(np.triu(g, 1) == 0)


def test_cholesky_gradcheck_on_its_own_function():
    P = _nonsymmetric()
    assert ng.gradcheck(ng.linalg.cholesky, (P,))
    g = ng.grad(lambda a: ng.sum(ng.linalg.cholesky(a)))(P)
    assert np.all(np.triu(g, 1) == 0)
    t = torch.tensor(P, requires_grad=True)
    (g_t,) = torch.autograd.grad(torch.linalg.cholesky(torch.tril(t) + torch.tril(t, -1).mT).sum(), t)
    close(g, g_t, what="cholesky gradient")


# -- complex input: differentiated (the gradient of a real L of z = x + iy is ∂L/∂x − i·∂L/∂y); tests/test_complex.py
# checks each op against PyTorch. Ops without a complex rule refuse with a clear error (never silently wrong).

Z = np.array([1 + 2j, -0.5 + 0.25j])
M = np.array([[1 + 1j, 0.5], [0.25j, 2.0]])

_COMPLEX = {
    "the reported case": lambda z: ng.sum(ng.abs(ng.multiply(z, z))),
    "elementwise": lambda z: ng.exp(z),
    "abs": lambda z: ng.abs(z),
    "sum": lambda z: ng.sum(z),
    "var": lambda z: ng.var(z),
    "reshape": lambda z: ng.reshape(z, (2, 1)),
    "getitem": lambda z: ng.getitem(z, 0),
    "concatenate": lambda z: ng.concatenate([z, z]),
    "einsum": lambda z: ng.einsum("i,i->", z, z),
    "matmul": lambda z: ng.matmul(ng.reshape(z, (1, 2)), M),
    "linalg.inv": lambda z: ng.linalg.inv(ng.multiply(M, ng.sum(z))),
    "linalg.norm": lambda z: ng.linalg.norm(z),
}


@pytest.mark.parametrize("name", list(_COMPLEX))
def test_complex_input_is_differentiated(name):
    f = _COMPLEX[name]
    assert ng.gradcheck(lambda z: ng.sum(ng.square(ng.abs(f(z)))), (Z.copy(),))
    g = ng.grad(lambda z: ng.sum(ng.square(ng.abs(f(z)))))(Z.copy())
    assert g.dtype == np.complex128 and g.shape == Z.shape


def test_complex_without_a_rule_is_refused():
    engine = ng.Autograd()
    with engine, pytest.raises(ng.errors.DtypeError, match="softmax.*complex"):
        ng.softmax(ng.outer(Z.copy(), Z))
    with pytest.raises(ng.errors.DtypeError, match="maximum.*complex"):
        ng.grad(lambda z: ng.sum(ng.abs(ng.maximum(z, z))))(Z.copy())


def test_complex_real_mix_gives_real_gradients():
    x = np.array([1.0, -2.0])
    g = ng.grad(lambda x: ng.sum(ng.abs(ng.multiply(x, 1j))))(x)
    assert g.dtype == np.float64
    np.testing.assert_allclose(g, np.sign(x))
    g = ng.grad(lambda x: ng.sum(ng.real(ng.multiply(x, ng.constant(Z.copy())))))(x)
    assert g.dtype == np.float64
    np.testing.assert_allclose(g, Z.real)


def test_complex_forward_outside_a_gradient_is_plain_numpy():
    np.testing.assert_array_equal(ng.multiply(Z, Z), Z * Z)  # no engine: nothing recorded, NumPy's result
    c = ng.constant(Z.copy())
    engine = ng.Autograd()
    with engine:  # constants need no gradient: computed, not recorded
        np.testing.assert_array_equal(ng.abs(ng.multiply(c, c)), np.abs(Z * Z))
    assert engine.operation_list == []


# -- the functions that complete the families: NumPy's forward, exactly ------------------------------------------

_R = np.random.default_rng(7)
X = _R.standard_normal((3, 4, 5))
V3 = _R.standard_normal((4, 3))

_FORWARD = {
    "remainder": (lambda m: m.remainder(X, 0.7),),
    "mod": (lambda m: m.mod(X, -0.6),),
    "fmod": (lambda m: m.fmod(X, 0.7),),
    "deg2rad": (lambda m: m.deg2rad(X),),
    "radians": (lambda m: m.radians(X),),
    "rad2deg": (lambda m: m.rad2deg(X),),
    "degrees": (lambda m: m.degrees(X),),
    "sinc": (lambda m: m.sinc(np.array([0.0, 0.5, -1.5])),),
    "logaddexp": (lambda m: m.logaddexp(X, 1.0),),
    "logaddexp2": (lambda m: m.logaddexp2(X, V3[0, 0]),),
    "nan_to_num": (lambda m: m.nan_to_num(np.array([np.nan, np.inf, -np.inf, 1.0])),),
    "fabs": (lambda m: m.fabs(X),),
    "real": (lambda m: m.real(X),),
    "imag": (lambda m: m.imag(X),),
    "conj": (lambda m: m.conj(X),),
    "conjugate": (lambda m: m.conjugate(X),),
    "angle": (lambda m: m.angle(np.array([-1.0, 2.0])),),
    "select": (lambda m: m.select([X > 0.5, X < -0.5], [X, 2 * X], -1.0),),
    "hsplit": (lambda m: m.hsplit(X, 2),),
    "vsplit": (lambda m: m.vsplit(X, [1]),),
    "dsplit": (lambda m: m.dsplit(X, 5),),
    "column_stack": (lambda m: m.column_stack([V3[:, 0], V3]),),
    "row_stack": (lambda m: m.vstack([V3[0], V3]) if m is np else m.row_stack([V3[0], V3]),),
    "dstack": (lambda m: m.dstack([V3, 2 * V3]),),
    "atleast_1d": (lambda m: m.atleast_1d(np.float64(2.0)),),
    "atleast_2d": (lambda m: m.atleast_2d(V3[0]),),
    "atleast_3d": (lambda m: m.atleast_3d(V3),),
    "flipud": (lambda m: m.flipud(X),),
    "fliplr": (lambda m: m.fliplr(X),),
    "rot90": (lambda m: [m.rot90(X, k, ax) for k in range(-1, 4) for ax in [(0, 1), (2, 0), (1, -1)]],),
    "rollaxis": (lambda m: [m.rollaxis(X, ax, st) for ax in range(-3, 3) for st in range(-3, 4)],),
    "linspace": (lambda m: [m.linspace(0.5, 2.0, 7), m.linspace(V3[0], V3[1], 4, endpoint=False, axis=1)],),
    "diff": (lambda m: [m.diff(X), m.diff(X, 2, 0), m.diff(X, axis=1, prepend=0.0, append=X[:, :1, :] * 2)],),
    "gradient": (lambda m: [m.gradient(X), m.gradient(X, 0.5, axis=2, edge_order=2)],),
    "partition": (lambda m: [m.partition(X, 2), m.partition(X, (0, 2), axis=1), m.partition(X, 7, axis=None)],),
    "ptp": (lambda m: m.ptp(X, axis=1),),
    "cross": (lambda m: [m.cross(V3, V3[::-1]), m.cross(V3[:, :2], V3), m.cross(V3.T, V3.T[:, ::-1], axis=0)],),
    "kron": (lambda m: m.kron(V3, X[0]),),
    "acos": (lambda m: m.acos(np.tanh(X)),),
    "pow": (lambda m: m.pow(np.abs(X), 1.5),),
}

_NANX = X.copy()
_NANX[0, 1, :] = np.nan
_NANX[1, ::2, 3] = np.nan
_A5, _V3 = _R.standard_normal(5), _R.standard_normal(3)

_FORWARD.update({
    "trunc": (lambda m: m.trunc(3 * X),),
    "rint": (lambda m: m.rint(3 * X),),
    "fix": (lambda m: m.fix(3 * X),),
    "around": (lambda m: m.around(X, 2),),
    "copysign": (lambda m: m.copysign(X, -V3[0, 0]),),
    "ldexp": (lambda m: m.ldexp(X, np.arange(5)),),
    "nansum": (lambda m: [m.nansum(_NANX), m.nansum(_NANX, 1), m.nansum(_NANX, (0, 2), keepdims=True)],),
    "nanprod": (lambda m: m.nanprod(_NANX, 2),),
    "nanmean": (lambda m: [m.nanmean(_NANX, 1), m.nanmean(_NANX)],),
    "nanmax": (lambda m: [m.nanmax(_NANX, 2), m.nanmax(_NANX)],),
    "nanmin": (lambda m: m.nanmin(_NANX, 0),),
    "nanvar": (lambda m: m.nanvar(_NANX, 1, ddof=1),),
    "nanstd": (lambda m: m.nanstd(_NANX, 2),),
    "nancumsum": (lambda m: m.nancumsum(_NANX, 1),),
    "nancumprod": (lambda m: m.nancumprod(_NANX, 2),),
    "cumulative_sum": (lambda m: [m.cumulative_sum(X, axis=1, include_initial=True), m.cumulative_sum(_A5)],),
    "cumulative_prod": (lambda m: m.cumulative_prod(X, axis=2),),
    "trapezoid": (lambda m: [m.trapezoid(X), m.trapezoid(X, dx=0.3, axis=0), m.trapezoid(X, np.cumsum(np.abs(_A5)))],),
    "quantile": (lambda m: [m.quantile(X, 0.3), m.quantile(X, [0.0, 0.25, 0.9, 1.0], axis=1),
                            m.quantile(X, [[0.2], [0.7]], axis=2, keepdims=True), m.quantile(X, 0.5, keepdims=True)],),
    "percentile": (lambda m: m.percentile(X, [10, 50], axis=0),),
    "median": (lambda m: [m.median(X), m.median(X, axis=1), m.median(X[:, :3], axis=-1, keepdims=True)],),
    "append": (lambda m: [m.append(X, V3), m.append(V3, V3 * 2, axis=0)],),
    "concat": (lambda m: m.concat([X, X], axis=1),),
    "permute_dims": (lambda m: m.permute_dims(X, (2, 0, 1)),),
    "matrix_transpose": (lambda m: [m.matrix_transpose(X), m.linalg.matrix_transpose(V3)],),
    "diagflat": (lambda m: m.diagflat(V3, -1),),
    "broadcast_arrays": (lambda m: m.broadcast_arrays(X, _A5, 2.0 * np.ones((4, 1))),),
    "unstack": (lambda m: m.unstack(X, axis=1),),
    "meshgrid": (lambda m: [*m.meshgrid(_A5, _V3), *m.meshgrid(_A5, _V3, V3[0], indexing="ij")],),
    "delete": (lambda m: [m.delete(X, [0, 2], axis=2), m.delete(X, 5)],),
    "compress": (lambda m: [m.compress([1, 0, 1], X, axis=0), m.compress([0, 1], X)],),
    "extract": (lambda m: m.extract(X > 0, X),),
    "logspace": (lambda m: [m.logspace(0.5, 2.0, 7), m.logspace(_V3, V3[0], 4, base=2.0, axis=1)],),
    "geomspace": (lambda m: m.geomspace(0.5, 20.0, 6),),
    "vander": (lambda m: [m.vander(_A5), m.vander(_A5, 3, increasing=True)],),
    "polyval": (lambda m: m.polyval(_V3, X),),
    "vecdot": (lambda m: [m.vecdot(X, _A5), m.linalg.vecdot(X, X[0], axis=-1)],),
    "matvec": (lambda m: m.matvec(X, _A5),),
    "vecmat": (lambda m: m.vecmat(V3[:, 0], X[0]),),
    "tensorinv": (lambda m: m.linalg.tensorinv(np.eye(6).reshape(6, 2, 3) + 0.1 * X.reshape(-1)[:36].reshape(6, 2, 3), 1),),
    "tensorsolve": (lambda m: m.linalg.tensorsolve(np.eye(6).reshape(2, 3, 6) + 0.1 * X.reshape(-1)[:36].reshape(2, 3, 6),
                                                   V3.reshape(-1)[:6].reshape(2, 3)),),
    "cond": (lambda m: [m.linalg.cond(X[:, :3, :3]), m.linalg.cond(X[0, :3, :3], "fro"), m.linalg.cond(X[0, :3, :3], -2),
                        m.linalg.cond(X[0, :3, :3], 1)],),
    "convolve": (lambda m: [m.convolve(a, v, mode) for a, v in [(_A5, _V3), (_V3, _A5), (_V3, _V3[:1])]
                            for mode in ("full", "same", "valid")],),
    "correlate": (lambda m: [m.correlate(a, v, mode) for a, v in [(_A5, _V3), (_V3, _A5), (_A5[:4], _V3[:2])]
                             for mode in ("full", "same", "valid")],),
    "cov": (lambda m: [m.cov(X[0]), m.cov(X[0], rowvar=False), m.cov(_A5), m.cov(X[0], X[1], bias=True)],),
    "corrcoef": (lambda m: [m.corrcoef(X[0]), m.corrcoef(X[0], X[1], rowvar=False)],),
})

_FORWARD.update({
    "floor_divide": (lambda m: m.floor_divide(X, 0.3),),
    "divmod": (lambda m: m.divmod(X, -0.7),),
    "modf": (lambda m: m.modf(3 * X),),
    "heaviside": (lambda m: m.heaviside(np.round(X), 0.5),),
    "copy": (lambda m: m.copy(X),),
    "resize": (lambda m: [m.resize(V3, (5, 7)), m.resize(V3, 3)],),
    "ediff1d": (lambda m: [m.ediff1d(X), m.ediff1d(V3, to_begin=[1.0, 2.0], to_end=5.0)],),
    "block": (lambda m: [m.block([[V3, V3], [V3[:1], V3[:1]]]), m.block([_A5, _V3]), m.block([[X[0]], [X[1]]])],),
    "interp": (lambda m: [m.interp(X, [-1.0, 0.0, 0.5, 2.0], [3.0, -1.0, 2.0, 0.0]),
                          m.interp(X, [-1.0, 0.0, 0.5], [3.0, -1.0, 2.0], left=-9.0, right=9.0),
                          m.interp(np.array([-1.0, 0.5, 0.7]), [-1.0, 0.0, 0.5], [3.0, -1.0, 2.0])],),
    "lstsq": (lambda m: [r for i, r in enumerate(m.linalg.lstsq(X[0], V3[:, 0][:, None] @ np.ones((1, 2)) + X[1, :, :2],
                                                                   rcond=None)) if i != 2],),
})

_ALLNAN = np.array([[np.nan, np.nan], [1.0, np.nan]])
_FORWARD.update({
    "nanquantile": (lambda m: [m.nanquantile(_NANX, 0.3), m.nanquantile(_NANX, [0.0, 0.4, 1.0], axis=1),
                               m.nanquantile(_NANX, [[0.2], [0.9]], axis=2, keepdims=True),
                               m.nanquantile(_NANX, 0.5, keepdims=True)],),
    "nanpercentile": (lambda m: m.nanpercentile(_NANX, [10, 50], axis=0),),
    "nanmedian": (lambda m: [m.nanmedian(_NANX), m.nanmedian(_NANX, axis=2), m.nanmedian(_ALLNAN, axis=1)],),
})

_IDX = np.array([[0, 1, 2, 1], [2, 2, 0, 1], [1, 0, 0, 0]])
_FORWARD.update({
    "unwrap": (lambda m: [m.unwrap(np.cumsum(3 * _A5)), m.unwrap(4 * X, axis=0), m.unwrap(X, period=1.0)],),
    "real_if_close": (lambda m: m.real_if_close(X),),
    "frexp": (lambda m: m.frexp(X),),
    "trim_zeros": (lambda m: [m.trim_zeros(np.array([0.0, 0.0, 1.0, 0.0, 2.0, 0.0]), t) for t in ("fb", "f", "b")],),
    "full": (lambda m: [m.full((2, 5), _A5), m.full_like(X, np.array(2.5))],),
    "choose": (lambda m: m.choose(_IDX, [X[..., 0], 2 * X[..., 1], 3 * X[0, :, 2]]),),
    "polynomials": (lambda m: [m.polyadd(_A5, _V3), m.polysub(_V3, _A5), m.polymul(_A5, _V3), m.polyder(_A5, 2),
                               m.polyint(_V3, 2, [1.0, -1.0]), m.polyfit(np.linspace(0, 1, 7), X[0, :, 0].repeat(2)[:7], 3)],),
})

_FORWARD.update({
    "nextafter": (lambda m: m.nextafter(X, 1.0),),
    "spacing": (lambda m: m.spacing(X),),
    "insert": (lambda m: [m.insert(_A5, [3, 1], [7.0, 8.0]), m.insert(X, 1, 5.0), m.insert(X[0], [0, 2], X[0][:, :2], axis=1),
                          m.insert(X, 2, np.arange(20.0).reshape(4, 5), axis=0), m.insert(_A5, slice(0, 4, 2), 1.0)],),
    "piecewise": (lambda m: m.piecewise(X, [X > 0.5, X < -0.5], [m.sqrt, m.negative, 7.0]),),
    "apply_along_axis": (lambda m: [m.apply_along_axis(lambda v: m.sum(m.exp(v)), 1, X),
                                    m.apply_along_axis(m.cumsum, 2, X)],),
    "poly": (lambda m: m.poly(_A5),),
})


def _flatten(x):
    return [np.asarray(a) for a in x] if isinstance(x, (list, tuple)) else [np.asarray(x)]


@pytest.mark.parametrize("name", list(_FORWARD))
def test_forward_is_numpys(name):
    (f,) = _FORWARD[name]
    with np.errstate(all="ignore"):
        ours, theirs = _flatten(f(ng)), _flatten(f(np))
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_linalg_additions_forward_is_numpys():
    A = _R.standard_normal((2, 3, 3))
    np.testing.assert_allclose(ng.linalg.matrix_power(A, -3), np.linalg.matrix_power(A, -3), rtol=1e-10)
    np.testing.assert_allclose(ng.linalg.multi_dot([V3[:, 0], V3, V3.T]), np.linalg.multi_dot([V3[:, 0], V3, V3.T]))
    S = A + np.swapaxes(A, -1, -2)
    np.testing.assert_allclose(ng.linalg.eigvalsh(S, "U"), np.linalg.eigvalsh(S, "U"))
    T = np.triu(A) + 3 * np.eye(3)  # real eigenvalues
    np.testing.assert_allclose(ng.linalg.eigvals(T), np.linalg.eigvals(T))


@pytest.mark.parametrize("name", ["real", "imag", "angle", "conj", "nan_to_num"])
def test_complex_parts_take_complex_input(name):
    assert ng.gradcheck(lambda z: getattr(ng, name)(z), (Z.copy(),))
    np.testing.assert_array_equal(getattr(ng, name)(Z), getattr(np, name)(Z))


def test_fabs_refuses_complex_input():
    with pytest.raises((ng.errors.DtypeError, TypeError)):  # NumPy's fabs has no complex loop
        ng.grad(lambda z: ng.sum(ng.abs(ng.fabs(z))))(Z.copy())


def test_eig_with_complex_eigenvalues_is_differentiated():
    rot = np.array([[0.5, -1.0], [1.0, 0.25]])  # eigenvalues 0.375 ± 0.99i
    g = ng.grad(lambda a: ng.sum(ng.abs(ng.linalg.eigvals(a))))(rot)
    assert g.dtype == np.float64  # a real matrix gets a real gradient
    t = torch.tensor(rot, requires_grad=True)
    torch.linalg.eigvals(t).abs().sum().backward()
    np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(ng.linalg.eigvals(rot), np.linalg.eigvals(rot))


def test_numpy_spellings_inside_the_transforms_reach_the_new_ops():
    """Plain NumPy on traced values dispatches by name: the new functions and NumPy 2's spellings included."""
    x = np.linspace(0.1, 0.9, 4)
    f_np = lambda x: np.sum(np.mod(x, 0.3) + np.acos(x) + np.pow(x, 3) + np.conjugate(x) + np.full_like(x, x[0]))  # noqa: E731
    f_ng = lambda x: ng.sum(ng.add(ng.add(ng.add(ng.add(ng.remainder(x, 0.3), ng.arccos(x)), ng.power(x, 3)), x),  # noqa: E731
                                   ng.full_like(x, ng.getitem(x, 0))))
    close(ng.grad(f_np)(x), ng.grad(f_ng)(x), what="NumPy spellings")
    g = ng.grad(lambda x: np.sum(np.insert(x, 1, 0.5) * np.arange(1.0, 6.0)))(x)
    close(g, np.array([1.0, 3.0, 4.0, 5.0]), what="np.insert")


def test_index_add_broadcasts_values_over_a_repeated_multidimensional_key():
    # NumPy's add.at alone adds the (2,) values once here; the op adds them over the whole (2, 2) selection
    a, v, key = np.zeros(1), np.array([1.0, 2.0]), np.array([[0, 0], [0, 0]])
    np.testing.assert_array_equal(ng.index_add(a, key, v), [6.0])
    ng.gradcheck(lambda a, v: ng.index_add(a, key, v), (a, v))


@pytest.mark.parametrize("name,flag", [("ascontiguousarray", "C_CONTIGUOUS"), ("asfortranarray", "F_CONTIGUOUS")])
def test_memory_layout_conversions_are_recorded_copies(name, flag):
    # NumPy's own function returns a new, unrecorded array for a transposed input: the gradient would stop there
    x = np.arange(6.0).reshape(2, 3)
    w = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    y = getattr(ng, name)(ng.transpose(x))
    assert y.flags[flag]
    g = ng.grad(lambda x: ng.sum(ng.multiply(getattr(ng, name)(ng.transpose(x)), w)))(x)
    np.testing.assert_array_equal(g, w.T)
