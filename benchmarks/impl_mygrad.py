"""MyGrad: a Tensor class over NumPy, ``loss.backward()`` fills ``.grad`` (memory guard off: its fast mode)."""

from __future__ import annotations

import mygrad as mg
import numpy as np
from mygrad.nnet.activations import relu
from mygrad.nnet.losses import softmax_crossentropy

from .common import Bench, chain_data, cnn_data, gru_data, mlp_data

NAME = "MyGrad"
mg.turn_memory_guarding_off()


def _chain(d: dict):
    x, w, b = (mg.tensor(a) if isinstance(a, np.ndarray) else a for a in (d["x"], d["w"], d["b"]))

    def forward():
        y = x
        for _ in range(d["n"] // 2):
            y = y * w
            y = y + b
        return mg.sum(y)

    return forward, tuple(a for a in (x, w, b) if isinstance(a, mg.Tensor))


def chain(n: int, numbers: bool = False) -> Bench:
    forward, params = _chain(chain_data(n, numbers))

    def step():
        forward().backward()
        return [p.grad for p in params]

    return Bench(step, forward().item(), units=n)


def tape(n: int) -> Bench:
    forward, params = _chain(chain_data(n))
    saved: list = []

    def prepare() -> None:
        saved[:] = [forward()]

    def timed():
        saved.pop().backward()
        return [p.grad for p in params]

    return Bench(timed, forward().item(), units=n, prepare=prepare)


def mlp(batch: int) -> Bench:
    d = mlp_data(batch)
    W1, b1, W2, b2, W3, b3 = params = [mg.tensor(p.copy()) for p in d["params"]]
    x, labels, lr = d["x"], d["labels"], d["lr"]

    def forward():
        a1 = relu(mg.matmul(x, W1.T) + b1)
        a2 = relu(mg.matmul(a1, W2.T) + b2)
        return softmax_crossentropy(mg.matmul(a2, W3.T) + b3, labels)

    def step():
        loss = forward()
        loss.backward()
        for p in params:
            p.data -= lr * p.grad
        return loss

    return Bench(step, forward().item())


def gru(**size: int) -> Bench:
    d = gru_data(**size)
    (Wir, Wiz, Win), (bir, biz, bin_) = [mg.tensor(a) for a in d["wi"]], [mg.tensor(a) for a in d["bi"]]
    (Whr, Whz, Whn), (bhr, bhz, bhn) = [mg.tensor(a) for a in d["wh"]], [mg.tensor(a) for a in d["bh"]]
    params = [Wir, Wiz, Win, bir, biz, bin_, Whr, Whz, Whn, bhr, bhz, bhn]
    xs, h0 = list(d["xs"]), d["h0"]
    sig = mg.nnet.activations.sigmoid

    def forward():
        h = h0
        for x in xs:
            r = sig(mg.matmul(x, Wir.T) + bir + (mg.matmul(h, Whr.T) + bhr))
            z = sig(mg.matmul(x, Wiz.T) + biz + (mg.matmul(h, Whz.T) + bhz))
            n = mg.tanh(mg.matmul(x, Win.T) + bin_ + r * (mg.matmul(h, Whn.T) + bhn))
            h = n + z * (h - n)
        return mg.mean(h * h)

    def step():
        loss = forward()
        loss.backward()
        return loss, [p.grad for p in params]

    return Bench(step, forward().item())


def cnn(kind: str, batch: int) -> Bench:
    from mygrad.nnet.layers import conv_nd, max_pool

    d = cnn_data(kind, batch)
    params = [mg.tensor(p.copy()) for p in d["params"]]
    convs = d["convs"]
    x, labels, lr = d["x"], d["labels"], d["lr"]

    def forward():
        h = x
        for i, (_cout, _cin, _k, pad) in enumerate(convs):
            c = conv_nd(h, params[2 * i], stride=1, padding=pad) + params[2 * i + 1][None, :, None, None]
            h = max_pool(relu(c), (2, 2), 2)
        h = h.reshape(h.shape[0], -1)
        fcs = params[2 * len(convs) :]
        for j in range(0, len(fcs), 2):
            h = mg.matmul(h, fcs[j].T) + fcs[j + 1]
            if j + 2 < len(fcs):
                h = relu(h)
        return softmax_crossentropy(h, labels)

    def step():
        loss = forward()
        loss.backward()
        for p in params:
            p.data -= lr * p.grad
        return loss

    return Bench(step, forward().item())
