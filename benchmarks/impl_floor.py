"""The floor: the same math in plain NumPy with hand-derived gradients, no autodiff at all."""

from __future__ import annotations

import numpy as np

from .common import Bench, chain_data, cnn_data, gru_data, mlp_data

NAME = "numpy floor"


def _chain_forward(d: dict) -> tuple[list, float]:
    x, w, b = d["x"], d["w"], d["b"]
    ys = []
    y = x
    for _ in range(d["n"] // 2):
        ys.append(y)
        y = y * w
        y = y + b
    return ys, y.sum()


def _chain_backward(d: dict, ys: list) -> tuple:
    w = d["w"]
    g = np.ones_like(d["x"])
    if not isinstance(w, np.ndarray):  # Python numbers: only x gets a gradient
        for _ in ys:
            g = g * w
        return (g,)
    gw = np.zeros_like(w)
    gb = np.zeros_like(w)
    for y in reversed(ys):
        gb += g  # add: ∂/∂b = g
        gw += g * y  # multiply: ∂/∂w = g·y, ∂/∂y = g·w
        g = g * w
    return g, gw, gb


def chain(n: int, numbers: bool = False) -> Bench:
    d = chain_data(n, numbers)

    def step() -> tuple:
        ys, _ = _chain_forward(d)
        return _chain_backward(d, ys)

    return Bench(step, _chain_forward(d)[1], units=n)


def tape(n: int) -> Bench:
    d = chain_data(n)
    saved: list = []

    def prepare() -> None:
        saved[:] = [_chain_forward(d)[0]]

    return Bench(lambda: _chain_backward(d, saved[0]), _chain_forward(d)[1], units=n, prepare=prepare)


def _ce(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy and its gradient (softmax − y)/N."""
    m = z.max(axis=1, keepdims=True)
    e = np.exp(z - m)
    s = e.sum(axis=1, keepdims=True)
    n = z.shape[0]
    loss = -(y * (z - m - np.log(s))).sum() / n
    dz = e / s
    dz -= y
    dz /= n
    return loss, dz


def mlp(batch: int) -> Bench:
    d = mlp_data(batch)
    W1, b1, W2, b2, W3, b3 = (p.copy() for p in d["params"])
    x, y, lr = d["x"], d["y"], np.float32(d["lr"])
    ones = np.ones(batch, np.float32)

    def step() -> float:
        h1 = x @ W1.T
        h1 += b1
        a1 = np.maximum(h1, 0)
        h2 = a1 @ W2.T
        h2 += b2
        a2 = np.maximum(h2, 0)
        z = a2 @ W3.T
        z += b3
        loss, dz = _ce(z, y)
        dW3 = dz.T @ a2
        db3 = ones @ dz
        da2 = dz @ W3
        da2 *= h2 > 0
        dW2 = da2.T @ a1
        db2 = ones @ da2
        da1 = da2 @ W2
        da1 *= h1 > 0
        dW1 = da1.T @ x
        db1 = ones @ da1
        for p, g in ((W1, dW1), (b1, db1), (W2, dW2), (b2, db2), (W3, dW3), (b3, db3)):
            g *= lr
            p -= g
        return loss

    loss = step()
    W1[...], b1[...], W2[...], b2[...], W3[...], b3[...] = d["params"]
    return Bench(step, loss)


def _sig(a: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-a))


def gru(**size: int) -> Bench:
    d = gru_data(**size)
    (Wir, Wiz, Win), (bir, biz, bin_) = d["wi"], d["bi"]
    (Whr, Whz, Whn), (bhr, bhz, bhn) = d["wh"], d["bh"]
    xs, h0 = d["xs"], d["h0"]
    ones = np.ones(h0.shape[0], np.float32)

    def step() -> tuple:
        h = h0
        saved = []
        for x in xs:
            r = _sig(x @ Wir.T + bir + (h @ Whr.T + bhr))
            z = _sig(x @ Wiz.T + biz + (h @ Whz.T + bhz))
            hn = h @ Whn.T + bhn
            n = np.tanh(x @ Win.T + bin_ + r * hn)
            saved.append((x, h, r, z, n, hn))
            h = n + z * (h - n)
        loss = (h * h).sum() / h.size
        grads = [np.zeros_like(p) for p in (Wir, Wiz, Win, bir, biz, bin_, Whr, Whz, Whn, bhr, bhz, bhn)]
        gWir, gWiz, gWin, gbir, gbiz, gbin, gWhr, gWhz, gWhn, gbhr, gbhz, gbhn = grads
        dh = h * np.float32(2 / h.size)
        for x, h, r, z, n, hn in reversed(saved):
            dn = dh * (1 - z)
            dz = dh * (h - n)
            dprev = dh * z
            dan = dn * (1 - n * n)
            gWin += dan.T @ x
            gbin += ones @ dan
            dhn = dan * r
            dr = dan * hn
            gWhn += dhn.T @ h
            gbhn += ones @ dhn
            dprev += dhn @ Whn
            daz = dz * z * (1 - z)
            gWiz += daz.T @ x
            gbiz += ones @ daz
            gWhz += daz.T @ h
            gbhz += ones @ daz
            dprev += daz @ Whz
            dar = dr * r * (1 - r)
            gWir += dar.T @ x
            gbir += ones @ dar
            gWhr += dar.T @ h
            gbhr += ones @ dar
            dprev += dar @ Whr
            dh = dprev
        return loss, grads

    return Bench(step, step()[0])


def _im2col(x: np.ndarray, k: int, pad: int) -> tuple[np.ndarray, tuple]:
    """(N, C, H, W) -> (N, C·k·k, Ho·Wo) windows, through a strided view and one copy.

    This layout makes the convolution ``W (Cout, C·k·k) @ cols`` land directly in NCHW order."""
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    n, c, h, w = x.shape
    ho, wo = h - k + 1, w - k + 1
    win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))  # N, C, Ho, Wo, k, k
    return win.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * k * k, ho * wo), (n, c, h, w, ho, wo)


def _col2im(dcols: np.ndarray, k: int, pad: int, dims: tuple) -> np.ndarray:
    """The adjoint of _im2col: add each window position's gradient back where it came from."""
    n, c, h, w, ho, wo = dims
    d = dcols.reshape(n, c, k, k, ho, wo)
    dx = np.zeros((n, c, h, w), dcols.dtype)
    for i in range(k):
        for j in range(k):
            dx[:, :, i : i + ho, j : j + wo] += d[:, :, i, j]
    return dx[:, :, pad : h - pad, pad : w - pad] if pad else dx


def _pool_fwd(x: np.ndarray) -> tuple[np.ndarray, list]:
    """2×2 max pool as the maximum of the four strided views (5× faster than a reshape)."""
    views = [x[:, :, a::2, b::2] for a in (0, 1) for b in (0, 1)]
    m = np.maximum(np.maximum(views[0], views[1]), np.maximum(views[2], views[3]))
    return m, views


def _pool_bwd(g: np.ndarray, m: np.ndarray, views: list, shape: tuple) -> np.ndarray:
    dx = np.zeros(shape, g.dtype)
    taken = np.zeros(m.shape, bool)
    for (a, b), v in zip(((0, 0), (0, 1), (1, 0), (1, 1)), views):
        hit = (v == m) & ~taken  # the first maximum of each window, as PyTorch
        taken |= hit
        dx[:, :, a::2, b::2] = g * hit
    return dx


def cnn(kind: str, batch: int) -> Bench:
    d = cnn_data(kind, batch)
    params = [p.copy() for p in d["params"]]
    convs, x, y, lr = d["convs"], d["x"], d["y"], np.float32(d["lr"])
    nconv = len(convs)
    ones = None

    def step() -> float:
        nonlocal ones
        saved = []
        h = x
        for i, (cout, _cin, k, pad) in enumerate(convs):
            W, b = params[2 * i], params[2 * i + 1]
            cols, dims = _im2col(h, k, pad)
            z = W.reshape(cout, -1) @ cols  # (N, Cout, Ho·Wo): NCHW already
            z += b[:, None]
            n, _, _, _, ho, wo = dims
            z = z.reshape(n, cout, ho, wo)
            a = np.maximum(z, 0)
            p, views = _pool_fwd(a)
            saved.append((cols, dims, z, a.shape, p, views))
            h = p
        flat_shape = h.shape
        h = h.reshape(h.shape[0], -1)
        fcs = params[2 * nconv :]
        acts = []
        for j in range(0, len(fcs), 2):
            acts.append(h)
            h = h @ fcs[j].T
            h += fcs[j + 1]
            if j + 2 < len(fcs):
                h = np.maximum(h, 0)
        loss, g = _ce(h, y)
        if ones is None or ones.shape[0] != g.shape[0]:
            ones = np.ones(g.shape[0], np.float32)
        grads = [None] * len(params)
        for j in range(len(fcs) - 2, -1, -2):
            a = acts[j // 2]
            grads[2 * nconv + j] = g.T @ a
            grads[2 * nconv + j + 1] = ones @ g
            g = g @ fcs[j]
            if j > 0:
                g *= a > 0
        g = g.reshape(flat_shape)
        for i in range(nconv - 1, -1, -1):
            cout, _cin, k, pad = convs[i]
            cols, dims, z, ashape, p, views = saved[i]
            g = _pool_bwd(g, p, views, ashape)
            g *= z > 0
            g2 = g.reshape(g.shape[0], cout, -1)  # (N, Cout, Ho·Wo)
            grads[2 * i] = np.tensordot(g2, cols, axes=([0, 2], [0, 2])).reshape(params[2 * i].shape)
            grads[2 * i + 1] = g2.sum(axis=(0, 2))
            if i > 0:  # the data batch gets no gradient
                g = _col2im(params[2 * i].reshape(cout, -1).T @ g2, k, pad, dims)
        for p_, g_ in zip(params, grads):
            g_ *= lr
            p_ -= g_
        return loss

    loss = step()
    for p_, p0 in zip(params, d["params"]):
        p_[...] = p0
    return Bench(step, loss)


gru_module = gru  # the floor has one GRU: the hand-written one
