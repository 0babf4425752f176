"""Recurrent layers: ``RNNCell GRUCell LSTMCell`` and ``RNN GRU LSTM``, PyTorch's API.

The cells are compositions of recorded ops (``linear``, ``sigmoid``, ``tanh``,
...), one step at a time. The multi-layer modules run each layer and direction
as one fused op (:mod:`new_grad.ops.recurrent`): a whole sequence is a single
tape entry with a closed-form backward through time, so a 50-step GRU is not
500 Python-level ops.

Shapes, parameter names (``weight_ih_l0``, ``bias_hh_l1_reverse``, ...), gate
order (GRU: r, z, n; LSTM: i, f, g, o), initialisation U(−1/√H, 1/√H) and return
values (``(output, h_n)``; LSTM: ``(output, (h_n, c_n))``) are PyTorch's, so
``load_state_dict`` of a PyTorch model's (NumPy-converted) state dict works.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import ops
from ..autograd_engine import Autograd
from ..backends import get_default_dtype, namespace
from ..errors import ArgumentError, ShapeError
from .module import Module, shared_constant

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "GRU": 3, "LSTM": 4}


def _uniform(shape: tuple[int, ...], bound: float, dtype: Any) -> np.ndarray:
    return np.random.uniform(-bound, bound, shape).astype(dtype)


# -- cells ------------------------------------------------------------------------------------------------


class _CellBase(Module):
    """PyTorch's cell signature and parameters; ``_gates`` stacked blocks of rows in each weight."""

    _gates: int = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        *,
        autograd_engine: Autograd | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(autograd_engine)
        self.input_size = input_size
        self.hidden_size = hidden_size
        dt = np.dtype(dtype or get_default_dtype())
        k = 1 / math.sqrt(hidden_size) if hidden_size else 0.0
        gates = self._gates
        self.register_parameter("weight_ih", _uniform((gates * hidden_size, input_size), k, dt))
        self.register_parameter("weight_hh", _uniform((gates * hidden_size, hidden_size), k, dt))
        self.register_parameter("bias_ih", _uniform((gates * hidden_size,), k, dt) if bias else None)
        self.register_parameter("bias_hh", _uniform((gates * hidden_size,), k, dt) if bias else None)

    def _prepare(self, input: Any, hx: Any) -> tuple[Any, Any, bool]:  # noqa: A002
        if input.ndim not in (1, 2) or input.shape[-1] != self.input_size:
            raise ShapeError(
                f"{type(self).__name__}: input {tuple(input.shape)} must be (batch, {self.input_size}) or "
                f"({self.input_size},)"
            )
        batched = input.ndim == 2
        if not batched:
            input = ops.expand_dims(input, 0)
        return input, self._state(hx, input, batched), batched

    def _state(self, hx: Any, input: Any, batched: bool) -> Any:  # noqa: A002
        if hx is None:
            return shared_constant(namespace(input), (input.shape[0], self.hidden_size), self.weight_ih.dtype, 0.0)
        if not batched:
            hx = ops.expand_dims(hx, 0)
        if hx.shape != (input.shape[0], self.hidden_size):
            raise ShapeError(
                f"{type(self).__name__}: hidden state {tuple(hx.shape)} must be (batch, hidden_size) = "
                f"({input.shape[0]}, {self.hidden_size})"
            )
        return hx

    @staticmethod
    def _unbatch(h: Any, batched: bool) -> Any:
        return h if batched else ops.reshape(h, h.shape[1:])

    def _params(self) -> tuple[Any, Any, Any, Any]:
        return self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + (", bias=False" if self.bias_ih is None else "")


class RNNCell(_CellBase):
    """h' = tanh(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh) (or relu)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        *,
        autograd_engine: Autograd | None = None,
        dtype: Any = None,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ArgumentError(f"RNNCell: nonlinearity={nonlinearity!r} must be 'tanh' or 'relu'")
        super().__init__(input_size, hidden_size, bias, autograd_engine=autograd_engine, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Any, hx: Any = None) -> Any:  # noqa: A002
        x, h, batched = self._prepare(input, hx)
        cell = ops.rnn_tanh_cell if self.nonlinearity == "tanh" else ops.rnn_relu_cell
        return self._unbatch(cell(x, h, *self._params()), batched)


class GRUCell(_CellBase):
    """PyTorch's GRU cell: r, z, n gates; h' = (1 − z)·n + z·h."""

    _gates = 3

    def forward(self, input: Any, hx: Any = None) -> Any:  # noqa: A002
        x, h, batched = self._prepare(input, hx)
        return self._unbatch(ops.gru_cell(x, h, *self._params()), batched)


class LSTMCell(_CellBase):
    """PyTorch's LSTM cell: i, f, g, o gates; ``hx = (h, c)`` → ``(h', c')``."""

    _gates = 4

    def forward(self, input: Any, hx: Any = None) -> tuple[Any, Any]:  # noqa: A002
        h0, c0 = (None, None) if hx is None else hx
        x, h, batched = self._prepare(input, h0)
        c = self._state(c0, x, batched)
        h2, c2 = ops.lstm_cell(x, (h, c), *self._params())
        return self._unbatch(h2, batched), self._unbatch(c2, batched)


# -- multi-layer, bidirectional sequence modules -----------------------------------------------------------


class _RNNBase(Module):
    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        bias: bool,
        batch_first: bool,
        dropout: float,
        bidirectional: bool,
        autograd_engine: Autograd | None,
        dtype: Any,
    ) -> None:
        super().__init__(autograd_engine)
        if num_layers < 1:
            raise ArgumentError(f"{type(self).__name__}: num_layers={num_layers} must be at least 1")
        if not 0 <= dropout <= 1:
            raise ArgumentError(f"{type(self).__name__}: dropout={dropout} must be in [0, 1]")
        if dropout > 0 and num_layers == 1:
            import warnings

            warnings.warn(
                f"{type(self).__name__}: dropout={dropout} acts between layers; with num_layers=1 it does nothing",
                stacklevel=3,
            )
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        gates = _GATES[mode]
        dt = np.dtype(dtype or get_default_dtype())
        k = 1 / math.sqrt(hidden_size) if hidden_size else 0.0
        D = 2 if bidirectional else 1
        for layer in range(num_layers):
            n_in = input_size if layer == 0 else D * hidden_size
            for suffix in ("", "_reverse")[:D]:
                s = f"_l{layer}{suffix}"
                self.register_parameter("weight_ih" + s, _uniform((gates * hidden_size, n_in), k, dt))
                self.register_parameter("weight_hh" + s, _uniform((gates * hidden_size, hidden_size), k, dt))
                if bias:
                    self.register_parameter("bias_ih" + s, _uniform((gates * hidden_size,), k, dt))
                    self.register_parameter("bias_hh" + s, _uniform((gates * hidden_size,), k, dt))

    def _layer_params(self, layer: int, reverse: bool) -> tuple[Any, Any, Any, Any]:
        s = f"_l{layer}{'_reverse' if reverse else ''}"
        d = self.__dict__
        return d["weight_ih" + s], d["weight_hh" + s], d.get("bias_ih" + s), d.get("bias_hh" + s)

    def _prepare(self, input: Any, hx: Any) -> tuple[Any, Any, bool]:  # noqa: A002
        """Input as (T, B, I) and initial states as (L·D, B, H); ``hx`` None → constant zeros."""
        name = type(self).__name__
        if input.ndim not in (2, 3) or input.shape[-1] != self.input_size:
            raise ShapeError(
                f"{name}: input {tuple(input.shape)} must be (T, B, {self.input_size})"
                f"{' with batch_first=True: (B, T, ' + str(self.input_size) + ')' if self.batch_first else ''}"
                f" or unbatched (T, {self.input_size})"
            )
        batched = input.ndim == 3
        if not batched:
            input = ops.expand_dims(input, 1)
        elif self.batch_first:
            input = ops.swapaxes(input, 0, 1)
        return input, self._state(hx, input, batched), batched

    def _state(self, hx: Any, input: Any, batched: bool) -> Any:  # noqa: A002
        shape = ((2 if self.bidirectional else 1) * self.num_layers, input.shape[1], self.hidden_size)
        if hx is None:
            return shared_constant(namespace(input), shape, self.weight_ih_l0.dtype, 0.0)
        if not batched:
            hx = ops.expand_dims(hx, 1)
        if tuple(hx.shape) != shape:
            raise ShapeError(
                f"{type(self).__name__}: initial state {tuple(hx.shape)} must be (num_layers·num_directions, "
                f"batch, hidden) = {shape}{' (unbatched: without the batch axis)' if not batched else ''}"
            )
        return hx

    def _finish(self, output: Any, batched: bool) -> Any:
        if not batched:
            return ops.reshape(output, (output.shape[0], *output.shape[2:]))
        return ops.swapaxes(output, 0, 1) if self.batch_first else output

    @staticmethod
    def _finish_state(h: Any, batched: bool) -> Any:
        return h if batched else ops.reshape(h, (h.shape[0], *h.shape[2:]))

    def _run(self, x: Any, h0: Any, c0: Any) -> tuple[Any, list[Any], list[Any]]:
        """All layers and directions: the last layer's output and the final states, in PyTorch's order."""
        D = 2 if self.bidirectional else 1
        h_n: list[Any] = []
        c_n: list[Any] = []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0 and self.training:
                x = ops.dropout(x, self.dropout, True)
            outs = []
            for d in range(D):
                reverse = d == 1
                idx = layer * D + d
                w_ih, w_hh, b_ih, b_hh = self._layer_params(layer, reverse)
                h = ops.getitem(h0, idx)
                last = 0 if reverse else -1
                if self.mode == "LSTM":
                    y = ops.lstm_sequence(x, h, ops.getitem(c0, idx), w_ih, w_hh, b_ih, b_hh, reverse)
                    out = ops.getitem(y, 0)
                    h_n.append(ops.getitem(y, (0, last)))
                    c_n.append(ops.getitem(y, (1, last)))
                else:
                    if self.mode == "GRU":
                        out = ops.gru_sequence(x, h, w_ih, w_hh, b_ih, b_hh, reverse)
                    else:
                        nl = "tanh" if self.mode == "RNN_TANH" else "relu"
                        out = ops.rnn_sequence(x, h, w_ih, w_hh, b_ih, b_hh, nl, reverse)
                    h_n.append(ops.getitem(out, last))
                outs.append(out)
            x = outs[0] if D == 1 else ops.concatenate(outs, axis=-1)
        return x, h_n, c_n

    def forward(self, input: Any, hx: Any = None) -> tuple[Any, Any]:  # noqa: A002
        """RNN and GRU: ``(output, h_n)`` (LSTM overrides it for its cell state)."""
        x, h0, batched = self._prepare(input, hx)
        out, h_n, _ = self._run(x, h0, None)
        return self._finish(out, batched), self._finish_state(ops.stack(h_n, 0), batched)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(_RNNBase):
    """Elman RNN, tanh or relu: ``(output, h_n)``."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        autograd_engine: Autograd | None = None,
        dtype: Any = None,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ArgumentError(f"RNN: nonlinearity={nonlinearity!r} must be 'tanh' or 'relu'")
        super().__init__(
            "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size, num_layers, bias,
            batch_first, dropout, bidirectional, autograd_engine, dtype,
        )
        self.nonlinearity = nonlinearity


class GRU(_RNNBase):
    """PyTorch's GRU: ``(output, h_n)``."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        autograd_engine: Autograd | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            "GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, autograd_engine, dtype
        )


class LSTM(_RNNBase):
    """PyTorch's LSTM: ``(output, (h_n, c_n))``; ``hx = (h_0, c_0)``."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        autograd_engine: Autograd | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            "LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, autograd_engine, dtype
        )

    def forward(self, input: Any, hx: Any = None) -> tuple[Any, tuple[Any, Any]]:  # noqa: A002
        h0, c0 = (None, None) if hx is None else hx
        x, h0, batched = self._prepare(input, h0)
        c0 = self._state(c0, x, batched)
        out, h_n, c_n = self._run(x, h0, c0)
        return self._finish(out, batched), (
            self._finish_state(ops.stack(h_n, 0), batched),
            self._finish_state(ops.stack(c_n, 0), batched),
        )
