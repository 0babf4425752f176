"""Parameter initialisation, in place, with PyTorch's names, gains and fan modes.

Every function fills its array in place and returns it. Random ones take an optional
``generator`` (a ``numpy.random.Generator``) for reproducible draws; without one they
use NumPy's global random state (so ``np.random.seed`` works, as in the course).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backends import namespace
from ..errors import ArgumentError, ShapeError

__all__ = [
    "calculate_gain",
    "uniform_",
    "normal_",
    "constant_",
    "zeros_",
    "ones_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "orthogonal_",
]


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """PyTorch's recommended gain for an activation (scales the init's standard deviation)."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
    if nonlinearity in linear or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise ArgumentError(f"calculate_gain: negative_slope {param!r} is not a number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ArgumentError(
        f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; use one of linear, conv*, sigmoid, tanh, "
        "relu, leaky_relu, selu"
    )


def _calculate_fan_in_and_fan_out(array: Any) -> tuple[int, int]:
    """fan_in = shape[1]·receptive field, fan_out = shape[0]·receptive field (PyTorch's convention)."""
    if array.ndim < 2:
        raise ShapeError(
            f"init: fan in and fan out need an array of at least 2 dimensions, got shape {tuple(array.shape)}"
        )
    receptive = int(np.prod(array.shape[2:])) if array.ndim > 2 else 1
    return array.shape[1] * receptive, array.shape[0] * receptive


def _fan(array: Any, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ArgumentError(f"init: mode {mode!r} must be 'fan_in' or 'fan_out'")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(array)
    return fan_in if mode == "fan_in" else fan_out


def _fill(array: Any, values: np.ndarray) -> Any:
    array[...] = namespace(array).asarray(values, dtype=array.dtype)
    return array


def _rng(generator: np.random.Generator | None) -> Any:
    return np.random if generator is None else generator


def uniform_(array: Any, a: float = 0.0, b: float = 1.0, generator: np.random.Generator | None = None) -> Any:
    """Fill with U(a, b)."""
    return _fill(array, _rng(generator).uniform(a, b, array.shape))


def normal_(array: Any, mean: float = 0.0, std: float = 1.0, generator: np.random.Generator | None = None) -> Any:
    """Fill with N(mean, std²)."""
    return _fill(array, _rng(generator).normal(mean, std, array.shape))


def constant_(array: Any, val: float) -> Any:
    array[...] = val
    return array


def zeros_(array: Any) -> Any:
    return constant_(array, 0.0)


def ones_(array: Any) -> Any:
    return constant_(array, 1.0)


def xavier_uniform_(array: Any, gain: float = 1.0, generator: np.random.Generator | None = None) -> Any:
    """Glorot: U(−a, a), a = gain·√(6/(fan_in + fan_out)), keeping activations' variance across layers."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(array)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(array, -a, a, generator)


def xavier_normal_(array: Any, gain: float = 1.0, generator: np.random.Generator | None = None) -> Any:
    """Glorot: N(0, std²), std = gain·√(2/(fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(array)
    return normal_(array, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def kaiming_uniform_(
    array: Any, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
    generator: np.random.Generator | None = None,
) -> Any:
    """He: U(−b, b), b = gain·√(3/fan), for ReLU-family networks (``a``: the leaky slope)."""
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(array, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(array, -bound, bound, generator)


def kaiming_normal_(
    array: Any, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
    generator: np.random.Generator | None = None,
) -> Any:
    """He: N(0, std²), std = gain/√fan."""
    return normal_(array, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(_fan(array, mode)), generator)


def orthogonal_(array: Any, gain: float = 1.0, generator: np.random.Generator | None = None) -> Any:
    """A (semi-)orthogonal matrix (trailing axes flattened), from the QR of a Gaussian matrix, times ``gain``."""
    if array.ndim < 2:
        raise ShapeError(f"orthogonal_: needs at least 2 dimensions, got shape {tuple(array.shape)}")
    if array.size == 0:
        return array
    rows = array.shape[0]
    cols = array.size // rows
    flat = _rng(generator).normal(0.0, 1.0, (rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))  # a uniform (Haar) draw, as PyTorch does
    if rows < cols:
        q = q.T
    return _fill(array, gain * q.reshape(array.shape))
