"""Recurrent layers as fused ops: a whole sequence is one tape entry.

``rnn_sequence``, ``gru_sequence`` and ``lstm_sequence`` run one layer in one
direction over all T steps (PyTorch's gate layouts and equations). Recording one
op per step would put ~10 small ops per step on the tape and make Python the
bottleneck; here the forward does one big input projection, then one small
matmul and a few elementwise updates per step, and the backward is closed-form
backpropagation through time:

* everything that does not depend on the recursion (all gate activations, all
  local derivatives) is recomputed from the saved hidden states in a few
  vectorised array operations over (T, B, ·);
* the loop over time carries only ``∂h`` (and ``∂c``): one matmul with ``W_hh``
  and two elementwise products per step;
* the parameter gradients are then three matmuls over all steps at once.

``reverse=True`` runs the sequence from the last step to the first (the
backward direction of a bidirectional layer); outputs stay in time order.

Gradients of gradients: under ``create_graph`` the backward pass is recorded as
the same computation unrolled into new_grad's cell-level ops (``linear``,
``sigmoid``, ``tanh``, ...) and differentiated with :func:`new_grad.vjp`, so
higher derivatives are exact, only slower.
"""

from __future__ import annotations

from typing import Any

from ..autograd_engine import STATE
from ..backends import is_array, namespace
from ..errors import ArgumentError, ShapeError
from ._core import EVERY, primitive, traceable
from .elementwise import _logistic, add, multiply, relu, sigmoid, subtract, tanh
from .nn_ops import linear
from .shape import stack

# -- shared helpers ------------------------------------------------------------------------------------


def _check(op: str, x: Any, h0: Any, w_ih: Any, w_hh: Any, gates: int) -> int:
    """Validate shapes; return the hidden size."""
    H = w_hh.shape[-1]
    if x.ndim != 3:
        raise ShapeError(f"{op}: input must be (T, B, input_size), got {tuple(x.shape)}")
    T, B, n_in = x.shape
    if w_ih.shape != (gates * H, n_in) or w_hh.shape != (gates * H, H):
        raise ShapeError(
            f"{op}: weights w_ih {tuple(w_ih.shape)} / w_hh {tuple(w_hh.shape)} do not fit input {tuple(x.shape)}; "
            f"expected ({gates}·H, {n_in}) and ({gates}·H, H) with gates stacked on axis 0"
        )
    if h0.shape != (B, H):
        raise ShapeError(f"{op}: initial state {tuple(h0.shape)} must be (batch, hidden) = ({B}, {H})")
    return H


def _project(x: Any, w: Any, b: Any) -> Any:
    """x @ wᵀ + b over every step at once: (T, B, I) → (T, B, G), as one 2-D matmul (BLAS)."""
    y = (x.reshape(-1, x.shape[-1]) @ w.T).reshape(*x.shape[:-1], w.shape[0])
    if b is not None:
        y += b
    return y


def _in_order(a: Any, reverse: bool) -> Any:
    """View in processing order (time reversed for the backward direction)."""
    return a[::-1] if reverse else a


def _prev(h0: Any, hs: Any) -> Any:
    """The state each step started from: (h0, h_0, ..., h_{T−2}), processing order."""
    xp = namespace(hs)
    return xp.concatenate([h0[None], hs[:-1]], axis=0)


def _param_grads(dpre_i: Any, dpre_h: Any, x: Any, hprev: Any, w_ih: Any, needs: Any, has_bias: bool) -> tuple:
    """∂x, ∂w_ih, ∂w_hh, ∂b_ih, ∂b_hh from the pre-activation gradients of every step."""
    G = dpre_i.shape[-1]
    di = dpre_i.reshape(-1, G)
    dh = dpre_h.reshape(-1, G)
    gx = (di @ w_ih).reshape(x.shape) if needs[0] else None
    gw_ih = di.T @ x.reshape(-1, x.shape[-1]) if needs[2] else None
    gw_hh = dh.T @ hprev.reshape(-1, hprev.shape[-1]) if needs[3] else None
    gb_ih = di.sum(0) if has_bias and needs[4] else None
    gb_hh = dh.sum(0) if has_bias and needs[5] else None
    return gx, gw_ih, gw_hh, gb_ih, gb_hh


def _recorded_backward(composite: Any, grad_output: Any, inputs: tuple) -> tuple:
    """Under create_graph: differentiate the unrolled composite with new_grad.vjp (recorded)."""
    from ..transforms import vjp

    arrays = [i for i, a in enumerate(inputs) if is_array(a)]

    def f(*arrs: Any) -> Any:
        full = list(inputs)
        for i, a in zip(arrays, arrs):
            full[i] = a
        return composite(*full)

    _, pull = vjp(f, *[inputs[i] for i in arrays])
    grads = pull(grad_output)
    out: list[Any] = [None] * len(inputs)
    for i, g in zip(arrays, grads):
        out[i] = g
    return tuple(out)


def _recording() -> bool:
    return STATE.engine is not None


# -- cells as compositions of ops (used for create_graph and by the cell modules) ------------------------


def _gates(x: Any, h: Any, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any) -> tuple[Any, Any]:
    return linear(x, w_ih, b_ih), linear(h, w_hh, b_hh)


def _split(a: Any, n: int) -> list[Any]:
    from .shape import split

    return split(a, n, axis=-1)


@traceable
def rnn_tanh_cell(input: Any, hx: Any, w_ih: Any, w_hh: Any, b_ih: Any = None, b_hh: Any = None) -> Any:  # noqa: A002
    """h' = tanh(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh), composed of recorded ops (PyTorch's ``rnn_tanh_cell``)."""
    gi, gh = _gates(input, hx, w_ih, w_hh, b_ih, b_hh)
    return tanh(add(gi, gh))


@traceable
def rnn_relu_cell(input: Any, hx: Any, w_ih: Any, w_hh: Any, b_ih: Any = None, b_hh: Any = None) -> Any:  # noqa: A002
    """h' = relu(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh), composed of recorded ops."""
    gi, gh = _gates(input, hx, w_ih, w_hh, b_ih, b_hh)
    return relu(add(gi, gh))


@traceable
def gru_cell(input: Any, hx: Any, w_ih: Any, w_hh: Any, b_ih: Any = None, b_hh: Any = None) -> Any:  # noqa: A002
    """PyTorch's GRU cell (gates r, z, n), composed of recorded ops."""
    h = hx
    gi, gh = _gates(input, h, w_ih, w_hh, b_ih, b_hh)
    i_r, i_z, i_n = _split(gi, 3)
    h_r, h_z, h_n = _split(gh, 3)
    r = sigmoid(add(i_r, h_r))
    z = sigmoid(add(i_z, h_z))
    n = tanh(add(i_n, multiply(r, h_n)))
    return add(multiply(subtract(1.0, z), n), multiply(z, h))


@traceable
def lstm_cell(input: Any, hx: Any, w_ih: Any, w_hh: Any, b_ih: Any = None, b_hh: Any = None) -> tuple[Any, Any]:  # noqa: A002
    """PyTorch's LSTM cell (gates i, f, g, o), composed of recorded ops: ``hx = (h, c)`` → ``(h', c')``."""
    h, c = hx
    gi, gh = _gates(input, h, w_ih, w_hh, b_ih, b_hh)
    i, f, g, o = _split(add(gi, gh), 4)
    c2 = add(multiply(sigmoid(f), c), multiply(sigmoid(i), tanh(g)))
    return multiply(sigmoid(o), tanh(c2)), c2


def _unrolled(cell: Any, x: Any, state: Any, reverse: bool, *params: Any) -> list[Any]:
    """``cell`` applied step by step as recorded ops: the state after each step, in time order."""
    from .indexing import getitem

    T = x.shape[0]
    states: list[Any] = [None] * T
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        state = cell(getitem(x, t), state, *params)
        states[t] = state
    return states


# -- vanilla RNN -----------------------------------------------------------------------------------------


def _rnn_act(pre: Any, nonlinearity: str) -> Any:
    xp = namespace(pre)
    if nonlinearity == "tanh":
        return xp.tanh(pre, out=pre)
    if nonlinearity == "relu":
        return xp.maximum(pre, 0, out=pre)
    raise ArgumentError(f"rnn_sequence: nonlinearity={nonlinearity!r} must be 'tanh' or 'relu'")


def rnn_sequence_backward(
    grad_output: Any,
    input: Any,  # noqa: A002
    h0: Any,
    w_ih: Any,
    w_hh: Any,
    b_ih: Any = None,
    b_hh: Any = None,
    nonlinearity: str = "tanh",
    reverse: bool = False,
    out: Any = None, needs: Any = EVERY,
) -> tuple:
    if _recording():
        def comp(x, h, wi, wh, bi, bh, nl, rev):  # noqa: ANN001, ANN202
            return stack(_unrolled(rnn_tanh_cell if nl == "tanh" else rnn_relu_cell, x, h, rev, wi, wh, bi, bh), 0)

        return _recorded_backward(comp, grad_output, (input, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity, reverse))
    hs = out if out is not None else rnn_sequence(input, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity, reverse)
    xp = namespace(hs)
    x, G, hs = _in_order(input, reverse), _in_order(grad_output, reverse), _in_order(hs, reverse)
    deriv = 1 - hs * hs if nonlinearity == "tanh" else (hs > 0).astype(hs.dtype)
    dpre = xp.empty_like(hs)
    dh = xp.zeros_like(h0)
    wT = w_hh
    for t in range(hs.shape[0] - 1, -1, -1):
        d = (G[t] + dh) * deriv[t]
        dpre[t] = d
        dh = d @ wT
    hprev = _prev(h0, hs)
    gx, gwi, gwh, gbi, gbh = _param_grads(dpre, dpre, x, hprev, w_ih, needs, b_ih is not None)
    return _in_order(gx, reverse) if gx is not None else None, dh, gwi, gwh, gbi, gbh, None, None


@primitive(rnn_sequence_backward, formula="hₜ = act(xₜW_ihᵀ + b_ih + hₜ₋₁W_hhᵀ + b_hh); BPTT in closed form")
def rnn_sequence(
    input: Any,  # noqa: A002
    h0: Any,
    w_ih: Any,
    w_hh: Any,
    b_ih: Any = None,
    b_hh: Any = None,
    nonlinearity: str = "tanh",
    reverse: bool = False,
) -> Any:
    """One Elman RNN layer over a (T, B, I) sequence from state ``h0`` (B, H): all states, (T, B, H)."""
    _check("rnn_sequence", input, h0, w_ih, w_hh, 1)
    xp = namespace(input)
    x = _in_order(input, reverse)
    gi = _project(x, w_ih, b_ih)
    if b_hh is not None:
        gi += b_hh
    hs = xp.empty(gi.shape, dtype=gi.dtype)
    h = h0
    wT = w_hh.T
    for t in range(x.shape[0]):
        h = _rnn_act(gi[t] + h @ wT, nonlinearity)
        hs[t] = h
    return _in_order(hs, reverse)


# -- GRU ---------------------------------------------------------------------------------------------


def gru_sequence_backward(
    grad_output: Any,
    input: Any,  # noqa: A002
    h0: Any,
    w_ih: Any,
    w_hh: Any,
    b_ih: Any = None,
    b_hh: Any = None,
    reverse: bool = False,
    out: Any = None, needs: Any = EVERY,
) -> tuple:
    if _recording():
        def comp(x, h, wi, wh, bi, bh, rev):  # noqa: ANN001, ANN202
            return stack(_unrolled(gru_cell, x, h, rev, wi, wh, bi, bh), 0)

        return _recorded_backward(comp, grad_output, (input, h0, w_ih, w_hh, b_ih, b_hh, reverse))
    hs = out if out is not None else gru_sequence(input, h0, w_ih, w_hh, b_ih, b_hh, reverse)
    xp = namespace(hs)
    x, G, hs = _in_order(input, reverse), _in_order(grad_output, reverse), _in_order(hs, reverse)
    H = hs.shape[-1]
    hprev = _prev(h0, hs)
    gi = _project(x, w_ih, b_ih)
    gh = _project(hprev, w_hh, b_hh)
    r = _logistic(gi[..., :H] + gh[..., :H])
    z = _logistic(gi[..., H : 2 * H] + gh[..., H : 2 * H])
    n = xp.tanh(gi[..., 2 * H :] + r * gh[..., 2 * H :])
    # every pre-activation gradient is ∂h times a coefficient known before the loop
    c_n = (1 - z) * (1 - n * n)  # ∂ pre_n
    c_r = c_n * gh[..., 2 * H :] * r * (1 - r)  # ∂ pre_r
    c_z = (hprev - n) * z * (1 - z)  # ∂ pre_z
    coef_i = xp.concatenate([c_r, c_z, c_n], axis=-1)
    coef_h = xp.concatenate([c_r, c_z, c_n * r], axis=-1)
    T, Bn = hs.shape[:2]
    dhs = xp.empty_like(hs)
    dh = xp.zeros_like(h0)
    coef_h3 = coef_h.reshape(T, Bn, 3, H)
    buf = xp.empty((Bn, 3, H), dtype=hs.dtype)
    w_flat = w_hh
    for t in range(T - 1, -1, -1):
        d = G[t] + dh
        dhs[t] = d
        xp.multiply(coef_h3[t], d[:, None, :], out=buf)  # ∂ of the three hidden-side pre-activations
        dh = d * z[t] + buf.reshape(Bn, 3 * H) @ w_flat
    d3 = dhs[:, :, None, :]
    dpre_i = (coef_i.reshape(T, Bn, 3, H) * d3).reshape(T, Bn, 3 * H)
    dpre_h = (coef_h3 * d3).reshape(T, Bn, 3 * H)
    gx, gwi, gwh, gbi, gbh = _param_grads(dpre_i, dpre_h, x, hprev, w_ih, needs, b_ih is not None)
    return _in_order(gx, reverse) if gx is not None else None, dh, gwi, gwh, gbi, gbh, None


@primitive(gru_sequence_backward, formula="PyTorch's GRU (r, z, n) over T steps; BPTT in closed form")
def gru_sequence(
    input: Any,  # noqa: A002
    h0: Any,
    w_ih: Any,
    w_hh: Any,
    b_ih: Any = None,
    b_hh: Any = None,
    reverse: bool = False,
) -> Any:
    """One GRU layer over a (T, B, I) sequence from ``h0`` (B, H): all hidden states, (T, B, H)."""
    H = _check("gru_sequence", input, h0, w_ih, w_hh, 3)
    xp = namespace(input)
    x = _in_order(input, reverse)
    # σ(a) = ½·tanh(½a) + ½: halve the r and z rows of both projections once, so each step needs
    # one tanh and two in-place updates for both gates (and no exp that could overflow)
    gi = _project(x, w_ih, b_ih)
    if b_hh is not None:
        gi[..., : 2 * H] += b_hh[: 2 * H]
    gi[..., : 2 * H] *= 0.5
    wT = w_hh.T.copy()
    wT[:, : 2 * H] *= 0.5
    b_hn = None if b_hh is None else b_hh[2 * H :]
    T = x.shape[0]
    hs = xp.empty((T, *h0.shape), dtype=gi.dtype)
    h = h0
    for t in range(T):
        gh = h @ wT
        rz = gh[:, : 2 * H]
        rz += gi[t, :, : 2 * H]
        xp.tanh(rz, out=rz)
        rz *= 0.5
        rz += 0.5
        n = gh[:, 2 * H :]
        if b_hn is not None:
            n += b_hn
        n *= rz[:, :H]
        n += gi[t, :, 2 * H :]
        xp.tanh(n, out=n)
        out = hs[t]
        xp.subtract(h, n, out=out)  # h' = n + z·(h − n)
        out *= rz[:, H:]
        out += n
        h = out
    return _in_order(hs, reverse)


# -- LSTM --------------------------------------------------------------------------------------------


def lstm_sequence_backward(
    grad_output: Any,
    input: Any,  # noqa: A002
    h0: Any,
    c0: Any,
    w_ih: Any,
    w_hh: Any,
    b_ih: Any = None,
    b_hh: Any = None,
    reverse: bool = False,
    out: Any = None, needs: Any = EVERY,
) -> tuple:
    if _recording():
        def comp(x, h, c, wi, wh, bi, bh, rev):  # noqa: ANN001, ANN202
            h_steps, c_steps = zip(*_unrolled(lstm_cell, x, (h, c), rev, wi, wh, bi, bh))
            return stack([stack(list(h_steps), 0), stack(list(c_steps), 0)], 0)

        return _recorded_backward(comp, grad_output, (input, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse))
    y = out if out is not None else lstm_sequence(input, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse)
    xp = namespace(y)
    x = _in_order(input, reverse)
    hs, cs = _in_order(y[0], reverse), _in_order(y[1], reverse)
    Gh, Gc = _in_order(grad_output[0], reverse), _in_order(grad_output[1], reverse)
    H = hs.shape[-1]
    hprev, cprev = _prev(h0, hs), _prev(c0, cs)
    pre = _project(x, w_ih, b_ih) + _project(hprev, w_hh, b_hh)
    i = _logistic(pre[..., :H])
    f = _logistic(pre[..., H : 2 * H])
    g = xp.tanh(pre[..., 2 * H : 3 * H])
    o = _logistic(pre[..., 3 * H :])
    tc = xp.tanh(cs)
    c_from_h = o * (1 - tc * tc)  # ∂c += ∂h · o(1 − tanh²c)
    coef = xp.concatenate([g * i * (1 - i), cprev * f * (1 - f), i * (1 - g * g), tc * o * (1 - o)], axis=-1)
    T = hs.shape[0]
    dpre = xp.empty(pre.shape, dtype=pre.dtype)
    dh = xp.zeros_like(h0)
    dc = xp.zeros_like(c0)
    for t in range(T - 1, -1, -1):
        dh = Gh[t] + dh
        dc = Gc[t] + dc + dh * c_from_h[t]
        d = xp.concatenate([dc, dc, dc, dh], axis=-1) * coef[t]
        dpre[t] = d
        dh = d @ w_hh
        dc = dc * f[t]
    has_bias = b_ih is not None
    n7 = needs
    gx, gwi, gwh, gbi, gbh = _param_grads(dpre, dpre, x, hprev, w_ih, (n7[0], None, n7[3], n7[4], n7[5], n7[6]), has_bias)
    return _in_order(gx, reverse) if gx is not None else None, dh, dc, gwi, gwh, gbi, gbh, None


@primitive(lstm_sequence_backward, formula="PyTorch's LSTM (i, f, g, o) over T steps; BPTT in closed form")
def lstm_sequence(
    input: Any,  # noqa: A002
    h0: Any,
    c0: Any,
    w_ih: Any,
    w_hh: Any,
    b_ih: Any = None,
    b_hh: Any = None,
    reverse: bool = False,
) -> Any:
    """One LSTM layer over (T, B, I) from (``h0``, ``c0``): hidden and cell states stacked, (2, T, B, H)."""
    H = _check("lstm_sequence", input, h0, w_ih, w_hh, 4)
    if c0.shape != h0.shape:
        raise ShapeError(f"lstm_sequence: cell state {tuple(c0.shape)} must match the hidden state {tuple(h0.shape)}")
    xp = namespace(input)
    x = _in_order(input, reverse)
    gi = _project(x, w_ih, b_ih)
    if b_hh is not None:
        gi += b_hh
    # σ(a) = ½·tanh(½a) + ½: halve the i, f, o rows once; then one tanh covers all four gates
    sig = [slice(0, 2 * H), slice(3 * H, 4 * H)]
    wT = w_hh.T.copy()
    for cols in sig:
        gi[..., cols] *= 0.5
        wT[:, cols] *= 0.5
    T = x.shape[0]
    y = xp.empty((2, T, *h0.shape), dtype=gi.dtype)
    hs, cs = _in_order(y[0], reverse), _in_order(y[1], reverse)  # views: writing them fills y
    h, c = h0, c0
    for t in range(T):
        pre = h @ wT
        pre += gi[t]
        xp.tanh(pre, out=pre)
        for cols in sig:
            g = pre[:, cols]
            g *= 0.5
            g += 0.5
        c_new, h_new = cs[t], hs[t]
        xp.multiply(pre[:, H : 2 * H], c, out=c_new)  # c' = f·c + i·g
        c_new += pre[:, :H] * pre[:, 2 * H : 3 * H]
        xp.tanh(c_new, out=h_new)  # h' = o·tanh(c')
        h_new *= pre[:, 3 * H :]
        h, c = h_new, c_new
    return y
