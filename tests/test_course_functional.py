"""The 11-785 course's functional backward functions, called the way course code and its tests call them.

Each is compared with PyTorch in float64 at the course's tolerance
(``allclose(rtol=1e-5, atol=1e-10)`` and a summed absolute difference below 1e-10),
or, where the course's contract has no PyTorch twin (arrays that don't chain), with
the course's own formula.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import new_grad as ng
from new_grad.errors import ShapeError
from new_grad.nn import functional as F
from new_grad.nn import functional_hw1 as F1
from new_grad.nn import functional_hw2 as F2

from .opcheck import course_close


def torch_grads(fn, *arrays, grad=None, seed=0):
    """Run ``fn`` on tensors of ``arrays``; backward with ``grad`` (random if None); return (g, out, grads)."""
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*ts)
    g = np.random.default_rng(seed).standard_normal(tuple(out.shape)) if grad is None else grad
    out.backward(torch.tensor(g))
    return g, out.detach().numpy(), [t.grad for t in ts]


COURSE_NAMES = (
    "identity_backward add_backward sub_backward matmul_backward outer_backward mul_backward div_backward "
    "log_backward exp_backward max_backward sum_backward tanh_backward transpose_backward slice_backward "
    "expand_dims_backward squeeze_backward unbroadcast SoftmaxCrossEntropy_backward"
).split()
HW2_NAMES = (
    "conv1d_stride1_backward conv2d_stride1_backward downsampling1d_backward downsampling2d_backward "
    "flatten_backward ctc_loss_backward"
).split()


def test_the_three_module_paths_offer_the_course_names():
    for name in COURSE_NAMES:
        assert getattr(F1, name) is getattr(F, name) is getattr(F2, name), name
    for name in HW2_NAMES:
        assert getattr(F2, name) is getattr(F, name), name
    # `from mytorch.nn.functional_hw1 import *` brings them all
    ns: dict = {}
    exec("from new_grad.nn.functional_hw2 import *", ns)  # noqa: S102
    assert set(COURSE_NAMES + HW2_NAMES) <= set(ns)


def test_ops_keep_their_richer_backward_under_another_name():
    """Where the course took a name, the op's own backward (axis, keepdims, ...) is NAME_op_backward."""
    from new_grad.ops import REGISTRY

    for op in ("sum", "max", "identity", "tanh", "transpose", "expand_dims", "squeeze", "ctc_loss"):
        bw = REGISTRY[op].backward
        assert bw.__name__ == f"{op}_op_backward" and getattr(F, bw.__name__) is bw
        assert getattr(F, f"{op}_backward") is not bw
    x = np.arange(6.0).reshape(2, 3)
    ga, axis, keep = F.sum_op_backward(np.ones(2), x, 1, False)
    assert ga.shape == (2, 3) and axis is None and keep is None


def test_identity_backward_returns_the_gradient():
    a = np.random.default_rng(0).standard_normal((5, 5))
    g, _, (ga,) = torch_grads(lambda t: t * 1, a)
    course_close(F.identity_backward(g, a), ga)


@pytest.mark.parametrize("name,fn", [("add_backward", torch.add), ("sub_backward", torch.sub),
                                     ("mul_backward", torch.mul), ("div_backward", torch.div)])  # fmt: skip
def test_binary_backward_functions_as_the_course_tests_call_them(name, fn):
    rng = np.random.default_rng(1)
    a, b = rng.random((5, 5)) + 0.5, rng.random((5, 5)) + 0.5
    g, _, (ga, gb) = torch_grads(fn, a, b)
    da, db = getattr(F, name)(g, a, b)
    course_close(da, ga)
    course_close(db, gb)


def test_matmul_backward_with_arrays_that_do_not_chain_returns_the_course_formula():
    # the course's own test: grad_output (5,5), a (5,5), b (1,5): a @ b is undefined, the formula is not
    rng = np.random.default_rng(2)
    grad_output, a, b = rng.random((5, 5)), rng.random((5, 5)), rng.random((1, 5))
    a_grad, b_grad = F.matmul_backward(grad_output, a, b)
    np.testing.assert_allclose(a_grad, grad_output @ b.T, rtol=1e-12)
    np.testing.assert_allclose(b_grad, a.T @ grad_output, rtol=1e-12)
    assert a_grad.shape == (5, 1) and b_grad.shape == (5, 5)
    with pytest.raises(ShapeError, match="matmul_backward"):  # only where the formula itself fails
        F.matmul_backward(rng.random((5, 3)), a, b)


@pytest.mark.parametrize("sa,sb", [((4, 3), (3, 5)), ((2, 4, 3), (3, 5)), ((3,), (3, 5)), ((4, 3), (3,)),
                                   ((2, 1, 4, 3), (5, 3, 2)), ((3,), (3,))])  # fmt: skip
def test_matmul_backward_stays_exact_for_shapes_that_chain(sa, sb):
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    g, _, (ga, gb) = torch_grads(torch.matmul, a, b)
    da, db = F.matmul_backward(np.asarray(g), a, b)
    course_close(da, ga)
    course_close(db, gb)


@pytest.mark.parametrize("name,fn", [("log_backward", torch.log), ("exp_backward", torch.exp)])
def test_log_and_exp_backward(name, fn):
    a = np.random.default_rng(4).random((5, 5)) + 0.1
    g, _, (ga,) = torch_grads(fn, a)
    (da,) = getattr(F, name)(g, a)
    course_close(da, ga)


def test_max_backward_is_relus_derivative():
    a = np.random.default_rng(5).standard_normal((5, 5))
    a[0, 0] = 0.0  # at 0 the derivative is 0, as in torch.relu
    g, _, (ga,) = torch_grads(torch.relu, a)
    course_close(F.max_backward(g, a), ga)
    a[0, 0] = 0.5  # away from the kink, np.maximum(a, 0)'s twin is torch.maximum (which splits ties)
    g, _, (ga,) = torch_grads(lambda t: torch.maximum(t, torch.zeros_like(t)), a)
    course_close(F.max_backward(g, a), ga)


def test_max_backward_of_two_operands_splits_ties_like_torch():
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((3,))
    a[1] = b  # ties
    g, _, (ga, gb) = torch_grads(torch.maximum, a, b)
    da, db = F.max_backward(g, a, b)
    course_close(da, ga)
    course_close(db, gb)


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)])
@pytest.mark.parametrize("keepdims", [True, False])
def test_sum_backward_takes_the_gradient_of_a_sum(axis, keepdims):
    a = np.random.default_rng(7).standard_normal((4, 3))
    dim = axis if axis is not None else (0, 1)
    g, out, (ga,) = torch_grads(lambda t: torch.sum(t, dim=dim, keepdim=keepdims), a)
    assert out.shape == np.sum(a, axis=axis, keepdims=keepdims).shape
    course_close(F.sum_backward(np.asarray(g), a), ga)


def test_sum_backward_with_the_courses_shape_1_gradient():
    a = np.random.default_rng(8).standard_normal((3, 2))
    course_close(F.sum_backward(np.array([2.0]), a), np.full((3, 2), 2.0))
    course_close(F.sum_backward(np.float64(2.0), a), np.full((3, 2), 2.0))


def test_tanh_backward_with_and_without_the_saved_state():
    x = np.random.default_rng(9).standard_normal((4, 3))
    g, state, (gx,) = torch_grads(torch.tanh, x)
    course_close(F.tanh_backward(g, x), gx)
    dx, dstate = F.tanh_backward(g, x, np.tanh(x))  # recorded with inputs [x, state]
    course_close(dx, gx)
    assert dstate is None
    np.testing.assert_allclose(state, np.tanh(x))


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 4), (5,)])
def test_transpose_backward_returns_one_gradient(shape):
    a = np.random.default_rng(10).standard_normal(shape)
    g, _, (ga,) = torch_grads(lambda t: t.permute(*reversed(range(t.ndim))), a)
    course_close(F.transpose_backward(g, a), ga)


INDEXES = [
    (slice(1, 3),),
    (slice(None), 0),
    (1,),
    (slice(None, None, 2), slice(1, None)),
    (np.array([0, 2, 0]),),  # repeated rows add up
    (Ellipsis, -1),
]


@pytest.mark.parametrize("key", INDEXES, ids=[repr(k) for k in INDEXES])
@pytest.mark.parametrize("wrap", ["object-array", "plain"])
def test_slice_backward_with_an_index_expression(key, wrap):
    a = np.random.default_rng(11).standard_normal((4, 3))
    expr = key[0] if len(key) == 1 else key
    if wrap == "object-array":
        if len(key) == 1:
            indices = np.empty((), dtype=object)
            indices[()] = expr  # a 0-d object array holding the expression
        else:
            indices = np.array(key, dtype=object)  # the items of a tuple index
        assert indices.dtype == object
    else:
        indices = expr
    texpr = tuple(torch.tensor(k) if isinstance(k, np.ndarray) else k for k in key)
    g, out, (ga,) = torch_grads(lambda t: t[texpr], a)
    np.testing.assert_allclose(a[expr], out)
    da, dind = F.slice_backward(g, a, indices)
    course_close(da, ga)
    assert dind is None


def test_expand_dims_and_squeeze_backward():
    a = np.random.default_rng(12).standard_normal((4, 3))
    g, _, (ga,) = torch_grads(lambda t: t.unsqueeze(1), a)
    course_close(F.expand_dims_backward(g, a), ga)
    da, daxis = F.expand_dims_backward(g, a, np.array(1))  # the axis recorded as an input
    course_close(da, ga)
    assert daxis is None
    b = np.random.default_rng(13).standard_normal((4, 1, 3, 1))
    g, _, (gb,) = torch_grads(torch.squeeze, b)
    course_close(F.squeeze_backward(g, b), gb)


@pytest.mark.parametrize("small,big", [((3,), (4, 3)), ((1, 3), (4, 3)), ((4, 1), (4, 3)), ((2, 1, 3), (5, 2, 4, 3)), ((), (2, 3))])
def test_unbroadcast_gives_the_gradient_of_a_broadcast_operand(small, big):
    rng = np.random.default_rng(14)
    a, b = rng.standard_normal(small), rng.standard_normal(big)
    g, _, (ga, _gb) = torch_grads(torch.add, a, b)
    course_close(np.asarray(F.unbroadcast(g, a.shape)), ga)


def test_unbroadcast_to_keep_leaves_the_trailing_axes():
    g = np.random.default_rng(15).standard_normal((5, 4, 3))
    out = F.unbroadcast(g, (1, 3), to_keep=1)
    assert out.shape == (1, 3)
    np.testing.assert_allclose(out, g.sum(axis=0).sum(axis=0, keepdims=True))
    kept = F.unbroadcast(g, (1, 1), to_keep=1)  # the last axis is not summed
    assert kept.shape == (1, 3)
    np.testing.assert_allclose(kept, g.sum(axis=(0, 1))[None, :])


def test_softmax_cross_entropy_backward_course_call():
    rng = np.random.default_rng(16)
    logits, y = rng.standard_normal((5, 4)), np.eye(4)[rng.integers(0, 4, 5)]
    tl = torch.tensor(logits, requires_grad=True)
    torch.nn.functional.cross_entropy(tl, torch.tensor(y)).backward()
    g_logits, g_y = F.SoftmaxCrossEntropy_backward(np.ones(1), logits, y)
    course_close(g_logits, tl.grad)
    assert g_y is None


def test_course_functions_drive_the_engine_through_the_raw_door():
    """A course Sigmoid (−x, exp, 1 +, 1 /) and ReLU recorded with course functions, checked end to end."""
    eng = ng.Autograd()
    x = np.random.default_rng(17).standard_normal((3, 4))
    minus_one = -np.ones_like(x)
    i1 = minus_one * x
    eng.add_operation([minus_one, x], i1, [None, None], F.mul_backward)
    i2 = np.exp(i1)
    eng.add_operation([i1], i2, [None], F.exp_backward)
    one = np.ones_like(i2)
    i3 = one + i2
    eng.add_operation([one, i2], i3, [None, None], F.add_backward)
    s = one / i3
    eng.add_operation([one, i3], s, [None, None], F.div_backward)
    r = np.maximum(s - 0.5, 0)  # plain NumPy on a constant shift: record it as one op on s
    eng.add_operation([s], r, [None], lambda g, a: (F.max_backward(g, a - 0.5),))
    total = np.sum(r)
    eng.add_operation([r], total, [None], lambda g, a: (F.sum_backward(g, a),))
    eng.backward(1)
    tx = torch.tensor(x, requires_grad=True)
    torch.relu(torch.sigmoid(tx) - 0.5).sum().backward()
    course_close(eng.memory_buffer.get_param(x), tx.grad)


# -- generated shapes: exact wherever the shapes chain, the course formula elsewhere ---------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@st.composite
def matmul_shapes(draw):
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    batch = draw(st.lists(st.integers(1, 3), max_size=2))
    a_batch = [draw(st.sampled_from([b, 1])) for b in batch]
    b_batch = [draw(st.sampled_from([b, 1])) for b in batch][draw(st.integers(0, len(batch))) :]
    sa = (k,) if draw(st.booleans()) and not batch else (*a_batch, n, k)
    sb = (k,) if draw(st.booleans()) and not batch else (*b_batch, k, m)
    return sa, sb


@settings(max_examples=40, deadline=None)
@given(matmul_shapes(), st.integers(0, 2**16))
def test_matmul_backward_exact_on_generated_shapes(shapes, seed):
    sa, sb = shapes
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    g, _, (ga, gb) = torch_grads(torch.matmul, a, b, seed=seed)
    da, db = F.matmul_backward(np.asarray(g), a, b)
    course_close(np.asarray(da), ga)
    course_close(np.asarray(db), gb)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 3), min_size=1, max_size=4), st.data())
def test_unbroadcast_on_generated_shapes(big, data):
    small = [data.draw(st.sampled_from([n, 1])) for n in big][data.draw(st.integers(0, len(big))) :]
    rng = np.random.default_rng(len(big))
    a, b = rng.standard_normal(small), rng.standard_normal(big)
    g, _, (ga, _gb) = torch_grads(torch.add, a, b)
    course_close(np.asarray(F.unbroadcast(g, a.shape)), ga)
