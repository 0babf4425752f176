"""Course-style RNN and GRU cells, written against the raw ``add_operation`` door as the handouts do.

Every op is recorded by hand with a backward function; the single-input ones
(exp inside the sigmoid, the final sum) are written the later handouts' way and
return one bare array. The cells are unrolled over a sequence, trained through
the engine for several SGD steps, and matched step by step with
``torch.nn.RNNCell`` / ``torch.nn.GRUCell`` in float64.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from new_grad.autograd_engine import Autograd
from new_grad.nn import functional as F

from .opcheck import course_close as _course_close


def course_close(ours, theirs):
    _course_close(ours, theirs, array=False)  # any array-like result


# single-input backward functions, written as students write them: one bare array back
def exp_backward(grad_output, a):
    return grad_output * np.exp(a)


def sum_backward(grad_output, a):
    return np.ones_like(a) * grad_output


class CourseOps:
    """What course layers do inline: compute with NumPy, then record the op by hand."""

    def __init__(self, engine):
        self.engine = engine

    def record(self, inputs, output, backward, grads=None):
        self.engine.add_operation(inputs, output, grads or [None] * len(inputs), backward)
        return output

    def linear(self, x, W, b, dW, db):
        i1 = self.record([x, W.T], x @ W.T, F.matmul_backward, [None, dW.T])
        return self.record([i1, b], i1 + b, F.add_backward, [None, db])

    def add(self, a, b):
        return self.record([a, b], a + b, F.add_backward)

    def mul(self, a, b):
        return self.record([a, b], a * b, F.mul_backward)

    def one_minus(self, a):
        one = np.ones_like(a)
        return self.record([one, a], one - a, F.sub_backward)

    def sigmoid(self, x):  # the course's Sigmoid: −x, exp, 1 + ·, 1 / ·
        minus_one = -np.ones_like(x)
        i1 = self.record([minus_one, x], minus_one * x, F.mul_backward)
        i2 = self.record([i1], np.exp(i1), exp_backward)
        one = np.ones_like(i2)
        i3 = self.record([one, i2], one + i2, F.add_backward)
        return self.record([one, i3], one / i3, F.div_backward)

    def tanh(self, x):  # the course's Tanh: recorded with inputs [x, state]
        state = np.tanh(x)
        return self.record([x, state], state, F.tanh_backward)

    def total(self, a):
        return self.record([a], np.sum(a), sum_backward)


class CourseRNNCell:
    """h' = tanh(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh), parameters and gradients as the handout names them."""

    names = ("W_ih", "W_hh", "b_ih", "b_hh")

    def __init__(self, params, engine):
        self.ops = CourseOps(engine)
        self.params = {k: v.copy() for k, v in params.items()}
        self.zero_grad()

    def zero_grad(self):
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x, h):
        p, g, o = self.params, self.grads, self.ops
        a = o.linear(x, p["W_ih"], p["b_ih"], g["W_ih"], g["b_ih"])
        b = o.linear(h, p["W_hh"], p["b_hh"], g["W_hh"], g["b_hh"])
        return o.tanh(o.add(a, b))


class CourseGRUCell:
    """torch.nn.GRUCell's equations with the handout's twelve parameters (Wrx, Wzx, Wnx, Wrh, ..., bnh)."""

    names = ("Wrx", "Wzx", "Wnx", "Wrh", "Wzh", "Wnh", "brx", "bzx", "bnx", "brh", "bzh", "bnh")

    def __init__(self, params, engine):
        self.ops = CourseOps(engine)
        self.params = {k: v.copy() for k, v in params.items()}
        self.zero_grad()

    def zero_grad(self):
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def _lin(self, x, w, b):
        p, g = self.params, self.grads
        return self.ops.linear(x, p[w], p[b], g[w], g[b])

    def forward(self, x, h):
        o = self.ops
        r = o.sigmoid(o.add(self._lin(x, "Wrx", "brx"), self._lin(h, "Wrh", "brh")))
        z = o.sigmoid(o.add(self._lin(x, "Wzx", "bzx"), self._lin(h, "Wzh", "bzh")))
        n = o.tanh(o.add(self._lin(x, "Wnx", "bnx"), o.mul(r, self._lin(h, "Wnh", "bnh"))))
        return o.add(o.mul(o.one_minus(z), n), o.mul(z, h))


def _torch_views(cell, kind):
    """The course parameters as slices of torch's stacked (r, z, n) weights and biases."""
    if kind == "rnn":
        return {"W_ih": cell.weight_ih, "W_hh": cell.weight_hh, "b_ih": cell.bias_ih, "b_hh": cell.bias_hh}
    H = cell.hidden_size
    out = {}
    for j, gate in enumerate("rzn"):
        rows = slice(j * H, (j + 1) * H)
        out[f"W{gate}x"] = (cell.weight_ih, rows)
        out[f"W{gate}h"] = (cell.weight_hh, rows)
        out[f"b{gate}x"] = (cell.bias_ih, rows)
        out[f"b{gate}h"] = (cell.bias_hh, rows)
    return out


def _get(view, grad=False):
    t, rows = view if isinstance(view, tuple) else (view, slice(None))
    return (t.grad if grad else t.detach())[rows].numpy()


@pytest.mark.parametrize("kind", ["rnn", "gru"])
@pytest.mark.parametrize("batch", [3, None])  # None: unbatched, one sequence of vectors
def test_course_cell_trains_like_torch(kind, batch):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    in_size, hidden, T, lr, steps = 4, 5, 6, 0.05, 4
    tcell = (torch.nn.RNNCell if kind == "rnn" else torch.nn.GRUCell)(in_size, hidden).double()
    views = _torch_views(tcell, kind)
    params = {k: _get(v).copy() for k, v in views.items()}
    eng = Autograd(debug=False)
    cell = (CourseRNNCell if kind == "rnn" else CourseGRUCell)(params, eng)
    lead = () if batch is None else (batch,)
    xs = rng.standard_normal((T, *lead, in_size))
    target = rng.standard_normal((*lead, hidden))
    opt = torch.optim.SGD(tcell.parameters(), lr=lr)

    for _ in range(steps):
        h = np.zeros((*lead, hidden))
        for t in range(T):
            h = cell.forward(xs[t], h)
        loss = cell.ops.total(cell.ops.mul(h, target))
        eng.backward(1)

        opt.zero_grad()
        th = torch.zeros(*lead, hidden, dtype=torch.float64)
        for t in range(T):
            th = tcell(torch.tensor(xs[t]), th)
        tloss = (th * torch.tensor(target)).sum()
        tloss.backward()

        course_close(np.asarray(loss), tloss)
        for name, view in views.items():
            course_close(cell.grads[name], _get(view, grad=True))
        for name in cell.params:
            cell.params[name] -= lr * cell.grads[name]
        opt.step()
        cell.zero_grad()
        eng.zero_grad()

    for name, view in views.items():
        course_close(cell.params[name], _get(view))
