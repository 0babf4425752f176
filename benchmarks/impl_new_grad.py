"""new_grad, written the way its README teaches: ops on plain arrays, modules, SGD, one engine."""

from __future__ import annotations

import numpy as np

import new_grad as ng

from .common import Bench, arrays, chain_data, cnn_data, gru_data, mlp_data

NAME = "new_grad"


def _chain_forward(eng: ng.Autograd, d: dict):
    x, w, b = d["x"], d["w"], d["b"]
    eng.zero_grad()
    with eng:
        y = x
        for _ in range(d["n"] // 2):
            y = ng.multiply(y, w)
            y = ng.add(y, b)
        return ng.sum(y)


def _grads(eng: ng.Autograd, d: dict) -> tuple:
    get = eng.memory_buffer.get_param
    return tuple(get(a) for a in arrays(d["x"], d["w"], d["b"]))


def chain(n: int, numbers: bool = False) -> Bench:
    d = chain_data(n, numbers)
    eng = ng.Autograd()

    def step() -> tuple:
        _chain_forward(eng, d)
        eng.backward(1)
        return _grads(eng, d)

    loss = float(_chain_forward(eng, d))
    return Bench(step, loss, units=n)


def tape(n: int) -> Bench:
    d = chain_data(n)
    eng = ng.Autograd()

    def timed() -> tuple:
        eng.backward(1)
        return _grads(eng, d)

    loss = float(_chain_forward(eng, d))
    return Bench(timed, loss, units=n, prepare=lambda: _chain_forward(eng, d))


class MLP(ng.nn.Module):
    def __init__(self, params: list, engine: ng.Autograd) -> None:
        super().__init__(engine)
        self.l1 = ng.nn.Linear(784, 256, engine, dtype=np.float32)
        self.l2 = ng.nn.Linear(256, 256, engine, dtype=np.float32)
        self.l3 = ng.nn.Linear(256, 10, engine, dtype=np.float32)
        for layer, W, b in zip((self.l1, self.l2, self.l3), params[::2], params[1::2]):
            layer.W[...] = W
            layer.b[...] = b

    def forward(self, x):
        return self.l3(ng.relu(self.l2(ng.relu(self.l1(x)))))


def sgd_step(eng: ng.Autograd, model: ng.nn.Module, opt: ng.optim.Optimizer, x, y):
    """One training step as the README writes it: forward on the tape, backward from the loss, update."""
    opt.zero_grad()
    with eng:
        loss = ng.softmax_cross_entropy(model(x), y)
    eng.backward(1, output=loss)
    opt.step()
    return loss


def mlp(batch: int) -> Bench:
    d = mlp_data(batch)
    eng = ng.Autograd()
    model = MLP(d["params"], eng)
    opt = ng.optim.SGD(model.parameters(), lr=d["lr"])
    x, y = ng.constant(d["x"]), ng.constant(d["y"])

    def step():
        return sgd_step(eng, model, opt, x, y)

    with eng:
        loss = float(ng.softmax_cross_entropy(model(x), y))
    eng.zero_grad()
    return Bench(step, loss)


def gru(**size: int) -> Bench:
    d = gru_data(**size)
    (Wir, Wiz, Win), (bir, biz, bin_) = d["wi"], d["bi"]
    (Whr, Whz, Whn), (bhr, bhz, bhn) = d["wh"], d["bh"]
    params = (Wir, Wiz, Win, bir, biz, bin_, Whr, Whz, Whn, bhr, bhz, bhn)
    xs = [ng.constant(x) for x in d["xs"]]  # the input sequence: no gradient
    h0 = ng.constant(d["h0"])
    eng = ng.Autograd()
    lin, sig, add, mul = ng.linear, ng.sigmoid, ng.add, ng.multiply

    def forward():
        eng.zero_grad()
        with eng:
            h = h0
            for x in xs:
                r = sig(add(lin(x, Wir, bir), lin(h, Whr, bhr)))
                z = sig(add(lin(x, Wiz, biz), lin(h, Whz, bhz)))
                n = ng.tanh(add(lin(x, Win, bin_), mul(r, lin(h, Whn, bhn))))
                h = add(n, mul(z, ng.subtract(h, n)))
            return ng.mean(mul(h, h))

    def step():
        loss = forward()
        eng.backward(1)
        return loss, [eng.memory_buffer.get_param(p) for p in params]

    return Bench(step, float(forward()))


def _cnn_forward(p: list, convs: list, x, y):
    h = x
    for i, (_cout, _cin, _k, pad) in enumerate(convs):
        h = ng.max_pool2d(ng.relu(ng.conv2d(h, p[2 * i], p[2 * i + 1], 1, pad)), 2)
    h = ng.reshape(h, (h.shape[0], -1))
    fcs = p[2 * len(convs) :]
    for j in range(0, len(fcs), 2):
        h = ng.linear(h, fcs[j], fcs[j + 1])
        if j + 2 < len(fcs):
            h = ng.relu(h)
    return ng.softmax_cross_entropy(h, y)


def cnn_parts(kind: str, batch: int):
    d = cnn_data(kind, batch)
    params = [p.copy() for p in d["params"]]
    grads = [np.zeros_like(p) for p in params]
    for p, g in zip(params, grads):
        ng.bind_gradient(p, g)
    opt = ng.optim.SGD(list(zip(params, grads)), lr=d["lr"])
    x, y = ng.constant(d["x"]), ng.constant(d["y"])
    return d, params, opt, x, y


def cnn(kind: str, batch: int) -> Bench:
    d, params, opt, x, y = cnn_parts(kind, batch)
    eng = ng.Autograd()

    def step():
        opt.zero_grad()
        with eng:
            loss = _cnn_forward(params, d["convs"], x, y)
        eng.backward(1)
        opt.step()
        return loss

    with ng.no_grad():
        loss = float(_cnn_forward(params, d["convs"], x, y))
    return Bench(step, loss)


def gru_module_parts(batch: int, input: int, hidden: int, steps: int):  # noqa: A002
    d = gru_data(batch, input, hidden, steps)
    eng = ng.Autograd()
    gru = ng.nn.GRU(input, hidden, autograd_engine=eng, dtype=np.float32)
    gru.weight_ih_l0[...] = np.concatenate(d["wi"])
    gru.weight_hh_l0[...] = np.concatenate(d["wh"])
    gru.bias_ih_l0[...] = np.concatenate(d["bi"])
    gru.bias_hh_l0[...] = np.concatenate(d["bh"])
    xs, h0 = ng.constant(d["xs"]), ng.constant(d["h0"][None])

    def forward(xs, h0):
        _, h = gru(xs, h0)
        return ng.mean(ng.multiply(h, h))

    return eng, gru, forward, xs, h0


def gru_module(**size: int) -> Bench:
    """The same GRU as ``new_grad.nn.GRU`` (one fused op with a closed-form backward through time)."""
    eng, gru, forward, xs, h0 = gru_module_parts(**size)

    def step():
        gru.zero_grad()
        with eng:
            loss = forward(xs, h0)
        eng.backward(1)
        return loss

    with ng.no_grad():
        loss = float(forward(xs, h0))
    return Bench(step, loss)
