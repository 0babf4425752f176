"""Cases for the fused recurrent ops, against PyTorch's cells unrolled over time."""

from __future__ import annotations

import torch
from hypothesis import strategies as st

import new_grad as ng

from ..opcheck import OpCase

T, B, I, H = 4, 2, 3, 3


def _unroll(cell, x, h0, params, reverse, lstm_c0=None):
    outs = [None] * x.shape[0]
    h, c = h0, lstm_c0
    for t in range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0]):
        if lstm_c0 is None:
            h = cell(x[t], h, *params)
            outs[t] = h
        else:
            h, c = cell(x[t], (h, c), *params)
            outs[t] = torch.stack([h, c])
    return torch.stack(outs, 0 if lstm_c0 is None else 1)


def _shapes(gates, cell_state=False):
    def draw(data):
        bias = data.draw(st.booleans(), label="bias")
        s = [(T, B, I), (B, H)] + ([(B, H)] if cell_state else []) + [(gates * H, I), (gates * H, H)]
        return s + ([(gates * H,), (gates * H,)] if bias else [])

    return draw


def _kw(data, shapes):
    return {"reverse": data.draw(st.booleans(), label="reverse")}


def _rnn_kw(data, shapes):
    return {**_kw(data, shapes), "nonlinearity": data.draw(st.sampled_from(["tanh", "relu"]), label="nl")}


def _t_rnn(x, h0, *params, reverse, nonlinearity):
    cell = torch.rnn_tanh_cell if nonlinearity == "tanh" else torch.rnn_relu_cell
    return _unroll(cell, x, h0, params, reverse)


def _t_gru(x, h0, *params, reverse):
    return _unroll(torch.gru_cell, x, h0, params, reverse)


def _t_lstm(x, h0, c0, *params, reverse):
    return _unroll(torch.lstm_cell, x, h0, params, reverse, lstm_c0=c0)


CASES = [
    OpCase("rnn_sequence", _t_rnn, 6, shapes=_shapes(1), kwargs=_rnn_kw,
           ng_fn=lambda *a, **k: ng.rnn_sequence(*a, **k)),
    OpCase("gru_sequence", _t_gru, 6, shapes=_shapes(3), kwargs=_kw),
    OpCase("lstm_sequence", _t_lstm, 7, shapes=_shapes(4, cell_state=True), kwargs=_kw),
]
