"""Cases for normalisation and embedding (scale and shift are differentiable inputs)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

import new_grad as ng

from ..opcheck import OpCase


def _bn_shapes(data):
    nd = data.draw(st.sampled_from([2, 3, 4]), label="ndim")
    c = data.draw(st.integers(1, 3))
    spatial = tuple(data.draw(st.integers(1, 3)) for _ in range(nd - 2))
    n = data.draw(st.integers(2 if nd == 2 else 1, 4))
    if nd > 2 and n * int(np.prod(spatial)) < 2:
        n = 2
    return [(n, c, *spatial), (c,), (c,), (c,), (c,)]


def _pos(v):
    return abs(v) + 0.5


def _ln_shapes(data):
    lead = tuple(data.draw(st.integers(1, 3)) for _ in range(data.draw(st.integers(0, 2))))
    norm = tuple(data.draw(st.integers(1, 4)) for _ in range(data.draw(st.integers(1, 2))))
    norm = norm if int(np.prod(norm)) > 1 else (*norm[:-1], 2)
    _ln["shape"] = norm
    return [(*lead, *norm), norm, norm]


_ln: dict = {}


def _gn_shapes(data):
    g = data.draw(st.integers(1, 3))
    c = g * data.draw(st.integers(1, 2))
    spatial = tuple(data.draw(st.integers(1, 3)) for _ in range(data.draw(st.integers(0, 2))))
    if c // g * int(np.prod(spatial)) < 2:
        spatial = (*spatial, 2)
    _gn["g"] = g
    return [(2, c, *spatial), (c,), (c,)]


_gn: dict = {}

_IDX = np.array([[0, 3, 1], [3, 3, 4]])


def _on(like, a):
    """``a`` on the device of ``like``."""
    return ng.namespace(like).asarray(a)

CASES = [
    OpCase("batch_norm", lambda x, rm, rv, w, b: F.batch_norm(x, rm, _pos_t(rv), w, b, training=True),
           ng_fn=lambda x, rm, rv, w, b: ng.batch_norm(x, rm, _pos(rv), w, b, training=True),
           shapes=_bn_shapes, nondiff=(1, 2), name="train"),
    OpCase("batch_norm", lambda x, rm, rv, w, b: F.batch_norm(x, rm, _pos_t(rv), w, b, training=False),
           ng_fn=lambda x, rm, rv, w, b: ng.batch_norm(x, rm, _pos(rv), w, b, training=False),
           shapes=_bn_shapes, nondiff=(1, 2), name="eval"),
    OpCase("batch_norm", lambda x: F.batch_norm(x, None, None, training=True),
           ng_fn=lambda x: ng.batch_norm(x, None, None, training=True),
           shapes=[(4, 3, 2)], name="no-stats-no-affine"),
    OpCase("layer_norm", lambda x, w, b: F.layer_norm(x, _ln["shape"], w, b),
           ng_fn=lambda x, w, b: ng.layer_norm(x, _ln["shape"], w, b), shapes=_ln_shapes),
    OpCase("group_norm", lambda x, w, b: F.group_norm(x, _gn["g"], w, b),
           ng_fn=lambda x, w, b: ng.group_norm(x, _gn["g"], w, b), shapes=_gn_shapes),
    OpCase("embedding", lambda w: F.embedding(torch.tensor(_IDX), w, padding_idx=3),
           ng_fn=lambda w: ng.embedding(_on(w, _IDX), w, padding_idx=3), shapes=[(5, 4)]),
    OpCase("embedding", lambda w: F.embedding(torch.tensor(_IDX), w),
           ng_fn=lambda w: ng.embedding(_on(w, _IDX), w), shapes=[(6, 2)], name="no-padding"),
]


def _pos_t(v):
    return v.abs() + 0.5
