"""Cases for the reductions (ops/reductions.py) beyond the core set (sum, mean, max are in core.py)."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st

import new_grad as ng

from ..opcheck import OpCase, distinct, positive


def _axis(data, shapes, none=True):
    nd = len(shapes[0])
    ints = st.integers(-nd, nd - 1) if nd else st.none()
    return data.draw(st.one_of(st.none(), ints) if none else ints, label="axis")


def _axis_keepdims(data, shapes):
    return {"axis": _axis(data, shapes), "keepdims": data.draw(st.booleans(), label="keepdims")}


def _axis_tuple_keepdims(data, shapes):
    nd = len(shapes[0])
    axes = data.draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True), label="axes")
    return {"axis": tuple(axes), "keepdims": data.draw(st.booleans(), label="keepdims")}


def _axis_keepdims_ddof(data, shapes):
    return {**_axis_keepdims(data, shapes), "ddof": data.draw(st.sampled_from([0, 1]), label="ddof")}


def _dims(x, axis):
    if axis is None:
        return tuple(range(x.ndim))
    return (axis,) if isinstance(axis, int) else tuple(axis)


def _torch_reduce(fn, **extra):
    def call(x, axis=None, keepdims=False, **kw):
        return fn(x, dim=_dims(x, axis), keepdim=keepdims, **extra, **kw)

    return call


def _torch_var(fn):
    def call(x, axis=None, keepdims=False, ddof=0):
        return fn(x, dim=_dims(x, axis), correction=ddof, keepdim=keepdims)

    return call


def _torch_prod(x, axis=None, keepdims=False):
    dims = sorted(d % x.ndim for d in _dims(x, axis)) if x.ndim else []
    out = x
    for d in reversed(dims):  # torch.prod takes one dim at a time
        out = torch.prod(out, d, keepdim=True)
    if not keepdims:
        out = out.reshape([n for i, n in enumerate(x.shape) if i not in dims])
    return out


def _torch_average(x, w, axis=None, keepdims=False):
    dims = _dims(x, axis)
    w = w.reshape([w.shape[0] if i == axis % x.ndim else 1 for i in range(x.ndim)]) if w.shape != x.shape else w
    w = w.expand(x.shape)
    return (x * w).sum(dim=dims, keepdim=keepdims) / w.sum(dim=dims, keepdim=keepdims)


def _zeros(a):
    """Several exact zeros among the values (prod, cumprod's special path)."""
    return np.where(np.abs(a) < 0.6, 0.0, a)


def _torch_cum(fn):
    def call(x, axis=None):
        return fn(x.reshape(-1), 0) if axis is None else fn(x, axis)

    return call


def _torch_sort(x, axis=-1):
    return (torch.sort(x.reshape(-1), stable=True) if axis is None else torch.sort(x, dim=axis, stable=True)).values


def _cum_axis(data, shapes):
    return {"axis": _axis(data, shapes)}


def _f(fn):
    return lambda *xs, **kw: ng.namespace(*xs).asarray(fn(*xs, **kw), dtype=np.float64)


def _tf(fn):
    return lambda *ts, **kw: fn(*ts, **kw).double()


def _arg_kwargs(data, shapes):
    return {"axis": _axis(data, shapes, none=False), "keepdims": data.draw(st.booleans(), label="keepdims")}


CASES = [
    OpCase("min", _torch_reduce(torch.amin), kwargs=_axis_keepdims, min_side=1, domain=distinct),
    OpCase("min", lambda x: torch.amin(x, dim=0), ng_fn=lambda x: ng.min(x, axis=0), shapes=[(4, 3)],
           domain=np.round, name="ties"),
    OpCase("min", _torch_reduce(torch.amin), kwargs=_axis_tuple_keepdims, min_dims=1, min_side=1, domain=distinct,
           name="axis-tuple"),
    OpCase("prod", _torch_prod, kwargs=_axis_keepdims),
    OpCase("prod", _torch_prod, kwargs=_axis_keepdims, domain=_zeros, name="zeros"),
    OpCase("prod", _torch_prod, kwargs=_axis_tuple_keepdims, min_dims=1, domain=_zeros, name="axis-tuple"),
    OpCase("var", _torch_var(torch.var), kwargs=_axis_keepdims_ddof, min_dims=1, min_side=2),
    OpCase("std", _torch_var(torch.std), kwargs=_axis_keepdims_ddof, min_dims=1, min_side=2),
    OpCase("std", lambda x: torch.std(x, dim=1, correction=0), ng_fn=lambda x: ng.std(x, axis=1), shapes=[(3, 4)],
           domain=lambda a: np.broadcast_to(a[:, :1], a.shape).copy(), name="zero-spread"),
    OpCase("average", _torch_average, 2, ng_fn=lambda x, w, **kw: ng.average(x, weights=w, **kw),
           kwargs=_axis_keepdims, shapes=lambda d: [_same := d.draw(
        st.lists(st.integers(1, 4), max_size=3).map(tuple), label="shape"), _same], domain=positive),
    OpCase("average", lambda x, w: _torch_average(x, w, axis=1), 2, ng_fn=lambda x, w: ng.average(x, 1, w),
           shapes=[(3, 4), (4,)], domain=positive, name="1d-weights"),
    OpCase("average", lambda x: x.mean(dim=(0, 1)), ng_fn=lambda x: ng.average(x, (0, 1)), shapes=[(2, 3)],
           name="unweighted"),
    OpCase("cumsum", _torch_cum(torch.cumsum), kwargs=_cum_axis, min_dims=1),
    OpCase("cumprod", _torch_cum(torch.cumprod), kwargs=_cum_axis, min_dims=1),
    OpCase("cumprod", _torch_cum(torch.cumprod), kwargs=_cum_axis, min_dims=1, domain=_zeros, name="zeros"),
    OpCase("sort", _torch_sort, kwargs=_cum_axis, min_dims=1),
    OpCase("argmax", _tf(torch.argmax), ng_fn=_f(ng.argmax), kwargs=_arg_kwargs, min_dims=1, min_side=1,
           grad=False),
    OpCase("argmax", _tf(torch.argmax), ng_fn=_f(ng.argmax), min_side=1, grad=False, name="flat"),
    OpCase("argmin", _tf(torch.argmin), ng_fn=_f(ng.argmin), kwargs=_arg_kwargs, min_dims=1, min_side=1,
           grad=False),
    OpCase("argsort", lambda x: torch.argsort(x, dim=-1, stable=True).double(),
           ng_fn=_f(lambda x: ng.argsort(x, kind="stable")), min_dims=1, grad=False),
]
