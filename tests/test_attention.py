"""MultiheadAttention and TransformerEncoderLayer against ``torch.nn`` (float64, dropout 0)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import new_grad as ng
from new_grad import nn

RTOL, ATOL = 1e-7, 1e-10
E, HEADS, L, S, N = 8, 2, 4, 5, 3


def _ours(module, torch_name):
    """Our parameter for a PyTorch parameter name (Linear keeps the course's W/b names)."""
    *path, leaf = torch_name.split(".")
    for p in path:
        module = getattr(module, p)
    if isinstance(module, nn.Linear):
        leaf = {"weight": "W", "bias": "b"}[leaf]
    return module, leaf


def copy_weights(ours, theirs):
    for name, p in theirs.named_parameters():
        m, leaf = _ours(ours, name)
        getattr(m, leaf)[...] = p.detach().numpy()


def grad_of(ours, eng, name):
    m, leaf = _ours(ours, name)
    return dict(m.named_parameters())[leaf][1]


def close(a, b, what):
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else b
    assert np.shape(a) == np.shape(b), f"{what}: shape {np.shape(a)} != {np.shape(b)}"
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=what, equal_nan=True)


def compare(ours, theirs, inputs, call, tcall, rng):
    """Run both; backward a random upstream gradient through every output; check all gradients."""
    eng = ng.Autograd()
    ours.set_engine(eng)
    ours.zero_grad()
    outs = [o for o in call(ours, *inputs) if o is not None]
    tins = [torch.tensor(a, requires_grad=True) for a in inputs]
    touts = [o for o in tcall(theirs, *tins) if o is not None]
    ups = [rng.standard_normal(o.shape) for o in outs]
    with eng:
        total = ng.sum(ng.multiply(outs[0], ups[0]))
        for o, g in zip(outs[1:], ups[1:]):
            total = ng.add(total, ng.sum(ng.multiply(o, g)))
    eng.backward(1)
    names = [n for n, _ in theirs.named_parameters()]
    tgrads = torch.autograd.grad(
        touts, tins + [p for _, p in theirs.named_parameters()], [torch.tensor(g) for g in ups], allow_unused=True
    )
    for i, (o, t) in enumerate(zip(outs, touts)):
        close(o, t, f"output {i}")
    for i, a in enumerate(inputs):
        mine = eng.memory_buffer.get_param(a) if eng.memory_buffer.is_in_memory(a) else np.zeros_like(a)
        close(mine, tgrads[i], f"gradient of input {i}")
    for name, tg in zip(names, tgrads[len(inputs) :]):
        close(grad_of(ours, eng, name), np.zeros(1) if tg is None else tg, f"gradient of {name}")


def _mha_pair(batch_first=False, bias=True):
    torch.manual_seed(0)
    theirs = torch.nn.MultiheadAttention(E, HEADS, bias=bias, batch_first=batch_first).double()
    ours = nn.MultiheadAttention(E, HEADS, bias=bias, batch_first=batch_first)
    copy_weights(ours, theirs)
    return ours, theirs


def _masks(kind, rng, batched=True):
    attn_mask = kpm = None
    if kind in ("bool", "both"):
        attn_mask = rng.random((L, S)) < 0.3
        attn_mask[:, 0] = False  # every query keeps at least one key
    if kind == "float":
        attn_mask = rng.standard_normal((L, S))
    if kind == "3d":
        attn_mask = rng.random((N * HEADS, L, S)) < 0.3
        attn_mask[..., 1] = False
    if kind in ("padding", "both"):
        kpm = np.zeros((N, S), dtype=bool) if batched else np.zeros(S, dtype=bool)
        kpm[..., -2:] = True
    return attn_mask, kpm


@pytest.mark.parametrize("masks", ["none", "bool", "float", "3d", "padding", "both"])
@pytest.mark.parametrize("average", [True, False])
@pytest.mark.parametrize("batch_first", [False, True])
def test_mha_cross_attention(masks, average, batch_first):
    rng = np.random.default_rng(0)
    ours, theirs = _mha_pair(batch_first)
    shape = (lambda n: (N, n, E)) if batch_first else (lambda n: (n, N, E))
    q, k, v = rng.standard_normal(shape(L)), rng.standard_normal(shape(S)), rng.standard_normal(shape(S))
    am, kpm = _masks(masks, rng)

    def call(m, q, k, v):
        return m(q, k, v, key_padding_mask=kpm, attn_mask=am, average_attn_weights=average)

    def tcall(m, q, k, v):
        t = None if am is None else torch.as_tensor(am)
        tk = None if kpm is None else torch.as_tensor(kpm)
        return m(q, k, v, key_padding_mask=tk, attn_mask=t, average_attn_weights=average)

    compare(ours, theirs, [q, k, v], call, tcall, rng)


@pytest.mark.parametrize("bias", [True, False])
def test_mha_self_attention_and_no_weights(bias):
    rng = np.random.default_rng(1)
    ours, theirs = _mha_pair(bias=bias)
    x = rng.standard_normal((L, N, E))
    compare(ours, theirs, [x], lambda m, x: m(x, x, x), lambda m, x: m(x, x, x), rng)
    out, w = ours(x, x, x, need_weights=False)
    assert w is None and out.shape == (L, N, E)


def test_mha_unbatched_with_padding_mask():
    rng = np.random.default_rng(2)
    ours, theirs = _mha_pair()
    q, k, v = rng.standard_normal((L, E)), rng.standard_normal((S, E)), rng.standard_normal((S, E))
    _, kpm = _masks("padding", rng, batched=False)
    compare(
        ours, theirs, [q, k, v],
        lambda m, q, k, v: m(q, k, v, key_padding_mask=kpm, average_attn_weights=False),
        lambda m, q, k, v: m(q, k, v, key_padding_mask=torch.as_tensor(kpm), average_attn_weights=False),
        rng,
    )


def test_mha_causal_mask_and_float32():
    rng = np.random.default_rng(3)
    ours, theirs = _mha_pair()
    x = rng.standard_normal((L, N, E))
    causal = np.triu(np.ones((L, L), dtype=bool), 1)
    compare(ours, theirs, [x], lambda m, x: m(x, x, x, attn_mask=causal, is_causal=True),
            lambda m, x: m(x, x, x, attn_mask=torch.as_tensor(causal), is_causal=True), rng)
    m32 = nn.MultiheadAttention(E, HEADS, dtype=np.float32)
    out, w = m32(*(x.astype(np.float32),) * 3)
    assert out.dtype == w.dtype == np.float32


@pytest.mark.parametrize("bias_kv, zero_attn", [(True, False), (False, True), (True, True)])
def test_mha_kdim_vdim_bias_kv_zero_attn_with_masks(bias_kv, zero_attn):
    rng = np.random.default_rng(6)
    kw = dict(add_bias_kv=bias_kv, add_zero_attn=zero_attn, kdim=3, vdim=5)
    torch.manual_seed(0)
    theirs = torch.nn.MultiheadAttention(E, HEADS, **kw).double()
    ours = nn.MultiheadAttention(E, HEADS, **kw)
    renamed = {"out_proj.W": "out_proj.weight", "out_proj.b": "out_proj.bias"}
    assert {renamed.get(n, n) for n, _ in ours.named_parameters()} == {n for n, _ in theirs.named_parameters()}
    copy_weights(ours, theirs)
    q, k, v = rng.standard_normal((L, N, E)), rng.standard_normal((S, N, 3)), rng.standard_normal((S, N, 5))
    am, kpm = _masks("both", rng)
    compare(
        ours, theirs, [q, k, v],
        lambda m, q, k, v: m(q, k, v, key_padding_mask=kpm, attn_mask=am),
        lambda m, q, k, v: m(q, k, v, key_padding_mask=torch.as_tensor(kpm), attn_mask=torch.as_tensor(am)),
        rng,
    )


def test_mha_errors():
    m = nn.MultiheadAttention(E, HEADS)
    with pytest.raises(ng.errors.ShapeError, match="divisible"):
        nn.MultiheadAttention(E, 3)
    x = np.zeros((L, N, E))
    with pytest.raises(ng.errors.ShapeError, match="attn_mask"):
        m(x, x, x, attn_mask=np.zeros((L + 1, L), dtype=bool))
    with pytest.raises(ng.errors.ShapeError, match="embed_dim"):
        m(np.zeros((L, N, E + 1)), x, x)


@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_encoder_layer(activation, norm_first, batch_first):
    rng = np.random.default_rng(4)
    kw = dict(dim_feedforward=16, dropout=0.0, activation=activation, batch_first=batch_first, norm_first=norm_first)
    torch.manual_seed(0)
    theirs = torch.nn.TransformerEncoderLayer(E, HEADS, **kw).double()
    ours = nn.TransformerEncoderLayer(E, HEADS, **kw)
    copy_weights(ours, theirs)
    x = rng.standard_normal((N, L, E) if batch_first else (L, N, E))
    kpm = np.zeros((N, L), dtype=bool)
    kpm[0, -1] = True
    causal = np.triu(np.ones((L, L), dtype=bool), 1)
    compare(
        ours, theirs, [x],
        lambda m, x: [m(x, src_mask=causal, src_key_padding_mask=kpm)],
        lambda m, x: [m(x, src_mask=torch.as_tensor(causal), src_key_padding_mask=torch.as_tensor(kpm))],
        rng,
    )


def test_encoder_layer_parameter_names_follow_torch():
    ours = nn.TransformerEncoderLayer(E, HEADS, dim_feedforward=16)
    theirs = torch.nn.TransformerEncoderLayer(E, HEADS, dim_feedforward=16)
    mine = {n for n, _ in ours.named_parameters()}
    for name, p in theirs.named_parameters():
        m, leaf = _ours(ours, name)
        assert getattr(m, leaf).shape == tuple(p.shape), name
    assert len(mine) == len(list(theirs.named_parameters()))


def test_encoder_layer_dropout_only_in_training():
    x = np.random.default_rng(5).standard_normal((L, N, E))
    layer = nn.TransformerEncoderLayer(E, HEADS, dim_feedforward=16, dropout=0.5)
    a = layer(x)
    layer.eval()
    b, c = layer(x), layer(x)
    np.testing.assert_array_equal(b, c)
    assert not np.allclose(a, b)


def test_transformer_encoder_stack_with_final_norm():
    rng = np.random.default_rng(7)
    kw = dict(dim_feedforward=16, dropout=0.0, batch_first=True)
    torch.manual_seed(0)
    theirs = torch.nn.TransformerEncoder(
        torch.nn.TransformerEncoderLayer(E, HEADS, **kw), 2, norm=torch.nn.LayerNorm(E), enable_nested_tensor=False
    ).double()
    ours = nn.TransformerEncoder(nn.TransformerEncoderLayer(E, HEADS, **kw), 2, norm=nn.LayerNorm(E))
    copy_weights(ours, theirs)
    x = rng.standard_normal((N, L, E))
    kpm = np.zeros((N, L), dtype=bool)
    kpm[1, -2:] = True
    compare(
        ours, theirs, [x],
        lambda m, x: [m(x, src_key_padding_mask=kpm)],
        lambda m, x: [m(x, src_key_padding_mask=torch.as_tensor(kpm))],
        rng,
    )
    layers = list(ours.layers.children())
    assert layers[0].linear1.W is not layers[1].linear1.W


@pytest.mark.parametrize("how", ["key_padding_mask", "attn_mask", "is_causal", "add_zero_attn"])
def test_masked_attention_replays_bitwise_with_a_new_mask_each_step(how):
    rng = np.random.default_rng(7)
    x = ng.constant(rng.standard_normal((2, 3, 4)))
    masks = []
    for i in range(4):
        m = np.zeros((2, 3) if how == "key_padding_mask" else (3, 3), bool)
        m[i % 2, 2 - i % 2] = True
        masks.append(ng.constant(m))
    runs = []
    for replay in (False, True):
        eng = ng.Autograd()
        np.random.seed(0)
        mha = ng.nn.MultiheadAttention(4, 2, batch_first=True, add_zero_attn=how == "add_zero_attn",
                                       autograd_engine=eng)

        def loss_fn(x, mask, mha=mha):
            kw = {"is_causal": True, "attn_mask": None} if how == "is_causal" else {how: mask}
            if how == "add_zero_attn":
                kw = {"key_padding_mask": None}
            return ng.sum(ng.tanh(mha(x, x, x, **kw)[0]))

        step = ng.compile(loss_fn, eng)
        opt = ng.optim.SGD(mha.parameters(), lr=0.1)
        losses = []
        for mask in masks:
            opt.zero_grad()
            if replay:
                losses.append(float(step(x, mask)))
            else:
                with eng:
                    losses.append(float(loss_fn(x, mask)))
                eng.backward(1)
            opt.step()
        runs.append((losses, [p.copy() for p, _ in mha.parameters()]))
    assert runs[0][0] == runs[1][0]
    assert all(np.array_equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))
