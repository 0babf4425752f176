"""End to end: real training reaches real accuracy, fast (seconds each).

* an MLP on scikit-learn's digits: ≥ 97 % test accuracy;
* a CNN on digits (the README's example, ``docs/examples/cnn_digits.py``, run as is): ≥ 98 %;
* a GRU classifier that must remember the first token of a sequence: ≥ 95 % on held-out sequences;
* a small Transformer (rows of a digit as 8 tokens) on digits: ≥ 95 %;
* a GRU + CrossEntropyLoss trajectory equal to PyTorch's (float64, 1e-8) over 15 SGD steps.

The digits split is ``new_grad.data.load_digits``'s fixed one (test: 20 %, seed 0).
"""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest
import torch

import new_grad as ng
from new_grad import nn
from new_grad.data import DataLoader, load_digits

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


@pytest.fixture(autouse=True)
def one_blas_thread():
    """Small matmuls: BLAS threads only add contention (on a busy 2-core runner, 50× slower)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - comes with scikit-learn
        yield
        return
    with threadpool_limits(1):
        yield


def train(model, loader_fn, epochs, lr, loss_fn=None):
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    opt = ng.optim.Adam(model.parameters(), lr=lr)
    for epoch in range(epochs):
        for x, y in loader_fn(epoch):
            eng = ng.Autograd()
            with eng:
                loss = loss_fn(model(x), y)
            opt.zero_grad()
            eng.backward(1)
            opt.step()
    return float(loss)


def accuracy(model, x, y):
    model.eval()
    with ng.no_grad():
        return float((np.asarray(model(x)).argmax(-1) == y).mean())


@pytest.mark.slow
def test_mlp_on_digits_reaches_97_percent():
    np.random.seed(0)
    digits = load_digits(val_fraction=0.0)
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(64, 256, dtype=np.float32), nn.ReLU(), nn.Linear(256, 10, dtype=np.float32)
    )
    train(model, lambda e: DataLoader(digits.train, batch_size=32, shuffle=True, seed=e), epochs=30, lr=2e-3)
    x, y = digits.test[:]
    assert accuracy(model, x, y) >= 0.97


@pytest.mark.slow
def test_cnn_example_on_digits_reaches_98_percent(capsys):
    env = runpy.run_path(str(EXAMPLES / "cnn_digits.py"), run_name="__main__")
    assert env["accuracy"] >= 0.98
    assert "test accuracy" in capsys.readouterr().out


def first_token_task(n, length=12, vocab=4, seed=0):
    """One-hot token sequences; the label is the FIRST token, so the GRU must carry it to the end."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, vocab, (n, length))
    return np.eye(vocab, dtype=np.float32)[tokens], tokens[:, 0]


class GRUClassifier(nn.Module):
    def __init__(self, vocab, hidden, classes):
        super().__init__()
        self.gru = nn.GRU(vocab, hidden, batch_first=True, dtype=np.float32)
        self.head = nn.Linear(hidden, classes, dtype=np.float32)

    def forward(self, x):
        _, h_n = self.gru(x)
        return self.head(ng.getitem(h_n, -1))


@pytest.mark.slow
def test_gru_classifier_learns_to_remember_the_first_token():
    np.random.seed(0)
    x, y = first_token_task(1024)
    x_test, y_test = first_token_task(256, seed=1)
    model = GRUClassifier(4, 32, 4)
    data = ng.data.ArrayDataset(x, y)
    train(model, lambda e: DataLoader(data, batch_size=32, shuffle=True, seed=e), epochs=8, lr=1e-2)
    assert accuracy(model, x_test, y_test) >= 0.95


class RowTransformer(nn.Module):
    """A digit's 8 rows as 8 tokens: embedding + learned positions, one encoder layer, mean-pool, classify."""

    def __init__(self, d=32):
        super().__init__()
        self.embed = nn.Linear(8, d, dtype=np.float32)
        self.register_parameter("pos", (np.random.standard_normal((8, d)) * 0.1).astype(np.float32))
        self.encoder = nn.TransformerEncoderLayer(d, 4, dim_feedforward=64, dropout=0.0, batch_first=True,
                                                  dtype=np.float32)
        self.head = nn.Linear(d, 10, dtype=np.float32)

    def forward(self, images):
        rows = ng.reshape(images, (images.shape[0], 8, 8))
        h = self.encoder(ng.add(self.embed(rows), self.pos))
        return self.head(ng.mean(h, axis=1))


@pytest.mark.slow
def test_small_transformer_on_digits_reaches_95_percent():
    np.random.seed(0)
    digits = load_digits(val_fraction=0.0)
    model = RowTransformer()
    train(model, lambda e: DataLoader(digits.train, batch_size=32, shuffle=True, seed=e), epochs=10, lr=3e-3)
    x, y = digits.test[:]
    assert accuracy(model, x, y) >= 0.95


def test_gru_training_trajectory_equals_pytorch():
    """Same weights, data and SGD steps: the losses agree to 1e-8 for 15 steps (float64)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4, 3))  # (T, B, I)
    y = rng.integers(0, 5, 4)
    torch.manual_seed(0)
    t_gru, t_head = torch.nn.GRU(3, 8, num_layers=2, bidirectional=True).double(), torch.nn.Linear(16, 5).double()
    gru, head = nn.GRU(3, 8, num_layers=2, bidirectional=True), nn.Linear(16, 5)
    for name, p in t_gru.named_parameters():
        getattr(gru, name)[...] = p.detach().numpy()
    head.W[...], head.b[...] = t_head.weight.detach().numpy(), t_head.bias.detach().numpy()
    params = [p for m in (gru, head) for p in m.parameters()]
    opt = ng.optim.SGD(params, lr=0.5)
    t_opt = torch.optim.SGD([*t_gru.parameters(), *t_head.parameters()], lr=0.5)
    for _ in range(15):
        eng = ng.Autograd()
        with eng:
            out, _ = gru(x)
            loss = ng.cross_entropy(head(ng.getitem(out, -1)), y, label_smoothing=0.1)
        opt.zero_grad()
        eng.backward(1)
        opt.step()
        t_out, _ = t_gru(torch.tensor(x))
        t_loss = torch.nn.functional.cross_entropy(t_head(t_out[-1]), torch.tensor(y), label_smoothing=0.1)
        t_opt.zero_grad()
        t_loss.backward()
        t_opt.step()
        assert abs(float(loss) - t_loss.item()) < 1e-8
