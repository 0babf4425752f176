"""One helper that checks any op against PyTorch (float64): forward values and gradients.

An op's test is an :class:`OpCase` in ``tests/cases/<family>.py``: the new_grad
function, its PyTorch twin, how many array arguments, and optionally shapes,
keyword arguments and an input domain. ``check_case`` draws shapes with
Hypothesis (broadcasting, size-0 and size-1 axes), runs new_grad on a fresh
engine with a random upstream gradient, and compares everything to
``torch.autograd.grad``. Ops PyTorch has no twin for set ``torch_fn=None`` and
are checked by central differences instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import new_grad as ng

RTOL, ATOL = 1e-7, 1e-10


@dataclass
class OpCase:
    op: str  # the registry name this case covers
    torch_fn: Callable[..., Any] | None  # PyTorch twin, called with tensors (+ kwargs)
    nargs: int = 1  # array arguments, drawn mutually broadcastable
    ng_fn: Callable[..., Any] | None = None  # default: ng.<op>
    kwargs: Any = field(default_factory=dict)  # dict, or a callable (data, shapes) -> dict
    shapes: Any = None  # None, a list of fixed shape tuples, or callable(data) -> list of shapes
    domain: Callable[[np.ndarray], np.ndarray] | None = None  # maps N(0,1) draws into the domain
    min_side: int = 0
    min_dims: int = 0
    max_dims: int = 3
    grad: bool = True  # False: forward only (non-differentiable outputs)
    nondiff: tuple[int, ...] = ()  # array arguments that get no gradient (targets, masks)
    name: str = ""  # test id suffix when an op has several cases
    rtol: float = RTOL
    atol: float = ATOL

    @property
    def id(self) -> str:
        return f"{self.op}-{self.name}" if self.name else self.op


def draw_shapes(case: OpCase, data: st.DataObject) -> list[tuple[int, ...]]:
    if callable(case.shapes):
        return list(case.shapes(data))
    if case.shapes is not None:
        return [tuple(s) for s in case.shapes]
    if case.nargs == 0:
        return []
    res = data.draw(
        hnp.mutually_broadcastable_shapes(
            num_shapes=case.nargs,
            min_dims=case.min_dims,
            max_dims=case.max_dims,
            min_side=case.min_side,
            max_side=4,
        ),
        label="shapes",
    )
    return list(res.input_shapes)


def draw_arrays(case: OpCase, data: st.DataObject) -> tuple[list[np.ndarray], dict]:
    shapes = draw_shapes(case, data)
    seed = data.draw(st.integers(0, 2**31 - 1), label="seed")
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in shapes]
    if case.domain is not None:
        arrays = [np.asarray(case.domain(a), dtype=np.float64) for a in arrays]
    kwargs = case.kwargs(data, shapes) if callable(case.kwargs) else dict(case.kwargs)
    return arrays, kwargs


def _to_np(t: Any) -> Any:
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def assert_close(actual: Any, expected: Any, what: str, rtol: float = RTOL, atol: float = ATOL) -> None:
    a, e = np.asarray(actual), np.asarray(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != expected {e.shape}"
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=what, equal_nan=True)


def run_new_grad(
    fn: Callable[..., Any], arrays: list[np.ndarray], kwargs: dict, upstream_seed: int = 0, nondiff=(),
    divergence: Callable[[Any], Any] | None = None,
):
    """Forward on a fresh engine, backward with a random upstream gradient (or ``divergence(out)``); returns
    (out, grads)."""
    for i in nondiff:
        ng.constant(arrays[i])
    engine = ng.Autograd()
    with engine:
        out = fn(*arrays, **kwargs)
    if not engine.operation_list:
        return out, [np.zeros_like(a) for a in arrays]
    if divergence is None:
        engine.backward(np.random.default_rng(upstream_seed).standard_normal(np.shape(out)))
    else:
        engine.backward(divergence(out), output=out)
    grads = []
    for a in arrays:
        grads.append(engine.memory_buffer.get_param(a) if engine.memory_buffer.is_in_memory(a) else np.zeros_like(a))
    return out, grads


def run_torch(fn: Callable[..., Any], arrays: list[np.ndarray], kwargs: dict, upstream_seed: int = 0, nondiff=()):
    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=i not in nondiff) for i, a in enumerate(arrays)]
    out = fn(*ts, **kwargs)
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        return _to_np(out), [np.zeros_like(a) for a in arrays]
    g = torch.tensor(np.random.default_rng(upstream_seed).standard_normal(tuple(out.shape)))
    wrt = [t for t in ts if t.requires_grad]
    grads = iter(torch.autograd.grad(out, wrt, g, allow_unused=True))
    result = []
    for t, a in zip(ts, arrays):
        gr = next(grads) if t.requires_grad else None
        result.append(np.zeros_like(a) if gr is None else _to_np(gr))
    return _to_np(out), result


def numeric_grads(fn: Callable[..., Any], arrays: list[np.ndarray], kwargs: dict, upstream_seed: int = 0, eps: float = 1e-6):
    """Central differences of <upstream, fn(arrays)> with respect to every array."""
    with ng.no_grad():
        out = fn(*arrays, **kwargs)
    g = np.random.default_rng(upstream_seed).standard_normal(np.shape(out))
    grads = []
    for a in arrays:
        grad = np.zeros_like(a)
        flat = a.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            with ng.no_grad():
                hi = np.sum(g * np.asarray(fn(*arrays, **kwargs)))
            flat[i] = old - eps
            with ng.no_grad():
                lo = np.sum(g * np.asarray(fn(*arrays, **kwargs)))
            flat[i] = old
            grad.reshape(-1)[i] = (hi - lo) / (2 * eps)
        grads.append(grad)
    return out, grads


def check_case(case: OpCase, data: st.DataObject) -> None:
    arrays, kwargs = draw_arrays(case, data)
    fn = case.ng_fn or getattr(ng, case.op)
    out, grads = run_new_grad(fn, [a.copy() for a in arrays], kwargs, nondiff=case.nondiff)
    if case.torch_fn is not None:
        t_out, t_grads = run_torch(case.torch_fn, arrays, kwargs, nondiff=case.nondiff)
        rtol, atol = case.rtol, case.atol
    else:
        t_out, t_grads = numeric_grads(fn, [a.copy() for a in arrays], kwargs)
        rtol, atol = 1e-5, 1e-7
    assert_close(out, t_out, f"{case.id}: forward", rtol, atol)
    if np.asarray(out).dtype.kind in "fc" and case.grad:
        for i, (g, tg) in enumerate(zip(grads, t_grads)):
            assert_close(g, tg, f"{case.id}: gradient of input {i}", rtol, atol)


# -- domains --------------------------------------------------------------------------------------


def positive(a: np.ndarray) -> np.ndarray:
    return np.abs(a) + 0.5


def away_from_zero(a: np.ndarray) -> np.ndarray:
    return np.where(a >= 0, a + 0.5, a - 0.5)


def unit_open(a: np.ndarray) -> np.ndarray:
    """Into (-0.9, 0.9): for arcsin, arctanh and friends."""
    return 0.9 * np.tanh(a)


def distinct(a: np.ndarray) -> np.ndarray:
    """Values far enough apart that kinks (max, abs, sort) are not hit by finite differences."""
    flat = a.reshape(-1)
    order = np.random.default_rng(0).permutation(flat.size)
    return (order.astype(np.float64) * 0.37 - flat.size * 0.15).reshape(a.shape)


# -- the same op on another device ------------------------------------------------------------------

DEVICE_TOL = {np.dtype(np.float64): (1e-10, 1e-12), np.dtype(np.float32): (1e-5, 1e-6)}


def _put(v: Any, device: str, dtype: Any = None) -> Any:
    """``v`` (arrays, also inside tuples, lists and dicts) on ``device``; float arrays cast to ``dtype``."""
    from new_grad.backends import to_device

    if isinstance(v, np.ndarray):
        if dtype is not None and v.dtype.kind == "f":
            v = v.astype(dtype)
        return to_device(v, device)
    if isinstance(v, tuple):
        return tuple(_put(x, device, dtype) for x in v)
    if isinstance(v, list):
        return [_put(x, device, dtype) for x in v]
    if isinstance(v, dict):
        return {k: _put(x, device, dtype) for k, x in v.items()}
    return v


def run_on(fn: Callable[..., Any], arrays: list[np.ndarray], kwargs: dict, device: str, dtype: Any, nondiff=()):
    """Forward + backward (random upstream gradient) with every array on ``device`` in ``dtype``."""
    xs = [_put(a, device, dtype) for a in arrays]
    kw = _put(kwargs, device, dtype)
    for i in nondiff:
        ng.constant(xs[i])
    engine = ng.Autograd()
    with engine:
        out = fn(*xs, **kw)
    grads = [None] * len(xs)
    if engine.operation_list:
        g = np.random.default_rng(0).standard_normal(np.shape(out))
        engine.backward(_put(g, device, getattr(out, "dtype", None) if np.ndim(out) else None))
        grads = [engine.memory_buffer.get_param(x) if engine.memory_buffer.is_in_memory(x) else None for x in xs]
    return out, grads


def assert_same_on_device(out: Any, ref: Any, what: str, device: str, dtype: Any) -> None:
    """``out`` (computed on ``device``) is an array of that device holding ``ref``'s values within tolerance."""
    from new_grad.backends import device_of, is_array, to_numpy

    if isinstance(ref, (tuple, list)):
        assert isinstance(out, (tuple, list)) and len(out) == len(ref), f"{what}: {type(out)} vs {type(ref)}"
        for i, (o, r) in enumerate(zip(out, ref)):
            assert_same_on_device(o, r, f"{what}[{i}]", device, dtype)
        return
    if ref is None or not is_array(ref) or ref.ndim == 0 and not is_array(out):
        if ref is not None and not is_array(ref):
            assert not is_array(out) or np.ndim(out) == 0, f"{what}: {type(out)} where the CPU gives {type(ref)}"
        return
    assert device_of(out) == device, f"{what}: a {type(out).__name__} came back, not an array on {device!r}"
    rtol, atol = DEVICE_TOL[np.dtype(dtype)]
    got = to_numpy(out)
    assert got.shape == ref.shape and got.dtype == ref.dtype, f"{what}: {got.shape} {got.dtype} vs {ref.shape} {ref.dtype}"
    finite = np.abs(ref[np.isfinite(ref)]) if ref.dtype.kind in "fc" else np.zeros(0)
    atol = max(atol, rtol * float(finite.max())) if finite.size else atol  # relative to the array's magnitude
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol, err_msg=what, equal_nan=True)


def check_case_on_device(case: OpCase, data: st.DataObject, device: str, dtype: Any = np.float64) -> None:
    """The op on ``device`` gives the CPU's values and gradients, as arrays of that device."""
    arrays, kwargs = draw_arrays(case, data)
    fn = case.ng_fn or getattr(ng, case.op)
    out, grads = run_on(fn, [a.copy() for a in arrays], kwargs, "cpu", dtype, case.nondiff)
    d_out, d_grads = run_on(fn, [a.copy() for a in arrays], kwargs, device, dtype, case.nondiff)
    assert_same_on_device(d_out, out, f"{case.id} on {device}: forward", device, dtype)
    if case.grad:
        for i, (g, dg) in enumerate(zip(grads, d_grads)):
            if g is None:
                assert dg is None, f"{case.id} on {device}: input {i} has a gradient only there"
            else:
                assert_same_on_device(dg, g, f"{case.id} on {device}: gradient of input {i}", device, dtype)


def course_close(ours: Any, theirs: Any, *, array: bool = True) -> None:
    """The course's check: close elementwise (rtol 1e-5, atol 1e-10) and a summed absolute error under 1e-10.

    ``array``: ``ours`` must be a NumPy array itself (what a course function returns), not just array-like.
    """
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    if array:
        assert isinstance(ours, np.ndarray), type(ours)
    ours = np.asarray(ours)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    assert np.allclose(ours, theirs, rtol=1e-5, atol=1e-10)
    assert np.abs(ours - theirs).sum() < 1e-10
