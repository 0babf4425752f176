"""HIPS autograd: the NumPy API traced by ``autograd.numpy``, gradients by ``value_and_grad``."""

from __future__ import annotations

import autograd.numpy as anp
from autograd import make_vjp, value_and_grad

from .common import Bench, chain_data, cnn_data, gru_data, mlp_data

NAME = "HIPS autograd"


def _chain_loss(n: int):
    def loss(p):
        x, w, b = p
        y = x
        for _ in range(n // 2):
            y = y * w
            y = y + b
        return anp.sum(y)

    return loss


def chain(n: int, numbers: bool = False) -> Bench:
    d = chain_data(n, numbers)
    if numbers:  # only x is differentiated; the numbers are closed over
        w, b, loss = d["w"], d["b"], _chain_loss(n)
        p = (d["x"],)
        vg = value_and_grad(lambda p: loss((p[0], w, b)))
    else:
        p = (d["x"], d["w"], d["b"])
        vg = value_and_grad(_chain_loss(n))
    return Bench(lambda: vg(p), vg(p)[0], units=n)


def tape(n: int) -> Bench:
    d = chain_data(n)
    p = (d["x"], d["w"], d["b"])
    f = make_vjp(_chain_loss(n))
    saved: list = []

    def prepare() -> None:
        saved[:] = [f(p)[0]]

    return Bench(lambda: saved.pop()(1.0), f(p)[1], units=n, prepare=prepare)


def _ce(z, y):
    m = anp.max(z, axis=1, keepdims=True)
    zs = z - m
    return -anp.sum(y * (zs - anp.log(anp.sum(anp.exp(zs), axis=1, keepdims=True)))) / z.shape[0]


def mlp(batch: int) -> Bench:
    d = mlp_data(batch)
    params = [p.copy() for p in d["params"]]
    x, y, lr = d["x"], d["y"], d["lr"]

    def loss(ps):
        W1, b1, W2, b2, W3, b3 = ps
        a1 = anp.maximum(anp.dot(x, W1.T) + b1, 0)
        a2 = anp.maximum(anp.dot(a1, W2.T) + b2, 0)
        return _ce(anp.dot(a2, W3.T) + b3, y)

    vg = value_and_grad(loss)

    def step():
        val, grads = vg(params)
        for p, g in zip(params, grads):
            p -= lr * g
        return val

    return Bench(step, loss(params))


def gru(**size: int) -> Bench:
    d = gru_data(**size)
    params = [*d["wi"], *d["bi"], *d["wh"], *d["bh"]]
    xs, h0 = list(d["xs"]), d["h0"]

    def sig(a):
        return 1 / (1 + anp.exp(-a))

    def loss(ps):
        Wir, Wiz, Win, bir, biz, bin_, Whr, Whz, Whn, bhr, bhz, bhn = ps
        h = h0
        for x in xs:
            r = sig(anp.dot(x, Wir.T) + bir + (anp.dot(h, Whr.T) + bhr))
            z = sig(anp.dot(x, Wiz.T) + biz + (anp.dot(h, Whz.T) + bhz))
            n = anp.tanh(anp.dot(x, Win.T) + bin_ + r * (anp.dot(h, Whn.T) + bhn))
            h = n + z * (h - n)
        return anp.mean(h * h)

    vg = value_and_grad(loss)
    return Bench(lambda: vg(params), loss(params))


def _conv(x, w, b, pad: int):
    """Convolution as one contraction of the k×k shifted views (autograd.numpy has no im2col)."""
    if pad:
        x = anp.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    k = w.shape[-1]
    ho, wo = x.shape[2] - k + 1, x.shape[3] - k + 1
    cols = anp.stack([x[:, :, i : i + ho, j : j + wo] for i in range(k) for j in range(k)], axis=2)  # N,C,kk,H,W
    out = anp.tensordot(cols, anp.reshape(w, (w.shape[0], w.shape[1], k * k)), axes=([1, 2], [1, 2]))
    return anp.transpose(out, (0, 3, 1, 2)) + b[None, :, None, None]


def _pool(x):
    a = anp.maximum(x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2])
    return anp.maximum(a, anp.maximum(x[:, :, 1::2, 0::2], x[:, :, 1::2, 1::2]))


def cnn(kind: str, batch: int) -> Bench:
    d = cnn_data(kind, batch)
    params = [p.copy() for p in d["params"]]
    convs, x, y, lr = d["convs"], d["x"], d["y"], d["lr"]

    def loss(ps):
        h = x
        for i, (_cout, _cin, _k, pad) in enumerate(convs):
            h = _pool(anp.maximum(_conv(h, ps[2 * i], ps[2 * i + 1], pad), 0))
        h = anp.reshape(h, (h.shape[0], -1))
        fcs = ps[2 * len(convs) :]
        for j in range(0, len(fcs), 2):
            h = anp.dot(h, fcs[j].T) + fcs[j + 1]
            if j + 2 < len(fcs):
                h = anp.maximum(h, 0)
        return _ce(h, y)

    vg = value_and_grad(loss)

    def step():
        val, grads = vg(params)
        for p, g in zip(params, grads):
            p -= lr * g
        return val

    return Bench(step, loss(params))
