"""Module machinery: registration, traversal, modes, containers, state dicts and their errors, repr."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch

import new_grad as ng
from new_grad import nn


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.bn = nn.BatchNorm2d(2)
        self.blocks = nn.ModuleList([nn.Linear(8, 4), nn.Linear(4, 3)])
        self.scale = 2.0  # a plain attribute: not a parameter

    def forward(self, x):
        h = ng.reshape(self.bn(self.conv(x)), (x.shape[0], -1))
        for b in self.blocks:
            h = b(h)
        return h


def test_parameters_registered_by_assignment_as_pairs():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["conv.weight", "conv.bias", "bn.weight", "bn.bias", "blocks.0.W", "blocks.0.b", "blocks.1.W",
                     "blocks.1.b"]
    for _, (p, g) in net.named_parameters():
        assert p.shape == g.shape and g.dtype == p.dtype and not g.any()
    assert net.conv.dweight.shape == (2, 1, 3, 3)
    assert net.num_parameters() == 20 + 4 + 36 + 15
    assert [n for n, _ in net.named_buffers()] == ["bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]
    assert [n for n, _ in net.named_children()] == ["conv", "bn", "blocks"]


def test_backward_fills_gradients_in_place_and_zero_grad_clears_them():
    net = Net()
    e = ng.Autograd()
    net.set_engine(e)
    x = ng.constant(np.random.default_rng(0).standard_normal((4, 1, 4, 4)))
    grads = [g for _, g in net.parameters()]
    net(x)
    e.backward(1)
    assert all(g.any() for g in grads)
    assert [g for _, g in net.parameters()][0] is grads[0]  # same arrays, updated in place
    net.zero_grad()
    assert not any(g.any() for g in grads)


def test_train_eval_propagate():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert net.bn.training


def test_state_dict_round_trip_including_buffers():
    a, b = Net(), Net()
    e = ng.Autograd()
    a.set_engine(e)
    a(ng.constant(np.random.default_rng(1).standard_normal((4, 1, 4, 4))))  # moves running statistics
    sd = a.state_dict()
    assert set(sd) == {*(n for n, _ in a.named_parameters()), *(n for n, _ in a.named_buffers())}
    before = [p for p, _ in b.parameters()]
    assert b.load_state_dict(sd) == ([], [])
    for k, v in b.state_dict().items():
        np.testing.assert_array_equal(v, sd[k])
    assert [p for p, _ in b.parameters()][0] is before[0]  # loaded in place
    sd["conv.weight"][...] = 7  # state_dict holds copies
    assert not (b.conv.weight == 7).all()
    a.eval()
    b.eval()
    x = np.random.default_rng(2).standard_normal((2, 1, 4, 4))
    np.testing.assert_array_equal(a(x), b(x))


def test_load_state_dict_errors():
    net = Net()
    sd = net.state_dict()
    missing = dict(sd)
    del missing["bn.running_var"]
    with pytest.raises(ng.errors.ShapeError, match=r"missing keys \['bn.running_var'\]"):
        net.load_state_dict(missing)
    extra = {**sd, "head.weight": np.zeros(3)}
    with pytest.raises(ng.errors.ShapeError, match=r"unexpected keys \['head.weight'\]"):
        net.load_state_dict(extra)
    bad = {**sd, "conv.weight": np.zeros((2, 1, 5, 5)), "conv.bias": np.full(2, 9.0)}
    with pytest.raises(ng.errors.ShapeError, match=r"conv.weight has shape \(2, 1, 5, 5\).*\(2, 1, 3, 3\)"):
        net.load_state_dict(bad)
    assert not (net.conv.bias == 9).any()  # nothing was loaded
    assert net.load_state_dict(extra, strict=False) == ([], ["head.weight"])
    assert net.load_state_dict(missing, strict=False) == (["bn.running_var"], [])
    result = net.load_state_dict(extra, strict=False)  # PyTorch's named fields too
    assert result.missing_keys == [] and result.unexpected_keys == ["head.weight"]


@pytest.mark.parametrize("change", ["complex", "text", "fraction into a count"])
def test_load_state_dict_refuses_a_lossy_dtype_and_loads_nothing(change):
    net = Net()
    sd = net.state_dict()
    before = {k: np.array(v, copy=True) for k, v in sd.items()}
    bad = {k: np.full(np.shape(v), 9.0) for k, v in sd.items()}  # would overwrite everything if loaded
    if change == "complex":
        bad["blocks.1.b"] = bad["blocks.1.b"] + 1j
    elif change == "text":
        bad["blocks.1.b"] = np.full(sd["blocks.1.b"].shape, "x")
    else:
        ints = [k for k, v in sd.items() if np.asarray(v).dtype.kind in "iu"]
        assert ints, "the model has an integer buffer"
        bad[ints[0]] = np.full(np.shape(sd[ints[0]]), 2.5)
    with pytest.raises(ng.errors.DtypeError, match="in the state dict but .* in the model.*nothing was loaded"):
        net.load_state_dict(bad)
    for k, v in net.state_dict().items():
        assert np.array_equal(v, before[k]), k
    wide = {k: np.asarray(v).astype(np.float32) if np.asarray(v).dtype.kind == "f" else v for k, v in sd.items()}
    net.load_state_dict(wide)  # another float precision is cast, as in PyTorch

def test_load_torch_state_dict_into_same_architecture():
    torch.manual_seed(0)
    t = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.GroupNorm(1, 3),
                            torch.nn.Flatten(), torch.nn.LayerNorm(12)).double()
    m = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.GroupNorm(1, 3), nn.Flatten(), nn.LayerNorm(12))
    m.load_state_dict({k: v.numpy() for k, v in t.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 4))
    np.testing.assert_allclose(m(x), t(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-12)


def test_sequential():
    s = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    assert len(s) == 3 and isinstance(s[1], nn.ReLU) and isinstance(s[-1], nn.Linear)
    assert [n for n, _ in s.named_parameters()] == ["0.W", "0.b", "2.W", "2.b"]
    head = s[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is s[0]
    s.append(nn.Tanh())
    assert len(s) == 4 and list(s)[-1].__class__ is nn.Tanh
    x = np.random.default_rng(0).standard_normal((5, 3))
    np.testing.assert_allclose(s(x), np.tanh(s[2](np.maximum(s[0](x), 0))))
    named = nn.Sequential(OrderedDict(enc=nn.Linear(3, 3), act=nn.Sigmoid()))
    assert [n for n, _ in named.named_parameters()] == ["enc.W", "enc.b"]


def test_sequential_records_on_its_engine():
    e = ng.Autograd()
    s = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), autograd_engine=e)
    s(np.ones((1, 3)))
    assert [op.name for op in e.operation_list] == ["linear", "relu"]


def test_module_list():
    ml = nn.ModuleList([nn.Linear(2, 2)])
    ml.append(nn.Linear(2, 3)).extend([nn.ReLU()])
    assert len(ml) == 3 and [n for n, _ in ml.named_parameters()] == ["0.W", "0.b", "1.W", "1.b"]
    ml.insert(0, nn.Linear(1, 2))
    assert [n for n, _ in ml.named_parameters()][:2] == ["0.W", "0.b"] and ml[1].in_features == 2
    del ml[0]
    assert len(ml) == 3 and ml[0].in_features == 2
    ml[2] = nn.Linear(3, 1)
    assert ml[2].out_features == 1 and ml.num_parameters() == 6 + 9 + 4
    assert len(ml[1:]) == 2
    with pytest.raises(NotImplementedError):
        ml(np.ones(2))


def test_apply_add_module_and_delattr():
    net = Net()
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Net" and "Conv2d" in seen
    net.add_module("extra", nn.Linear(2, 2))
    assert "extra.W" in net.state_dict()
    del net.extra
    assert "extra.W" not in net.state_dict()
    with pytest.raises(TypeError):
        net.add_module("bad", 3)


def test_repr_prints_tree_with_parameter_counts():
    text = repr(Net())
    assert text.startswith("Net(\n  (conv): Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1))  [20 parameters]")
    assert "(blocks): ModuleList(\n    (0): Linear(in_features=8, out_features=4, bias=True)  [36 parameters]" in text
    assert text.endswith(") [75 parameters]")
    assert repr(nn.MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"


def test_layers_use_default_dtype_and_accept_dtype():
    assert nn.Conv2d(1, 1, 1).weight.dtype == np.float64
    for layer in (nn.Conv1d(1, 1, 1, dtype=np.float32), nn.BatchNorm1d(2, dtype=np.float32),
                  nn.LayerNorm(2, dtype=np.float32), nn.Embedding(2, 2, dtype=np.float32)):
        assert all(p.dtype == np.float32 for p, _ in layer.parameters())


def test_layer_init_matches_torch_ranges():
    """PyTorch's default initialisation: kaiming_uniform(a=√5) → U(±1/√fan_in) for conv weights and biases."""
    conv = nn.Conv2d(4, 64, 3, groups=2)
    bound = 1 / np.sqrt(2 * 9)
    assert np.abs(conv.weight).max() <= bound and np.abs(conv.weight).max() > 0.9 * bound
    assert np.abs(conv.bias).max() <= bound
    t = nn.ConvTranspose2d(8, 4, 2)
    assert np.abs(t.weight).max() <= 1 / np.sqrt(4 * 4)
    emb = nn.Embedding(1000, 20)
    assert abs(emb.weight.std() - 1) < 0.05
    bn = nn.BatchNorm2d(3)
    assert (bn.weight == 1).all() and (bn.bias == 0).all() and (bn.running_var == 1).all()


def test_sequential_dtype_casts_parameters_and_their_gradients():
    np.random.seed(0)  # an unlucky initialisation leaves every ReLU unit off for the all-ones batch: dW all zero
    model = ng.nn.Sequential(ng.nn.Linear(3, 4), ng.nn.ReLU(), ng.nn.Linear(4, 2), dtype=np.float32)
    for p, g in model.parameters():
        assert p.dtype == np.float32 and g.dtype == np.float32 and g.shape == p.shape
    eng = ng.Autograd()
    with eng:
        loss = ng.sum(model(ng.constant(np.ones((5, 3), np.float32))))
    eng.backward(1.0, output=loss)
    assert all(np.any(g != 0) for _, g in model.parameters())
    with pytest.raises(ng.errors.DtypeError):
        ng.nn.Sequential(ng.nn.Linear(3, 4), dtype=np.int64)


def test_sequential_dtype_keeps_tied_parameters_tied():
    """Casting a model whose layers share a weight casts it once: still one array, one gradient, one update."""
    l1, l2 = nn.Linear(3, 3), nn.Linear(3, 3)
    l2.W = l1.W
    model = nn.Sequential(l1, nn.Tanh(), l2, dtype=np.float32)
    assert l1.W is l2.W and l1.dW is l2.dW and l1.W.dtype == np.float32
    assert [n for n, _ in model.named_parameters()] == ["0.W", "0.b", "2.b"]
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    eng = ng.Autograd()
    with eng:
        out = model(ng.constant(x))
        loss = ng.sum(ng.multiply(out, out))
    eng.backward(1.0, output=loss)
    W = torch.tensor(l1.W, requires_grad=True)
    h = torch.tanh(torch.tensor(x) @ W.T + torch.tensor(l1.b)) @ W.T + torch.tensor(l2.b)
    (h**2).sum().backward()
    np.testing.assert_allclose(l1.dW, W.grad.numpy(), rtol=1e-5)


def test_tying_through_pytorch_names_shares_one_summed_gradient():
    """``head.weight = emb.weight`` (PyTorch's tying idiom) ties Linear's W, not a shadowing attribute."""
    np.random.seed(0)
    emb, head = nn.Embedding(5, 3), nn.Linear(3, 5, bias=False)
    head.weight = emb.weight
    assert head.W is emb.weight and head.dW is emb.dweight
    model = nn.Sequential(emb, head)
    assert [n for n, _ in model.named_parameters()] == ["0.weight"]
    idx = np.array([[0, 3], [4, 3]])
    e = ng.Autograd()
    with e:
        loss = ng.sum(ng.tanh(model(idx)))
    e.backward(1, output=loss)

    t_emb = torch.nn.Embedding(5, 3).double()
    with torch.no_grad():
        t_emb.weight.copy_(torch.tensor(emb.weight))
    torch.tanh(t_emb(torch.tensor(idx)) @ t_emb.weight.T).sum().backward()
    np.testing.assert_allclose(emb.dweight, t_emb.weight.grad.numpy(), rtol=1e-12)
    head.bias = np.zeros(5)  # the other alias assigns b
    assert head.b is not None and head.bias is head.b

    class ReadOnly(nn.Module):
        @property
        def scale(self):
            return 2.0

    with pytest.raises(AttributeError, match="read-only"):  # not silently shadowed either
        ReadOnly().scale = 3.0


def test_assigning_none_to_a_submodule_removes_it():
    """As in PyTorch: ``self.a = None`` drops the layer's parameters from parameters() and state_dict()."""
    net = Net()
    net.conv = None
    assert net.conv is None
    assert [n for n, _ in net.named_children()] == ["bn", "blocks"]
    assert not any(n.startswith("conv.") for n, _ in net.named_parameters())
    assert not any(k.startswith("conv.") for k in net.state_dict())
    net.conv = nn.Conv2d(1, 2, 3)  # the name takes a Module again
    assert "conv.weight" in net.state_dict()
    with pytest.raises(TypeError, match="submodule"):
        net.bn = 3
    for value in (3, [1.0, 2.0], nn.Linear(2, 2)):  # a parameter takes an array or None (AttributeError before)
        with pytest.raises(TypeError, match="is a parameter"):
            net.conv.bias = value
    assert net.conv.bias.shape == (2,)


def test_pytorch_style_activation_arguments():
    """``nn.ReLU(inplace=True)`` and ``nn.ReLU(True)`` build a ReLU (True was taken for an engine and crashed
    the first forward outside ``with engine:``); Identity ignores arguments; a non-engine engine is refused."""
    x = np.array([[-1.0, 2.0]])
    for layer in (nn.ReLU(inplace=True), nn.ReLU(True), nn.ReLU(False)):
        assert layer.autograd_engine is None
        e = ng.Autograd()
        layer.set_engine(e)
        np.testing.assert_array_equal(layer(x), [[0.0, 2.0]])
    assert nn.Identity(54, unused_argument1=0.1).autograd_engine is None
    e = ng.Autograd()
    assert nn.ReLU(e).autograd_engine is e and nn.Identity(e).autograd_engine is e  # the course's form
    with pytest.raises(TypeError, match="not a new_grad.Autograd"):
        nn.Tanh(True)


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_a_copied_model_gets_its_own_gradients(how):
    """``copy.deepcopy(model)`` (target networks, keeping the best model) and pickling: backward through the copy
    fills the copy's gradient arrays (they stayed zero: the binding was not copied) and leaves the original's."""
    import copy
    import pickle

    np.random.seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    twin = copy.deepcopy(model) if how == "deepcopy" else pickle.loads(pickle.dumps(model))
    x = ng.constant(np.random.default_rng(0).standard_normal((5, 3)))

    def grads(m):
        e = ng.Autograd()
        with e:
            out = m(x)
            loss = ng.sum(ng.multiply(out, out))
        e.backward(1, output=loss)
        return [g.copy() for _, g in m.parameters()]

    expected = grads(model)
    model.zero_grad()
    got = grads(twin)
    assert all(g.any() for g in got)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    assert not any(g.any() for _, g in model.parameters())  # the original's gradients are untouched
