"""RNN/GRU/LSTM and their cells against ``torch.nn`` (float64), PyTorch's weights copied in.

Outputs, final states and the gradients of the input, the initial states and
every parameter, for multi-layer bidirectional stacks, ``batch_first``,
unbatched input and the cells.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import new_grad as ng
from new_grad import nn

RTOL, ATOL = 1e-7, 1e-10
T, B, I, H = 5, 3, 4, 6


def copy_weights(ours, theirs):
    for name, p in theirs.named_parameters():
        getattr(ours, name)[...] = p.detach().numpy()


def close(a, b, what):
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else b
    assert np.shape(a) == np.shape(b), f"{what}: shape {np.shape(a)} != {np.shape(b)}"
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=what)


def run_both(ours, theirs, x, states, upstream):
    """Forward both, backward sum(out·g) for every output; compare values and all gradients."""
    eng = ng.Autograd()
    ours.set_engine(eng)
    ours.zero_grad()
    args = [x] + ([] if states is None else [states if not isinstance(states, list) else tuple(states)])
    outs = ours(*args)
    flat = _flatten(outs)
    with eng:
        total = None
        for o, g in zip(flat, upstream):
            term = ng.sum(ng.multiply(o, g))
            total = term if total is None else ng.add(total, term)
    eng.backward(1)

    tx = torch.tensor(x, requires_grad=True)
    ts = None if states is None else [torch.tensor(s, requires_grad=True) for s in _flatten(states)]
    targs = [tx] + ([] if ts is None else [ts[0] if len(ts) == 1 else tuple(ts)])
    touts = _flatten(theirs(*targs))
    leaves = [tx] + (ts or []) + [p for _, p in theirs.named_parameters()]
    tgrads = torch.autograd.grad(touts, leaves, [torch.tensor(g) for g in upstream])

    for i, (o, to) in enumerate(zip(flat, touts)):
        close(o, to, f"output {i}")
    buf = eng.memory_buffer
    close(buf.get_param(x), tgrads[0], "gradient of the input")
    for j, s in enumerate(_flatten(states) if states is not None else []):
        close(buf.get_param(s), tgrads[1 + j], f"gradient of initial state {j}")
    named = dict(ours.named_parameters())
    for (name, _), tg in zip(theirs.named_parameters(), tgrads[len(leaves) - len(named) :]):
        close(named[name][1], tg, f"gradient of {name}")


def _flatten(o):
    if isinstance(o, (tuple, list)):
        return [a for x in o for a in _flatten(x)]
    return [o]


def _upstream(theirs, x, states, rng):
    with torch.no_grad():
        targs = [torch.tensor(x)]
        if states is not None:
            ts = [torch.tensor(s) for s in _flatten(states)]
            targs.append(ts[0] if len(ts) == 1 else tuple(ts))
        return [rng.standard_normal(tuple(o.shape)) for o in _flatten(theirs(*targs))]


@pytest.mark.parametrize("kind", ["RNN-tanh", "RNN-relu", "GRU", "LSTM"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("with_states", [False, True])
def test_multilayer_against_torch(kind, bidirectional, batch_first, with_states):
    rng = np.random.default_rng(0)
    name, _, nl = kind.partition("-")
    kw = dict(num_layers=2, bidirectional=bidirectional, batch_first=batch_first)
    if nl:
        kw["nonlinearity"] = nl
    torch.manual_seed(0)
    theirs = getattr(torch.nn, name)(I, H, **kw).double()
    ours = getattr(nn, name)(I, H, **kw)
    copy_weights(ours, theirs)
    D = 2 if bidirectional else 1
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I))
    states = None
    if with_states:
        states = rng.standard_normal((2 * D, B, H))
        if name == "LSTM":
            states = [states, rng.standard_normal((2 * D, B, H))]
    run_both(ours, theirs, x, states, _upstream(theirs, x, states, rng))


@pytest.mark.parametrize("name", ["RNN", "GRU", "LSTM"])
def test_unbatched_no_bias_single_layer(name):
    rng = np.random.default_rng(1)
    theirs = getattr(torch.nn, name)(I, H, bias=False).double()
    ours = getattr(nn, name)(I, H, bias=False)
    copy_weights(ours, theirs)
    x = rng.standard_normal((T, I))
    states = rng.standard_normal((1, H))
    if name == "LSTM":
        states = [states, rng.standard_normal((1, H))]
    run_both(ours, theirs, x, states, _upstream(theirs, x, states, rng))


@pytest.mark.parametrize("name", ["RNNCell", "GRUCell", "LSTMCell"])
@pytest.mark.parametrize("batched", [True, False])
def test_cells_against_torch(name, batched):
    rng = np.random.default_rng(2)
    theirs = getattr(torch.nn, name)(I, H).double()
    ours = getattr(nn, name)(I, H)
    copy_weights(ours, theirs)
    x = rng.standard_normal((B, I) if batched else (I,))
    h = rng.standard_normal((B, H) if batched else (H,))
    states = [h, rng.standard_normal(h.shape)] if name == "LSTMCell" else h
    run_both(ours, theirs, x, states, _upstream(theirs, x, states, rng))


def test_relu_cell_and_default_state():
    rng = np.random.default_rng(3)
    theirs = torch.nn.RNNCell(I, H, nonlinearity="relu").double()
    ours = nn.RNNCell(I, H, nonlinearity="relu")
    copy_weights(ours, theirs)
    x = rng.standard_normal((B, I))
    run_both(ours, theirs, x, None, _upstream(theirs, x, None, rng))


def test_parameter_names_shapes_and_init_match_torch():
    ours = nn.LSTM(I, H, num_layers=2, bidirectional=True)
    theirs = torch.nn.LSTM(I, H, num_layers=2, bidirectional=True)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    for (_, (p, g)), (_, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert p.shape == tuple(tp.shape) == g.shape
        assert np.abs(p).max() <= 1 / np.sqrt(H)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})


def test_dropout_between_layers_train_and_eval():
    rng = np.random.default_rng(4)
    theirs = torch.nn.GRU(I, H, num_layers=2, dropout=0.5).double().eval()
    ours = nn.GRU(I, H, num_layers=2, dropout=0.5)
    copy_weights(ours, theirs)
    x = rng.standard_normal((T, B, I))
    train_out, _ = ours(x)
    ours.eval()
    eval_out, _ = ours(x)
    close(eval_out, theirs(torch.tensor(x))[0], "eval-mode output")
    assert not np.allclose(train_out, eval_out)


def test_float32_stays_float32():
    ours = nn.LSTM(I, H, bidirectional=True, dtype=np.float32)
    eng = ng.Autograd()
    ours.set_engine(eng)
    x = np.random.default_rng(5).standard_normal((T, B, I)).astype(np.float32)
    out, (h, c) = ours(x)
    assert out.dtype == h.dtype == c.dtype == np.float32
    with eng:
        ng.sum(out)
    eng.backward(1)
    assert all(g.dtype == np.float32 and np.abs(g).sum() > 0 for _, g in ours.parameters())


def test_one_tape_entry_per_layer_and_direction():
    eng = ng.Autograd()
    gru = nn.GRU(I, H, num_layers=2, autograd_engine=eng)
    gru(np.random.default_rng(6).standard_normal((50, B, I)))
    names = [op.name for op in eng.operation_list]
    assert names.count("gru_sequence") == 2 and len(names) < 10


def test_second_derivative_through_a_gru():
    """hvp through the fused op (recorded as unrolled cells) equals PyTorch's double backward."""
    rng = np.random.default_rng(7)
    theirs = torch.nn.GRU(2, 3).double()
    ours = nn.GRU(2, 3)
    copy_weights(ours, theirs)
    x = rng.standard_normal((3, 2, 2))
    v = rng.standard_normal(x.shape)
    hv = ng.hvp(lambda a: ng.sum(ng.multiply(ours(a)[0], ours(a)[0])), x, v)
    hv = hv[1] if isinstance(hv, tuple) else hv
    tx = torch.tensor(x, requires_grad=True)
    (gx,) = torch.autograd.grad((theirs(tx)[0] ** 2).sum(), tx, create_graph=True)
    (thv,) = torch.autograd.grad(gx, tx, torch.tensor(v))
    close(hv, thv, "Hessian-vector product")


def test_shape_errors_name_the_layer():
    gru = nn.GRU(I, H, num_layers=2)
    with pytest.raises(ng.errors.ShapeError, match="GRU: input"):
        gru(np.zeros((T, B, I + 1)))
    with pytest.raises(ng.errors.ShapeError, match="initial state"):
        gru(np.zeros((T, B, I)), np.zeros((1, B, H)))
