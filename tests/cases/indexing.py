"""Cases for indexing: getitem with every kind of key, and the functional updates."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import new_grad as ng

from ..opcheck import OpCase


def _shape(data, min_dims=1, max_dims=3, min_side=1, max_side=4):
    return data.draw(hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side),
                     label="shape")


def _advanced_key(data, shape, unique=False):
    """A key mixing ints, positive-step slices, integer arrays (with repeats unless ``unique``), a boolean mask,
    None and Ellipsis (a mask is not mixed with integer arrays: their lengths would have to agree)."""
    parts: list = []
    axes = list(range(len(shape)))
    used_bool = not data.draw(st.booleans(), label="mask-allowed")
    idx_shape = data.draw(st.sampled_from([(), (2,), (3,), (2, 2)]), label="idx-shape")
    kinds = ["int", "slice", "all"] + (["bool"] if not used_bool else ["array"])
    for ax in axes:
        n = shape[ax]
        kind = data.draw(st.sampled_from(kinds), label=f"kind{ax}")
        if kind == "array" and unique and int(np.prod(idx_shape)) > n:
            kind = "slice"
        if kind == "int":
            parts.append(data.draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            lo = data.draw(st.one_of(st.none(), st.integers(-n - 1, n + 1)))
            hi = data.draw(st.one_of(st.none(), st.integers(-n - 1, n + 1)))
            parts.append(slice(lo, hi, data.draw(st.sampled_from([None, 1, 2]))))
        elif kind == "array":
            size = int(np.prod(idx_shape))
            vals = data.draw(st.lists(st.integers(0, n - 1), min_size=size, max_size=size, unique=unique))
            vals = [v - n if data.draw(st.booleans(), label="negative") else v for v in vals]
            parts.append(np.asarray(vals, dtype=np.int64).reshape(idx_shape))
        elif kind == "bool" and not used_bool:
            used_bool = True
            parts.append(np.asarray(data.draw(st.lists(st.booleans(), min_size=n, max_size=n))))
        else:
            parts.append(slice(None))
    if data.draw(st.booleans(), label="newaxis"):
        parts.insert(data.draw(st.integers(0, len(parts))), None)
    if data.draw(st.booleans(), label="ellipsis") and parts:
        drop = data.draw(st.integers(0, len(parts) - 1))
        if parts[drop] is not None and isinstance(parts[drop], slice) and parts[drop] == slice(None):
            parts[drop] = Ellipsis
    return tuple(parts)


def _t_getitem(x, key):
    """PyTorch twin with NumPy's indexing rules (they differ on where advanced axes go): gather by the flat
    positions NumPy's own indexing selects; repeated positions accumulate in PyTorch's backward."""
    pos = np.arange(x.numel()).reshape(tuple(x.shape))[key]
    return x.reshape(-1)[torch.as_tensor(np.array(pos, order="C"), dtype=torch.int64)]


def _basic_kwargs(data, shapes):
    return {"key": data.draw(hnp.basic_indices(shapes[0], allow_newaxis=True, allow_ellipsis=True), label="key")}


def _advanced_kwargs(data, shapes):
    return {"key": _advanced_key(data, shapes[0])}


def _mask_kwargs(data, shapes):
    (shape,) = shapes
    k = data.draw(st.integers(1, len(shape)), label="mask-ndim")
    mask = data.draw(hnp.arrays(np.bool_, shape[:k]), label="mask")
    return {"key": mask if data.draw(st.booleans()) else (Ellipsis, mask) if k == len(shape) else (mask, Ellipsis)}


# -- index_add / index_update: values take the shape of a[key] (or a broadcastable suffix) ---------------------

_last: dict = {}


def _update_shapes(data, unique=False):
    shape = _shape(data)
    key = _advanced_key(data, shape, unique) if data.draw(st.booleans(), label="adv") else data.draw(
        hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True), label="basic")
    target = np.empty(shape)[key].shape
    drop = data.draw(st.integers(0, len(target)), label="drop")  # broadcast values over leading axes
    vshape = tuple(1 if data.draw(st.booleans(), label="one") else s for s in target[drop:])
    _last["key"] = key
    return [shape, vshape]


def _update_kwargs(data, shapes):
    return {"key": _last["key"]}


def _repeated_shapes(data):
    return [(4, 3), (5, 3)]


_REPEAT = np.array([0, 2, 0, 0, 3])


CASES = [
    OpCase("getitem", None, ng_fn=lambda x, key: ng.getitem(x, key), shapes=lambda d: [_shape(d, 0, 3, 0)],
           kwargs=_basic_kwargs, name="basic"),
    OpCase("getitem", _t_getitem, ng_fn=lambda x, key: ng.getitem(x, key),
           shapes=lambda d: [_shape(d)], kwargs=_advanced_kwargs, name="advanced"),
    OpCase("getitem", _t_getitem, ng_fn=lambda x, key: ng.getitem(x, key),
           shapes=lambda d: [_shape(d, 1, 3, 0)], kwargs=_mask_kwargs, name="mask"),
    OpCase("getitem", lambda x: x[[0, 0, 2, 0]][:, 1], ng_fn=lambda x: ng.getitem(x, ([0, 0, 2, 0], 1)),
           shapes=[(3, 2)], name="repeated"),
    OpCase("getitem", lambda x: x[1, 2], ng_fn=lambda x: ng.getitem(x, (1, 2)), shapes=[(3, 4)], name="scalar"),
    OpCase("index_add", None, ng_fn=lambda a, v, key: ng.index_add(a, key, v), nargs=2, shapes=_update_shapes,
           kwargs=_update_kwargs),
    OpCase("index_add", lambda a, v: a.index_put((torch.as_tensor(_REPEAT),), v, accumulate=True),
           ng_fn=lambda a, v: ng.index_add(a, ng.namespace(a).asarray(_REPEAT), v), nargs=2, shapes=[(4, 3), (5, 3)], name="repeated"),
    OpCase("index_update", None, ng_fn=lambda a, v, key: ng.index_update(a, key, v), nargs=2,
           shapes=lambda d: _update_shapes(d, unique=True), kwargs=_update_kwargs),
    OpCase("index_update", lambda a, v: a.index_put((torch.tensor([2, 0]), torch.tensor([1, 1])), v),
           ng_fn=lambda a, v: ng.index_update(a, ([2, 0], [1, 1]), v), nargs=2, shapes=[(3, 2), (2,)],
           name="torch"),
]
