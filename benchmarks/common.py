"""The workloads' data, made once with NumPy so every implementation starts from the same numbers.

Everything is float32. Parameters use PyTorch's default initialisation
(U(−1/√fan_in, 1/√fan_in)); data batches are constants (no input gradient anywhere).
"""

from __future__ import annotations

import numpy as np

F32 = np.float32

# (name, bench kind, parameters): the suite's rows. ``quick`` sizes keep the CI smoke test fast.
MLP_SIZES = (784, 256, 256, 10)
GRU = {"batch": 16, "input": 32, "hidden": 64, "steps": 50}
GRU_QUICK = {"batch": 4, "input": 8, "hidden": 8, "steps": 3}


def _uniform(rng: np.random.Generator, fan_in: int, shape: tuple[int, ...]) -> np.ndarray:
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, shape).astype(F32)


def chain_data(n: int, numbers: bool = False) -> dict:
    """Row A/E: x, w, b of shape (8,); the chain is ``y = y*w; y = y+b`` repeated, then ``sum``.

    With ``numbers`` w and b are Python floats (``y = y * 1.0001; y = y + 0.001``): only x gets a gradient.
    """
    rng = np.random.default_rng(0)
    d = {
        "x": rng.uniform(0.5, 1.5, 8).astype(F32),
        "w": (1 + rng.uniform(-1e-5, 1e-5, 8)).astype(F32),
        "b": rng.uniform(-1e-5, 1e-5, 8).astype(F32),
        "n": n,
    }
    if numbers:
        d["w"], d["b"] = 1.0001, 0.001
    return d


def arrays(*xs):
    """The arguments that are arrays (the ones that get a gradient)."""
    return tuple(x for x in xs if isinstance(x, np.ndarray))


def mlp_data(batch: int, sizes: tuple[int, ...] = MLP_SIZES) -> dict:
    """Row B: PyTorch-initialised (W (out, in), b (out,)) pairs, a constant batch and one-hot targets."""
    rng = np.random.default_rng(1)
    params = []
    for fin, fout in zip(sizes[:-1], sizes[1:]):
        params.append(_uniform(rng, fin, (fout, fin)))
        params.append(_uniform(rng, fin, (fout,)))
    x = rng.standard_normal((batch, sizes[0])).astype(F32)
    labels = rng.integers(0, sizes[-1], batch)
    y = np.zeros((batch, sizes[-1]), F32)
    y[np.arange(batch), labels] = 1
    return {"params": params, "x": x, "y": y, "labels": labels, "lr": 0.01}


def cnn_data(kind: str, batch: int) -> dict:
    """Row C. ``small``: conv3x3(1→8) → ReLU → maxpool2 → linear(1352→10).
    ``lenet``: conv5x5(1→6, pad 2) → ReLU → pool → conv5x5(6→16) → ReLU → pool → 400→120→84→10."""
    rng = np.random.default_rng(2)
    if kind == "small":
        convs = [(8, 1, 3, 0)]
        fcs = [(8 * 13 * 13, 10)]
    else:
        convs = [(6, 1, 5, 2), (16, 6, 5, 0)]
        fcs = [(16 * 5 * 5, 120), (120, 84), (84, 10)]
    params = []
    for cout, cin, k, _pad in convs:
        params.append(_uniform(rng, cin * k * k, (cout, cin, k, k)))
        params.append(_uniform(rng, cin * k * k, (cout,)))
    for fin, fout in fcs:
        params.append(_uniform(rng, fin, (fout, fin)))
        params.append(_uniform(rng, fin, (fout,)))
    x = rng.standard_normal((batch, 1, 28, 28)).astype(F32)
    labels = rng.integers(0, 10, batch)
    y = np.zeros((batch, 10), F32)
    y[np.arange(batch), labels] = 1
    return {"params": params, "convs": convs, "x": x, "y": y, "labels": labels, "lr": 0.01}


def gru_data(batch: int, input: int, hidden: int, steps: int) -> dict:
    """Row F: a GRU cell's six (W, b) pairs in PyTorch's gate order r, z, n (input side, then hidden side)."""
    rng = np.random.default_rng(3)
    wi = [_uniform(rng, hidden, (hidden, input)) for _ in range(3)]
    bi = [_uniform(rng, hidden, (hidden,)) for _ in range(3)]
    wh = [_uniform(rng, hidden, (hidden, hidden)) for _ in range(3)]
    bh = [_uniform(rng, hidden, (hidden,)) for _ in range(3)]
    xs = rng.standard_normal((steps, batch, input)).astype(F32)
    h0 = np.zeros((batch, hidden), F32)
    return {"wi": wi, "bi": bi, "wh": wh, "bh": bh, "xs": xs, "h0": h0}


class Bench:
    """One workload ready to time: ``timed()`` is the measured unit, ``prepare()`` untimed set-up before
    each call (``None``: nothing), ``loss`` the value checked against the other implementations, and
    ``units`` what one ``timed()`` call is divided by (ops for per-op rows, 1 for steps)."""

    __slots__ = ("timed", "prepare", "loss", "units")

    def __init__(self, timed, loss: float, units: int = 1, prepare=None) -> None:
        self.timed = timed
        self.prepare = prepare
        self.loss = float(loss)
        self.units = units
