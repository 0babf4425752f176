"""Every layer, every optimiser and a training step on another device, against the same on the CPU.

Shared by the CPU stand-in tests (``test_standin.py``, in CI) and the GPU tests
(``test_gpu.py``, marked ``gpu``): a layer is built once, its state copied into a twin
moved with ``Module.to(device)``, both run forward and backward on the same input
and upstream gradient, and everything that comes back must be an array of that
device holding the CPU's values (float64 within 1e-10, float32 within 1e-5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import new_grad as ng
from new_grad import nn
from new_grad.backends import device_of, to_numpy

from .opcheck import _put, assert_same_on_device


@dataclass
class LayerCase:
    name: str
    make: Callable[[], nn.Module]
    inputs: Callable[[np.random.Generator], list[Any]]  # float arrays get gradients; ints, None and numbers don't
    train: bool = True


def _x(*shape: int) -> Callable[[np.random.Generator], list[Any]]:
    return lambda rng: [rng.standard_normal(shape)]


def _xt(shape: tuple, target: Callable[[np.random.Generator], Any]) -> Callable[[np.random.Generator], list[Any]]:
    return lambda rng: [rng.standard_normal(shape), target(rng)]


def _classes(n: int, c: int) -> Callable[[np.random.Generator], Any]:
    return lambda rng: rng.integers(0, c, n)


def _probs(*shape: int) -> Callable[[np.random.Generator], Any]:
    return lambda rng: 1 / (1 + np.exp(-rng.standard_normal(shape)))


def _ctc(rng: np.random.Generator) -> list[Any]:
    T, N, C, S = 6, 2, 4, 3
    lp = rng.standard_normal((T, N, C))
    lp = lp - np.log(np.exp(lp).sum(-1, keepdims=True))
    return [lp, rng.integers(1, C, (N, S)), np.array([6, 5]), np.array([3, 2])]


def _tiny_encoder() -> nn.Module:
    return nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True), 2)


LAYER_CASES: list[LayerCase] = [
    LayerCase("Linear", lambda: nn.Linear(5, 3), _x(4, 5)),
    LayerCase("Conv1d", lambda: nn.Conv1d(4, 6, 3, stride=2, padding=1, groups=2), _x(2, 4, 9)),
    LayerCase("Conv2d", lambda: nn.Conv2d(3, 4, 3, padding="same"), _x(2, 3, 6, 5)),
    LayerCase("ConvTranspose2d", lambda: nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1),
              _x(2, 4, 4, 5)),
    LayerCase("MaxPool1d", lambda: nn.MaxPool1d(3, 2, 1), _x(2, 3, 9)),
    LayerCase("MaxPool2d", lambda: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), _x(2, 2, 8, 7)),
    LayerCase("AvgPool2d", lambda: nn.AvgPool2d(3, 2, 1, count_include_pad=False), _x(2, 3, 7, 6)),
    LayerCase("AdaptiveAvgPool2d", lambda: nn.AdaptiveAvgPool2d((3, 2)), _x(2, 3, 7, 5)),
    LayerCase("Flatten", lambda: nn.Flatten(), _x(2, 3, 4)),
    LayerCase("Unflatten", lambda: nn.Unflatten(1, (2, -1)), _x(2, 6, 3)),
    LayerCase("BatchNorm1d", lambda: nn.BatchNorm1d(4), _x(5, 4)),
    LayerCase("BatchNorm2d", lambda: nn.BatchNorm2d(3), _x(4, 3, 5, 2)),
    LayerCase("BatchNorm2d-eval", lambda: nn.BatchNorm2d(3).eval(), _x(4, 3, 5, 2)),
    LayerCase("LayerNorm", lambda: nn.LayerNorm([4, 5]), _x(3, 2, 4, 5)),
    LayerCase("GroupNorm", lambda: nn.GroupNorm(2, 4), _x(3, 4, 3, 2)),
    LayerCase("Embedding", lambda: nn.Embedding(6, 3, padding_idx=0), lambda rng: [rng.integers(0, 6, (2, 5))]),
    LayerCase("Dropout", lambda: nn.Dropout(0.3).eval(), _x(3, 4)),
    LayerCase("Dropout-train", lambda: nn.Dropout(0.3, generator=np.random.default_rng(0)), _x(3, 4)),
    LayerCase("Identity", lambda: nn.Identity(), _x(3, 4)),
    LayerCase("ReLU", lambda: nn.ReLU(), _x(3, 4)),
    LayerCase("LeakyReLU", lambda: nn.LeakyReLU(0.2), _x(3, 4)),
    LayerCase("ELU", lambda: nn.ELU(0.5), _x(3, 4)),
    LayerCase("GELU", lambda: nn.GELU(), _x(3, 4)),
    LayerCase("GELU-tanh", lambda: nn.GELU("tanh"), _x(3, 4)),
    LayerCase("SiLU", lambda: nn.SiLU(), _x(3, 4)),
    LayerCase("Softplus", lambda: nn.Softplus(2.0, 3.0), _x(3, 4)),
    LayerCase("Sigmoid", lambda: nn.Sigmoid(), _x(3, 4)),
    LayerCase("Tanh", lambda: nn.Tanh(), _x(3, 4)),
    LayerCase("Softmax", lambda: nn.Softmax(dim=1), _x(3, 4, 2)),
    LayerCase("LogSoftmax", lambda: nn.LogSoftmax(dim=-1), _x(3, 4)),
    LayerCase("Sequential", lambda: nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2)), _x(5, 4)),
    LayerCase("ModuleList", lambda: _Stack(), _x(5, 4)),
    LayerCase("RNNCell", lambda: nn.RNNCell(3, 4), _x(2, 3)),
    LayerCase("GRUCell", lambda: nn.GRUCell(3, 4), _x(2, 3)),
    LayerCase("LSTMCell", lambda: nn.LSTMCell(3, 4), _x(2, 3)),
    LayerCase("RNN", lambda: nn.RNN(3, 4, num_layers=2, bidirectional=True), _x(5, 2, 3)),
    LayerCase("GRU", lambda: nn.GRU(3, 4, batch_first=True), _x(2, 5, 3)),
    LayerCase("LSTM", lambda: nn.LSTM(3, 4, num_layers=2), _x(5, 2, 3)),
    LayerCase("MultiheadAttention", lambda: nn.MultiheadAttention(8, 2, batch_first=True),
              lambda rng: [rng.standard_normal((2, 5, 8))] * 3),
    LayerCase("TransformerEncoderLayer", lambda: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True),
              _x(2, 5, 8)),
    LayerCase("TransformerEncoder", _tiny_encoder, _x(2, 5, 8)),
    LayerCase("MSELoss", lambda: nn.MSELoss(reduction="mean"), _xt((3, 4), lambda rng: rng.standard_normal((3, 4)))),
    LayerCase("SoftmaxCrossEntropy", lambda: nn.SoftmaxCrossEntropy(),
              lambda rng: [np.eye(4)[rng.integers(0, 4, 5)], rng.standard_normal((5, 4))]),
    LayerCase("L1Loss", lambda: nn.L1Loss(), _xt((3, 4), lambda rng: rng.standard_normal((3, 4)))),
    LayerCase("SmoothL1Loss", lambda: nn.SmoothL1Loss(beta=0.5), _xt((3, 4), lambda rng: rng.standard_normal((3, 4)))),
    LayerCase("HuberLoss", lambda: nn.HuberLoss(delta=0.7), _xt((3, 4), lambda rng: rng.standard_normal((3, 4)))),
    LayerCase("BCELoss", lambda: nn.BCELoss(), lambda rng: [_probs(3, 4)(rng), _probs(3, 4)(rng)]),
    LayerCase("BCEWithLogitsLoss", lambda: nn.BCEWithLogitsLoss(), _xt((3, 4), _probs(3, 4))),
    LayerCase("KLDivLoss", lambda: nn.KLDivLoss(reduction="batchmean"), _xt((3, 4), _probs(3, 4))),
    LayerCase("NLLLoss", lambda: nn.NLLLoss(), _xt((5, 4), _classes(5, 4))),
    LayerCase("CrossEntropyLoss", lambda: nn.CrossEntropyLoss(label_smoothing=0.1), _xt((5, 4), _classes(5, 4))),
    LayerCase("CTCLoss", lambda: nn.CTCLoss(zero_infinity=True), _ctc),
]


class _Stack(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(4, 6), nn.Linear(6, 3)])

    def forward(self, x: Any) -> Any:
        for m in self.layers:
            x = ng.tanh(m(x))
        return x


def _arrays(out: Any) -> list[Any]:
    if isinstance(out, (tuple, list)):
        return [a for o in out for a in _arrays(o)]
    return [] if out is None else [out]


def run_layer(layer: nn.Module, inputs: list[Any], device: str, dtype: Any) -> dict[str, Any]:
    """Forward, then backward of Σ gᵢ·outᵢ (fixed random gᵢ), with layer and inputs on ``device``."""
    layer.to(device)
    xs = [_put(x, device, dtype) for x in inputs]
    engine = ng.Autograd()
    layer.set_engine(engine)
    layer.zero_grad()
    with engine:
        outs = _arrays(layer(*xs))
        rng = np.random.default_rng(1)
        total = None
        for o in outs:
            if o.dtype.kind != "f":
                continue
            g = _put(rng.standard_normal(o.shape), device, o.dtype)
            term = ng.sum(ng.multiply(o, g))
            total = term if total is None else ng.add(total, term)
    engine.backward(1.0)
    res: dict[str, Any] = {f"output {i}": o for i, o in enumerate(outs)}
    for i, x in enumerate(xs):
        if hasattr(x, "dtype") and x.dtype.kind == "f" and engine.memory_buffer.is_in_memory(x):
            res[f"gradient of input {i}"] = engine.memory_buffer.get_param(x)
    for name, (_, g) in layer.named_parameters():
        res[f"gradient of {name}"] = g
    for name, b in layer.named_buffers():
        res[f"buffer {name}"] = b
    return res


def check_layer_on_device(case: LayerCase, device: str, dtype: Any = np.float64) -> None:
    """The layer moved to ``device`` gives the CPU's outputs, gradients and buffers, as arrays of that device."""
    np.random.seed(0)
    old = ng.get_default_dtype()
    ng.set_default_dtype(dtype)
    try:
        cpu, twin = case.make(), case.make()
    finally:
        ng.set_default_dtype(old)
    twin.load_state_dict(cpu.state_dict())
    inputs = case.inputs(np.random.default_rng(0))
    ref = run_layer(cpu, inputs, "cpu", dtype)
    got = run_layer(twin, inputs, device, dtype)
    assert set(got) == set(ref), (sorted(got), sorted(ref))
    for what, r in ref.items():
        assert_same_on_device(got[what], r, f"{case.name} on {device}: {what}", device, dtype)


# -- optimisers ----------------------------------------------------------------------------------------------------

OPTIMISER_CASES = [
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, maximize=True)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("AdamW", dict(lr=0.02, weight_decay=0.1, amsgrad=True)),
    ("RMSprop", dict(lr=0.005, momentum=0.5, centered=True, weight_decay=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.5)),
]
SHAPES = [(3, 4), (5,), (1,), (2, 1, 3)]


def check_optimiser_on_device(kind: str, kw: dict, device: str, dtype: Any, tmp_path: Any) -> None:
    """20 steps (with gradient clipping and a scheduler) on ``device`` follow the CPU's; state round-trips."""
    rng = np.random.default_rng(8)
    params = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [np.zeros_like(p) for p in params]
    dparams = [_put(p, device) for p in params]
    dgrads = [_put(g, device) for g in grads]
    cls = getattr(ng.optim, kind)
    opt, dopt = cls(list(zip(params, grads)), **kw), cls(list(zip(dparams, dgrads)), **kw)
    sched = ng.optim.lr_scheduler.StepLR(opt, 5, 0.5)
    dsched = ng.optim.lr_scheduler.StepLR(dopt, 5, 0.5)
    for _ in range(20):
        for g, dg in zip(grads, dgrads):
            g[...] = rng.standard_normal(g.shape)
            dg[...] = _put(g, device)
        ng.optim.clip_grad_norm_(grads, 1.0)
        ng.optim.clip_grad_norm_(dgrads, 1.0)
        ng.optim.clip_grad_value_(grads, 0.05)
        ng.optim.clip_grad_value_(dgrads, 0.05)
        opt.step()
        dopt.step()
        sched.step()
        dsched.step()
    for i, (p, dp) in enumerate(zip(params, dparams)):
        assert_same_on_device(dp, p, f"{kind} on {device}: parameter {i}", device, dtype)
    path = tmp_path / "opt.npz"
    ng.save(dopt.state_dict(), path)  # device buffers are written from host copies
    fresh = cls(list(zip([_put(p, device) for p in params], [_put(g, device) for g in grads])), **kw)
    fresh.load_state_dict(ng.load(path))  # and come back onto the device
    for s in fresh.state.values():
        for k, v in s.items():
            if hasattr(v, "shape") and getattr(v, "ndim", 0) > 0:
                assert_same_on_device(v, to_numpy(v), f"{kind} state {k}", device, v.dtype)


def training_losses(device: str, dtype: Any = np.float64, steps: int = 6) -> list[float]:
    """A few SGD steps of a small CNN + MLP (conv, batch norm, pool, dropout off, linear, fused loss) on ``device``."""
    np.random.seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, dtype=dtype), nn.BatchNorm2d(4, dtype=dtype), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4 * 4 * 4, 16, dtype=dtype), nn.GELU(), nn.Linear(16, 3, dtype=dtype),
    ).to(device)
    opt = ng.optim.Adam(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(3)
    engine = ng.Autograd()
    model.set_engine(engine)
    losses = []
    for _ in range(steps):
        x = ng.constant(_put(rng.standard_normal((8, 1, 8, 8)), device, dtype))
        y = ng.constant(_put(rng.integers(0, 3, 8), device))
        engine.zero_grad()
        opt.zero_grad()
        with engine:
            loss = loss_fn(model(x), y)
        engine.backward(1.0)
        opt.step()
        losses.append(float(to_numpy(loss)))
    return losses


def replay_losses(device: str, dtype: Any = np.float64, steps: int = 5) -> list[float]:
    """A replayed (``new_grad.compile``) SGD step of a small MLP, several times, on ``device``."""
    np.random.seed(1)
    model = nn.Sequential(nn.Linear(6, 8, dtype=dtype), nn.Tanh(), nn.Linear(8, 3, dtype=dtype)).to(device)
    engine = ng.Autograd()
    model.set_engine(engine)
    opt = ng.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    compiled = ng.compile(lambda x, y: ng.softmax_cross_entropy(model(x), y), engine)
    rng = np.random.default_rng(4)
    x = ng.constant(_put(rng.standard_normal((10, 6)), device, dtype))
    y = ng.constant(_put(np.eye(3)[rng.integers(0, 3, 10)], device, dtype))
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = compiled(x, y)
        opt.step()
        assert device_of(loss) == device
        losses.append(float(to_numpy(loss)))
    return losses


def cli_metrics(tmp_path: Any, device: str, epochs: int) -> tuple[dict, dict]:
    """``new-grad train`` of the digits MLP on the CPU and on ``device``: both runs' metrics.json."""
    import json

    from new_grad.cli import main

    args = ["train", "--dataset", "digits", "--model", "mlp", "--epochs", str(epochs), "--batch-size", "64",
            "--quiet", "--no-plots"]
    for d in ("cpu", device):
        assert main([*args, "--device", d, "--out", str(tmp_path / d)]) == 0
    cpu, dev = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("cpu", device))
    return cpu, dev
