"""Cases for the shape family: joins, splits, rearrangements, diagonals, gathers."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

import new_grad as ng

from ..opcheck import OpCase


def _shape(data, min_dims=1, max_dims=3, min_side=0, max_side=4, label="shape"):
    nd = data.draw(st.integers(min_dims, max_dims), label=f"{label}-ndim")
    return tuple(data.draw(st.integers(min_side, max_side), label=f"{label}-{i}") for i in range(nd))


def _axis_of(data, nd, label="axis"):
    return data.draw(st.integers(-nd, nd - 1), label=label)


# -- joins: three arrays that agree off the joined axis ------------------------------------------------------


def _join_shapes(data):
    base = _shape(data, 1, 3)
    ax = data.draw(st.integers(0, len(base) - 1), label="ax")
    out = []
    for i in range(3):
        s = list(base)
        s[ax] = data.draw(st.integers(0, 3), label=f"len{i}")
        out.append(tuple(s))
    data.draw(st.just(ax), label="join-axis")
    return out


def _join_axis(data, shapes):
    sizes = [s for s in zip(*shapes)]
    ax = next((i for i, col in enumerate(sizes) if len(set(col)) > 1), 0)
    return {"axis": ax - len(shapes[0]) if data.draw(st.booleans(), label="neg") else ax}


def _same3(data):
    s = _shape(data, 0, 3)
    return [s, s, s]


def _stack_axis(data, shapes):
    nd = len(shapes[0]) + 1
    return {"axis": _axis_of(data, nd)}


def _h_shapes(data):
    return data.draw(st.sampled_from([[(2,), (3,), (1,)], [(3, 1), (3, 2), (3, 0)], [(2, 1, 3), (2, 2, 3)]]))


def _v_shapes(data):
    return data.draw(st.sampled_from([[(3,), (3,)], [(1, 4), (2, 4), (4,)], [(1, 2, 3), (2, 2, 3)]]))


def _t_hstack(*ts):
    return torch.hstack(ts)


def _t_vstack(*ts):
    return torch.vstack(ts)


# -- splits: compared as the pieces joined back, each piece scaled differently ----------------------------------


def _pieces_out(pieces):
    return ng.concatenate([ng.multiply(ng.ravel(p), float(i + 1)) for i, p in enumerate(pieces)])


def _t_pieces_out(pieces):
    return torch.cat([p.reshape(-1) * float(i + 1) for i, p in enumerate(pieces)])


def _split_case(data, shapes):
    (shape,) = shapes
    ax = data.draw(st.integers(0, len(shape) - 1), label="ax")
    n = shape[ax]
    divisors = [d for d in range(1, max(n, 1) + 1) if n % d == 0] or [1]
    if data.draw(st.booleans(), label="sections"):
        return {"ios": data.draw(st.sampled_from(divisors), label="k"), "axis": ax}
    idx = data.draw(st.lists(st.integers(-n - 1, n + 1), max_size=3), label="idx")
    return {"ios": idx, "axis": ax}


def _t_split(x, ios, axis):
    """NumPy's split rules (raw, possibly negative or unsorted bounds) applied to positions, gathered in torch."""
    pos = np.split(np.arange(x.numel()).reshape(tuple(x.shape)), ios, axis)
    return _t_pieces_out([x.reshape(-1)[torch.as_tensor(p, dtype=torch.int64)] for p in pos])


def _array_split_case(data, shapes):
    (shape,) = shapes
    ax = data.draw(st.integers(0, len(shape) - 1), label="ax")
    return {"ios": data.draw(st.integers(1, 5), label="k"), "axis": ax}


# -- rearrangements ---------------------------------------------------------------------------------------------


def _flip_kwargs(data, shapes):
    nd = len(shapes[0])
    if nd == 0 or data.draw(st.booleans(), label="none"):
        return {"axis": None}
    return {"axis": tuple(sorted(set(data.draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd)))))}


def _t_flip(x, axis):
    return torch.flip(x, tuple(range(x.ndim)) if axis is None else axis)


def _roll_kwargs(data, shapes):
    nd = len(shapes[0])
    if nd == 0 or data.draw(st.booleans(), label="flat"):
        return {"shift": data.draw(st.integers(-5, 5)), "axis": None}
    ax = tuple(data.draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=2), label="axes"))
    return {"shift": tuple(data.draw(st.integers(-5, 5)) for _ in ax), "axis": ax}


def _t_roll(x, shift, axis):
    if axis is None:
        return torch.roll(x.reshape(-1), shift).reshape(x.shape)
    return torch.roll(x, shift, axis)


def _tile_kwargs(data, shapes):
    return {"reps": tuple(data.draw(st.lists(st.integers(0, 3), min_size=0, max_size=4), label="reps"))}


def _t_tile(x, reps):
    return x.tile(reps) if reps else x.clone()


def _repeat_kwargs(data, shapes):
    nd = len(shapes[0])
    axis = None if nd == 0 or data.draw(st.booleans(), label="flat") else data.draw(st.integers(-nd, nd - 1))
    n = int(np.prod(shapes[0])) if axis is None else shapes[0][axis]
    if data.draw(st.booleans(), label="scalar"):
        return {"repeats": data.draw(st.integers(0, 3)), "axis": axis}
    return {"repeats": data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), "axis": axis}


def _t_repeat(x, repeats, axis):
    return torch.repeat_interleave(x, torch.as_tensor(repeats, dtype=torch.int64), dim=axis)


def _pad_kwargs(data, shapes):
    nd = len(shapes[0])
    mode = data.draw(st.sampled_from(["constant", "edge", "reflect", "symmetric", "wrap"]), label="mode")
    widths = tuple((data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))) for _ in range(nd))
    kw = {"pad_width": widths, "mode": mode}
    if mode == "constant":
        kw["constant_values"] = data.draw(st.sampled_from([0, 1.5]))
    return kw


def _t_pad(x, pad_width, mode, constant_values=0):
    flat = [w for pair in reversed(pad_width) for w in pair]
    if mode == "constant":
        return F.pad(x, flat, value=constant_values)
    # torch pads only the trailing dims in these modes: do it via the source index, like new_grad's backward
    idx = [torch.as_tensor(np.pad(np.arange(n), w, mode=mode)) for n, w in zip(x.shape, pad_width)]
    return x[torch.meshgrid(*idx, indexing="ij")] if idx else x.clone()


def _pad_shapes(data):
    return [_shape(data, 1, 3, min_side=1, max_side=3)]


# -- diagonals --------------------------------------------------------------------------------------------------


def _diagonal_kwargs(data, shapes):
    nd = len(shapes[0])
    a1 = data.draw(st.integers(-nd, nd - 1), label="a1")
    a2 = data.draw(st.integers(-nd, nd - 1).filter(lambda a: a % nd != a1 % nd), label="a2")
    return {"offset": data.draw(st.integers(-3, 3), label="offset"), "axis1": a1, "axis2": a2}


def _t_diagonal(x, offset, axis1, axis2):
    return torch.diagonal(x, offset, axis1, axis2)


def _t_trace(x, offset, axis1, axis2):
    return torch.diagonal(x, offset, axis1, axis2).sum(-1)


def _diag_shapes(data):
    return [_shape(data, 1, 2, max_side=4)]


def _k_kwargs(data, shapes):
    return {"k": data.draw(st.integers(-3, 3), label="k")}


def _tri_shapes(data):
    return [_shape(data, 2, 4, max_side=4)]


# -- gathers ----------------------------------------------------------------------------------------------------


def _take_kwargs(data, shapes):
    (shape,) = shapes
    nd = len(shape)
    axis = None if data.draw(st.booleans(), label="flat") else data.draw(st.integers(-nd, nd - 1))
    n = int(np.prod(shape)) if axis is None else shape[axis]
    idx_shape = _shape(data, 0, 2, max_side=3, label="idx")
    idx = np.asarray(data.draw(st.lists(st.integers(-n, n - 1), min_size=int(np.prod(idx_shape)),
                                        max_size=int(np.prod(idx_shape))), label="idx")).reshape(idx_shape)
    return {"indices": idx.astype(np.int64), "axis": axis}


def _t_take(x, indices, axis):
    idx = torch.as_tensor(indices)
    if axis is None:
        n = x.numel()
        return x.reshape(-1)[idx % n if n else idx]
    n = x.shape[axis]
    return torch.index_select(x, axis, (idx % n).reshape(-1)).reshape(
        (*x.shape[: axis % x.ndim], *idx.shape, *x.shape[axis % x.ndim + 1 :])
    )


def _take_shapes(data):
    return [_shape(data, 1, 3, min_side=1)]


def _tal_kwargs(data, shapes):
    (shape,) = shapes
    nd = len(shape)
    axis = data.draw(st.integers(-nd, nd - 1), label="axis")
    ishape = list(shape)
    ishape[axis] = data.draw(st.integers(0, 4), label="k")
    n = shape[axis]
    idx = np.asarray(data.draw(st.lists(st.integers(0, n - 1), min_size=int(np.prod(ishape)),
                                        max_size=int(np.prod(ishape))), label="idx"), dtype=np.int64)
    return {"indices": idx.reshape(ishape), "axis": axis}


def _t_tal(x, indices, axis):
    return torch.take_along_dim(x, torch.as_tensor(indices), dim=axis)


CASES = [
    OpCase("ravel", lambda x: x.reshape(-1)),
    OpCase("squeeze", lambda x: x.squeeze(), ng_fn=ng.squeeze),
    OpCase("squeeze", lambda x: x.squeeze(1), ng_fn=lambda x: ng.squeeze(x, 1), shapes=[(2, 1, 3)], name="axis"),
    OpCase("squeeze", lambda x: x.squeeze((0, 2)), ng_fn=lambda x: ng.squeeze(x, (0, -1)),
           shapes=[(1, 3, 1)], name="axes"),
    OpCase("moveaxis", lambda x: torch.movedim(x, 0, -1), ng_fn=lambda x: ng.moveaxis(x, 0, -1), min_dims=1),
    OpCase("moveaxis", lambda x: torch.movedim(x, (0, 1), (2, 0)), ng_fn=lambda x: ng.moveaxis(x, (0, 1), (2, 0)),
           min_dims=3, max_dims=3, name="tuples"),
    OpCase("concatenate", lambda a, b, c, axis: torch.cat((a, b, c), axis),
           ng_fn=lambda a, b, c, axis: ng.concatenate((a, b, c), axis=axis), nargs=3, shapes=_join_shapes,
           kwargs=_join_axis),
    OpCase("concatenate", lambda a, b: torch.cat((a.reshape(-1), b.reshape(-1))),
           ng_fn=lambda a, b: ng.concatenate([a, b], axis=None), shapes=[(2, 3), (4,)], nargs=2, name="flat"),
    OpCase("stack", lambda a, b, c, axis: torch.stack((a, b, c), axis),
           ng_fn=lambda a, b, c, axis: ng.stack([a, b, c], axis), nargs=3, shapes=_same3, kwargs=_stack_axis),
    OpCase("hstack", _t_hstack, ng_fn=lambda *a: ng.hstack(a), shapes=_h_shapes, nargs=2),
    OpCase("vstack", _t_vstack, ng_fn=lambda *a: ng.vstack(a), shapes=_v_shapes, nargs=2),
    OpCase("hstack", lambda a, b: torch.hstack((a, b)), ng_fn=lambda a, b: ng.hstack([a, b]), shapes=[(), (2,)],
           nargs=2, name="scalars"),
    OpCase("split", lambda x, ios, axis: _t_split(x, ios, axis),
           ng_fn=lambda x, ios, axis: _pieces_out(ng.split(x, ios, axis)), shapes=lambda d: [_shape(d, 1, 3)],
           kwargs=_split_case),
    OpCase("array_split", lambda x, ios, axis: _t_pieces_out(torch.tensor_split(x, ios, dim=axis)),
           ng_fn=lambda x, ios, axis: _pieces_out(ng.array_split(x, ios, axis)),
           shapes=lambda d: [_shape(d, 1, 3)], kwargs=_array_split_case),
    OpCase("flip", _t_flip, kwargs=_flip_kwargs),
    OpCase("roll", _t_roll, kwargs=_roll_kwargs),
    OpCase("tile", _t_tile, kwargs=_tile_kwargs),
    OpCase("repeat", _t_repeat, kwargs=_repeat_kwargs),
    OpCase("pad", _t_pad, shapes=_pad_shapes, kwargs=_pad_kwargs),
    OpCase("pad", lambda x: F.pad(x, (3, 0)), ng_fn=lambda x: ng.pad(x, ((0, 0), (3, 0))),
           shapes=[(2, 2)], name="wide"),
    OpCase("diagonal", _t_diagonal, min_dims=2, max_dims=4, kwargs=_diagonal_kwargs),
    OpCase("trace", _t_trace, min_dims=2, max_dims=4, kwargs=_diagonal_kwargs),
    OpCase("trace", lambda x: torch.trace(x), ng_fn=ng.trace, shapes=[(3, 5)], name="matrix"),
    OpCase("diag", lambda x, k: torch.diag(x, k), shapes=_diag_shapes, kwargs=_k_kwargs),
    OpCase("triu", lambda x, k: torch.triu(x, k), shapes=_tri_shapes, kwargs=_k_kwargs),
    OpCase("tril", lambda x, k: torch.tril(x, k), shapes=_tri_shapes, kwargs=_k_kwargs),
    OpCase("triu", lambda x: torch.triu(x.expand(3, 3)), ng_fn=ng.triu, shapes=[(3,)], name="1d"),
    OpCase("take", _t_take, shapes=_take_shapes, kwargs=_take_kwargs),
    OpCase("take", lambda x: x[:, torch.tensor([[3, 0], [1, 3]])], ng_fn=lambda x: ng.take(x, [[7, -4], [1, 3]], 1,
                                                                                 mode="wrap"),
           shapes=[(2, 4)], name="wrap"),
    OpCase("take", lambda x: x[:, torch.tensor([3, 0, 3])], ng_fn=lambda x: ng.take(x, [7, -4, 3], 1, mode="clip"),
           shapes=[(2, 4)], name="clip"),
    OpCase("take_along_axis", _t_tal, shapes=_take_shapes, kwargs=_tal_kwargs),
]
