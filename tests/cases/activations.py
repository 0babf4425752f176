"""Cases for the activations and the softmax family (ops/activations.py)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

import new_grad as ng

from ..opcheck import OpCase, away_from_zero


def _axis(data, shapes):
    nd = len(shapes[0])
    return {"axis": data.draw(st.integers(-nd, nd - 1), label="axis")}


def _axis_keepdims(data, shapes):
    nd = len(shapes[0])
    axis = data.draw(st.one_of(st.none(), st.integers(-nd, nd - 1) if nd else st.none()), label="axis")
    return {"axis": axis, "keepdims": data.draw(st.booleans(), label="keepdims")}


def _torch_lse(x, axis=None, keepdims=False):
    return torch.logsumexp(x, dim=tuple(range(x.ndim)) if axis is None else axis, keepdim=keepdims)


def _wide(a: np.ndarray) -> np.ndarray:
    """Spread draws over both regimes of piecewise activations (incl. softplus's threshold)."""
    return away_from_zero(a) * 8


CASES = [
    OpCase("softmax", lambda x, axis: torch.softmax(x, dim=axis), kwargs=_axis, min_dims=1),
    OpCase("softmax", lambda x: torch.softmax(x, dim=-1), ng_fn=ng.softmax, shapes=[(3, 5)],
           domain=lambda a: a * 300, name="large-logits"),
    OpCase("log_softmax", lambda x, axis: torch.log_softmax(x, dim=axis), kwargs=_axis, min_dims=1),
    OpCase("log_softmax", lambda x: torch.log_softmax(x, dim=-1), ng_fn=ng.log_softmax, shapes=[(3, 5)],
           domain=lambda a: a * 300, name="large-logits"),
    OpCase("logsumexp", _torch_lse, kwargs=_axis_keepdims),
    OpCase("logsumexp", lambda x: torch.logsumexp(x, dim=1), ng_fn=lambda x: ng.logsumexp(x, 1),
           shapes=[(2, 4)], domain=lambda a: a * 500, name="large"),
    OpCase("leaky_relu", F.leaky_relu, domain=away_from_zero),
    OpCase("leaky_relu", lambda x: F.leaky_relu(x, 0.2), ng_fn=lambda x: ng.leaky_relu(x, negative_slope=0.2),
           domain=away_from_zero, name="slope"),
    OpCase("elu", F.elu, domain=away_from_zero),
    OpCase("elu", lambda x: F.elu(x, alpha=0.5), ng_fn=lambda x: ng.elu(x, alpha=0.5), domain=_wide, name="alpha"),
    OpCase("selu", F.selu, domain=away_from_zero),
    OpCase("gelu", F.gelu),
    OpCase("gelu", lambda x: F.gelu(x, approximate="tanh"), ng_fn=lambda x: ng.gelu(x, approximate="tanh"),
           name="tanh"),
    OpCase("silu", F.silu, domain=lambda a: a * 5),
    OpCase("softplus", F.softplus, domain=_wide),
    OpCase("softplus", lambda x: F.softplus(x, beta=2.0, threshold=5.0),
           ng_fn=lambda x: ng.softplus(x, beta=2.0, threshold=5.0), domain=_wide, name="beta-threshold"),
    OpCase("mish", F.mish, domain=lambda a: a * 5),
    OpCase("hardtanh", F.hardtanh, domain=lambda a: a * 3),
    OpCase("hardtanh", lambda x: F.hardtanh(x, -0.5, 2.0), ng_fn=lambda x: ng.hardtanh(x, min_val=-0.5, max_val=2.0),
           domain=lambda a: a * 3, name="bounds"),
]
