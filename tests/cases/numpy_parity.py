"""Cases for the NumPy functions that complete the elementwise, shape, reduction and linalg families."""

from __future__ import annotations

import numpy as np
import torch

import new_grad as ng

from ..opcheck import OpCase, away_from_zero, distinct
from .elementwise import _specials, _where_shapes
from .linalg import _lower_read, _matrix_shapes, _spd, _sym_distinct, _well_conditioned


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
    idx = np.broadcast_to(order[..., None, :], V.shape).copy()
    return ng.take_along_axis(V, idx, -1)


def _ng_eig(a):
    w, V = ng.linalg.eig(a)
    order = np.argsort(np.asarray(w), axis=-1)
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
    OpCase("remainder", torch.remainder, 2, domain=away_from_zero),
    OpCase("remainder", lambda x: torch.remainder(x, 0.7), ng_fn=lambda x: ng.mod(x, 0.7), name="mod-scalar"),
    OpCase("fmod", torch.fmod, 2, domain=away_from_zero),
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
           ng_fn=lambda x: np.asarray(ng.argpartition(x, 1)[..., 1], dtype=np.float64), shapes=[(3, 5)],
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
