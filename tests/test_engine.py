"""The engine's rules, one test each."""

from __future__ import annotations

import gc
import warnings

import numpy as np
import pytest

import new_grad as ng
from new_grad.errors import (
    AnomalyError,
    DtypeError,
    EmptyTapeError,
    GradientError,
    NewGradError,
    TapeConsumedError,
    TapeError,
    UnknownArrayError,
    UntrackedViewWarning,
)
from new_grad.nn.functional import add_backward, mul_backward


def test_course_slot_count_after_add():
    eng = ng.Autograd()
    x, y = np.random.randn(1, 5), np.random.randn(1, 5)
    z = x + y
    eng.add_operation([x, y], z, [None, None], add_backward)
    assert len(eng.memory_buffer.memory) == 2
    eng.backward(1)
    np.testing.assert_array_equal(eng.memory_buffer.get_param(x), np.ones((1, 5)))


def test_slots_are_lazy_until_a_gradient_arrives():
    eng = ng.Autograd()
    x = np.ones(3)
    with eng:
        ng.multiply(x, 2.0)
    assert list(eng.memory_buffer.memory.values()) == [None]


def test_views_never_share_a_slot():
    base = np.arange(6.0)
    x, xt = base.reshape(2, 3), base.reshape(2, 3).T  # two views of one buffer
    eng = ng.Autograd()
    with eng:
        a = ng.sum(ng.multiply(x, 2.0))
        b = ng.sum(ng.multiply(xt, 3.0))
        ng.add(a, b)
    assert len(eng.memory_buffer.memory) >= 2
    eng.backward(1)
    np.testing.assert_array_equal(eng.memory_buffer.get_param(x), np.full((2, 3), 2.0))
    np.testing.assert_array_equal(eng.memory_buffer.get_param(xt), np.full((3, 2), 3.0))


def test_no_stale_gradient_after_zero_grad():
    eng = ng.Autograd()
    for _ in range(50):
        x = np.ones(4)
        with eng:
            ng.sum(ng.multiply(x, 3.0))
        eng.backward(1)
        np.testing.assert_array_equal(eng.memory_buffer.get_param(x), np.full(4, 3.0))
        eng.zero_grad()
        del x
        gc.collect()


def test_python_scalars_and_0d_arrays():
    eng = ng.Autograd()
    x = np.array(2.0)
    with eng:
        y = ng.multiply(ng.add(x, 1.0), 3)
    eng.backward(1)
    assert y.shape == ()
    g = eng.memory_buffer.get_param(x)
    assert isinstance(g, np.ndarray) and g.shape == () and g == 3.0


def test_every_op_returns_a_new_object():
    eng = ng.Autograd()
    x = np.ones(3)
    with eng:
        y = ng.identity(x)
        z = ng.reshape(x, (3,))
    assert y is not x and z is not x
    assert len(eng.operation_list) == 2


def test_constants_get_no_gradient_and_pure_constant_ops_are_not_recorded():
    eng = ng.Autograd()
    data = ng.constant(np.random.randn(4, 3))
    w = np.random.randn(3, 2)
    with eng:
        scaled = ng.multiply(data, 2.0)  # only constants: not recorded, result is constant
        out = ng.matmul(scaled, w)
    assert len(eng.operation_list) == 1
    assert ng.is_constant(scaled)
    eng.backward(1)
    assert not eng.memory_buffer.is_in_memory(data)
    assert not eng.memory_buffer.is_in_memory(scaled)
    np.testing.assert_allclose(eng.memory_buffer.get_param(w), scaled.T @ np.ones_like(out))


def test_integer_inputs_get_no_gradient():
    eng = ng.Autograd()
    idx = np.array([1, 2, 3])
    x = np.random.randn(3)
    with eng:
        ng.multiply(x, idx)
    assert not eng.memory_buffer.is_in_memory(idx)
    with eng:
        ng.multiply(idx, idx)  # nothing needs a gradient: not recorded
    assert len(eng.operation_list) == 1


def test_ops_whose_output_got_no_gradient_are_skipped():
    calls = []

    def spy_backward(g, a):
        calls.append(1)
        return (g,)

    eng = ng.Autograd()
    x = np.random.randn(3)
    with eng:
        dead = ng.exp(x)  # never used downstream
        eng.add_operation([dead], dead * 1.0, [None], spy_backward)
        live = ng.sum(ng.tanh(x))
    assert live.shape == ()
    eng.backward(1)
    assert calls == []


def test_backward_frees_as_it_goes_and_second_backward_is_an_error():
    eng = ng.Autograd()
    x = np.random.randn(3)
    with eng:
        ng.sum(ng.exp(x))
    eng.backward(1)
    assert eng.operation_list == []
    assert eng.memory_buffer.is_in_memory(x)  # the leaf keeps its gradient
    assert len(eng.memory_buffer.memory) == 1  # intermediates were released
    with pytest.raises(TapeConsumedError, match="already consumed"):
        eng.backward(1)


def test_retain_graph_allows_a_second_backward_that_accumulates():
    eng = ng.Autograd()
    x = np.random.randn(3)
    with eng:
        h = ng.exp(x)
        ng.sum(ng.multiply(h, h))
    eng.backward(1, retain_graph=True)
    g1 = eng.memory_buffer.get_param(x).copy()
    np.testing.assert_allclose(eng.memory_buffer.get_param(h), 2 * np.exp(x))  # intermediates readable
    eng.backward(1, retain_graph=True)
    np.testing.assert_allclose(eng.memory_buffer.get_param(x), 2 * g1)
    np.testing.assert_allclose(g1, 2 * np.exp(2 * x))


def test_recording_after_backward_starts_a_new_step():
    eng = ng.Autograd()
    x = np.random.randn(3)
    for _ in range(2):
        with eng:
            ng.sum(ng.multiply(x, 2.0))
        eng.backward(1)
    np.testing.assert_allclose(eng.memory_buffer.get_param(x), np.full(3, 4.0))  # accumulated, like .grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(dtype):
    eng = ng.Autograd()
    x = np.random.randn(4, 3).astype(dtype)
    w = np.random.randn(3, 2).astype(dtype)
    with eng:
        h = ng.tanh(ng.matmul(x, w))
        loss = ng.mean(ng.multiply(ng.sigmoid(h), np.array(2.0)))  # a float64 0-d constant
    eng.backward(1)
    assert h.dtype == dtype
    assert eng.memory_buffer.get_param(x).dtype == dtype
    assert eng.memory_buffer.get_param(w).dtype == dtype
    del loss


def test_no_grad_records_nothing_even_on_an_active_engine():
    eng = ng.Autograd()
    x = np.random.randn(3)
    with eng, ng.no_grad():
        ng.exp(x)
        with eng:  # re-entering an engine inside no_grad still records nothing
            ng.exp(x)
    assert eng.operation_list == []

    @ng.no_grad()
    def f(a):
        return ng.exp(a)

    with eng:
        f(x)
    assert eng.operation_list == []


def test_without_an_active_engine_ops_just_compute():
    x = np.random.randn(3)
    np.testing.assert_allclose(ng.exp(x), np.exp(x))
    assert ng.active_engine() is None


def test_many_engines_are_independent():
    e1, e2 = ng.Autograd(), ng.Autograd()
    x = np.random.randn(3)
    with e1:
        ng.sum(ng.multiply(x, 2.0))
        with e2:
            ng.sum(ng.multiply(x, 5.0))
        assert ng.active_engine() is e1
    e1.backward(1)
    e2.backward(1)
    np.testing.assert_allclose(e1.memory_buffer.get_param(x), 2.0)
    np.testing.assert_allclose(e2.memory_buffer.get_param(x), 5.0)


def test_modules_record_on_their_engine_unless_another_is_active():
    e1, e2 = ng.Autograd(), ng.Autograd()
    layer = ng.nn.Linear(3, 2, e1)
    x = np.random.randn(4, 3)
    layer(x)
    assert len(e1.operation_list) == 1
    with e2:
        layer(x)
    assert len(e1.operation_list) == 1 and len(e2.operation_list) == 1


@pytest.mark.parametrize("divergence", ["scalar", "array"])
def test_backward_divergence_scalar_or_array(divergence):
    eng = ng.Autograd()
    x = np.random.randn(2, 3)
    with eng:
        ng.multiply(x, 3.0)
    d = 1.0 if divergence == "scalar" else np.arange(6.0).reshape(2, 3)
    eng.backward(d)
    np.testing.assert_allclose(eng.memory_buffer.get_param(x), 3.0 * np.broadcast_to(d, (2, 3)))


def test_untracked_view_warns_once_per_call_site():
    eng = ng.Autograd()
    x = np.random.randn(3, 2)
    with eng:
        h = ng.exp(x)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            for _ in range(3):
                ng.sum(h.T)  # plain NumPy view of a taped array: the gradient would stop here
    msgs = [w for w in caught if issubclass(w.category, UntrackedViewWarning)]
    assert len(msgs) == 1
    assert "sum" in str(msgs[0].message) and "input 0" in str(msgs[0].message)


def test_recorded_views_do_not_warn():
    eng = ng.Autograd()
    x = np.random.randn(3, 2)
    with eng, warnings.catch_warnings():
        warnings.simplefilter("error", UntrackedViewWarning)
        h = ng.exp(x)
        ng.sum(ng.transpose(h))
        ng.sum(ng.reshape(x, (6,)))


def test_summary_and_dot():
    eng = ng.Autograd()
    x = np.random.randn(4, 3)
    w = np.random.randn(3, 2)
    with eng:
        ng.sum(ng.relu(ng.matmul(x, w)))
    text = str(eng)
    for word in ("matmul", "relu", "sum", "(4,3)", "float64", "3 ops"):
        assert word in text
    dot = eng.to_dot()
    assert dot.startswith("digraph tape {") and "matmul" in dot and dot.rstrip().endswith("}")


def test_anomaly_mode_names_the_first_op():
    eng = ng.Autograd(detect_anomaly=True)
    x = np.array([1.0, 0.0])
    with eng, np.errstate(divide="ignore"):
        with pytest.raises(AnomalyError, match=r"op #0 log"):
            ng.log(x)


def test_anomaly_mode_checks_gradients():
    eng = ng.Autograd(detect_anomaly=True)
    x = np.array([0.0, 1.0])
    with eng, np.errstate(divide="ignore", invalid="ignore"):
        y = ng.power(x, 0.5)  # finite forward, infinite derivative at 0
        ng.sum(y)
        with pytest.raises(AnomalyError, match="power produced a non-finite gradient"):
            eng.backward(1)


# -- errors -----------------------------------------------------------------------------------------


def test_error_hierarchy():
    for cls in (TapeError, EmptyTapeError, TapeConsumedError, GradientError, UnknownArrayError, DtypeError, AnomalyError):
        assert issubclass(cls, NewGradError)


def test_mismatched_inputs_and_gradients_to_update():
    eng = ng.Autograd()
    x = np.ones(2)
    with pytest.raises(TapeError, match="2 inputs but 1 gradients_to_update"):
        eng.add_operation([x, x], x + x, [None], add_backward)


def test_user_backward_wrong_count():
    eng = ng.Autograd()
    x, y = np.ones(2), np.ones(2)
    eng.add_operation([x, y], x * y, [None, None], lambda g, a, b: (g,))
    with pytest.raises(GradientError, match="1 gradients for 2 inputs"):
        eng.backward(1)


def test_user_backward_wrong_shape():
    eng = ng.Autograd()
    x = np.ones((2, 3))
    eng.add_operation([x], x.sum(axis=0), [None], lambda g, a: (g,))
    with pytest.raises(GradientError, match=r"shape \(3,\) for input 0 of shape \(2, 3\)"):
        eng.backward(1)


def test_get_param_unknown_array():
    eng = ng.Autograd()
    with pytest.raises(UnknownArrayError, match=r"\(3,\) float64 has no slot"):
        eng.memory_buffer.get_param(np.ones(3))


def test_backward_on_empty_tape():
    with pytest.raises(EmptyTapeError, match="empty"):
        ng.Autograd().backward(1)


def test_integer_gradient_target_is_a_dtype_error():
    eng = ng.Autograd()
    x = np.ones(3)
    with pytest.raises(DtypeError, match="float array"):
        eng.add_operation([x], x * 2, [np.zeros(3, dtype=int)], mul_backward)


def test_shape_mismatch_names_op_and_shapes():
    with pytest.raises(ng.errors.ShapeError, match=r"add\(\(3,\) float64, \(4,\) float64\)"):
        ng.add(np.ones(3), np.ones(4))
    with pytest.raises(ng.errors.ShapeError, match=r"matmul"):
        ng.matmul(np.ones((2, 3)), np.ones((2, 3)))


def test_bad_divergence_shape():
    eng = ng.Autograd()
    x = np.ones((2, 3))
    with eng:
        ng.exp(x)
    with pytest.raises(TapeError, match=r"cannot be broadcast"):
        eng.backward(np.ones(4))


@pytest.mark.parametrize("shape", [(), (3,), (2, 3)])
def test_fan_in_accumulates_without_corrupting_aliased_gradients(shape):
    # add(x, x) hands the same gradient object to both inputs; later sums are made in place
    x = np.asarray(np.random.randn(*shape))
    eng = ng.Autograd()
    with eng:
        a = ng.add(x, x)
        b = ng.multiply(x, 2.0)
        c = ng.add(ng.add(a, b), x)
        ng.sum(ng.add(c, x))
    eng.backward(1, retain_graph=True)
    np.testing.assert_allclose(eng.memory_buffer.get_param(x), np.full(shape, 6.0))
    np.testing.assert_allclose(eng.memory_buffer.get_param(a), np.full(shape, 1.0))
    eng.backward(1)  # a last pass after a retained one: intermediates restart from zero
    np.testing.assert_allclose(eng.memory_buffer.get_param(x), np.full(shape, 12.0))


def test_a_course_backward_in_user_code_sees_its_module_names_change():
    # the first-order path rebinds names only in the library's own backward functions
    import types

    user = types.ModuleType("user_course_code")
    exec(
        "import new_grad as ng\nfrom new_grad import multiply\nscale = 1.0\n"
        "def scaled_backward(g, a):\n    return (multiply(g, scale),)\n",
        user.__dict__,
    )
    x = np.ones(3)
    for scale in (1.0, 3.0):
        user.scale = scale
        eng = ng.Autograd()
        y = x * 2.0
        eng.add_operation([x], y, [None], user.scaled_backward)
        eng.backward(1)
        np.testing.assert_array_equal(eng.memory_buffer.get_param(x), [scale] * 3)
