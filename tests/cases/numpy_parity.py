"""Cases for the NumPy functions that complete the elementwise, shape, reduction and linalg families."""

from __future__ import annotations

import numpy as np
import torch

import new_grad as ng

from ..opcheck import OpCase, away_from_zero, distinct
from .elementwise import _specials, _where_shapes
from .linalg import _lower_read, _matrix_shapes, _spd, _sym_distinct, _well_conditioned


def _jumps(a):
    """Away from zero, as a private domain: ops with jumps stay out of random whole-program fuzzing, where a
    rounding difference upstream moves a value across a jump."""
    return away_from_zero(a)


def _pieces(pieces, t=False):
    """Several outputs as one vector, each scaled differently (so a swapped piece cannot pass)."""
    if t:
        return torch.cat([p.reshape(-1) * (i + 1) for i, p in enumerate(pieces)])
    return ng.concatenate([ng.ravel(ng.multiply(p, float(i + 1))) for i, p in enumerate(pieces)])


def _real_spectrum(a):
    """A matrix with distinct real eigenvalues 1, 2, ... and well-conditioned eigenvectors drawn from ``a``."""
    n = a.shape[-1]
    P = _well_conditioned(a)
    vals = np.arange(1.0, n + 1) * np.where(np.arange(n) % 2, -1.0, 1.0)
    return (P * vals[..., None, :]) @ np.linalg.inv(P)


def _sorted_columns(w, V, order):
    idx = ng.namespace(V).broadcast_to(order[..., None, :], V.shape).copy()
    return ng.take_along_axis(V, idx, -1)


def _ng_eig(a):
    w, V = ng.linalg.eig(a)
    order = ng.argsort(w, -1)
    ws = ng.take_along_axis(w, order, -1)
    Vs = _sorted_columns(w, V, order)
    VwV = ng.matmul(ng.multiply(V, ng.expand_dims(ng.exp(ng.multiply(w, 0.3)), -2)), ng.linalg.inv(V))
    return ng.concatenate([ng.ravel(ws), ng.ravel(ng.multiply(Vs, Vs)), ng.ravel(VwV)])


def _t_eig(a):
    w, V = torch.linalg.eig(a)
    w, V = w.real, V.real  # real spectrum: LAPACK's eigenvectors are real
    order = torch.argsort(w.detach(), dim=-1)
    ws = torch.take_along_dim(w, order, -1)
    Vs = torch.take_along_dim(V, order.unsqueeze(-2).expand(V.shape), -1)
    VwV = (V * torch.exp(0.3 * w).unsqueeze(-2)) @ torch.linalg.inv(V)
    return torch.cat([ws.reshape(-1), (Vs * Vs).reshape(-1), VwV.reshape(-1)])


def _split_case(name, tfn, shape, sections):
    return OpCase(name, lambda x: _pieces(tfn(x, sections), t=True),
                  ng_fn=lambda x: _pieces(getattr(ng, name)(x, sections)), shapes=[shape], name=f"{shape}")


CASES = [
    # -- elementwise
    OpCase("remainder", torch.remainder, 2, domain=_jumps),
    OpCase("remainder", lambda x: torch.remainder(x, 0.7), ng_fn=lambda x: ng.mod(x, 0.7), name="mod-scalar"),
    OpCase("fmod", torch.fmod, 2, domain=_jumps),
    OpCase("deg2rad", torch.deg2rad),
    OpCase("radians", torch.deg2rad),
    OpCase("rad2deg", torch.rad2deg),
    OpCase("degrees", torch.rad2deg),
    OpCase("sinc", torch.sinc, domain=away_from_zero),
    OpCase("logaddexp", torch.logaddexp, 2),
    OpCase("logaddexp2", torch.logaddexp2, 2),
    OpCase("nan_to_num", torch.nan_to_num),
    OpCase("nan_to_num", lambda x: torch.nan_to_num(x, 0.5, 9.0, -9.0),
           ng_fn=lambda x: ng.nan_to_num(x, nan=0.5, posinf=9.0, neginf=-9.0), domain=_specials, name="specials"),
    OpCase("fabs", torch.abs, domain=away_from_zero),
    OpCase("real", lambda t: t.real),
    OpCase("imag", lambda t: t * 0),
    OpCase("conj", torch.conj),
    OpCase("angle", torch.angle, domain=away_from_zero),
    OpCase("select", lambda c, x, y: torch.where(c > 0.3, x, torch.where(c < -0.3, y, 0.5)), 3,
           ng_fn=lambda c, x, y: ng.select([c > 0.3, c < -0.3], [x, y], 0.5), shapes=_where_shapes, nondiff=(0,)),
    # -- shape
    _split_case("hsplit", torch.hsplit, (2, 4, 3), 2),
    _split_case("hsplit", torch.hsplit, (6,), [1, 4]),
    _split_case("vsplit", torch.vsplit, (4, 3), 2),
    _split_case("vsplit", torch.vsplit, (5, 2, 2), [2, 3]),
    _split_case("dsplit", torch.dsplit, (2, 3, 4), 2),
    OpCase("column_stack", lambda a, b: torch.column_stack([a, b]), 2, ng_fn=lambda a, b: ng.column_stack([a, b]),
           shapes=[(3,), (3, 2)]),
    OpCase("row_stack", lambda a, b: torch.vstack([a, b]), 2, ng_fn=lambda a, b: ng.row_stack([a, b]),
           shapes=[(3,), (2, 3)]),
    OpCase("dstack", lambda a, b: torch.dstack([a, b]), 2, ng_fn=lambda a, b: ng.dstack([a, b]),
           shapes=[(2, 3), (2, 3, 2)]),
    OpCase("atleast_1d", lambda x: torch.atleast_1d(x) * 1, ng_fn=lambda x: ng.positive(ng.atleast_1d(x))),
    OpCase("atleast_2d", lambda x: torch.atleast_2d(x) * 1, ng_fn=lambda x: ng.positive(ng.atleast_2d(x))),
    OpCase("atleast_3d", lambda x: torch.atleast_3d(x) * 1, ng_fn=lambda x: ng.positive(ng.atleast_3d(x))),
    OpCase("atleast_3d", lambda a, b: _pieces(torch.atleast_3d(a, b), t=True), 2,
           ng_fn=lambda a, b: _pieces(ng.atleast_3d(a, b)), shapes=[(), (2, 3)], name="several"),
    OpCase("flipud", torch.flipud, min_dims=1),
    OpCase("fliplr", torch.fliplr, min_dims=2),
    *[OpCase("rot90", lambda x, k=k, ax=ax: torch.rot90(x, k, ax), ng_fn=lambda x, k=k, ax=ax: ng.rot90(x, k, ax),
             shapes=[(2, 3, 4)], name=f"k{k}-{ax[0]}{ax[1]}")
      for k, ax in [(1, (0, 1)), (2, (1, 2)), (3, (0, 2)), (-1, (2, 0)), (0, (0, 1))]],
    OpCase("rollaxis", None, ng_fn=lambda x: ng.rollaxis(x, 2, 0), shapes=[(2, 3, 4)]),
    OpCase("rollaxis", None, ng_fn=lambda x: ng.rollaxis(x, 0, 3), shapes=[(2, 3, 4)], name="to-end"),
    OpCase("linspace", None, 2, ng_fn=lambda s, e: ng.linspace(s, e, 5), shapes=[(), ()]),
    OpCase("linspace", None, 2, ng_fn=lambda s, e: ng.linspace(s, e, 4, endpoint=False, axis=1),
           shapes=[(2,), (3, 1)], name="arrays-axis"),
    # -- reductions, differences
    OpCase("diff", lambda x: torch.diff(x), min_dims=1),
    OpCase("diff", lambda x: torch.diff(x, 2, 0), ng_fn=lambda x: ng.diff(x, 2, 0), shapes=[(5, 3)], name="n2"),
    OpCase("diff", lambda x, p, a: torch.diff(x, 1, -1, p, a), 3, ng_fn=lambda x, p, a: ng.diff(x, 1, -1, p, a),
           shapes=[(2, 4), (2, 1), (2, 2)], name="prepend-append"),
    OpCase("diff", lambda x: torch.diff(x, 1, 0, torch.zeros((1, 3), dtype=x.dtype)),
           ng_fn=lambda x: ng.diff(x, axis=0, prepend=0.0), shapes=[(3, 3)], name="scalar-prepend"),
    OpCase("gradient", lambda x: torch.gradient(x, spacing=0.5)[0], ng_fn=lambda x: ng.gradient(x, 0.5),
           shapes=[(6,)]),
    OpCase("gradient", lambda x: torch.gradient(x, spacing=0.5, edge_order=2)[0],
           ng_fn=lambda x: ng.gradient(x, 0.5, edge_order=2), shapes=[(6,)], name="edge2"),
    OpCase("gradient", lambda x: _pieces(torch.gradient(x, spacing=[2.0, 0.5]), t=True),
           ng_fn=lambda x: _pieces(ng.gradient(x, 2.0, 0.5)), shapes=[(4, 3)], name="2d"),
    OpCase("gradient", lambda x: torch.gradient(x, dim=1, edge_order=2)[0],
           ng_fn=lambda x: ng.gradient(x, axis=1, edge_order=2), shapes=[(2, 4, 3)], name="axis"),
    OpCase("partition", None, ng_fn=lambda x: ng.partition(x, 1), shapes=[(3, 5)], domain=distinct),
    OpCase("partition", None, ng_fn=lambda x: ng.partition(x, (0, 3), axis=None), shapes=[(2, 3)], domain=distinct,
           name="flat"),
    # the k-th entry's index is the k-th smallest's (the others' order is NumPy's to choose)
    OpCase("argpartition", lambda x: torch.argsort(x, dim=-1)[..., 1].double(),
           ng_fn=lambda x: ng.namespace(x).asarray(ng.argpartition(x, 1)[..., 1], dtype=np.float64), shapes=[(3, 5)],
           domain=distinct, grad=False),
    OpCase("ptp", lambda x: torch.amax(x, 0) - torch.amin(x, 0), ng_fn=lambda x: ng.ptp(x, 0), shapes=[(4, 3)],
           domain=distinct),
    # -- linalg
    OpCase("cross", lambda a, b: torch.linalg.cross(a, b.expand(a.shape)), 2, shapes=[(2, 3), (3,)]),
    OpCase("cross", lambda a, b: torch.linalg.cross(a.mT, b.mT).mT, 2,
           ng_fn=lambda a, b: ng.cross(a, b, axisa=0, axisb=0, axisc=0), shapes=[(3, 2), (3, 2)], name="axis0"),
    OpCase("cross", lambda a, b: torch.linalg.cross(torch.nn.functional.pad(a, (0, 1)), b), 2,
           ng_fn=lambda a, b: ng.linalg.cross(a, b), shapes=[(4, 2), (4, 3)], name="2-and-3"),
    OpCase("kron", torch.kron, 2, shapes=[(2, 3), (2, 2)]),
    OpCase("kron", torch.kron, 2, shapes=[(3,), (2, 2)], name="mixed-ndim"),
    OpCase("linalg.eig", _t_eig, ng_fn=_ng_eig, shapes=_matrix_shapes(), domain=_real_spectrum, rtol=1e-6, atol=1e-9),
    OpCase("linalg.eigvals", lambda a: torch.sort(torch.linalg.eigvals(a).real, -1).values,
           ng_fn=lambda a: ng.sort(ng.linalg.eigvals(a), -1), shapes=_matrix_shapes(), domain=_real_spectrum,
           rtol=1e-6, atol=1e-9),
    OpCase("linalg.eigvalsh", lambda a: torch.linalg.eigvalsh(_lower_read(a)), ng_fn=lambda a: ng.positive(ng.linalg.eigvalsh(a)),
           shapes=_matrix_shapes(), domain=lambda a: _sym_distinct(a) + np.triu(a, 1), rtol=1e-6, atol=1e-9),
    *[OpCase("linalg.matrix_power", lambda a, n=n: torch.linalg.matrix_power(a, n),
             ng_fn=lambda a, n=n: ng.linalg.matrix_power(a, n), shapes=[(2, 3, 3)], domain=_well_conditioned,
             rtol=1e-6, name=f"n{n}")
      for n in (0, 1, 2, 5, -2)],
    OpCase("linalg.multi_dot", lambda a, b, c: torch.linalg.multi_dot([a, b, c]), 3,
           ng_fn=lambda a, b, c: ng.linalg.multi_dot([a, b, c]), shapes=[(3,), (3, 4), (4, 2)]),
    OpCase("linalg.eigh", lambda a: torch.linalg.eigvalsh(_lower_read(a)),
           ng_fn=lambda a: ng.positive(ng.linalg.eigh(a)[0]), shapes=[(3, 3)], domain=_spd, name="spd-values"),
]


def _nans(a):
    """A few NaNs among ordinary values (never a whole row)."""
    out = a.copy()
    flat = out.reshape(-1)
    flat[1::7] = np.nan
    return out


def _t_nan(fn, fill):
    return lambda t, **kw: fn(torch.where(torch.isnan(t), torch.full_like(t, fill), t), **kw)


def _t_nanmean(t, dim):
    keep = ~torch.isnan(t)
    return torch.where(keep, t, 0.0).sum(dim) / keep.sum(dim)


def _t_nanvar(t, dim, ddof=0):
    keep = ~torch.isnan(t)
    n = keep.sum(dim, keepdim=True)
    m = torch.where(keep, t, 0.0).sum(dim, keepdim=True) / n
    d = torch.where(keep, t - m, 0.0)
    return (d * d).sum(dim) / (n.squeeze(dim) - ddof)


def _t_conv(a, v, mode):
    full = torch.nn.functional.conv1d(a.reshape(1, 1, -1), v.flip(0).reshape(1, 1, -1), padding=v.shape[0] - 1)
    full = full.reshape(-1)
    n, m = a.shape[0], v.shape[0]
    lo, hi = min(n, m), max(n, m)
    if mode == "same":
        s = (lo - 1) // 2
        return full[s : s + hi]
    if mode == "valid":
        return full[lo - 1 : hi]
    return full


CASES += [
    OpCase("trunc", torch.trunc, domain=_jumps),
    OpCase("rint", torch.round, domain=lambda a: a * 3),
    OpCase("copysign", torch.copysign, 2, domain=_jumps),
    OpCase("ldexp", lambda x, e: torch.ldexp(x, e), 2, ng_fn=lambda x, e: ng.ldexp(x, e.astype(np.int64)),
           domain=lambda a: np.round(2 * a), nondiff=(1,)),
    OpCase("nansum", _t_nan(lambda t: t.sum(), 0.0), ng_fn=ng.nansum, shapes=[(3, 4)], domain=_nans),
    OpCase("nansum", _t_nan(lambda t: t.sum(0, keepdim=True), 0.0), ng_fn=lambda x: ng.nansum(x, 0, True),
           shapes=[(3, 4)], domain=_nans, name="axis"),
    OpCase("nanprod", _t_nan(lambda t: t.prod(1), 1.0), ng_fn=lambda x: ng.nanprod(x, 1), shapes=[(3, 4)],
           domain=_nans),
    OpCase("nanmean", lambda t: _t_nanmean(t, 1), ng_fn=lambda x: ng.nanmean(x, 1), shapes=[(3, 4)], domain=_nans),
    OpCase("nanmax", _t_nan(lambda t: torch.amax(t, 1), -float("inf")), ng_fn=lambda x: ng.nanmax(x, 1),
           shapes=[(3, 4)], domain=lambda a: _nans(distinct(a))),
    OpCase("nanmin", _t_nan(lambda t: torch.amin(t, 0), float("inf")), ng_fn=lambda x: ng.nanmin(x, 0),
           shapes=[(5, 4)], domain=lambda a: _nans(distinct(a))),
    OpCase("nanvar", lambda t: _t_nanvar(t, 1, 1), ng_fn=lambda x: ng.nanvar(x, 1, ddof=1), shapes=[(3, 5)],
           domain=_nans),
    OpCase("nanstd", lambda t: torch.sqrt(_t_nanvar(t, 0)), ng_fn=lambda x: ng.nanstd(x, 0), shapes=[(5, 3)],
           domain=_nans),
    OpCase("nancumsum", _t_nan(lambda t: t.cumsum(1), 0.0), ng_fn=lambda x: ng.nancumsum(x, 1), shapes=[(3, 4)],
           domain=_nans),
    OpCase("nancumprod", _t_nan(lambda t: t.cumprod(1), 1.0), ng_fn=lambda x: ng.nancumprod(x, 1),
           shapes=[(3, 4)], domain=_nans),
    OpCase("cumulative_sum", lambda t: torch.cat([torch.zeros(2, 1, dtype=t.dtype), t.cumsum(1)], 1),
           ng_fn=lambda x: ng.cumulative_sum(x, axis=1, include_initial=True), shapes=[(2, 4)]),
    OpCase("cumulative_prod", lambda t: t.cumprod(0), ng_fn=lambda x: ng.cumulative_prod(x), shapes=[(5,)]),
    OpCase("trapezoid", lambda y: torch.trapezoid(y, dx=0.5), ng_fn=lambda y: ng.trapezoid(y, dx=0.5), min_dims=1,
           min_side=1),
    OpCase("trapezoid", lambda y, x: torch.trapezoid(y, x, dim=0), 2, ng_fn=lambda y, x: ng.trapezoid(y, x, axis=0),
           shapes=[(4, 3), (4,)], name="x"),
    OpCase("quantile", lambda t: torch.quantile(t, torch.tensor([0.1, 0.5, 1.0], dtype=t.dtype), dim=1),
           ng_fn=lambda x: ng.quantile(x, [0.1, 0.5, 1.0], axis=1), shapes=[(3, 5)], domain=distinct),
    OpCase("quantile", lambda t: torch.quantile(t, 0.3, keepdim=True), ng_fn=lambda x: ng.quantile(x, 0.3, keepdims=True),
           shapes=[(2, 3)], domain=distinct, name="flat-keepdims"),
    OpCase("percentile", lambda t: torch.quantile(t, 0.25, dim=0), ng_fn=lambda x: ng.percentile(x, 25, axis=0),
           shapes=[(6, 2)], domain=distinct),
    OpCase("median", lambda t: torch.quantile(t, 0.5, dim=-1), ng_fn=lambda x: ng.median(x, axis=-1),
           shapes=[(2, 4)], domain=distinct),
    OpCase("median", lambda t: torch.quantile(t.reshape(-1), 0.5), ng_fn=ng.median, shapes=[(3, 3)],
           domain=distinct, name="odd"),
    OpCase("append", lambda a, b: torch.cat([a.reshape(-1), b.reshape(-1)]), 2, shapes=[(2, 3), (4,)]),
    OpCase("append", lambda a, b: torch.cat([a, b], 1), 2, ng_fn=lambda a, b: ng.append(a, b, axis=1),
           shapes=[(2, 3), (2, 1)], name="axis"),
    OpCase("matrix_transpose", lambda t: t.mT, min_dims=2),
    OpCase("diagflat", lambda t: torch.diagflat(t, 1), ng_fn=lambda x: ng.diagflat(x, 1), shapes=[(2, 2)]),
    OpCase("broadcast_arrays", lambda a, b: _pieces(torch.broadcast_tensors(a, b), t=True), 2,
           ng_fn=lambda a, b: _pieces(ng.broadcast_arrays(a, b)), shapes=[(3, 1), (4,)]),
    OpCase("unstack", lambda t: _pieces(torch.unbind(t, 1), t=True), ng_fn=lambda x: _pieces(ng.unstack(x, 1)),
           shapes=[(2, 3, 2)]),
    OpCase("meshgrid", lambda a, b: _pieces(torch.meshgrid(a, b, indexing="xy"), t=True), 2,
           ng_fn=lambda a, b: _pieces(ng.meshgrid(a, b)), shapes=[(3,), (2,)]),
    OpCase("meshgrid", lambda a, b, c: _pieces(torch.meshgrid(a, b, c, indexing="ij"), t=True), 3,
           ng_fn=lambda a, b, c: _pieces(ng.meshgrid(a, b, c, indexing="ij")), shapes=[(3,), (2,), (2,)], name="ij"),
    OpCase("delete", lambda t: t[:, [0, 2, 3]], ng_fn=lambda x: ng.delete(x, 1, axis=1), shapes=[(2, 4)]),
    OpCase("compress", lambda t: t[[0, 2]], ng_fn=lambda x: ng.compress([True, False, True], x, axis=0),
           shapes=[(3, 2)]),
    OpCase("extract", lambda t: t.reshape(-1)[[1, 2, 4, 5]], ng_fn=lambda x: ng.extract(np.arange(6) % 3 != 0, x),
           shapes=[(2, 3)]),
    OpCase("logspace", None, 2, ng_fn=lambda s, e: ng.logspace(s, e, 4, base=2.0), shapes=[(), ()]),
    OpCase("geomspace", None, 2, ng_fn=lambda s, e: ng.geomspace(s, e, 5), shapes=[(2,), (2,)], domain=lambda a: np.abs(a) + 0.5),
    OpCase("vander", lambda t: torch.linalg.vander(t).flip(-1), ng_fn=ng.vander, shapes=[(4,)]),
    OpCase("vander", lambda t: torch.linalg.vander(t, N=3), ng_fn=lambda x: ng.vander(x, 3, increasing=True),
           shapes=[(4,)], name="increasing"),
    OpCase("polyval", lambda p, x: sum(p[i] * x ** (p.shape[0] - 1 - i) for i in range(p.shape[0])), 2,
           shapes=[(4,), (3,)]),
    OpCase("vecdot", lambda a, b: (a * b).sum(-1), 2, min_dims=1),
    OpCase("matvec", lambda a, b: (a @ b.unsqueeze(-1))[..., 0], 2, shapes=[(2, 3, 4), (4,)]),
    OpCase("vecmat", lambda a, b: (a.unsqueeze(-2) @ b)[..., 0, :], 2, shapes=[(2, 3), (3, 4)]),
    OpCase("linalg.tensorinv", lambda a: torch.linalg.tensorinv(a, 1), ng_fn=lambda a: ng.linalg.tensorinv(a, 1),
           shapes=[(4, 2, 2)], domain=lambda a: a + 3 * np.eye(4).reshape(4, 2, 2), rtol=1e-6),
    OpCase("linalg.tensorsolve", torch.linalg.tensorsolve, 2, ng_fn=ng.linalg.tensorsolve, shapes=[(2, 3, 6), (2, 3)],
           domain=lambda a: a + 3 * np.eye(6).reshape(a.shape) if a.size == 36 else a, rtol=1e-6),
    OpCase("linalg.cond", torch.linalg.cond, ng_fn=ng.linalg.cond, shapes=[(3, 3)], domain=_well_conditioned,
           rtol=1e-6),
    OpCase("linalg.cond", lambda a: torch.linalg.matrix_norm(a) * torch.linalg.matrix_norm(torch.linalg.inv(a)), ng_fn=lambda a: ng.linalg.cond(a, "fro"),
           shapes=[(2, 3, 3)], domain=_well_conditioned, rtol=1e-6, name="fro"),
    *[OpCase("convolve", lambda a, v, mode=mode: _t_conv(a, v, mode), 2,
             ng_fn=lambda a, v, mode=mode: ng.convolve(a, v, mode), shapes=sh, name=f"{mode}-{sh[0][0]}-{sh[1][0]}")
      for mode in ("full", "same", "valid") for sh in ([(5,), (3,)], [(2,), (4,)])],
    *[OpCase("correlate", lambda a, v, mode=mode: _t_conv(a, v.flip(0), mode) if a.shape[0] >= v.shape[0]
             else _t_conv(v, a.flip(0), mode).flip(0), 2,
             ng_fn=lambda a, v, mode=mode: ng.correlate(a, v, mode), shapes=sh, name=f"{mode}-{sh[0][0]}-{sh[1][0]}")
      for mode in ("full", "same", "valid") for sh in ([(5,), (3,)], [(2,), (4,)])],
    OpCase("cov", torch.cov, shapes=[(3, 5)]),
    OpCase("cov", lambda t: torch.cov(t.mT, correction=0), ng_fn=lambda x: ng.cov(x, rowvar=False, bias=True),
           shapes=[(5, 2)], name="cols-bias"),
    OpCase("corrcoef", torch.corrcoef, shapes=[(3, 5)]),
]

_XP = np.array([-1.5, -0.4, 0.3, 1.1, 2.0])


def _t_interp(x, fp):
    xp = torch.tensor(_XP, dtype=x.dtype)
    i = torch.clamp(torch.searchsorted(xp, x.detach(), right=True) - 1, 0, len(_XP) - 2)
    t = (x - xp[i]) / (xp[i + 1] - xp[i])
    y = fp[i] + t * (fp[i + 1] - fp[i])
    y = torch.where(x < xp[0], fp[0], y)
    return torch.where(x > xp[-1], fp[-1], y)


def _t_block(a, b, c, d):
    return torch.cat([torch.cat([a, b], 1), torch.cat([c, d], 1)], 0)


CASES += [
    OpCase("floor_divide", lambda a, b: torch.div(a, b, rounding_mode="floor") * 1.0, 2, domain=_jumps),
    OpCase("divmod", lambda a, b: torch.cat([torch.div(a, b, rounding_mode="floor").reshape(-1), torch.remainder(a, b).reshape(-1) * 2]),
           2, ng_fn=lambda a, b: _pieces(ng.divmod(a, b)), shapes=[(2, 3), (3,)], domain=away_from_zero),
    OpCase("modf", lambda x: torch.cat([(x - torch.trunc(x)).reshape(-1), torch.trunc(x).reshape(-1) * 2]),
           ng_fn=lambda x: _pieces(ng.modf(x)), shapes=[(2, 3)], domain=lambda a: 3 * a),
    OpCase("heaviside", lambda x1, x2: torch.where(x1 == 0, x2, (x1 > 0).double()), 2, domain=np.round),
    OpCase("copy", lambda t: t.clone()),
    OpCase("ascontiguousarray", lambda t: torch.atleast_1d(t).clone()),
    OpCase("asfortranarray", lambda t: torch.atleast_1d(t).clone()),
    OpCase("resize", lambda t: t.reshape(-1)[torch.arange(10) % 6].reshape(2, 5),
           ng_fn=lambda x: ng.resize(x, (2, 5)), shapes=[(2, 3)]),
    OpCase("ediff1d", lambda t: torch.cat([torch.tensor([-1.0], dtype=t.dtype), torch.diff(t.reshape(-1)),
                                           torch.tensor([2.0, 3.0], dtype=t.dtype)]),
           ng_fn=lambda x: ng.ediff1d(x, to_end=[2.0, 3.0], to_begin=-1.0), shapes=[(2, 3)]),
    OpCase("block", _t_block, 4, ng_fn=lambda a, b, c, d: ng.block([[a, b], [c, d]]),
           shapes=[(2, 2), (2, 1), (3, 2), (3, 1)]),
    OpCase("interp", _t_interp, 2, ng_fn=lambda x, fp: ng.interp(x, _XP, fp), shapes=[(7,), (5,)],
           domain=lambda a: 1.3 * a),
    OpCase("linalg.lstsq", lambda a, b: torch.cat([torch.linalg.pinv(a) @ b,
                                                  ((b - a @ (torch.linalg.pinv(a) @ b)) ** 2).sum(0, keepdim=True),
                                                  torch.linalg.svdvals(a)]), 2,
           ng_fn=lambda a, b: ng.concatenate([r for i, r in enumerate(ng.linalg.lstsq(a, b)) if i != 2]),
           shapes=[(5, 3), (5,)], domain=lambda a: _well_conditioned(a) if a.ndim == 2 else a, rtol=1e-6),
]

CASES += [
    OpCase("nanquantile", lambda t: torch.nanquantile(t, torch.tensor([0.2, 0.5], dtype=t.dtype), dim=1),
           ng_fn=lambda x: ng.nanquantile(x, [0.2, 0.5], axis=1), shapes=[(3, 5)], domain=lambda a: _nans(distinct(a))),
    OpCase("nanpercentile", lambda t: torch.nanquantile(t, 0.75, keepdim=True),
           ng_fn=lambda x: ng.nanpercentile(x, 75, keepdims=True), shapes=[(2, 4)], domain=lambda a: _nans(distinct(a))),
    OpCase("nanmedian", lambda t: torch.nanquantile(t, 0.5, dim=0), ng_fn=lambda x: ng.nanmedian(x, axis=0),
           shapes=[(4, 3)], domain=lambda a: _nans(distinct(a))),
]

_IDX = np.array([[0, 1, 2, 1], [2, 2, 0, 1], [1, 0, 0, 0]])


def _t_unwrap(t):
    host = t.detach().numpy()
    return t + torch.tensor(np.unwrap(host) - host)


def _trimmable(a):
    """Zeros at both ends, nonzero next to them."""
    out = away_from_zero(a)
    out[0] = out[-1] = 0.0
    return out


def _t_pad_front(p, n):
    return torch.cat([torch.zeros(n - p.shape[0], dtype=p.dtype), p])


def _t_polyint(p, k):
    n = p.shape[0]
    return torch.cat([p / torch.arange(n, 0, -1, dtype=p.dtype), torch.tensor([k], dtype=p.dtype)])


CASES += [
    OpCase("unwrap", _t_unwrap, ng_fn=ng.unwrap, shapes=[(9,)], domain=lambda a: np.cumsum(2.5 * a)),
    OpCase("real_if_close", lambda t: t * 1),
    OpCase("frexp", lambda t: torch.frexp(t).mantissa, ng_fn=lambda x: ng.frexp(x)[0], domain=away_from_zero),
    OpCase("trim_zeros", lambda t: t[1:-1], ng_fn=ng.trim_zeros, shapes=[(6,)], domain=_trimmable),
    OpCase("full", lambda v: v.expand(2, 3) * 1, ng_fn=lambda v: ng.full((2, 3), v), shapes=[(3,)]),
    OpCase("full_like", lambda v: v.expand(2, 3) * 1, ng_fn=lambda v: ng.full_like(np.zeros((2, 3)), v), shapes=[()]),
    OpCase("choose", lambda x, y, z: torch.where(torch.tensor(_IDX) == 0, x, torch.where(torch.tensor(_IDX) == 1, y, z)),
           3, ng_fn=lambda x, y, z: ng.choose(_IDX, [x, y, z]), shapes=[(3, 4), (3, 4), (4,)]),
    OpCase("polyadd", lambda a, b: a + _t_pad_front(b, 4), 2, shapes=[(4,), (2,)]),
    OpCase("polysub", lambda a, b: _t_pad_front(a, 4) - b, 2, shapes=[(3,), (4,)]),
    OpCase("polymul", lambda a, b: _t_conv(a, b, "full"), 2, shapes=[(4,), (3,)]),
    OpCase("polyder", lambda p: p[:-1] * torch.arange(4, 0, -1, dtype=p.dtype), shapes=[(5,)]),
    OpCase("polyder", lambda p: p[:-2] * torch.tensor([12.0, 6.0, 2.0], dtype=p.dtype),
           ng_fn=lambda p: ng.polyder(p, 2), shapes=[(5,)], name="m2"),
    OpCase("polyint", lambda p: _t_polyint(p, 0.0), shapes=[(4,)]),
    OpCase("polyint", lambda p: _t_polyint(_t_polyint(p, 1.0), 2.0), ng_fn=lambda p: ng.polyint(p, 2, [1.0, 2.0]),
           shapes=[(3,)], name="m2-k"),
    OpCase("polyfit", lambda x, y: torch.linalg.pinv(x.unsqueeze(-1) ** torch.arange(2, -1, -1, dtype=x.dtype)) @ y, 2,
           ng_fn=lambda x, y: ng.polyfit(x, y, 2), shapes=[(8,), (8,)], rtol=1e-6),
]


def _t_piecewise(x):
    pos, neg = x > 0.5, x < -0.5
    safe = torch.where(pos, x, torch.ones_like(x))
    return torch.where(pos, torch.sqrt(safe), torch.where(neg, -x, torch.full_like(x, 7.0)))


CASES += [
    OpCase("nextafter", lambda a, b: torch.nextafter(a, b).detach(), 2),
    OpCase("spacing", lambda t: torch.tensor(np.spacing(t.detach().numpy())), domain=away_from_zero),
    OpCase("piecewise", _t_piecewise,
           ng_fn=lambda x: ng.piecewise(x, [x > 0.5, x < -0.5], [ng.sqrt, lambda v: ng.negative(v), 7.0]),
           shapes=[(3, 4)], domain=lambda a: np.where(np.abs(np.abs(a) - 0.5) < 0.05, a + 0.2, a)),
    OpCase("insert", lambda a, v: torch.cat([a[:2], v, a[2:]]), 2, ng_fn=lambda a, v: ng.insert(a, 2, v),
           shapes=[(5,), (2,)]),
    OpCase("insert", lambda a, v: torch.cat([a[:, :1], v[:, :1], a[:, 1:3], v[:, 1:], a[:, 3:]], 1), 2,
           ng_fn=lambda a, v: ng.insert(a, [1, 3], v, axis=1), shapes=[(3, 4), (3, 2)], name="axis"),
    OpCase("apply_along_axis", lambda t: torch.logsumexp(t, 1),
           ng_fn=lambda x: ng.apply_along_axis(lambda v: ng.log(ng.sum(ng.exp(v))), 1, x), shapes=[(3, 4)]),
    OpCase("apply_along_axis", lambda t: torch.cumsum(t, 0) * t,
           ng_fn=lambda x: ng.apply_along_axis(lambda v: ng.multiply(ng.cumsum(v), v), 0, x), shapes=[(3, 2)],
           name="vector-result"),
    OpCase("poly", lambda r: torch.stack([torch.ones((), dtype=r.dtype), -r.sum(),
                                           r[0] * r[1] + r[0] * r[2] + r[1] * r[2], -r.prod()]),
           shapes=[(3,)]),
]
