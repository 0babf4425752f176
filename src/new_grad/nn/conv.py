"""Convolution layers: ``Conv1d``, ``Conv2d``, ``ConvTranspose2d`` (PyTorch's arguments and initialisation)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import ops
from ..autograd_engine import Autograd
from ..backends import get_default_dtype
from ..errors import ArgumentError, UnsupportedError
from . import init
from .module import Module


def _tuple(v: Any, n: int) -> tuple[int, ...]:
    return (int(v),) * n if isinstance(v, (int, np.integer)) else tuple(int(a) for a in v)


class _ConvNd(Module):
    """Shared by the convolutions: parameters ``weight``/``bias`` (gradients ``dweight``/``dbias``).

    Initialisation is PyTorch's: ``kaiming_uniform_(weight, a=√5)``, i.e. U(−1/√fan_in, 1/√fan_in),
    and the bias from the same range.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: tuple[int, ...], stride: Any, padding: Any,
        dilation: Any, groups: int, bias: bool, padding_mode: str, dtype: Any, autograd_engine: Autograd | None,
        transposed: bool = False, output_padding: Any = 0,
    ) -> None:
        super().__init__(autograd_engine)
        n = len(kernel_size)
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ArgumentError(
                f"{type(self).__name__}: in_channels={in_channels} and out_channels={out_channels} must both be "
                f"divisible by groups={groups}"
            )
        if padding_mode != "zeros":
            raise UnsupportedError(f"{type(self).__name__}: padding_mode={padding_mode!r}; only 'zeros' exists")
        if isinstance(padding, str) and padding not in ("same", "valid"):
            raise ArgumentError(f"{type(self).__name__}: padding={padding!r}; use an int, a tuple, 'same' or 'valid'")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = kernel_size
        self.stride = _tuple(stride, n)
        self.padding = padding if isinstance(padding, str) else _tuple(padding, n)
        self.dilation = _tuple(dilation, n)
        self.groups = groups
        self.padding_mode = padding_mode
        self.output_padding = _tuple(output_padding, n)
        self.transposed = transposed
        dtype = np.dtype(dtype or get_default_dtype())
        wshape = (in_channels, out_channels // groups) if transposed else (out_channels, in_channels // groups)
        self.register_parameter("weight", np.empty(wshape + kernel_size, dtype=dtype))
        self.register_parameter("bias", np.empty(out_channels, dtype=dtype) if bias else None)
        self.reset_parameters()

    def reset_parameters(self, generator: np.random.Generator | None = None) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in else 0.0
            init.uniform_(self.bias, -bound, bound, generator)

    def forward(self, x: Any) -> Any:
        if x.ndim == len(self.kernel_size) + 1:  # unbatched (C, L) or (C, H, W), as PyTorch accepts
            y = self._conv(ops.expand_dims(x, 0))
            return ops.reshape(y, y.shape[1:])
        return self._conv(x)  # each subclass's op on a batch

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        n = len(self.kernel_size)
        if self.padding != (0,) * n:
            s += f", padding={self.padding!r}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv1d(_ConvNd):
    """1-d convolution over (N, C_in, L): weight (C_out, C_in/groups, k)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
        dilation: Any = 1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device: Any = None,
        dtype: Any = None, *, autograd_engine: Autograd | None = None,
    ) -> None:
        super().__init__(in_channels, out_channels, _tuple(kernel_size, 1), stride, padding, dilation, groups, bias,
                         padding_mode, dtype, autograd_engine)

    def _conv(self, x: Any) -> Any:
        return ops.conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class Conv2d(_ConvNd):
    """2-d convolution over (N, C_in, H, W): weight (C_out, C_in/groups, kH, kW)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
        dilation: Any = 1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device: Any = None,
        dtype: Any = None, *, autograd_engine: Autograd | None = None,
    ) -> None:
        super().__init__(in_channels, out_channels, _tuple(kernel_size, 2), stride, padding, dilation, groups, bias,
                         padding_mode, dtype, autograd_engine)

    def _conv(self, x: Any) -> Any:
        return ops.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class ConvTranspose2d(_ConvNd):
    """The adjoint of Conv2d (learned upsampling): weight (C_in, C_out/groups, kH, kW)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
        output_padding: Any = 0, groups: int = 1, bias: bool = True, dilation: Any = 1, padding_mode: str = "zeros",
        device: Any = None, dtype: Any = None, *, autograd_engine: Autograd | None = None,
    ) -> None:
        if isinstance(padding, str):
            raise ArgumentError(f"ConvTranspose2d: padding={padding!r}; only integer padding exists here (as in PyTorch)")
        super().__init__(in_channels, out_channels, _tuple(kernel_size, 2), stride, padding, dilation, groups, bias,
                         padding_mode, dtype, autograd_engine, transposed=True, output_padding=output_padding)

    def _conv(self, x: Any) -> Any:
        return ops.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, self.output_padding,
                                    self.groups, self.dilation)
