"""gradcheck: passes on correct gradients, names the worst entry on wrong ones."""

from __future__ import annotations

import numpy as np
import pytest

import new_grad as ng
from new_grad.errors import DtypeError, GradcheckError


def test_passes_on_new_grad_functions():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    assert ng.gradcheck(lambda x, w: ng.tanh(ng.matmul(x, w)), (x, w))
    assert ng.gradcheck(lambda x: ng.sum(ng.exp(ng.sin(x))), x)
    assert ng.gradcheck(ng.sin, 0.3)  # a Python float is an input too


def test_float32_inputs_are_checked_in_float64():
    x = np.linspace(-1, 1, 5).astype(np.float32)
    assert ng.gradcheck(ng.tanh, x, atol=1e-7, rtol=1e-6)  # float32 central differences would fail this


def _wrong_backward(g, x):
    return (ng.multiply(g, ng.add(ng.cos(x), 0.1 * (x > 1.5))),)  # wrong where x > 1.5


wrong_sin = ng.defvjp(lambda x: np.sin(x), _wrong_backward, name="wrong_sin")


def test_names_input_worst_entry_and_values():
    x = np.array([[0.1, 0.2], [0.3, 2.0]])
    y = np.ones(3)
    with pytest.raises(GradcheckError) as err:
        ng.gradcheck(lambda y, x: ng.multiply(wrong_sin(x), 2.0), (y, x))
    msg = str(err.value)
    assert "input 1 (2, 2) float64" in msg
    assert "input index (1, 1)" in msg and "output index (1, 1)" in msg
    assert "analytic" in msg and "numeric" in msg
    expected_analytic, expected_numeric = 2 * (np.cos(2.0) + 0.1), 2 * np.cos(2.0)
    assert f"{expected_analytic:.6f}"[:7] in msg and f"{expected_numeric:.6f}"[:7] in msg


def test_raise_exception_false_returns_false():
    assert ng.gradcheck(wrong_sin, np.array([2.0]), raise_exception=False) is False
    assert ng.gradcheck(wrong_sin, np.array([0.5]), raise_exception=False) is True


def test_non_float_inputs_pass_through():
    idx = np.array([2, 0])
    assert ng.gradcheck(lambda x, i: ng.sum(ng.multiply(ng.exp(x), i)), (np.ones(3)[:2], idx))
    labels = ng.constant(np.array([0.0, 1.0]))
    assert ng.gradcheck(lambda x, y: ng.sum(ng.multiply(ng.tanh(x), y)), (np.ones(2), labels))
    with pytest.raises(DtypeError, match="no input to check"):
        ng.gradcheck(lambda i: i, (np.arange(3),))


def test_tuple_outputs_are_each_checked():
    assert ng.gradcheck(lambda x: (ng.sin(x), ng.exp(x)), np.array([0.1, 0.2]))
    with pytest.raises(GradcheckError, match="output 1 gradient of input 0"):
        ng.gradcheck(lambda x: (ng.sin(x), wrong_sin(x)), np.array([2.0]))


def test_does_not_record_on_the_active_engine():
    engine = ng.Autograd()
    with engine:
        assert ng.gradcheck(ng.tanh, np.array([0.5]))
    assert not engine.operation_list


def test_inputs_are_not_modified():
    x = np.array([0.5, 1.0])
    before = x.copy()
    ng.gradcheck(ng.exp, x)
    assert np.array_equal(x, before)


def test_gradgradcheck_checks_second_derivatives():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((3, 2)), rng.standard_normal((2, 4))
    assert ng.gradgradcheck(lambda x, w: ng.tanh(ng.matmul(x, w)), (x, w))
    assert ng.gradgradcheck(ng.sin, 0.3)
    # a backward in plain NumPy: right to first order, a constant to the second
    np_sin = ng.defvjp(lambda x: np.sin(x), lambda g, x: (ng.multiply(g, np.cos(x)),), name="np_sin")
    assert ng.gradcheck(np_sin, x)
    assert ng.gradgradcheck(np_sin, x, raise_exception=False) is False
    with pytest.raises(GradcheckError, match="gradgradcheck: second derivative.*write it with new_grad ops"):
        ng.gradgradcheck(np_sin, x)
