"""The reference models ``new-grad train`` trains: an MLP, a small CNN and a GRU classifier.

Each is an ordinary :class:`new_grad.nn.Module` built from new_grad's layers, taking
images ``(N, C, H, W)`` and returning class logits ``(N, num_classes)``. They are
small on purpose: the digits set trains in seconds on a laptop CPU.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

from . import nn, ops
from .backends import get_default_dtype, set_default_dtype
from .errors import NewGradError


@contextlib.contextmanager
def default_dtype(dtype: Any) -> Iterator[None]:
    """Create parameters in ``dtype`` inside the block, then restore the previous default."""
    saved = get_default_dtype()
    set_default_dtype(dtype if dtype is not None else saved)
    try:
        yield
    finally:
        set_default_dtype(saved)


def _need(name: str) -> Any:
    """A layer class from ``new_grad.nn``, or a clear error naming what is missing."""
    layer = getattr(nn, name, None)
    if layer is None:
        raise NewGradError(f"this model needs new_grad.nn.{name}, which this version of new_grad does not have")
    return layer


class MLP(nn.Module):
    """Flatten → Linear → ReLU → Linear → ReLU → Linear: the course's MLP."""

    def __init__(self, in_features: int, hidden: int, num_classes: int) -> None:
        super().__init__()
        self.flatten = _need("Flatten")()
        self.fc1 = nn.Linear(in_features, hidden)
        self.act1 = nn.ReLU()
        self.fc2 = nn.Linear(hidden, hidden)
        self.act2 = nn.ReLU()
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x: Any) -> Any:
        h = self.act1(self.fc1(self.flatten(x)))
        return self.head(self.act2(self.fc2(h)))


class CNN(nn.Module):
    """Two (Conv3×3 → ReLU → MaxPool2) blocks, then Flatten → Linear → ReLU → Linear."""

    def __init__(self, sample_shape: tuple[int, ...], hidden: int, num_classes: int, channels: tuple[int, int] = (16, 32)) -> None:
        super().__init__()
        if len(sample_shape) != 3:
            raise NewGradError(f"cnn: needs image samples (C, H, W), got samples of shape {sample_shape}; use --model mlp")
        Conv2d, MaxPool2d, Flatten = _need("Conv2d"), _need("MaxPool2d"), _need("Flatten")
        c, h, w = sample_shape
        c1, c2 = channels
        self.conv1 = Conv2d(c, c1, 3, padding=1)
        self.act1 = nn.ReLU()
        self.pool1 = MaxPool2d(2)
        self.conv2 = Conv2d(c1, c2, 3, padding=1)
        self.act2 = nn.ReLU()
        self.pool2 = MaxPool2d(2)
        self.flatten = Flatten()
        self.fc = nn.Linear(c2 * (h // 4) * (w // 4), hidden)
        self.act3 = nn.ReLU()
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x: Any) -> Any:
        x = self.pool1(self.act1(self.conv1(x)))
        x = self.pool2(self.act2(self.conv2(x)))
        return self.head(self.act3(self.fc(self.flatten(x))))


class GRUClassifier(nn.Module):
    """Reads an image row by row (a sequence of H rows of C·W pixels) with a GRU; classifies its last state."""

    def __init__(self, sample_shape: tuple[int, ...], hidden: int, num_classes: int) -> None:
        super().__init__()
        if len(sample_shape) not in (2, 3):
            raise NewGradError(f"gru: needs image samples (C, H, W), got samples of shape {sample_shape}")
        GRU = _need("GRU")
        c, h, w = sample_shape if len(sample_shape) == 3 else (1, *sample_shape)
        self.seq_len, self.row = h, c * w
        self.gru = GRU(self.row, hidden, batch_first=True)
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x: Any) -> Any:
        n = x.shape[0]
        seq = ops.reshape(ops.swapaxes(x, 1, 2) if x.ndim == 4 else x, (n, self.seq_len, self.row))
        _, h_n = self.gru(seq)
        return self.head(ops.reshape(h_n, (n, -1)))


DEFAULT_HIDDEN = {"mlp": 128, "cnn": 64, "gru": 64}


def _mlp(shape: tuple[int, ...], hidden: int, k: int) -> nn.Module:
    return MLP(math.prod(shape), hidden, k)


def _cnn(shape: tuple[int, ...], hidden: int, k: int) -> nn.Module:
    return CNN(shape, hidden, k)


def _gru(shape: tuple[int, ...], hidden: int, k: int) -> nn.Module:
    return GRUClassifier(shape, hidden, k)


MODELS: dict[str, Callable[[tuple[int, ...], int, int], nn.Module]] = {"mlp": _mlp, "cnn": _cnn, "gru": _gru}


def build_model(
    name: str, sample_shape: tuple[int, ...], num_classes: int, hidden: int | None = None, dtype: Any = None
) -> nn.Module:
    """One of ``MODELS`` for samples of ``sample_shape``; parameters in ``dtype`` (default: new_grad's)."""
    if name not in MODELS:
        raise NewGradError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    with default_dtype(dtype):
        return MODELS[name](tuple(sample_shape), hidden or DEFAULT_HIDDEN[name], num_classes)
