"""Cases for linear algebra: products as einsums, and the decompositions of ``new_grad.linalg``.

Decompositions get inputs where they are differentiable and well conditioned (the
``domain`` functions rebuild each drawn matrix with chosen singular values or
eigenvalues), and are compared through gauge-invariant functions where the
factors are only unique up to signs.
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st

import new_grad as ng

from ..opcheck import OpCase

# -- products ------------------------------------------------------------------------------------------------------


def _dot_shapes(data):
    k = data.draw(st.integers(1, 3), label="k")
    a = data.draw(st.sampled_from([(), (k,), (2, k), (2, 1, k)]), label="a")
    b = data.draw(st.sampled_from([(), (k,), (k, 3), (2, k, 3)]), label="b")
    return [a, b]


def _t_dot(a, b):
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    return torch.tensordot(a, b, dims=([a.ndim - 1], [b.ndim - 2 if b.ndim >= 2 else 0]))


def _inner_shapes(data):
    k = data.draw(st.integers(1, 3), label="k")
    a = data.draw(st.sampled_from([(), (k,), (2, k), (2, 1, k)]), label="a")
    b = data.draw(st.sampled_from([(), (k,), (3, k), (2, 3, k)]), label="b")
    return [a, b]


def _t_inner(a, b):
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    return torch.inner(a, b)


def _tensordot_case(data):
    kind = data.draw(st.sampled_from(["int0", "int1", "int2", "pairs"]), label="kind")
    _last["axes"] = {"int0": 0, "int1": 1, "int2": 2, "pairs": ([0, 2], [1, 0])}[kind]
    return {"int0": [(2, 3), (4,)], "int1": [(2, 3), (3, 4)], "int2": [(2, 3, 4), (3, 4, 2)],
            "pairs": [(2, 3, 4), (4, 2, 3)]}[kind]


_last: dict = {}


def _tensordot_kwargs(data, shapes):
    return {"axes": _last["axes"]}


# subscripts and operand shapes: contractions, batches, ellipses (with size-1 broadcasting), implicit output,
# diagonals (repeated letters), letters summed in one operand only, three operands, a full contraction
_EINSUMS = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,jk", [(2, 3), (3, 4)]),
    ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]),
    ("...ij,...jk->...ik", [(2, 1, 2, 3), (3, 3, 2)]),
    ("...ij,jk", [(2, 2, 3), (3, 4)]),
    ("ii->i", [(3, 3)]),
    ("ii", [(3, 3)]),
    ("iij->j", [(2, 2, 3)]),
    ("ij->i", [(2, 3)]),
    ("ij->", [(2, 3)]),
    ("i,i->", [(3,), (3,)]),
    ("i,j->ij", [(3,), (2,)]),
    ("ij,ij->ij", [(1, 3), (2, 3)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("ab,cd->", [(2, 3), (2, 2)]),
    ("ijk->kji", [(2, 3, 4)]),
    ("Ba,aC->BC", [(2, 3), (3, 2)]),
    ("i...,i...->...", [(3, 2), (3, 1)]),
]


def _einsum_case(data):
    i = data.draw(st.integers(0, len(_EINSUMS) - 1), label="which")
    _last["sub"] = _EINSUMS[i][0]
    return _EINSUMS[i][1]


def _einsum_kwargs(data, shapes):
    return {"subscripts": _last["sub"]}


# -- decompositions: well-conditioned inputs ---------------------------------------------------------------------------


def _matrix_shapes(square=True, batch=True, wide=True):
    def draw(data):
        n = data.draw(st.integers(1, 4), label="n")
        m = n if square else data.draw(st.integers(1, 4), label="m")
        if not wide and m < n:
            m, n = n, m
        b = data.draw(st.sampled_from([(), (2,), (2, 1)] if batch else [()]), label="batch")
        return [(*b, m, n)]

    return draw


def _with_singular_values(a: np.ndarray, lo: float = 1.0, hi: float = 3.0) -> np.ndarray:
    """The same singular vectors, singular values spread evenly over [lo, hi] (distinct, well conditioned)."""
    U, s, Vh = np.linalg.svd(a, full_matrices=False)
    k = s.shape[-1]
    vals = np.linspace(hi, lo, k) if k > 1 else np.array([hi])
    return (U * vals[..., None, :]) @ Vh


def _symmetric(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """A symmetric matrix with eigenvalues evenly spread over [lo, hi] and eigenvectors from ``a``."""
    Q, _ = np.linalg.qr(a)
    n = a.shape[-1]
    vals = np.linspace(lo, hi, n) if n > 1 else np.array([hi])
    return (Q * vals[..., None, :]) @ np.swapaxes(Q, -1, -2)


def _well_conditioned(a):
    return _with_singular_values(a) * np.where(np.random.default_rng(a.size).random(a.shape[:-2] + (1, 1)) < 0.5, -1, 1)


def _spd(a):
    return _symmetric(a, 0.5, 3.0)


def _sym_distinct(a):
    return _symmetric(a, -2.0, 2.0)


def _solve_shapes(data):
    n = data.draw(st.integers(1, 4), label="n")
    kind = data.draw(st.sampled_from(["vec", "mat", "batched", "broadcast"]), label="kind")
    return {"vec": [(n, n), (n,)], "mat": [(n, n), (n, 2)], "batched": [(2, n, n), (2, n, 3)],
            "broadcast": [(2, n, n), (n, 1)]}[kind]


def _ng_qr(a):
    Q, R = ng.linalg.qr(a)
    xp = ng.namespace(R)
    s = ng.constant(xp.sign(xp.diagonal(R, axis1=-2, axis2=-1)))
    Qs = ng.multiply(Q, ng.expand_dims(s, -2))
    Rs = ng.multiply(R, ng.expand_dims(s, -1))
    return ng.concatenate([ng.ravel(Qs), ng.ravel(ng.multiply(Rs, 0.7))])


def _t_qr(a):
    Q, R = torch.linalg.qr(a)
    s = torch.sign(torch.diagonal(R, dim1=-2, dim2=-1)).detach()
    return torch.cat([(Q * s.unsqueeze(-2)).reshape(-1), (R * s.unsqueeze(-1) * 0.7).reshape(-1)])


def _ng_eigh(a):
    w, V = ng.linalg.eigh(a)
    W = ng.multiply(V, V)  # sign-invariant
    VwV = ng.matmul(ng.multiply(V, ng.expand_dims(ng.exp(w), -2)), ng.swapaxes(V, -1, -2))
    return ng.concatenate([ng.ravel(w), ng.ravel(W), ng.ravel(VwV)])


def _lower_read(a):
    """What NumPy's eigh and cholesky factor: the lower triangle of ``a``, mirrored (the upper is never read)."""
    return torch.tril(a) + torch.tril(a, -1).mT


def _t_eigh(a):
    w, V = torch.linalg.eigh(_lower_read(a))
    VwV = (V * torch.exp(w).unsqueeze(-2)) @ V.mT
    return torch.cat([w.reshape(-1), (V * V).reshape(-1), VwV.reshape(-1)])


def _ng_svd(a, full):
    U, S, Vh = ng.linalg.svd(a, full_matrices=full)
    k = S.shape[-1]
    if full:
        U = ng.getitem(U, (Ellipsis, slice(0, k)))
        Vh = ng.getitem(Vh, (Ellipsis, slice(0, k), slice(None)))
    W = ng.matmul(ng.multiply(U, ng.expand_dims(ng.multiply(S, S), -2)), Vh)
    return ng.concatenate([ng.ravel(S), ng.ravel(ng.multiply(U, U)), ng.ravel(ng.multiply(Vh, Vh)), ng.ravel(W)])


def _t_svd(a):
    U, S, Vh = torch.linalg.svd(a, full_matrices=False)
    W = (U * (S * S).unsqueeze(-2)) @ Vh
    return torch.cat([S.reshape(-1), (U * U).reshape(-1), (Vh * Vh).reshape(-1), W.reshape(-1)])


def _norm_case(data):
    kind = data.draw(st.sampled_from(["vector", "matrix", "flat"]), label="kind")
    if kind == "vector":
        shape = data.draw(st.sampled_from([(4,), (2, 3), (2, 3, 2)]), label="shape")
        ord_ = data.draw(st.sampled_from([None, 2, 1, np.inf, -np.inf, 3, 0.5]), label="ord")
        axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
        _last["norm"] = {"ord": ord_, "axis": axis, "keepdims": data.draw(st.booleans())}
    elif kind == "matrix":
        shape = data.draw(st.sampled_from([(3, 4), (2, 3, 3), (4, 2, 3)]), label="shape")
        ord_ = data.draw(st.sampled_from([None, "fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf]), label="ord")
        axis = data.draw(st.sampled_from([(-2, -1), (-1, -2), (0, -1)]), label="axis")
        _last["norm"] = {"ord": ord_, "axis": axis, "keepdims": data.draw(st.booleans())}
    else:
        shape = data.draw(st.sampled_from([(5,), (2, 3), (2, 2, 2)]), label="shape")
        _last["norm"] = {"ord": None, "axis": None, "keepdims": data.draw(st.booleans())}
    return [shape]


def _norm_kwargs(data, shapes):
    return dict(_last["norm"])


def _t_norm(x, ord, axis, keepdims):
    if axis is None:
        return torch.linalg.vector_norm(x, keepdim=keepdims, dim=None).reshape((1,) * x.ndim if keepdims else ())
    if isinstance(axis, tuple):
        return torch.linalg.matrix_norm(x, "fro" if ord is None else ord, dim=axis, keepdim=keepdims)
    return torch.linalg.vector_norm(x, 2 if ord is None else ord, dim=axis, keepdim=keepdims)


def _norm_domain(a):
    """Distinct magnitudes away from 0 (no ties for max-type norms, no kink of |x|), and for matrices distinct
    singular values (spectral and nuclear norms)."""
    flat = a.reshape(-1)
    order = np.random.default_rng(flat.size).permutation(flat.size)
    x = (np.where(flat >= 0, 1.0, -1.0) * (0.5 + order * 0.37)).reshape(a.shape)
    if a.ndim >= 2 and min(a.shape[-2:]) > 1:
        x = _with_singular_values(x, 1.0, 4.0)
    return x


_EYE3 = 3.0


CASES = [
    OpCase("dot", _t_dot, nargs=2, shapes=_dot_shapes),
    OpCase("inner", _t_inner, nargs=2, shapes=_inner_shapes),
    OpCase("vdot", lambda a, b: (a.reshape(-1) * b.reshape(-1)).sum(), nargs=2, shapes=[(2, 3), (6,)]),
    OpCase("tensordot", lambda a, b, axes: torch.tensordot(a, b, dims=axes), nargs=2, shapes=_tensordot_case,
           kwargs=_tensordot_kwargs),
    OpCase("einsum", lambda *ops, subscripts: torch.einsum(subscripts, *ops),
           ng_fn=lambda *ops, subscripts: ng.einsum(subscripts, *ops), nargs=2, shapes=_einsum_case,
           kwargs=_einsum_kwargs),
    OpCase("einsum", lambda a, b: torch.einsum("ij,jk->ik", a, b),
           ng_fn=lambda a, b: ng.einsum(a, [0, 1], b, [1, 2], [0, 2]), nargs=2, shapes=[(2, 3), (3, 2)],
           name="sublist"),
    OpCase("linalg.inv", torch.linalg.inv, ng_fn=ng.linalg.inv, shapes=_matrix_shapes(), domain=_well_conditioned,
           rtol=1e-6),
    OpCase("linalg.det", torch.linalg.det, ng_fn=ng.linalg.det, shapes=_matrix_shapes(), domain=_well_conditioned,
           rtol=1e-6),
    OpCase("linalg.slogdet", lambda a: torch.linalg.slogdet(a)[1], ng_fn=lambda a: ng.linalg.slogdet(a)[1],
           shapes=_matrix_shapes(), domain=_well_conditioned, rtol=1e-6),
    OpCase("linalg.slogdet", lambda a: torch.linalg.slogdet(a)[0], ng_fn=lambda a: ng.linalg.slogdet(a).sign,
           shapes=[(3, 3)], domain=_well_conditioned, grad=False, name="sign"),
    OpCase("linalg.solve", lambda a, b: torch.linalg.solve(a + _EYE3 * torch.eye(a.shape[-1]), b),
           ng_fn=lambda a, b: ng.linalg.solve(ng.add(a, _EYE3 * ng.namespace(a).eye(a.shape[-1])), b), nargs=2,
           shapes=_solve_shapes, domain=lambda a: 0.3 * a, rtol=1e-6),
    OpCase("linalg.cholesky", lambda a: torch.linalg.cholesky(_lower_read(a)), ng_fn=ng.linalg.cholesky,
           shapes=_matrix_shapes(), domain=_spd, rtol=1e-6),
    OpCase("linalg.cholesky", lambda a: torch.linalg.cholesky(_lower_read(a)), ng_fn=ng.linalg.cholesky,
           shapes=_matrix_shapes(), domain=lambda a: _spd(a) + np.triu(a, 1), rtol=1e-6, name="upper-ignored"),
    OpCase("linalg.cholesky", lambda x: torch.linalg.cholesky(x @ x.mT + torch.eye(x.shape[-1])),
           ng_fn=lambda x: ng.linalg.cholesky(ng.add(ng.matmul(x, ng.swapaxes(x, -1, -2)), ng.namespace(x).eye(x.shape[-1]))),
           shapes=[(2, 3, 3)], rtol=1e-6, name="composed"),
    OpCase("linalg.qr", _t_qr, ng_fn=_ng_qr, shapes=_matrix_shapes(square=False), domain=_with_singular_values,
           rtol=1e-6, atol=1e-9),
    OpCase("linalg.eigh", _t_eigh, ng_fn=_ng_eigh, shapes=_matrix_shapes(), domain=_sym_distinct, rtol=1e-6,
           atol=1e-9),
    OpCase("linalg.eigh", _t_eigh, ng_fn=_ng_eigh, shapes=_matrix_shapes(), domain=lambda a: _sym_distinct(a) + np.triu(a, 1),
           rtol=1e-6, atol=1e-9, name="upper-ignored"),
    OpCase("linalg.eigh", lambda a: torch.linalg.eigh(torch.triu(a) + torch.triu(a, 1).mT)[0],
           ng_fn=lambda a: ng.positive(ng.linalg.eigh(a, "U")[0]), shapes=_matrix_shapes(), domain=lambda a: _sym_distinct(a) + np.tril(a, -1),
           rtol=1e-6, atol=1e-9, name="UPLO-U"),
    OpCase("linalg.svd", _t_svd, ng_fn=lambda a: _ng_svd(a, False), shapes=_matrix_shapes(square=False),
           domain=_with_singular_values, rtol=1e-6, atol=1e-9),
    OpCase("linalg.svd", _t_svd, ng_fn=lambda a: _ng_svd(a, True), shapes=_matrix_shapes(square=False),
           domain=_with_singular_values, rtol=1e-6, atol=1e-9, name="full"),
    OpCase("linalg.svdvals", torch.linalg.svdvals, ng_fn=ng.linalg.svdvals, shapes=_matrix_shapes(square=False),
           domain=_with_singular_values, rtol=1e-6, atol=1e-9),
    OpCase("linalg.svdvals", torch.linalg.svdvals, ng_fn=lambda a: ng.linalg.svd(a, compute_uv=False),
           shapes=[(3, 2)], domain=_with_singular_values, rtol=1e-6, name="compute_uv"),
    OpCase("linalg.pinv", torch.linalg.pinv, ng_fn=ng.linalg.pinv, shapes=_matrix_shapes(square=False),
           domain=_with_singular_values, rtol=1e-6, atol=1e-9),
    OpCase("linalg.norm", lambda x: torch.linalg.vector_norm(x, 3, dim=(0, 2), keepdim=True),
           ng_fn=lambda x: ng.linalg.vector_norm(x, axis=(0, -1), keepdims=True, ord=3), shapes=[(2, 3, 2)],
           domain=_norm_domain, rtol=1e-6, name="vector_norm"),
    OpCase("linalg.norm", lambda x: torch.linalg.vector_norm(x),
           ng_fn=lambda x: ng.linalg.vector_norm(x), min_dims=1, domain=_norm_domain, rtol=1e-6,
           name="vector_norm-all"),
    OpCase("linalg.norm", lambda x: torch.linalg.matrix_norm(x, "nuc"),
           ng_fn=lambda x: ng.linalg.matrix_norm(x, ord="nuc"), shapes=[(2, 3, 4)], domain=_norm_domain, rtol=1e-6,
           name="matrix_norm"),
    OpCase("diagonal", lambda x: torch.diagonal(x, 1, -2, -1), ng_fn=lambda x: ng.linalg.diagonal(x, offset=1),
           min_dims=2, name="linalg"),
    OpCase("trace", lambda x: torch.diagonal(x, -1, -2, -1).sum(-1), ng_fn=lambda x: ng.linalg.trace(x, offset=-1),
           min_dims=2, name="linalg"),
    OpCase("linalg.norm", _t_norm, ng_fn=lambda x, **kw: ng.linalg.norm(x, **kw), shapes=_norm_case,
           kwargs=_norm_kwargs, domain=_norm_domain, rtol=1e-6, atol=1e-9),
]
