"""Pooling layers: thin modules over the fused ops in ``new_grad.ops.conv``."""

from __future__ import annotations

from typing import Any

from .. import ops
from ..autograd_engine import Autograd
from ..errors import UnsupportedError
from .module import Module


class _MaxPoolNd(Module):
    def __init__(
        self, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1, return_indices: bool = False,
        ceil_mode: bool = False, *, autograd_engine: Autograd | None = None, dtype: Any = None,
    ) -> None:
        super().__init__(autograd_engine)
        if return_indices:
            raise UnsupportedError(f"{type(self).__name__}: return_indices=True is not supported; use return_indices=False")
        self.kernel_size, self.stride = kernel_size, stride if stride is not None else kernel_size
        self.padding, self.dilation, self.ceil_mode = padding, dilation, ceil_mode

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """Maximum over sliding windows of (N, C, L)."""

    def forward(self, x: Any) -> Any:
        return ops.max_pool1d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode)


class MaxPool2d(_MaxPoolNd):
    """Maximum over sliding windows of (N, C, H, W); the gradient goes to each window's (first) maximum."""

    def forward(self, x: Any) -> Any:
        return ops.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode)


class AvgPool2d(Module):
    """Mean over sliding windows of (N, C, H, W) (PyTorch's padding and divisor rules)."""

    def __init__(
        self, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
        count_include_pad: bool = True, divisor_override: int | None = None, *,
        autograd_engine: Autograd | None = None, dtype: Any = None,
    ) -> None:
        super().__init__(autograd_engine)
        self.kernel_size, self.stride = kernel_size, stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, x: Any) -> Any:
        return ops.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                              self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Mean pooling to a fixed ``output_size`` whatever the input size (None keeps that side)."""

    def __init__(self, output_size: Any, *, autograd_engine: Autograd | None = None, dtype: Any = None) -> None:
        super().__init__(autograd_engine)
        self.output_size = output_size

    def forward(self, x: Any) -> Any:
        return ops.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
