"""The course's original API, used the way the 11-785 course code and tests use it.

Tolerance is the course's: ``allclose(rtol=1e-5, atol=1e-10)`` and a summed
absolute difference below 1e-10 against PyTorch in float64.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import new_grad as ng
from new_grad.autograd_engine import Autograd, Operation
from new_grad.nn import Identity, Linear, MSELoss, ReLU, Sigmoid, SoftmaxCrossEntropy, Tanh
from new_grad.nn import functional as F
from new_grad.utils import MemoryBuffer

from .opcheck import course_close as _course_close


def course_close(ours, theirs):
    _course_close(ours, theirs, array=False)  # any array-like result


def test_public_names():
    assert ng.Autograd is Autograd
    for name in ("nn", "optim", "linalg", "add", "matmul", "sum", "exp", "log", "max", "tanh"):
        assert hasattr(ng, name), name
    op = Operation([1], 2, [None], F.add_backward)
    assert (op.inputs, op.output, op.gradients_to_update, op.backward_operation) == ([1], 2, [None], F.add_backward)
    eng = Autograd()
    assert isinstance(eng.memory_buffer, MemoryBuffer) and eng.operation_list == []
    for name in (
        "add_backward sub_backward matmul_backward outer_backward mul_backward div_backward log_backward "
        "exp_backward max_backward sum_backward SoftmaxCrossEntropy_backward"
    ).split():
        assert callable(getattr(F, name)), name


def test_memory_buffer_api():
    buf = MemoryBuffer()
    x = np.ones((2, 2))
    assert not buf.is_in_memory(x)
    buf.add_spot(x)
    assert buf.is_in_memory(x) and buf.get_memory_loc(x) in buf.memory
    np.testing.assert_array_equal(buf.get_param(x), np.zeros((2, 2)))
    buf.update_param(x, np.ones((2, 2)))
    buf.update_param(x, None)  # no-op
    buf.update_param(x, np.ones((2, 2)))
    np.testing.assert_array_equal(buf.get_param(x), np.full((2, 2), 2.0))
    buf.set_param(x, np.zeros((2, 2)))
    np.testing.assert_array_equal(buf.get_param(x), 0)
    buf.clear()
    assert buf.memory == {}


BINARY = [
    ("add_backward", torch.add, (3, 4), (4,)),
    ("sub_backward", torch.sub, (3, 4), (3, 1)),
    ("mul_backward", torch.mul, (2, 3, 4), (3, 4)),
    ("div_backward", torch.div, (3, 4), (1, 4)),
    ("matmul_backward", torch.matmul, (3, 4), (4, 5)),
    ("outer_backward", torch.outer, (3,), (5,)),
]


@pytest.mark.parametrize("name,fn,sa,sb", BINARY)
def test_course_backward_functions_called_directly(name, fn, sa, sb):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb) + 3.0
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    out = fn(ta, tb)
    g = rng.standard_normal(tuple(out.shape))
    out.backward(torch.tensor(g))
    ga, gb = getattr(F, name)(g, a, b)
    course_close(ga, ta.grad)
    course_close(gb, tb.grad)


@pytest.mark.parametrize("name,fn", [("log_backward", torch.log), ("exp_backward", torch.exp)])
def test_course_unary_backward_functions(name, fn):
    rng = np.random.default_rng(1)
    a = rng.random((3, 4)) + 0.5
    ta = torch.tensor(a, requires_grad=True)
    out = fn(ta)
    g = rng.standard_normal(tuple(out.shape))
    out.backward(torch.tensor(g))
    (ga, *rest) = getattr(F, name)(np.asarray(g), a)
    course_close(ga, ta.grad)
    assert all(r is None for r in rest)


@pytest.mark.parametrize("name,fn", [("sum_backward", torch.sum), ("max_backward", torch.relu)])
def test_course_sum_and_max_backward_return_one_gradient(name, fn):
    # the course's contract: sum_backward(g, a) spreads g over a; max_backward(g, a) is np.maximum(a, 0)'s
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 4))
    ta = torch.tensor(a, requires_grad=True)
    out = fn(ta)
    g = rng.standard_normal(tuple(out.shape))
    out.backward(torch.tensor(g))
    ga = getattr(F, name)(np.asarray(g), a)
    assert isinstance(ga, np.ndarray)
    course_close(ga, ta.grad)


def test_softmax_cross_entropy_backward_course_signature():
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((5, 4))
    y = np.eye(4)[rng.integers(0, 4, 5)]
    tl = torch.tensor(logits, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(tl, torch.tensor(y))
    loss.backward()
    g_logits, g_y = F.SoftmaxCrossEntropy_backward(np.ones(1), logits, y)
    assert g_y is None
    course_close(g_logits, tl.grad)


def _torch_linear(layer):
    tl = torch.nn.Linear(layer.in_features, layer.out_features).double()
    with torch.no_grad():
        tl.weight.copy_(torch.tensor(layer.W))
        tl.bias.copy_(torch.tensor(layer.b))
    return tl


def test_linear_layer_forward_backward_like_the_course():
    eng = Autograd()
    layer = Linear(5, 3, eng)
    assert layer.W.shape == (3, 5) and layer.b.shape == (3,)
    assert layer.dW.shape == (3, 5) and layer.db.shape == (3,)
    x = np.random.random((4, 5))
    out = layer(x)
    tl = _torch_linear(layer)
    tx = torch.tensor(x, requires_grad=True)
    tout = tl(tx)
    course_close(out, tout)
    eng.backward(1)  # on a non-scalar output: like out.sum().backward()
    tout.sum().backward()
    course_close(layer.dW, tl.weight.grad)
    course_close(layer.db, tl.bias.grad)
    course_close(eng.memory_buffer.get_param(x), tx.grad)


@pytest.mark.parametrize(
    "cls,tfn", [(Identity, lambda t: t), (Sigmoid, torch.sigmoid), (Tanh, torch.tanh), (ReLU, torch.relu)]
)
def test_activations_keep_state(cls, tfn):
    eng = Autograd()
    act = cls(eng)
    x = np.random.randn(4, 3)
    out = act.forward(x)
    assert act.state is out and out is not x
    tx = torch.tensor(x, requires_grad=True)
    tout = tfn(tx)
    course_close(out, tout)
    eng.backward(1)
    tout.sum().backward()
    course_close(eng.memory_buffer.get_param(x), tx.grad)


@pytest.mark.parametrize("loss_cls", [MSELoss, SoftmaxCrossEntropy])
def test_losses_course_convention(loss_cls):
    eng = Autograd()
    loss_fn = loss_cls(eng)
    rng = np.random.default_rng(3)
    y_hat = rng.standard_normal((6, 4))
    y = np.eye(4)[rng.integers(0, 4, 6)]
    loss = loss_fn(y, y_hat)
    assert loss.shape == (1,) and loss_fn.loss_val is loss
    ty_hat = torch.tensor(y_hat, requires_grad=True)
    if loss_cls is MSELoss:
        tloss = torch.nn.functional.mse_loss(ty_hat, torch.tensor(y))
    else:
        tloss = torch.nn.functional.cross_entropy(ty_hat, torch.tensor(y))
    course_close(loss, tloss.reshape(1))
    loss_fn.backward()
    tloss.backward()
    course_close(eng.memory_buffer.get_param(y_hat), ty_hat.grad)


class CourseLinear:
    """The course's own Linear, written against the raw door exactly as the handout did."""

    def __init__(self, in_features, out_features, autograd_engine):
        self.W = np.random.uniform(-np.sqrt(1 / in_features), np.sqrt(1 / in_features), (out_features, in_features))
        self.b = np.random.uniform(-np.sqrt(1 / in_features), np.sqrt(1 / in_features), (out_features, 1))
        self.dW = np.zeros(self.W.shape)
        self.db = np.zeros(self.b.shape)
        self.autograd_engine = autograd_engine

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        self.x = x
        self.i1 = x @ self.W.T
        self.autograd_engine.add_operation(
            inputs=[self.x, self.W.T], output=self.i1, gradients_to_update=[None, self.dW.T],
            backward_operation=F.matmul_backward,
        )
        self.y = self.i1 + self.b.T
        self.autograd_engine.add_operation(
            inputs=[self.i1, self.b.T], output=self.y, gradients_to_update=[None, self.db.T],
            backward_operation=F.add_backward,
        )
        return self.y


def test_course_code_written_against_the_raw_door_runs_unchanged():
    eng = Autograd()
    layer = CourseLinear(5, 3, eng)
    x = np.random.random((4, 5))
    y = layer(x)
    eng.backward(1)
    tw = torch.tensor(layer.W, requires_grad=True)
    tb = torch.tensor(layer.b, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    ty = tx @ tw.T + tb.T
    ty.sum().backward()
    course_close(y, ty)
    course_close(layer.dW, tw.grad)
    course_close(layer.db, tb.grad)
    course_close(eng.memory_buffer.get_param(x), tx.grad)
    assert len(eng.memory_buffer.memory) >= 2


def test_float32_modules():
    eng = Autograd()
    layer = Linear(4, 2, eng, dtype=np.float32)
    out = layer(np.ones((3, 4), dtype=np.float32))
    assert layer.W.dtype == np.float32 and out.dtype == np.float32
    eng.backward(1)
    assert layer.dW.dtype == np.float32
    ng.set_default_dtype(np.float32)
    try:
        assert Linear(2, 2).W.dtype == np.float32
    finally:
        ng.set_default_dtype(np.float64)


def test_integer_arrays_on_the_raw_door_get_float_gradients():
    """The course's buffer holds float gradients for every input: an int array's slot is not truncated."""
    x = np.arange(6).reshape(2, 3)  # an integer input, as a student may pass
    b = np.arange(3)
    W = np.array([[1, -2, 3], [2, 0, -1]])  # an integer weight with a float gradient array
    dW = np.zeros((2, 3))
    eng = Autograd()
    y = x * b
    eng.add_operation(inputs=[x, b], output=y, gradients_to_update=[None, None], backward_operation=F.mul_backward)
    z = y @ W.T
    eng.add_operation(inputs=[y, W.T], output=z, gradients_to_update=[None, dW.T], backward_operation=F.matmul_backward)
    eng.backward(0.5, retain_graph=True)  # keeps the intermediate y's slot

    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    bt = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    yt = xt * bt
    yt.retain_grad()
    Wt = torch.tensor(W, dtype=torch.float64, requires_grad=True)
    ((yt @ Wt.T).sum() * 0.5).backward()
    for arr, t in ((x, xt), (b, bt), (y, yt)):
        g = eng.memory_buffer.get_param(arr)
        assert g.dtype.kind == "f"
        course_close(g, t.grad.numpy())
    course_close(dW, Wt.grad.numpy())
    lazy = Autograd()
    lazy.add_operation(inputs=[x, b], output=y, gradients_to_update=[None, None], backward_operation=F.mul_backward)
    assert lazy.memory_buffer.get_param(b).dtype.kind == "f"  # a lazy zero slot reads as float too


def test_add_operation_refuses_a_backward_that_is_not_a_function():
    """Passing ``mul_backward(...)``'s result instead of the function failed only at backward, with a bare
    TypeError; the raw door now says what was wrong when the op is recorded."""
    eng = Autograd()
    x, y = np.ones(3), np.full(3, 2.0)
    with pytest.raises(ng.errors.TapeError, match="not a function"):
        eng.add_operation([x, y], x * y, [None, None], F.mul_backward(np.ones(3), x, y))
    assert eng.operation_list == []
