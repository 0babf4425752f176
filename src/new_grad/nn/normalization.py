"""Normalisation layers: ``BatchNorm1d``, ``BatchNorm2d``, ``LayerNorm``, ``GroupNorm``.

Scale and shift are parameters ``weight``/``bias`` (gradients ``dweight``/``dbias``);
running statistics are buffers (saved in ``state_dict``, never given a gradient).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import ops
from ..autograd_engine import Autograd, constant
from ..backends import get_default_dtype
from ..errors import ArgumentError, ShapeError
from .module import Module


class _BatchNorm(Module):
    _ndims: tuple[int, ...] = ()

    def __init__(
        self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
        track_running_stats: bool = True, device: Any = None, dtype: Any = None, *,
        autograd_engine: Autograd | None = None,
    ) -> None:
        super().__init__(autograd_engine)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        dtype = np.dtype(dtype or get_default_dtype())
        self.register_parameter("weight", np.ones(num_features, dtype=dtype) if affine else None)
        self.register_parameter("bias", np.zeros(num_features, dtype=dtype) if affine else None)
        if track_running_stats:
            self.register_buffer("running_mean", constant(np.zeros(num_features, dtype=dtype)))
            self.register_buffer("running_var", constant(np.ones(num_features, dtype=dtype)))
            self.register_buffer("num_batches_tracked", np.zeros((), dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            self.weight[...] = 1
            self.bias[...] = 0

    def forward(self, x: Any) -> Any:
        if x.ndim not in self._ndims:
            raise ShapeError(
                f"{type(self).__name__}: input {tuple(x.shape)} must have {' or '.join(map(str, self._ndims))} "
                f"dimensions (N, C{', L' if 3 in self._ndims else ', H, W'})"
            )
        if x.shape[1] != self.num_features:
            raise ShapeError(
                f"{type(self).__name__}({self.num_features}): input {tuple(x.shape)} has {x.shape[1]} channels "
                f"on axis 1; expected {self.num_features}"
            )
        tracking = self.training and self.track_running_stats
        # counted (and, with momentum=None, averaged cumulatively) inside the op, so a replayed step counts too
        count = self.num_batches_tracked if tracking else None
        factor = self.momentum if tracking else 0.0
        use_batch = self.training or self.running_mean is None
        use_running = not self.training or self.track_running_stats
        rm = constant(self.running_mean) if use_running and self.running_mean is not None else None
        rv = constant(self.running_var) if use_running and self.running_var is not None else None
        return ops.batch_norm(x, rm, rv, self.weight, self.bias, use_batch, factor, self.eps, count)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L), per channel C."""

    _ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W), per channel C."""

    _ndims = (4,)


class LayerNorm(Module):
    """Normalise over the trailing ``normalized_shape`` axes of each sample (statistics never stored)."""

    def __init__(
        self, normalized_shape: Any, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
        device: Any = None, dtype: Any = None, *, autograd_engine: Autograd | None = None,
    ) -> None:
        super().__init__(autograd_engine)
        shape = (int(normalized_shape),) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
        self.normalized_shape, self.eps, self.elementwise_affine = shape, eps, elementwise_affine
        dtype = np.dtype(dtype or get_default_dtype())
        self.register_parameter("weight", np.ones(shape, dtype=dtype) if elementwise_affine else None)
        self.register_parameter("bias", np.zeros(shape, dtype=dtype) if elementwise_affine and bias else None)

    def forward(self, x: Any) -> Any:
        return ops.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class GroupNorm(Module):
    """Split the channels into ``num_groups`` and normalise each group of each sample."""

    def __init__(
        self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, device: Any = None,
        dtype: Any = None, *, autograd_engine: Autograd | None = None,
    ) -> None:
        super().__init__(autograd_engine)
        if num_groups < 1 or num_channels % num_groups:
            raise ArgumentError(f"GroupNorm: num_channels={num_channels} must be divisible by num_groups={num_groups}")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        dtype = np.dtype(dtype or get_default_dtype())
        self.register_parameter("weight", np.ones(num_channels, dtype=dtype) if affine else None)
        self.register_parameter("bias", np.zeros(num_channels, dtype=dtype) if affine else None)

    def forward(self, x: Any) -> Any:
        return ops.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"
