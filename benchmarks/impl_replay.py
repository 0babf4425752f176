"""new_grad with tape replay (``new_grad.compile``): the same programs as impl_new_grad, recorded once."""

from __future__ import annotations

import new_grad as ng

from . import impl_new_grad as eager
from .common import Bench, arrays, chain_data, gru_data, mlp_data

NAME = "new_grad replay"


def chain(n: int, numbers: bool = False) -> Bench:
    d = chain_data(n, numbers)
    x, w, b = d["x"], d["w"], d["b"]
    eng = ng.Autograd()

    def forward():
        y = x
        for _ in range(n // 2):
            y = ng.add(ng.multiply(y, w), b)
        return ng.sum(y)

    compiled = ng.compile(forward, eng)
    get = eng.memory_buffer.get_param

    def step() -> tuple:
        eng.zero_grad()
        compiled()
        return tuple(get(a) for a in arrays(x, w, b))

    eng.zero_grad()
    loss = float(compiled())  # the first call records
    return Bench(step, loss, units=n)


def mlp(batch: int) -> Bench:
    d = mlp_data(batch)
    eng = ng.Autograd()
    model = eager.MLP(d["params"], eng)
    opt = ng.optim.SGD(model.parameters(), lr=d["lr"])
    x, y = ng.constant(d["x"]), ng.constant(d["y"])
    compiled = ng.compile(lambda x, y: ng.softmax_cross_entropy(model(x), y), eng)

    def step():
        opt.zero_grad()
        loss = compiled(x, y)
        opt.step()
        return loss

    with eng:
        loss = float(ng.softmax_cross_entropy(model(x), y))
    eng.zero_grad()
    return Bench(step, loss)


def gru(**size: int) -> Bench:
    d = gru_data(**size)
    (Wir, Wiz, Win), (bir, biz, bin_) = d["wi"], d["bi"]
    (Whr, Whz, Whn), (bhr, bhz, bhn) = d["wh"], d["bh"]
    params = (Wir, Wiz, Win, bir, biz, bin_, Whr, Whz, Whn, bhr, bhz, bhn)
    xs = [ng.constant(x) for x in d["xs"]]
    h0 = ng.constant(d["h0"])
    eng = ng.Autograd()
    lin, sig, add, mul = ng.linear, ng.sigmoid, ng.add, ng.multiply

    def forward():
        h = h0
        for x in xs:
            r = sig(add(lin(x, Wir, bir), lin(h, Whr, bhr)))
            z = sig(add(lin(x, Wiz, biz), lin(h, Whz, bhz)))
            n = ng.tanh(add(lin(x, Win, bin_), mul(r, lin(h, Whn, bhn))))
            h = add(n, mul(z, ng.subtract(h, n)))
        return ng.mean(mul(h, h))

    compiled = ng.compile(forward, eng)

    def step():
        eng.zero_grad()
        loss = compiled()
        return loss, [eng.memory_buffer.get_param(p) for p in params]

    return Bench(step, float(step()[0]))


def cnn(kind: str, batch: int) -> Bench:
    d, params, opt, x, y = eager.cnn_parts(kind, batch)
    eng = ng.Autograd()
    compiled = ng.compile(lambda x, y: eager._cnn_forward(params, d["convs"], x, y), eng)

    def step():
        opt.zero_grad()
        loss = compiled(x, y)
        opt.step()
        return loss

    with ng.no_grad():
        loss = float(eager._cnn_forward(params, d["convs"], x, y))
    return Bench(step, loss)


# No gru_module: nn.GRU slices its initial state in plain NumPy (a new view on every call), which replay
# refuses rather than replaying the first call's view (docs/replay.md, "The rules of replay").
