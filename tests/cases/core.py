"""Cases for the first ops (the core issue's set)."""

from __future__ import annotations

import numpy as np
import torch

import new_grad as ng

from ..opcheck import OpCase, away_from_zero, distinct, positive


def _axis_kwargs(data, shapes):
    from hypothesis import strategies as st

    nd = len(shapes[0])
    axis = data.draw(st.one_of(st.none(), st.integers(-nd, nd - 1) if nd else st.none()), label="axis")
    keepdims = data.draw(st.booleans(), label="keepdims")
    return {"axis": axis, "keepdims": keepdims}


def _torch_reduce(fn):
    def call(x, axis=None, keepdims=False):
        dim = tuple(range(x.ndim)) if axis is None else axis
        return fn(x, dim=dim, keepdim=keepdims)

    return call


def _pos_base_power(a):
    return np.abs(a) + 0.5


CASES = [
    OpCase("add", torch.add, 2),
    OpCase("subtract", torch.sub, 2),
    OpCase("multiply", torch.mul, 2),
    OpCase("divide", torch.div, 2, domain=away_from_zero),
    OpCase("negative", torch.neg),
    OpCase("power", torch.pow, 2, domain=_pos_base_power),
    OpCase("power", lambda x: torch.pow(x, 3), ng_fn=lambda x: ng.power(x, 3), name="int-exponent"),
    OpCase("exp", torch.exp),
    OpCase("log", torch.log, domain=positive),
    OpCase("tanh", torch.tanh),
    OpCase("sigmoid", torch.sigmoid),
    OpCase("relu", torch.relu, domain=away_from_zero),
    OpCase("sum", _torch_reduce(torch.sum), kwargs=_axis_kwargs),
    OpCase("mean", _torch_reduce(torch.mean), kwargs=_axis_kwargs, min_side=1),
    OpCase("max", _torch_reduce(torch.amax), kwargs=_axis_kwargs, min_side=1, domain=distinct),
    OpCase(
        "max",
        lambda x: torch.amax(x, dim=1),
        ng_fn=lambda x: ng.max(x, axis=1),
        shapes=[(3, 4)],
        domain=lambda a: np.round(a),  # ties: the gradient is shared, like amax
        name="ties",
    ),
    OpCase("matmul", torch.matmul, shapes=lambda d: _matmul_shapes(d)),
    OpCase("outer", torch.outer, shapes=[(3,), (4,)]),
    OpCase("linear", torch.nn.functional.linear, shapes=[(5, 3), (4, 3), (4,)]),
    OpCase("linear", torch.nn.functional.linear, shapes=[(2, 5, 3), (4, 3)], name="no-bias-batched"),
    OpCase("softmax_cross_entropy", lambda z, y: -(y * torch.log_softmax(z, -1)).sum() / z.shape[0],
           shapes=[(6, 5), (6, 5)], nondiff=(1,)),
    OpCase("reshape", lambda x: x.reshape(-1), ng_fn=lambda x: ng.reshape(x, (-1,))),
    OpCase("transpose", lambda x: x.permute(tuple(reversed(range(x.ndim)))), ng_fn=ng.transpose),
    OpCase("transpose", lambda x: x.permute(1, 2, 0), ng_fn=lambda x: ng.transpose(x, (1, 2, 0)),
           min_dims=3, name="axes"),
    OpCase("swapaxes", lambda x: x.transpose(0, -1), ng_fn=lambda x: ng.swapaxes(x, 0, -1), min_dims=1),
    OpCase("expand_dims", lambda x: x.unsqueeze(0), ng_fn=lambda x: ng.expand_dims(x, 0)),
    OpCase("broadcast_to", lambda x: x.expand(2, *x.shape), ng_fn=lambda x: ng.broadcast_to(x, (2, *x.shape))),
    OpCase("identity", lambda x: x.clone()),
]


def _matmul_shapes(data):
    from hypothesis import strategies as st

    kind = data.draw(st.sampled_from(["2d", "batched", "vec-left", "vec-right", "dot", "broadcast"]), label="kind")
    n, k, m = (data.draw(st.integers(1, 4)) for _ in range(3))
    return {
        "2d": [(n, k), (k, m)],
        "batched": [(2, n, k), (2, k, m)],
        "vec-left": [(k,), (2, k, m)],
        "vec-right": [(2, n, k), (k,)],
        "dot": [(k,), (k,)],
        "broadcast": [(3, 1, n, k), (2, k, m)],
    }[kind]
