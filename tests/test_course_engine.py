"""The later course handouts' engine API: ``Autograd(debug=...)``, ``gradient_buffer``, ``GradientBuffer``,
bare-array backward returns through the raw door, and the course's ``Linear`` methods."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import new_grad as ng
from new_grad.autograd_engine import Autograd
from new_grad.errors import GradientError
from new_grad.nn import Linear, ReLU, SoftmaxCrossEntropy
from new_grad.nn import functional as F
from new_grad.utils import MemoryBuffer

from .opcheck import course_close as _course_close


def course_close(ours, theirs):
    _course_close(ours, theirs, array=False)  # any array-like result


def test_autograd_takes_the_debug_flag():
    for debug in (False, True):
        eng = Autograd(debug=debug)
        x = np.array([1.0, 2.0])
        y = x * 3.0
        eng.add_operation([x, np.array(3.0)], y, [None, None], F.mul_backward)
        eng.backward(1)
        np.testing.assert_allclose(eng.memory_buffer.get_param(x), [3.0, 3.0])


def test_gradient_buffer_is_the_memory_buffer():
    from new_grad.utils import GradientBuffer

    assert GradientBuffer is MemoryBuffer
    eng = Autograd()
    assert eng.gradient_buffer is eng.memory_buffer
    x, w = np.ones((2, 3)), np.full((2, 3), 2.0)
    z = x * w
    eng.add_operation([x, w], z, [None, None], F.mul_backward)
    assert len(eng.gradient_buffer.memory) == 2
    eng.backward(1)
    np.testing.assert_allclose(eng.gradient_buffer.get_param(x), w)
    eng.zero_grad()
    assert eng.gradient_buffer is eng.memory_buffer and eng.gradient_buffer.memory == {}


# single-input backward functions as students write them in the later handouts: one bare array back
def identity_backward(grad_output, a):
    return grad_output


def log_backward(grad_output, a):
    return grad_output / a


def exp_backward(grad_output, a):
    return grad_output * np.exp(a)


def max_backward(grad_output, a):
    return grad_output * (a > 0)


def sum_backward(grad_output, a):
    return np.ones_like(a) * grad_output


BARE = [
    (identity_backward, lambda a: a.copy(), lambda t: t * 1),
    (log_backward, np.log, torch.log),
    (exp_backward, np.exp, torch.exp),
    (max_backward, lambda a: np.maximum(a, 0), torch.relu),
]


@pytest.mark.parametrize("shape", [(4, 3), (1, 3), (1,), (3,)])
@pytest.mark.parametrize("backward,np_fn,torch_fn", BARE, ids=[b[0].__name__ for b in BARE])
def test_a_single_input_backward_may_return_a_bare_array(backward, np_fn, torch_fn, shape):
    rng = np.random.default_rng(0)
    a = rng.random(shape) + 0.1
    a.flat[0] = -0.5 if backward is max_backward else a.flat[0]
    eng = Autograd()
    out = np_fn(a)
    eng.add_operation([a], out, [None], backward)
    total = np.sum(out)
    eng.add_operation([out], total, [None], sum_backward)
    eng.backward(1)
    ta = torch.tensor(a, requires_grad=True)
    torch_fn(ta).sum().backward()
    course_close(eng.memory_buffer.get_param(a), ta.grad)
    assert eng.memory_buffer.get_param(a).shape == a.shape


def test_a_bare_array_into_a_parameters_gradient():
    eng = Autograd()
    W = np.random.default_rng(1).standard_normal((2, 3))
    dW = np.zeros_like(W)
    out = np.exp(W)
    eng.add_operation([W], out, [dW], exp_backward)
    eng.backward(np.ones((2, 3)))
    np.testing.assert_allclose(dW, np.exp(W))


def test_a_wrong_return_still_names_the_op_and_the_count():
    eng = Autograd()
    a, b = np.ones(3), np.ones(3)
    eng.add_operation([a, b], a + b, [None, None], lambda g, x, y: g)  # two inputs, one bare array
    with pytest.raises(GradientError) as err:
        eng.backward(1)
    msg = str(err.value)
    assert "length -" not in msg and "2" in msg


# -- Linear: init_weights, zero_grad, unbatched input --------------------------------------------------------


def _torch_linear(W, b):
    tl = torch.nn.Linear(W.shape[1], W.shape[0]).double()
    with torch.no_grad():
        tl.weight.copy_(torch.tensor(W))
        tl.bias.copy_(torch.tensor(b.reshape(-1)))
    return tl


@pytest.mark.parametrize("b_shape", ["(out,)", "(out, 1)", "(1, out)"])
def test_linear_init_weights_and_zero_grad(b_shape):
    rng = np.random.default_rng(2)
    W, b = rng.standard_normal((3, 5)), rng.standard_normal(3)
    b = {"(out,)": b, "(out, 1)": b.reshape(3, 1), "(1, out)": b.reshape(1, 3)}[b_shape]
    eng = Autograd()
    layer = Linear(5, 3, eng)
    layer.init_weights(W, b)
    assert layer.W is W and layer.b is b
    assert layer.dW.shape == W.shape and layer.db.shape == b.shape
    x = rng.standard_normal((4, 5))
    y = layer(x)
    tl = _torch_linear(W, b)
    tx = torch.tensor(x, requires_grad=True)
    ty = tl(tx)
    course_close(y, ty)
    g = rng.standard_normal((4, 3))
    eng.backward(g)
    ty.backward(torch.tensor(g))
    course_close(layer.dW, tl.weight.grad)
    course_close(layer.db.reshape(-1), tl.bias.grad)
    course_close(eng.memory_buffer.get_param(x), tx.grad)
    dW = layer.dW
    layer.zero_grad()
    assert not layer.dW.any() and not layer.db.any() and layer.dW is dW  # zeroed in place: still bound
    eng.zero_grad()
    layer(x)
    eng.backward(g)
    course_close(layer.dW, tl.weight.grad)


def test_linear_takes_an_unbatched_input():
    rng = np.random.default_rng(3)
    eng = Autograd()
    layer = Linear(4, 2, eng)
    x = rng.standard_normal(4)
    y = layer(x)
    assert y.shape == (2,)
    tl = _torch_linear(layer.W, layer.b)
    tx = torch.tensor(x, requires_grad=True)
    ty = tl(tx)
    course_close(y, ty)
    g = rng.standard_normal(2)
    eng.backward(g)
    ty.backward(torch.tensor(g))
    course_close(layer.dW, tl.weight.grad)
    course_close(layer.db, tl.bias.grad)
    course_close(eng.memory_buffer.get_param(x), tx.grad)


def test_course_mlp_training_loop_matches_torch():
    """The course's loop: init_weights, forward, loss, backward, step, zero_grad — step by step against torch."""
    rng = np.random.default_rng(4)
    sizes = [(6, 8), (8, 3)]
    eng = Autograd(debug=False)
    layers = [Linear(i, o, eng) for i, o in sizes]
    weights = [(rng.standard_normal((o, i)) * 0.5, rng.standard_normal((o, 1)) * 0.1) for i, o in sizes]
    for layer, (W, b) in zip(layers, weights):
        layer.init_weights(W.copy(), b.copy())
    act, loss_fn = ReLU(eng), SoftmaxCrossEntropy(eng)
    tlayers = [_torch_linear(W, b) for W, b in weights]
    x, labels = rng.standard_normal((10, 6)), rng.integers(0, 3, 10)
    y = np.eye(3)[labels]
    lr = 0.1
    for _ in range(5):
        h = act(layers[0](x))
        loss = loss_fn(y, layers[1](h))
        loss_fn.backward()
        tloss = torch.nn.functional.cross_entropy(tlayers[1](torch.relu(tlayers[0](torch.tensor(x)))), torch.tensor(labels))
        tloss.backward()
        course_close(loss, tloss.reshape(1))
        for layer, tl in zip(layers, tlayers):
            course_close(layer.dW, tl.weight.grad)
            course_close(layer.db.reshape(-1), tl.bias.grad)
            layer.W -= lr * layer.dW
            layer.b -= lr * layer.db
            layer.zero_grad()
            with torch.no_grad():
                tl.weight -= lr * tl.weight.grad
                tl.bias -= lr * tl.bias.grad
                tl.weight.grad = None
                tl.bias.grad = None
        eng.zero_grad()
    for layer, tl in zip(layers, tlayers):
        course_close(layer.W, tl.weight)
        course_close(layer.b.reshape(-1), tl.bias)


def test_package_exposes_the_course_engine_names():
    assert ng.Autograd is Autograd
    assert ng.nn.functional.tanh_backward is F.tanh_backward


def test_the_course_page_examples_run():
    import re
    from pathlib import Path

    page = Path(__file__).resolve().parents[1] / "docs" / "course.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
    assert blocks
    ns: dict = {}
    for block in blocks:
        exec(compile(block, str(page), "exec"), ns)  # noqa: S102 - our own documentation
    np.testing.assert_allclose(ns["dx"], np.ones((4, 3)) @ ns["W"])
    np.testing.assert_allclose(ns["dW"], np.ones((3, 4)) @ ns["x"])
    np.testing.assert_allclose(ns["db"], np.full(3, 4.0))


def test_debug_mode_with_object_array_inputs_on_the_tape():
    """The course's debug flag (anomaly mode) with an index expression and ragged lists recorded as inputs."""
    eng = Autograd(debug=True)
    a = np.random.default_rng(5).standard_normal((4, 3))
    key = np.empty((), dtype=object)
    key[()] = (slice(None), 0)
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = np.arange(2), np.arange(3)
    col = a[:, 0]
    eng.add_operation([a, key], col, [None, None], F.slice_backward)
    flags = np.array([1, 0, 1, 1])  # an integer input: compared exactly, no NaN rule
    out = col * 2.0
    eng.add_operation([col, ragged, flags], out, [None] * 3, lambda g, x, r, f: (2.0 * g, None, None))
    eng.backward(1)
    expected = np.zeros((4, 3))
    expected[:, 0] = 2.0
    np.testing.assert_allclose(eng.gradient_buffer.get_param(a), expected)
