"""Custom ops: a user forward and backward become one recorded op, with clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import new_grad as ng
from new_grad.errors import GradientError


def cube_backward(grad_output, x):
    """∂x³/∂x = 3x² (written with new_grad ops: higher derivatives work)."""
    return (ng.multiply(grad_output, ng.multiply(3.0, ng.multiply(x, x))),)


@ng.custom_op(cube_backward, formula="∂x³/∂x = 3x²")
def cube(x):
    return x**3


def scaled_backward(grad_output, x, w, scale=2.0):
    return ng.multiply(grad_output, ng.multiply(w, scale)), ng.multiply(grad_output, ng.multiply(x, scale)), None


@ng.custom_op(scaled_backward)
def scaled(x, w, scale=2.0):
    """x·w·scale, with a number argument that gets no gradient."""
    return np.asarray(x * w * scale)


def test_gradient_and_one_tape_entry():
    x = np.array([1.0, -2.0, 0.5])
    engine = ng.Autograd()
    with engine:
        y = ng.sum(cube(x))
    assert [op.name for op in engine.operation_list] == ["cube", "sum"]
    engine.backward(1)
    np.testing.assert_allclose(engine.memory_buffer.get_param(x), 3 * x**2)
    assert float(y) == pytest.approx(np.sum(x**3))


def test_keyword_arguments_defaults_and_none_for_numbers():
    x, w = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    engine = ng.Autograd()
    with engine:
        ng.sum(scaled(x, w=w, scale=0.5))
    engine.backward(1)
    np.testing.assert_allclose(engine.memory_buffer.get_param(x), 0.5 * w)
    np.testing.assert_allclose(engine.memory_buffer.get_param(w), 0.5 * x)
    assert ng.gradcheck(lambda x, w: scaled(x, w), (x, w))


def test_forward_ops_are_not_recorded():
    def backward(g, x):
        return (ng.multiply(g, ng.exp(x)),)

    @ng.custom_op(backward)
    def my_exp(x):
        return ng.exp(x)  # new_grad ops inside the forward do not reach the tape

    engine = ng.Autograd()
    with engine:
        my_exp(np.ones(2))
    assert [op.name for op in engine.operation_list] == ["my_exp"]


def test_defvjp_function_form_and_lone_gradient():
    relu6 = ng.defvjp(
        lambda x: np.clip(x, 0, 6),
        lambda g, x: ng.multiply(g, ((x > 0) & (x < 6)).astype(x.dtype)),  # a lone array: fine for one input
        name="relu6",
    )
    x = np.array([-1.0, 3.0, 7.0])
    np.testing.assert_allclose(ng.grad(lambda x: ng.sum(relu6(x)))(x), [0.0, 1.0, 0.0])
    engine = ng.Autograd()
    with engine:
        relu6(x)
    assert [op.name for op in engine.operation_list] == ["relu6"]  # the name given, not "<lambda>"


def test_higher_derivatives_through_a_custom_op():
    x = np.array([0.5, -1.5])
    d2 = ng.grad(lambda x: ng.sum(ng.grad(lambda y: ng.sum(cube(y)))(x)))(x)
    np.testing.assert_allclose(d2, 6 * x)
    np.testing.assert_allclose(ng.hessian(lambda x: ng.sum(ng.sin(cube(x))))(x),
                               torch.autograd.functional.hessian(lambda t: torch.sin(t**3).sum(),
                                                                 torch.tensor(x)).numpy(), rtol=1e-10)


def test_wrong_number_of_gradients_names_the_op():
    bad = ng.defvjp(lambda x, y: x + y, lambda g, x, y: (g,), name="bad_add")
    engine = ng.Autograd()
    with engine:
        bad(np.ones(2), np.ones(2))
    with pytest.raises(GradientError, match=r"bad_add: backward returned 1 gradients for 2 inputs"):
        engine.backward(1)


def test_a_gradient_of_the_broadcast_shape_is_summed_back_as_in_pytorch():
    add = ng.defvjp(lambda x, y: x + y, lambda g, x, y: (g, g), name="bcast_add")
    x, y = np.ones((2, 3)), np.arange(3.0)
    engine = ng.Autograd()
    with engine:
        add(x, y)
    engine.backward(1)
    np.testing.assert_array_equal(engine.memory_buffer.get_param(y), [2.0, 2.0, 2.0])
    tx, ty = torch.ones(2, 3, requires_grad=True), torch.arange(3.0, requires_grad=True)
    (tx + ty).sum().backward()
    np.testing.assert_array_equal(engine.memory_buffer.get_param(y), ty.grad.numpy())


def test_wrong_shape_names_the_op_and_input():
    bad = ng.defvjp(lambda x, y: x + y, lambda g, x, y: (g, g[:1]), name="bad_shape")
    engine = ng.Autograd()
    with engine:
        bad(np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(GradientError, match=r"bad_shape.*shape \(1, 3\) for input 1 of shape \(2, 3\)"):
        engine.backward(1)


def test_not_a_tuple_names_the_op():
    bad = ng.defvjp(lambda x, y: x * y, lambda g, x, y: g, name="bad_mul")
    engine = ng.Autograd()
    with engine:
        bad(np.ones(2), np.ones(2))
    with pytest.raises(GradientError, match="bad_mul: backward returned ndarray"):
        engine.backward(1)


def test_bad_forward_and_signature():
    with pytest.raises(TypeError, match="fixed parameter list"):
        ng.defvjp(lambda *xs: xs[0], lambda g, *xs: (g,))
    nothing = ng.defvjp(lambda x: [1.0], lambda g, x: (g,), name="listy")
    with ng.Autograd(), pytest.raises(ng.NewGradError, match="custom op listy"):
        nothing(np.ones(1))


def test_without_an_engine_it_is_the_plain_forward():
    assert np.array_equal(cube(np.array([2.0])), [8.0])


def test_backward_may_reuse_the_output():
    seen = []

    def my_exp_backward(g, x, *, out=None):
        seen.append(out is not None)
        return (ng.multiply(g, ng.exp(x) if out is None else out),)

    my_exp = ng.defvjp(lambda x: np.exp(x), my_exp_backward, name="my_exp_out")
    x = np.array([0.1, 0.7])
    np.testing.assert_allclose(ng.grad(lambda x: ng.sum(my_exp(x)))(x), np.exp(x))
    assert seen == [True]  # first order: the forward output is handed back
    np.testing.assert_allclose(ng.hessian(lambda x: ng.sum(my_exp(x)))(x), np.diag(np.exp(x)))
    assert seen[-1] is False  # recorded backward: recomputed from the input, so it is differentiable


def test_bare_decorator_mistake_is_explained():
    @ng.custom_op  # forgot the backward: the forward was taken for it
    def oops(x):
        return x

    with pytest.raises(TypeError, match="decorator factory"):
        oops(np.ones(2))
