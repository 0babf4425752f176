"""Complex inputs: forward values against NumPy and PyTorch, gradients against PyTorch complex128.

new_grad's convention is HIPS autograd's and JAX's: for a real L of z = x + iy the gradient is ∂L/∂x − i·∂L/∂y,
the conjugate of what PyTorch puts in ``z.grad``. So with an upstream cotangent ``G`` given to PyTorch
(``torch.autograd.grad(out, inputs, G)``), new_grad's backward with divergence ``conj(G)`` gives the conjugate of
PyTorch's gradient for complex inputs, and the same real value for real inputs.

The ops walked are the registry's cases (tests/cases/) of every op with a complex rule: the same shapes, kwargs and
domains, with a random imaginary part added to each differentiable input.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import new_grad as ng
from new_grad.ops import supports_complex
from new_grad.ops._core import builtin_ops

from .cases import ALL_CASES
from .opcheck import OpCase, assert_close, draw_arrays, run_new_grad

RTOL, ATOL = 1e-7, 1e-9

# registry cases whose op has a complex rule and whose PyTorch twin takes complex tensors
_OPS = {
    "add", "subtract", "multiply", "divide", "negative", "power", "exp", "log", "tanh", "sigmoid", "positive",
    "square", "reciprocal", "abs", "exp2", "expm1", "log2", "log10", "log1p", "sqrt", "sin", "cos", "tan",
    "arcsin", "arccos", "arctan", "sinh", "cosh", "arcsinh", "arccosh", "arctanh", "sinc", "where", "real", "imag",
    "conj", "angle", "nan_to_num", "deg2rad", "rad2deg", "radians", "degrees",
    "sum", "mean", "prod", "var", "std", "cumsum", "cumprod", "average", "nansum", "nanmean", "nanprod", "diff",
    "cumulative_sum", "cumulative_prod", "trapezoid",
    "reshape", "transpose", "swapaxes", "expand_dims", "broadcast_to", "identity", "ravel", "squeeze", "moveaxis",
    "concatenate", "stack", "hstack", "vstack", "flip", "roll", "tile", "repeat", "pad", "diagonal", "diag", "trace",
    "triu", "tril", "take", "take_along_axis", "getitem", "index_add", "index_update", "column_stack", "dstack",
    "atleast_2d", "flipud", "fliplr", "rot90", "append", "kron", "cross", "linspace", "copy", "row_stack",
    "ascontiguousarray", "asfortranarray",
    "float_power",
    "matmul", "outer", "einsum", "dot", "inner", "vdot", "tensordot", "vecdot", "matvec", "vecmat",
    "linalg.inv", "linalg.det", "linalg.slogdet", "linalg.solve", "linalg.pinv", "linalg.norm",
    "linalg.matrix_power", "linalg.multi_dot", "linalg.tensorinv", "linalg.tensorsolve", "convolve", "correlate",
    "polyval", "polymul", "polyadd",
}  # fmt: skip
# cases whose domain or kwargs make no sense for complex input (integer-valued ties, kinks of real functions,
# comparisons inside, spectral norms), or whose PyTorch twin has no complex kernel or gradient (nan_to_num:
# checked by central differences below)
_SKIP = {"abs-at-zero", "nan_to_num", "nan_to_num-specials", "std-zero-spread", "where-scalar-branch",
         "linalg.norm-matrix_norm"}


def _conj_first(f):
    return lambda a, *rest, **kw: f(a.conj(), *rest, **kw)


def _conj_second(f):
    return lambda a, v, **kw: f(a, v.conj(), **kw)


_DEG = math.pi / 180
# PyTorch twins for complex input where the registry's (written for real input) differ: NumPy's vdot, vecdot and
# vecmat conjugate their first argument, correlate its second; PyTorch's deg2rad has no complex kernel
_TWINS = {
    "vdot": _conj_first, "vecdot": _conj_first, "vecmat": _conj_first, "correlate": _conj_second,
    "imag": lambda f: lambda t: torch.imag(t) if t.is_complex() else f(t),
    "deg2rad": lambda f: lambda t: t * _DEG, "radians": lambda f: lambda t: t * _DEG,
    "rad2deg": lambda f: lambda t: t / _DEG, "degrees": lambda f: lambda t: t / _DEG,
}  # fmt: skip


def _no_spectral(kwargs):
    """The spectral and nuclear norms of a complex matrix are not supported: draw the Frobenius norm instead."""

    def draw(data, shapes):
        kw = kwargs(data, shapes)
        if isinstance(kw.get("axis"), tuple) and kw.get("ord") in (2, -2, "nuc"):
            kw["ord"] = "fro"
        return kw

    return draw


def _adapt(c: OpCase) -> OpCase:
    if c.op in _TWINS:
        c = replace(c, torch_fn=_TWINS[c.op](c.torch_fn))
    return replace(c, kwargs=_no_spectral(c.kwargs)) if c.id == "linalg.norm" else c


CASES = [
    _adapt(c)
    for c in ALL_CASES
    if c.op in _OPS and c.torch_fn is not None and c.id not in _SKIP
] + [
    OpCase("linspace", lambda s, e: s + (e - s) * torch.linspace(0, 1, 5, dtype=torch.float64), 2,
           ng_fn=lambda s, e: ng.linspace(s, e, 5), shapes=[(), ()], name="endpoints"),
]


def _complexify(case: OpCase, arrays: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Add a random imaginary part to every differentiable float input (kept off real branch cuts by the case's
    domain, applied to the real part)."""
    out = []
    for i, a in enumerate(arrays):
        if i in case.nondiff or a.dtype.kind != "f":
            out.append(a)
        else:
            out.append(np.asarray(a + 0.5j * rng.standard_normal(a.shape)))
    return out


def _ng_grads(fn, arrays, kwargs, divergence, nondiff=()):
    return run_new_grad(fn, arrays, kwargs, nondiff=nondiff, divergence=divergence)


def _torch(fn, arrays, kwargs, G, nondiff=()):
    ts = [torch.tensor(a, requires_grad=i not in nondiff and a.dtype.kind in "fc") for i, a in enumerate(arrays)]
    out = fn(*ts, **kwargs).resolve_conj()
    if not out.requires_grad:
        return out.detach().numpy(), [np.zeros_like(a) for a in arrays]
    wrt = [t for t in ts if t.requires_grad]
    grads = iter(torch.autograd.grad(out, wrt, torch.tensor(G), allow_unused=True))
    res = []
    for t, a in zip(ts, arrays):
        g = next(grads) if t.requires_grad else None
        res.append(np.zeros_like(a) if g is None else g.resolve_conj().numpy())
    return out.detach().numpy(), res


def _cotangent(shape: tuple, dtype: np.dtype, rng: np.random.Generator) -> np.ndarray:
    g = rng.standard_normal(shape)
    return g + 1j * rng.standard_normal(shape) if dtype.kind == "c" else g


def _numpy_forward(case: OpCase, arrays: list[np.ndarray], kwargs: dict):
    """NumPy's own function of the same name, when there is one to compare with (else None)."""
    if case.ng_fn is not None:
        return None
    mod, _, name = case.op.rpartition(".")
    f = getattr(np.linalg if mod == "linalg" else np, name, None)
    if f is None:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return f(*arrays, **kwargs)
    except (TypeError, ValueError):
        return None


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_complex_op_matches_torch(case, data):
    arrays, kwargs = draw_arrays(case, data)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31 - 1), label="imag"))
    arrays = _complexify(case, arrays, rng)
    fn = case.ng_fn or getattr(ng, case.op)
    with ng.no_grad():
        probe = np.asarray(fn(*[a.copy() for a in arrays], **kwargs))
    G = _cotangent(probe.shape, probe.dtype, rng)
    out, grads = _ng_grads(fn, [a.copy() for a in arrays], kwargs, lambda o: np.conj(G), case.nondiff)
    t_out, t_grads = _torch(case.torch_fn, arrays, kwargs, G, case.nondiff)
    assert_close(out, t_out, f"{case.id}: forward", RTOL, ATOL)
    np_out = _numpy_forward(case, arrays, kwargs)
    if np_out is not None and not isinstance(np_out, tuple):
        assert_close(out, np_out, f"{case.id}: forward against NumPy", RTOL, ATOL)
        assert np.asarray(out).dtype == np.asarray(np_out).dtype, f"{case.id}: dtype"
    for i, (a, g, tg) in enumerate(zip(arrays, grads, t_grads)):
        if i in case.nondiff:
            continue
        assert np.asarray(g).dtype == a.dtype, f"{case.id}: gradient {i} is {np.asarray(g).dtype}, input {a.dtype}"
        assert_close(g, np.conj(tg), f"{case.id}: gradient of input {i} (conjugate of PyTorch's)", RTOL, ATOL)


# -- decompositions; the Hermitian ones read one triangle, as NumPy's do (the mirror conjugated, the diagonal's real part)


def _hermitian_read(t: torch.Tensor, lower: bool = True) -> torch.Tensor:
    """The Hermitian matrix NumPy's eigh, eigvalsh and cholesky see in ``t``, as a function of ``t``."""
    half = torch.tril(t, -1) if lower else torch.triu(t, 1)
    return half + half.mH + torch.diag_embed(torch.diagonal(t, 0, -2, -1).real.to(t.dtype))


def _positive_definite(a: np.ndarray) -> np.ndarray:
    return a @ np.conj(np.swapaxes(a, -1, -2)) + 3 * np.eye(a.shape[-1])


_WEIGHTS = np.random.default_rng(3).standard_normal((3, 3))
_DECOMPOSITIONS = {
    "eigvalsh": (lambda a: ng.linalg.eigvalsh(a), lambda t: torch.linalg.eigvalsh(_hermitian_read(t))),
    "eigvalsh-U": (lambda a: ng.linalg.eigvalsh(a, "U"),
                   lambda t: torch.linalg.eigvalsh(_hermitian_read(t, lower=False))),
    # the eigenvectors' phases are arbitrary: a loss of |V|² does not depend on them
    "eigh-V": (lambda a: ng.multiply(ng.square(ng.abs(ng.linalg.eigh(a)[1])), _WEIGHTS),
             lambda t: torch.linalg.eigh(_hermitian_read(t))[1].abs() ** 2 * torch.tensor(_WEIGHTS)),
    "eigh-values": (lambda a: ng.linalg.eigh(a)[0], lambda t: torch.linalg.eigh(_hermitian_read(t))[0]),
    "cholesky": (lambda a: ng.linalg.cholesky(a), lambda t: torch.linalg.cholesky(_hermitian_read(t))),
    "svdvals": (lambda a: ng.linalg.svdvals(a), torch.linalg.svdvals),
    "norm-nuc": (lambda a: ng.linalg.norm(a, "nuc", axis=(-2, -1)), lambda t: torch.linalg.matrix_norm(t, "nuc")),
    "norm-2": (lambda a: ng.linalg.norm(a, 2, axis=(-2, -1)), lambda t: torch.linalg.matrix_norm(t, 2)),
    "qr-Q": (lambda a: ng.linalg.qr(a)[0], lambda t: torch.linalg.qr(t)[0]),
    "qr-R": (lambda a: ng.linalg.qr(a)[1], lambda t: torch.linalg.qr(t)[1]),
    # a singular pair's common phase is arbitrary: |U|², |Vh|² and U diag(S) Vh do not depend on it
    "svd-U": (lambda a: ng.matmul(ng.square(ng.abs(ng.linalg.svd(a, full_matrices=False)[0])), _WEIGHTS),
              lambda t: (torch.linalg.svd(t, full_matrices=False)[0].abs() ** 2) @ torch.tensor(_WEIGHTS)),
    "svd-Vh": (lambda a: ng.matmul(_WEIGHTS, ng.square(ng.abs(ng.linalg.svd(a)[2]))),
               lambda t: torch.tensor(_WEIGHTS) @ (torch.linalg.svd(t)[2].abs() ** 2)),
    "svd-S": (lambda a: ng.linalg.svd(a)[1], lambda t: torch.linalg.svd(t)[1]),
    "eigvals": (lambda a: ng.linalg.eigvals(a), torch.linalg.eigvals),
    "eig-V": (lambda a: ng.multiply(ng.square(ng.abs(ng.linalg.eig(a)[1])), _WEIGHTS),
              lambda t: torch.linalg.eig(t)[1].abs() ** 2 * torch.tensor(_WEIGHTS)),
}


_RECTANGULAR = ["svdvals", "svd-S", "svd-U", "qr-Q", "qr-R", "norm-nuc"]


@pytest.mark.parametrize(
    ("name", "shape"),
    [(n, s) for n in _DECOMPOSITIONS for s in [(3, 3), (2, 3, 3)]] + [(n, s) for n in _RECTANGULAR for s in [(4, 3), (3, 5)]],
    ids=str,
)
def test_complex_decompositions_match_torch(name, shape):
    f, tf = _DECOMPOSITIONS[name]
    rng = np.random.default_rng(len(name) + len(shape))
    a = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    if name == "cholesky":
        a = _positive_definite(a) + np.tril(0.5j * rng.standard_normal(shape))  # an imaginary diagonal: not read
    with ng.no_grad():
        probe = np.asarray(f(a.copy()))
    G = _cotangent(probe.shape, probe.dtype, rng)
    out, (g,) = _ng_grads(f, [a.copy()], {}, lambda o: np.conj(G))
    t_out, (tg,) = _torch(tf, [a], {}, G)
    assert_close(out, t_out, f"{name}: forward", 1e-7, 1e-9)
    assert_close(g, np.conj(tg), f"{name}: gradient (conjugate of PyTorch's)", 1e-6, 1e-9)
    assert ng.gradcheck(lambda a: ng.real(ng.sum(ng.multiply(f(a), np.conj(G)))), (a.copy(),))


def test_hermitian_forward_dtypes_are_numpys():
    a = _z(3, 3)
    engine = ng.Autograd()
    with engine:
        w, V = ng.linalg.eigh(a)
    assert w.dtype == np.float64 and V.dtype == np.complex128
    np.testing.assert_allclose(w, np.linalg.eigh(a)[0])


# -- central differences of a real loss, through gradcheck ---------------------------------------------------------

_R = np.random.default_rng(7)


def _z(*shape: int) -> np.ndarray:
    return _R.standard_normal(shape) + 1j * _R.standard_normal(shape)


_A = _z(3, 3) + 3 * np.eye(3)
_W = _z(3, 3)
_LOSSES = {
    "sum |exp z|²": (lambda z: ng.sum(ng.square(ng.abs(ng.exp(z)))), (_z(4),)),
    "Re Σ W̄·(A z)": (lambda a, z: ng.real(ng.sum(ng.multiply(np.conj(_W[:, 0]), ng.matmul(a, z)))), (_A, _z(3))),
    "angle and abs": (lambda z: ng.sum(ng.add(ng.angle(z), ng.multiply(ng.abs(z), ng.imag(z)))), (_z(5),)),
    "var and std": (lambda z: ng.add(ng.var(z), ng.std(z, ddof=1)), (_z(6),)),
    "inv, det, slogdet": (
        lambda a: ng.add(ng.real(ng.linalg.det(ng.linalg.inv(a))), ng.linalg.slogdet(a)[1]), (_A,)),
    "slogdet sign": (lambda a: ng.imag(ng.linalg.slogdet(a)[0]), (_A,)),
    "solve": (lambda a, b: ng.sum(ng.abs(ng.linalg.solve(a, b))), (_A, _z(3, 2))),
    "pinv": (lambda a: ng.sum(ng.square(ng.abs(ng.linalg.pinv(a)))), (_z(3, 4),)),
    "norms": (lambda a: ng.add(ng.add(ng.linalg.norm(a), ng.linalg.norm(a, 1)), ng.linalg.norm(a, np.inf, 0)[1]),
              (_z(3, 3),)),
    "vdot, vecdot": (lambda a, b: ng.real(ng.add(ng.vdot(a, b), ng.sum(ng.vecdot(a, b)))), (_z(4), _z(4))),
    "einsum, conj": (lambda a, b: ng.real(ng.einsum("ij,jk,ji->", a, ng.conj(b), b)), (_z(2, 3), _z(3, 2))),
    "nan_to_num": (lambda z: ng.sum(ng.abs(ng.nan_to_num(ng.multiply(z, z)))), (_z(4),)),
    "lstsq": (lambda a, b: ng.add(ng.sum(ng.abs(ng.linalg.lstsq(a, b)[0])), ng.sum(ng.linalg.lstsq(a, b)[1])),
              (_z(5, 3), _z(5))),
    "cond": (lambda a: ng.add(ng.linalg.cond(a), ng.linalg.cond(a, "fro")), (_A,)),
    "astype to complex": (lambda x: ng.sum(ng.abs(ng.multiply(ng.astype(x, np.complex128), _W[0]))),
                          (_R.standard_normal(3),)),
    "mixed real and complex": (lambda x, z: ng.sum(ng.abs(ng.multiply(x, z))), (_R.standard_normal(3), _z(3))),
}


def test_every_op_marked_complex_is_tested():
    marked = {name for name in builtin_ops() if supports_complex(name)}
    tested = {c.op for c in CASES} | {"nan_to_num", "astype"}
    tested |= {"linalg.eigvalsh", "linalg.eigh", "linalg.cholesky", "linalg.svdvals", "linalg.svd", "linalg.qr",
               "linalg.eig", "linalg.eigvals"}
    tested |= {"linalg.lstsq", "linalg.cond"}  # central differences, and NumPy's forward below
    assert marked == tested, (sorted(marked - tested), sorted(tested - marked))


@pytest.mark.parametrize("name", list(_LOSSES))
def test_real_loss_of_complex_input_matches_central_differences(name):
    f, args = _LOSSES[name]
    assert ng.gradcheck(f, tuple(a.copy() for a in args))


def test_gradcheck_checks_complex_outputs_by_parts():
    assert ng.gradcheck(lambda a, z: ng.matmul(ng.linalg.inv(a), z), (_A.copy(), _z(3)))
    assert ng.gradcheck(lambda z: (ng.real(z), ng.multiply(ng.real(z), 1j)), (_z(3),))  # several outputs
    # a rule written in PyTorch's convention (g·z/|z| for |z|, not g·z̄/|z|) is caught
    torch_style_abs = ng.defvjp(lambda z: np.abs(z), lambda g, z: (g * z / np.abs(z),), name="torch_style_abs")
    with pytest.raises(ng.errors.GradcheckError, match="input 0"):
        ng.gradcheck(lambda z: ng.sum(torch_style_abs(z)), (_z(3),))


def test_abs_squared_gradient_is_twice_the_conjugate():
    z = np.array([1 + 2j, -3 + 0.5j])
    g = ng.grad(lambda z: ng.sum(ng.square(ng.abs(z))))(z)
    np.testing.assert_allclose(g, 2 * np.conj(z))
    t = torch.tensor(z, requires_grad=True)
    (t.abs() ** 2).sum().backward()
    np.testing.assert_allclose(g, np.conj(t.grad.numpy()))  # PyTorch's is 2z


# -- dtypes -----------------------------------------------------------------------------------------------------


def test_complex64_stays_complex64_and_real_gradients_stay_real():
    z = _z(3).astype(np.complex64)
    x = _R.standard_normal(3).astype(np.float32)
    engine = ng.Autograd()
    with engine:
        y = ng.multiply(ng.exp(z), x)
        loss = ng.sum(ng.abs(ng.matmul(_W.astype(np.complex64), y)))
    assert y.dtype == np.complex64 and loss.dtype == np.float32
    engine.backward(1.0)
    gz, gx = engine.memory_buffer.get_param(z), engine.memory_buffer.get_param(x)
    assert gz.dtype == np.complex64 and gx.dtype == np.float32
    t_z, t_x = torch.tensor(z.astype(np.complex128), requires_grad=True), torch.tensor(x.astype(np.float64), requires_grad=True)
    (torch.tensor(_W.astype(np.complex64).astype(np.complex128)) @ (t_z.exp() * t_x)).abs().sum().backward()
    np.testing.assert_allclose(gz, np.conj(t_z.grad.numpy()), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gx, t_x.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_real_input_meeting_complex_ops_gets_the_real_part():
    x = _R.standard_normal((2, 3))
    a = _z(3, 3)
    G = _cotangent((2, 3), np.dtype(complex), _R)
    engine = ng.Autograd()
    with engine:
        out = ng.matmul(ng.astype(x, np.complex128), a)
        out = ng.add(out, ng.multiply(x, 1j))
    engine.backward(np.conj(G))
    gx = engine.memory_buffer.get_param(x)
    assert gx.dtype == np.float64
    t_x = torch.tensor(x, requires_grad=True)
    t_out = t_x.to(torch.complex128) @ torch.tensor(a) + t_x * 1j
    (t_g,) = torch.autograd.grad(t_out, t_x, torch.tensor(G))
    np.testing.assert_allclose(gx, t_g.numpy(), rtol=1e-10)


def test_a_bound_real_parameter_takes_the_real_part():
    W = _R.standard_normal((3,))
    dW = np.zeros_like(W)
    ng.bind_gradient(W, dW)
    z = _z(3)
    engine = ng.Autograd()
    with engine:
        loss = ng.sum(ng.square(ng.abs(ng.multiply(W, z))))
    engine.backward(1.0, output=loss)
    np.testing.assert_allclose(dW, 2 * W * np.abs(z) ** 2)


# -- second order: create_graph through complex ops -----------------------------------------------------------------

_SECOND = {
    "exp·z": lambda z: ng.multiply(ng.exp(z), z),
    "abs": lambda z: ng.abs(ng.sin(z)),
    "angle": lambda z: ng.angle(z),
    "inv": lambda a: ng.linalg.inv(a),
    "var": lambda z: ng.var(z),
    "norm": lambda z: ng.linalg.norm(z),
    "eigvalsh": lambda a: ng.linalg.eigvalsh(a),
    "cholesky": lambda a: ng.linalg.cholesky(a),
}


@pytest.mark.parametrize("name", list(_SECOND))
def test_second_derivatives_match_central_differences(name):
    x = {"inv": _A, "eigvalsh": _W, "cholesky": _positive_definite(_W)}.get(name, _z(3)).copy()
    assert ng.gradgradcheck(_SECOND[name], (x,))


def test_second_derivative_matches_torch():
    z = _z(3)

    def loss_ng(z):
        return ng.sum(ng.square(ng.abs(ng.multiply(ng.exp(z), z))))

    h = ng.grad(lambda z: ng.real(ng.sum(ng.multiply(ng.grad(loss_ng)(z), np.conj(_W[0])))))(z)
    t = torch.tensor(z, requires_grad=True)
    (g,) = torch.autograd.grad(((t.exp() * t).abs() ** 2).sum(), t, create_graph=True)
    # new_grad's gradient is conj(g): the same real pairing Re Σ conj(g)·w̄ differentiated in PyTorch
    (h_t,) = torch.autograd.grad((g.conj() * torch.tensor(np.conj(_W[0]))).sum().real, t)
    np.testing.assert_allclose(h, np.conj(h_t.numpy()), rtol=1e-9, atol=1e-12)


# -- jvp and hvp: directions in the complex plane ----------------------------------------------------------------

_DIRECTIONAL = {
    "exp (holomorphic)": lambda z: ng.exp(z),
    "conj·z² (complex out)": lambda z: ng.multiply(ng.conj(z), ng.multiply(z, z)),
    "angle (real out)": lambda z: ng.angle(z),
    "norm (real scalar)": lambda z: ng.linalg.norm(z),
}


@pytest.mark.parametrize("name", list(_DIRECTIONAL))
def test_jvp_of_complex_input_is_the_directional_derivative(name):
    """J·t is (f(z + εt) − f(z − εt)) / 2ε: a check free of any convention."""
    f, z, t = _DIRECTIONAL[name], _z(3), _z(3)
    out, jt = ng.jvp(f, (z,), (t,))
    with ng.no_grad():
        fd = (np.asarray(f(z + 1e-6 * t)) - np.asarray(f(z - 1e-6 * t))) / 2e-6
    np.testing.assert_allclose(out, np.asarray(f(z)))
    np.testing.assert_allclose(jt, fd, rtol=1e-6, atol=1e-8)


def test_hvp_of_complex_input_matches_torch():
    z, v = _W.copy(), _z(3, 3)

    def loss(a):
        return ng.add(ng.abs(ng.linalg.det(a)), ng.sum(ng.multiply(ng.angle(a), ng.abs(ng.exp(a)))))

    hv = ng.hvp(loss, z, v)
    t = torch.tensor(z, requires_grad=True)
    (g,) = torch.autograd.grad(torch.linalg.det(t).abs() + (t.angle() * t.exp().abs()).sum(), t, create_graph=True)
    # the derivative along v of the loss is Re Σ conj(g)·v; its gradient here is the conjugate of PyTorch's
    (hv_t,) = torch.autograd.grad((g.conj() * torch.tensor(v)).sum().real, t)
    np.testing.assert_allclose(hv, np.conj(hv_t.numpy()), rtol=1e-9, atol=1e-12)


def test_a_real_input_refuses_a_complex_direction():
    x = _R.standard_normal(3)
    with pytest.raises(ng.errors.DtypeError, match="jvp: tangent 0.*complex.*real"):
        ng.jvp(ng.sin, (x,), (_z(3),))
    with pytest.raises(ng.errors.DtypeError, match="hvp: v.*complex.*real"):
        ng.hvp(lambda a: ng.sum(ng.sin(a)), x, _z(3))


def test_hessian_of_complex_input_raises():
    """Its 2n×2n real second derivatives fit no complex matrix: a clear error, not the ∂/∂x half of them."""
    with pytest.raises(ng.errors.DtypeError, match="hessian: argument 0 .*complex.*hvp"):
        ng.hessian(lambda z: ng.sum(ng.square(ng.abs(z))))(_z(3))


def test_a_real_scalar_that_meets_a_complex_op_gets_the_real_part_quietly():
    """|s| divides a complex s: the gradient of the real 0-d |s| is the real part, with no ComplexWarning."""
    z = _z(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = ng.grad(lambda z: ng.real(ng.divide(ng.exp(ng.sum(z)), ng.abs(ng.sum(z)))))(z)
    t = torch.tensor(z, requires_grad=True)
    (g_t,) = torch.autograd.grad((t.sum().exp() / t.sum().abs()).real, t)
    np.testing.assert_allclose(g, np.conj(g_t.numpy()), rtol=1e-12)


def test_jacobian_of_a_complex_output_keeps_the_imaginary_part_for_a_real_input():
    """∂f/∂x of f(x) = e^{ix}·x² for real x is complex; the imaginary part was dropped."""
    x = _R.standard_normal(3)

    def f(x):
        return ng.multiply(ng.exp(ng.multiply(1j, x)), ng.square(x))

    J = ng.jacobian(f)(x)
    t = torch.tensor(x)
    J_t = torch.autograd.functional.jacobian(lambda y: torch.view_as_real(torch.exp(1j * y) * y**2), t)
    np.testing.assert_allclose(J, J_t[..., 0, :].numpy() + 1j * J_t[..., 1, :].numpy(), rtol=1e-12)
    # a holomorphic function of a complex input keeps its complex Jacobian, and the real input's is recorded
    z = _z(3)
    np.testing.assert_allclose(ng.jacobian(ng.exp)(z), np.diag(np.exp(z)))
    d = ng.grad(lambda y: ng.sum(ng.imag(ng.jacobian(f)(y))))(x)  # Σ_j ∂/∂x of Im ∂f_j/∂x_j
    np.testing.assert_allclose(d, 2 * np.sin(x) + 4 * x * np.cos(x) - x**2 * np.sin(x), rtol=1e-10)


# -- errors ---------------------------------------------------------------------------------------------------------


def test_backward_from_a_complex_output_needs_a_complex_divergence():
    z = _z(3)
    engine = ng.Autograd()
    with engine:
        out = ng.sum(ng.exp(z))
    with pytest.raises(ng.errors.GradientError, match="only for real outputs.*real.*abs.*divergence"):
        engine.backward(output=out)
    engine.backward(1 + 0j, output=out)  # an explicit complex cotangent: the vector-Jacobian product
    np.testing.assert_allclose(engine.memory_buffer.get_param(z), np.exp(z))
    with pytest.raises(ng.errors.DtypeError, match="complex scalar.*real"):
        ng.grad(lambda z: ng.sum(ng.exp(z)))(z)


def test_a_real_output_refuses_a_complex_divergence():
    x = _R.standard_normal(3)
    engine = ng.Autograd()
    with engine:
        ng.sum(ng.exp(x))
    with pytest.raises(ng.errors.GradientError, match="divergence.*complex.*real"):
        engine.backward(1j)


_NO_COMPLEX_RULE = {
    "maximum": lambda z: ng.maximum(z, 0.5 * z),
    "relu": lambda z: ng.relu(z),
    "clip": lambda z: ng.clip(z, -1, 1),
    "sign": lambda z: ng.sign(z),
    "max": lambda z: ng.max(z),
    "sort": lambda z: ng.sort(z),
    "partition": lambda z: ng.partition(z, 1),
    "softmax": lambda z: ng.softmax(z),
    "mse_loss": lambda z: ng.mse_loss(z, ng.constant(np.zeros(3))),
}


@pytest.mark.parametrize("name", list(_NO_COMPLEX_RULE))
def test_ops_without_a_complex_rule_refuse_naming_the_op(name):
    f = _NO_COMPLEX_RULE[name]
    op = name.split("(")[0]
    with pytest.raises(ng.errors.DtypeError, match=rf"{op}.*complex.*not supported"):
        ng.grad(lambda z: ng.sum(ng.abs(f(z))))(_z(3))


def test_ops_without_a_complex_rule_still_compute_outside_a_gradient():
    z = _z(3)
    np.testing.assert_array_equal(ng.sort(z), np.sort(z))
    np.testing.assert_allclose(ng.linalg.svdvals(ng.outer(z, z)), np.linalg.svd(np.outer(z, z), compute_uv=False))


def test_second_derivatives_through_a_real_input_meeting_complex_ops():
    x, z = _R.standard_normal(3), _z(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the real part is taken, never a ComplexWarning cast
        assert ng.gradgradcheck(lambda x, z: ng.abs(ng.multiply(ng.exp(x), z)), (x, z))
        assert ng.gradgradcheck(lambda x: ng.real(ng.multiply(ng.square(x), z)), (x,))


_G33 = _z(3, 3)
_SECOND_DECOMPOSITIONS = {
    "svdvals": lambda a: ng.linalg.svdvals(a),
    "nuclear norm": lambda a: ng.linalg.norm(a, "nuc"),
    "svd |U|²": lambda a: ng.square(ng.abs(ng.linalg.svd(a)[0])),
    "qr": lambda a: ng.real(ng.add(ng.sum(ng.multiply(ng.linalg.qr(a)[1], _G33)), ng.sum(ng.linalg.qr(a)[0]))),
    "eigh": lambda a: ng.square(ng.abs(ng.linalg.eigh(a)[1])),
    "eig": lambda a: ng.add(ng.square(ng.abs(ng.linalg.eig(a)[1])), ng.abs(ng.linalg.eigvals(a))),
}


@pytest.mark.parametrize("name", list(_SECOND_DECOMPOSITIONS))
def test_second_derivatives_through_complex_decompositions(name):
    assert ng.gradgradcheck(_SECOND_DECOMPOSITIONS[name], (_W.copy(),))


def test_lstsq_and_cond_forward_are_numpys():
    a, b = _z(5, 3), _z(5)
    for ours, theirs in zip(ng.linalg.lstsq(a, b), np.linalg.lstsq(a, b, rcond=None)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10)
        assert np.asarray(ours).dtype.kind == np.asarray(theirs).dtype.kind
    for p in (None, "fro", 1, np.inf):
        np.testing.assert_allclose(ng.linalg.cond(_A, p), np.linalg.cond(_A, p), rtol=1e-10)


def test_a_real_matrix_with_complex_eigenvalues_gets_a_real_gradient():
    a = np.random.default_rng(5).standard_normal((2, 4, 4))
    assert np.iscomplexobj(np.linalg.eigvals(a))
    G = _cotangent((2, 4), np.dtype(complex), _R)
    out, (g,) = _ng_grads(ng.linalg.eigvals, [a.copy()], {}, lambda o: np.conj(G))
    t_out, (tg,) = _torch(torch.linalg.eigvals, [a], {}, G)
    assert g.dtype == np.float64
    assert_close(out, t_out, "eigvals: forward")
    assert_close(g, tg, "eigvals: gradient of a real matrix", 1e-7, 1e-9)


def test_plain_numpy_on_complex_values_inside_the_transforms():
    z = _z(3)
    g = ng.grad(lambda z: np.sum(z.real ** 2 + 3 * z.imag + np.abs(z.conj() * z) + np.real(np.vdot(z, z))))(z)
    t = torch.tensor(z, requires_grad=True)
    (t.real**2 + 3 * t.imag + (t.conj() * t).abs() + torch.vdot(t, t).real).sum().backward()
    np.testing.assert_allclose(g, np.conj(t.grad.numpy()), rtol=1e-12)


def test_a_compiled_step_replays_complex_ops_with_real_parameter_gradients():
    W = _R.standard_normal((3, 3))
    dW = np.zeros_like(W)
    ng.bind_gradient(W, dW)
    z = _z(3)
    step = ng.compile(lambda z: ng.sum(ng.square(ng.abs(ng.matmul(W, z)))), ng.Autograd())
    expected = 2 * np.real(np.outer(np.conj(W @ z), z))  # ∂|Wz|²/∂W for real W
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning cast on the replayed path either
        for _ in range(3):  # eager, checked, replayed
            dW[...] = 0
            step(z.copy())
            np.testing.assert_allclose(dW, expected, rtol=1e-12)
