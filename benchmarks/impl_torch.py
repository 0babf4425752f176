"""PyTorch CPU eager, written the way its tutorials do (nn.Linear, F.cross_entropy, torch.optim.SGD)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .common import Bench, chain_data, cnn_data, gru_data, mlp_data

NAME = "PyTorch eager"


def _t(a, grad: bool = True) -> torch.Tensor:
    return torch.tensor(a, requires_grad=grad)


def _chain(d: dict):
    x, w, b = (_t(a) if isinstance(a, np.ndarray) else a for a in (d["x"], d["w"], d["b"]))

    def forward():
        y = x
        for _ in range(d["n"] // 2):
            y = y * w
            y = y + b
        return y.sum()

    return forward, [a for a in (x, w, b) if isinstance(a, torch.Tensor)]


def chain(n: int, numbers: bool = False) -> Bench:
    forward, params = _chain(chain_data(n, numbers))

    def step():
        return torch.autograd.grad(forward(), params)

    with torch.no_grad():
        loss = float(forward())
    return Bench(step, loss, units=n)


def tape(n: int) -> Bench:
    forward, params = _chain(chain_data(n))
    saved: list = []

    def prepare() -> None:
        saved[:] = [forward()]

    def timed():
        return torch.autograd.grad(saved.pop(), params)

    with torch.no_grad():
        loss = float(forward())
    return Bench(timed, loss, units=n, prepare=prepare)


def mlp(batch: int) -> Bench:
    d = mlp_data(batch)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)
    )
    with torch.no_grad():
        for p, a in zip(model.parameters(), d["params"]):
            p.copy_(torch.from_numpy(a))
    opt = torch.optim.SGD(model.parameters(), lr=d["lr"])
    x, labels = torch.from_numpy(d["x"]), torch.from_numpy(d["labels"])

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), labels)
        loss.backward()
        opt.step()
        return loss

    with torch.no_grad():
        loss = float(F.cross_entropy(model(x), labels))
    return Bench(step, loss)


def gru(**size: int) -> Bench:
    d = gru_data(**size)
    (Wir, Wiz, Win), (bir, biz, bin_) = (_t(a) for a in d["wi"]), (_t(a) for a in d["bi"])
    (Whr, Whz, Whn), (bhr, bhz, bhn) = (_t(a) for a in d["wh"]), (_t(a) for a in d["bh"])
    params = [Wir, Wiz, Win, bir, biz, bin_, Whr, Whz, Whn, bhr, bhz, bhn]
    xs = list(torch.from_numpy(d["xs"]))
    h0 = torch.from_numpy(d["h0"])

    def forward():
        h = h0
        for x in xs:
            r = torch.sigmoid(F.linear(x, Wir, bir) + F.linear(h, Whr, bhr))
            z = torch.sigmoid(F.linear(x, Wiz, biz) + F.linear(h, Whz, bhz))
            n = torch.tanh(F.linear(x, Win, bin_) + r * F.linear(h, Whn, bhn))
            h = n + z * (h - n)
        return (h * h).mean()

    def step():
        loss = forward()
        return loss, torch.autograd.grad(loss, params)

    with torch.no_grad():
        loss = float(forward())
    return Bench(step, loss)


def gru_module(**size: int) -> Bench:
    """The same GRU as ``torch.nn.GRU`` (one C++ kernel per step; an extra reference row)."""
    d = gru_data(**size)
    gru = torch.nn.GRU(d["xs"].shape[2], d["h0"].shape[1])
    with torch.no_grad():
        gru.weight_ih_l0.copy_(torch.from_numpy(np.concatenate(d["wi"])))
        gru.weight_hh_l0.copy_(torch.from_numpy(np.concatenate(d["wh"])))
        gru.bias_ih_l0.copy_(torch.from_numpy(np.concatenate(d["bi"])))
        gru.bias_hh_l0.copy_(torch.from_numpy(np.concatenate(d["bh"])))
    xs, h0 = torch.from_numpy(d["xs"]), torch.from_numpy(d["h0"])[None]
    params = list(gru.parameters())

    def forward():
        _, h = gru(xs, h0)
        return (h * h).mean()

    def step():
        loss = forward()
        return loss, torch.autograd.grad(loss, params)

    with torch.no_grad():
        loss = float(forward())
    return Bench(step, loss)


def cnn(kind: str, batch: int) -> Bench:
    d = cnn_data(kind, batch)
    params = [torch.tensor(p, requires_grad=True) for p in d["params"]]
    convs = d["convs"]
    opt = torch.optim.SGD(params, lr=d["lr"])
    x, labels = torch.from_numpy(d["x"]), torch.from_numpy(d["labels"])

    def forward():
        h = x
        for i, (_cout, _cin, _k, pad) in enumerate(convs):
            h = F.max_pool2d(F.relu(F.conv2d(h, params[2 * i], params[2 * i + 1], padding=pad)), 2)
        h = h.reshape(h.shape[0], -1)
        fcs = params[2 * len(convs) :]
        for j in range(0, len(fcs), 2):
            h = F.linear(h, fcs[j], fcs[j + 1])
            if j + 2 < len(fcs):
                h = F.relu(h)
        return F.cross_entropy(h, labels)

    def step():
        opt.zero_grad()
        loss = forward()
        loss.backward()
        opt.step()
        return loss

    with torch.no_grad():
        loss = float(forward())
    return Bench(step, loss)
