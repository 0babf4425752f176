"""float32 in, float32 out: every elementwise, activation and reduction op keeps the input's dtype.

The engine would silently cast a float64 gradient back (``_fix_grad``), hiding a
backward that upcasts (a NumPy float64 scalar or 0-d array constant, NEP 50). So
this calls each taped op's backward directly and checks the dtype it returns.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import new_grad as ng
from new_grad.ops import REGISTRY

from .cases import ALL_CASES
from .opcheck import draw_arrays

FAMILIES = {"elementwise", "activations", "reductions"}
NUMPY_2 = int(np.__version__.split(".")[0]) >= 2
WIDENS = {"float_power", "astype"}  # compute in (or cast to) float64 by design

CASES = [
    c for c in ALL_CASES
    if c.op in REGISTRY and REGISTRY[c.op].family in FAMILIES and REGISTRY[c.op].differentiable and c.grad
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_float32_stays_float32(case, data):
    arrays, kwargs = draw_arrays(case, data)
    arrays = [a.astype(np.float32) for a in arrays]
    # NumPy 1.x promotes 0-d float32 with a Python float to float64 (its rule before NEP 50);
    # new_grad follows the installed NumPy there. NEP 50 (NumPy 2) keeps float32.
    assume(NUMPY_2 or all(a.ndim for a in arrays))
    for i in case.nondiff:
        ng.constant(arrays[i])
    fn = case.ng_fn or getattr(ng, case.op)
    engine = ng.Autograd()
    with engine, np.errstate(all="ignore"):
        out = fn(*arrays, **kwargs)
    if case.op not in WIDENS:
        assert np.asarray(out).dtype == np.float32, f"{case.id}: forward gave {np.asarray(out).dtype}"
    if not NUMPY_2:  # NumPy 1.x upcasts 0-d intermediates; what users read is still float32
        if engine.operation_list:
            engine.backward(1)
            for a in arrays:
                if engine.memory_buffer.is_in_memory(a):
                    assert engine.memory_buffer.get_param(a).dtype == np.float32
        return
    with np.errstate(all="ignore"):
        for op in engine.operation_list:
            g = np.ones(np.shape(op.output), dtype=np.asarray(op.output).dtype)
            extra = (op.output, op.needs) if op.needs is not None else ()
            grads = op.backward_operation(g, *op.inputs, *extra)
            for x, gx in zip(op.inputs, grads):
                if gx is not None and getattr(x, "dtype", None) == np.float32:
                    assert gx.dtype == np.float32, f"{case.id}: {op.name} returned a {gx.dtype} gradient for float32"
