"""Every layer against PyTorch (float64): forward, input gradient and every parameter gradient.

PyTorch initialises each layer; its ``state_dict`` is loaded into ours (so the parameter
names and shapes are checked too), both run on the same input and upstream gradient.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch

import new_grad as ng
from new_grad import nn

from .opcheck import assert_close

RTOL, ATOL = 1e-7, 1e-10
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")


@pytest.fixture(autouse=True)
def _torch_float64():
    """PyTorch layers are built in float64 here, and the default is restored afterwards."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _t(a):
    return torch.tensor(np.asarray(a))


def _ng_name(name: str, own: set[str]) -> str:
    """PyTorch's key in our naming: the course's Linear calls its parameters W and b."""
    if name in own:
        return name
    head, _, last = name.rpartition(".")
    alt = {"weight": "W", "bias": "b"}.get(last, last)
    return f"{head}.{alt}" if head else alt


def load_from_torch(layer: nn.Module, tlayer: torch.nn.Module) -> None:
    own = set(layer.state_dict())
    layer.load_state_dict({_ng_name(k, own): v.detach().numpy() for k, v in tlayer.state_dict().items()})


def run_both(layer, tlayer, x, seed=0, copy_state=True, float_input=True):
    """Forward + backward in both; returns ((y, gx, grads by name), (ty, tgx, tgrads))."""
    if copy_state:
        load_from_torch(layer, tlayer)
    e = ng.Autograd()
    layer.set_engine(e)
    xn = x.copy()
    y = layer(xn)
    g = np.random.default_rng(seed).standard_normal(y.shape)
    layer.zero_grad()
    e.backward(g)
    gx = e.memory_buffer.get_param(xn) if float_input and e.memory_buffer.is_in_memory(xn) else None
    grads = {name: gr for name, (_, gr) in layer.named_parameters()}

    xt = _t(x).requires_grad_(float_input)
    yt = tlayer(xt)
    yt.backward(_t(g))
    tgrads = {_ng_name(name, set(grads)): p.grad for name, p in tlayer.named_parameters()}
    return (y, gx, grads), (yt.detach().numpy(), xt.grad.numpy() if float_input else None, tgrads)


def check(layer, tlayer, x, **kw):
    (y, gx, grads), (ty, tgx, tgrads) = run_both(layer, tlayer, x, **kw)
    assert_close(y, ty, "forward", RTOL, ATOL)
    if tgx is not None:
        assert_close(gx, tgx, "input gradient", RTOL, ATOL)
    assert set(grads) == set(tgrads), (sorted(grads), sorted(tgrads))
    for name in grads:
        assert_close(grads[name], tgrads[name].numpy(), f"gradient of {name}", RTOL, ATOL)
    for name, b in layer.named_buffers():
        assert_close(b, tlayer.get_buffer(name).numpy(), f"buffer {name}", RTOL, ATOL)
    return y


rng = np.random.default_rng(0)

LAYERS = [
    ("conv1d", lambda: nn.Conv1d(3, 4, 3, stride=2, padding=1), lambda: torch.nn.Conv1d(3, 4, 3, 2, 1), (2, 3, 9)),
    ("conv1d-same-groups", lambda: nn.Conv1d(4, 6, 4, padding="same", groups=2, dilation=2),
     lambda: torch.nn.Conv1d(4, 6, 4, padding="same", groups=2, dilation=2), (2, 4, 8)),
    ("conv2d", lambda: nn.Conv2d(3, 5, 3), lambda: torch.nn.Conv2d(3, 5, 3), (2, 3, 7, 6)),
    ("conv2d-strided", lambda: nn.Conv2d(2, 4, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2), bias=False),
     lambda: torch.nn.Conv2d(2, 4, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2), bias=False), (3, 2, 8, 7)),
    ("conv2d-same-groups", lambda: nn.Conv2d(4, 6, 4, padding="same", groups=2),
     lambda: torch.nn.Conv2d(4, 6, 4, padding="same", groups=2), (2, 4, 6, 5)),
    ("conv2d-depthwise", lambda: nn.Conv2d(3, 6, 3, groups=3, padding=1),
     lambda: torch.nn.Conv2d(3, 6, 3, groups=3, padding=1), (2, 3, 5, 5)),
    ("conv_transpose2d", lambda: nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1),
     lambda: torch.nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1), (2, 4, 4, 5)),
    ("conv_transpose2d-groups", lambda: nn.ConvTranspose2d(4, 6, (2, 3), stride=(1, 2), groups=2, dilation=2),
     lambda: torch.nn.ConvTranspose2d(4, 6, (2, 3), stride=(1, 2), groups=2, dilation=2), (2, 4, 3, 3)),
    ("conv1d-unbatched", lambda: nn.Conv1d(2, 3, 2), lambda: torch.nn.Conv1d(2, 3, 2), (2, 5)),
    ("conv2d-unbatched", lambda: nn.Conv2d(2, 3, 2), lambda: torch.nn.Conv2d(2, 3, 2), (2, 5, 4)),
    ("conv_transpose2d-unbatched", lambda: nn.ConvTranspose2d(2, 3, 2, 2), lambda: torch.nn.ConvTranspose2d(2, 3, 2, 2),
     (2, 3, 4)),
    ("max_pool2d-unbatched", lambda: nn.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2), (3, 4, 4)),
    ("avg_pool2d-unbatched", lambda: nn.AvgPool2d(2), lambda: torch.nn.AvgPool2d(2), (3, 4, 4)),
    ("max_pool1d", lambda: nn.MaxPool1d(3, 2, 1), lambda: torch.nn.MaxPool1d(3, 2, 1), (2, 3, 9)),
    ("max_pool2d", lambda: nn.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2), (2, 3, 8, 6)),
    ("max_pool2d-odd", lambda: nn.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2), (2, 3, 7, 5)),
    ("max_pool2d-overlap-ceil", lambda: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
     lambda: torch.nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), (2, 2, 8, 7)),
    ("avg_pool2d", lambda: nn.AvgPool2d(2), lambda: torch.nn.AvgPool2d(2), (2, 3, 6, 4)),
    ("avg_pool2d-pad", lambda: nn.AvgPool2d(3, 2, 1, count_include_pad=False),
     lambda: torch.nn.AvgPool2d(3, 2, 1, count_include_pad=False), (2, 3, 7, 6)),
    ("adaptive_avg_pool2d", lambda: nn.AdaptiveAvgPool2d((3, 2)), lambda: torch.nn.AdaptiveAvgPool2d((3, 2)),
     (2, 3, 7, 5)),
    ("adaptive_avg_pool2d-global", lambda: nn.AdaptiveAvgPool2d(1), lambda: torch.nn.AdaptiveAvgPool2d(1),
     (2, 3, 4, 4)),
    ("flatten", lambda: nn.Flatten(), lambda: torch.nn.Flatten(), (2, 3, 4, 5)),
    ("flatten-middle", lambda: nn.Flatten(1, 2), lambda: torch.nn.Flatten(1, 2), (2, 3, 4, 5)),
    ("unflatten", lambda: nn.Unflatten(1, (2, -1)), lambda: torch.nn.Unflatten(1, (2, -1)), (2, 6, 3)),
    ("batch_norm1d", lambda: nn.BatchNorm1d(4), lambda: torch.nn.BatchNorm1d(4), (5, 4)),
    ("batch_norm1d-3d", lambda: nn.BatchNorm1d(3), lambda: torch.nn.BatchNorm1d(3), (4, 3, 5)),
    ("batch_norm2d", lambda: nn.BatchNorm2d(3), lambda: torch.nn.BatchNorm2d(3), (4, 3, 5, 2)),
    ("batch_norm2d-cumulative", lambda: nn.BatchNorm2d(3, momentum=None),
     lambda: torch.nn.BatchNorm2d(3, momentum=None), (2, 3, 3, 3)),
    ("batch_norm2d-no-affine", lambda: nn.BatchNorm2d(3, affine=False), lambda: torch.nn.BatchNorm2d(3, affine=False),
     (2, 3, 3, 3)),
    ("batch_norm2d-no-stats", lambda: nn.BatchNorm2d(3, track_running_stats=False),
     lambda: torch.nn.BatchNorm2d(3, track_running_stats=False), (2, 3, 3, 3)),
    ("layer_norm", lambda: nn.LayerNorm([4, 5]), lambda: torch.nn.LayerNorm([4, 5]), (3, 2, 4, 5)),
    ("layer_norm-no-bias", lambda: nn.LayerNorm(6, eps=1e-3, bias=False),
     lambda: torch.nn.LayerNorm(6, eps=1e-3, bias=False), (3, 6)),
    ("group_norm", lambda: nn.GroupNorm(2, 4), lambda: torch.nn.GroupNorm(2, 4), (3, 4, 3, 2)),
    ("group_norm-1d", lambda: nn.GroupNorm(3, 6, affine=False), lambda: torch.nn.GroupNorm(3, 6, affine=False),
     (2, 6, 5)),
    ("leaky_relu", lambda: nn.LeakyReLU(0.2), lambda: torch.nn.LeakyReLU(0.2), (3, 4)),
    ("elu", lambda: nn.ELU(0.5), lambda: torch.nn.ELU(0.5), (3, 4)),
    ("gelu", lambda: nn.GELU(), lambda: torch.nn.GELU(), (3, 4)),
    ("gelu-tanh", lambda: nn.GELU("tanh"), lambda: torch.nn.GELU("tanh"), (3, 4)),
    ("silu", lambda: nn.SiLU(), lambda: torch.nn.SiLU(), (3, 4)),
    ("softplus", lambda: nn.Softplus(2.0, 3.0), lambda: torch.nn.Softplus(2.0, 3.0), (3, 4)),
    ("softmax", lambda: nn.Softmax(dim=1), lambda: torch.nn.Softmax(dim=1), (3, 4, 2)),
    ("log_softmax", lambda: nn.LogSoftmax(dim=-1), lambda: torch.nn.LogSoftmax(dim=-1), (3, 4)),
    ("sigmoid", lambda: nn.Sigmoid(), lambda: torch.nn.Sigmoid(), (3, 4)),
    ("tanh", lambda: nn.Tanh(), lambda: torch.nn.Tanh(), (3, 4)),
    ("relu", lambda: nn.ReLU(), lambda: torch.nn.ReLU(), (3, 4)),
    ("identity", lambda: nn.Identity(), lambda: torch.nn.Identity(), (3, 4)),
    ("dropout-eval", lambda: nn.Dropout(0.3).eval(), lambda: torch.nn.Dropout(0.3).eval(), (3, 4)),
]


@pytest.mark.parametrize("name,make,tmake,shape", LAYERS, ids=[c[0] for c in LAYERS])
def test_layer_matches_torch(name, make, tmake, shape):
    x = np.random.default_rng(1).standard_normal(shape)
    check(make(), tmake(), x)


@pytest.mark.parametrize("ndim", [2, 4])
def test_batch_norm_train_then_eval(ndim):
    """Running statistics follow PyTorch's over several steps; eval mode then uses them."""
    layer, tlayer = (nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)) if ndim == 2 else (nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3))
    with torch.no_grad():
        tlayer.weight.uniform_(0.5, 1.5)
        tlayer.bias.uniform_(-1, 1)
    load_from_torch(layer, tlayer)
    rng = np.random.default_rng(2)
    shape = (6, 3) if ndim == 2 else (4, 3, 3, 2)
    for step in range(3):
        x = rng.standard_normal(shape) * 2 + 1
        check(layer, tlayer, x, seed=step, copy_state=False)
        tlayer.zero_grad()
    assert int(layer.num_batches_tracked) == 3
    layer.eval()
    tlayer.eval()
    check(layer, tlayer, rng.standard_normal(shape), copy_state=False)


def test_batch_norm_eval_single_sample():
    layer, tlayer = nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    tlayer.running_mean.uniform_(-1, 1)
    tlayer.running_var.uniform_(0.5, 2)
    layer.eval()
    tlayer.eval()
    check(layer, tlayer, np.random.default_rng(3).standard_normal((1, 3)))


def test_batch_norm_train_single_value_is_an_error():
    with pytest.raises(ng.errors.ShapeError, match="more than one"):
        with ng.Autograd():
            nn.BatchNorm1d(3)(np.ones((1, 3)))


@pytest.mark.parametrize("padding_idx", [None, 0, -1])
def test_embedding(padding_idx):
    layer, tlayer = nn.Embedding(7, 3, padding_idx=padding_idx), torch.nn.Embedding(7, 3, padding_idx=padding_idx)
    idx = np.array([[0, 2, 6], [2, 2, 1]])
    load_from_torch(layer, tlayer)
    e = ng.Autograd()
    layer.set_engine(e)
    y = layer(idx)
    g = np.random.default_rng(0).standard_normal(y.shape)
    e.backward(g)
    ty = tlayer(torch.tensor(idx))
    ty.backward(_t(g))
    assert_close(y, ty.detach().numpy(), "forward")
    assert_close(layer.dweight, tlayer.weight.grad.numpy(), "weight gradient")
    if padding_idx is not None:
        assert not layer.dweight[padding_idx].any()
        assert not layer.weight[padding_idx].any()  # initialised to zero, as in PyTorch


def test_embedding_errors():
    with pytest.raises(ng.errors.ShapeError, match="indices must lie"):
        nn.Embedding(4, 2)(np.array([4]))
    with pytest.raises(ng.errors.ShapeError, match="integer"):
        nn.Embedding(4, 2)(np.array([1.0]))


def test_embedding_from_pretrained_frozen():
    w = np.arange(6.0).reshape(3, 2)
    layer = nn.Embedding.from_pretrained(w)
    assert list(layer.parameters()) == []
    assert_close(layer(np.array([2, 0])), w[[2, 0]], "lookup")
    assert "weight" in layer.state_dict()


def test_dropout_train():
    x = np.ones((200, 100))
    layer = nn.Dropout(0.25, generator=np.random.default_rng(0))
    e = ng.Autograd()
    layer.set_engine(e)
    y = layer(x)
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.01
    assert_close(y[kept], np.full(kept.sum(), 1 / 0.75), "scale")
    e.backward(1)
    assert_close(e.memory_buffer.get_param(x), y, "gradient = mask / (1 - p)")
    # the same generator seed gives the same mask
    y2 = nn.Dropout(0.25, generator=np.random.default_rng(0))(x)
    assert (y2 == y).all()


def test_dropout_eval_and_p_edges():
    x = np.random.default_rng(0).standard_normal((4, 5))
    y = nn.Dropout(0.5).eval()(x)
    assert y is not x and (y == x).all()
    assert (nn.Dropout(1.0)(x) == 0).all()
    assert (nn.Dropout(0.0)(x) == x).all()
    with pytest.raises(ValueError):
        nn.Dropout(1.5)


def test_dtype_float32_stays_float32():
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, dtype=np.float32),
        nn.BatchNorm2d(4, dtype=np.float32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.GroupNorm(2, 4, dtype=np.float32),
        nn.AvgPool2d(2),
        nn.ConvTranspose2d(4, 2, 2, stride=2, dtype=np.float32),
        nn.LayerNorm([4, 4], dtype=np.float32),
        nn.Flatten(),
    )
    e = ng.Autograd()
    model.set_engine(e)
    y = model(x)
    assert y.dtype == np.float32
    e.backward(1)
    assert e.memory_buffer.get_param(x).dtype == np.float32
    for name, (p, g) in model.named_parameters():
        assert p.dtype == g.dtype == np.float32, name
        assert g.any(), name


def test_cnn_matches_torch():
    """A small CNN, end to end: forward, loss gradient for every parameter."""
    torch.manual_seed(0)
    tmodel = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 6, 3), torch.nn.GELU(), torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(),
        torch.nn.Dropout(0.0),
    )
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3), nn.GELU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Dropout(0.0),
    )
    check(model, tmodel, np.random.default_rng(4).standard_normal((3, 1, 10, 10)))


def test_sequential_with_names_matches_torch():
    t = torch.nn.Sequential(OrderedDict(fc=torch.nn.Conv1d(2, 3, 1), act=torch.nn.Tanh()))
    m = nn.Sequential(OrderedDict(fc=nn.Conv1d(2, 3, 1), act=nn.Tanh()))
    check(m, t, np.random.default_rng(5).standard_normal((2, 2, 4)))


def test_conv_second_derivative():
    """conv2d's backward is made of recorded convolutions: a Hessian-vector product matches PyTorch."""
    hvp = getattr(ng, "hvp", None)
    if hvp is None:
        pytest.skip("new_grad.hvp not available")
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    v = rng.standard_normal(w.shape)

    def f(w_):
        return ng.sum(ng.tanh(ng.conv2d(x, w_, None, 2, 1)))

    got = hvp(f, w, v)
    tw = _t(w).requires_grad_(True)
    (gw,) = torch.autograd.grad(torch.tanh(torch.nn.functional.conv2d(_t(x), tw, None, 2, 1)).sum(), tw,
                                create_graph=True)
    (want,) = torch.autograd.grad((gw * _t(v)).sum(), tw)
    assert_close(got, want.numpy(), "Hessian-vector product", 1e-7, 1e-9)


def test_layer_errors_name_the_problem():
    with pytest.raises(ng.errors.ShapeError, match="channels"):
        nn.Conv2d(3, 4, 3)(np.zeros((1, 2, 5, 5)))
    with pytest.raises(ng.errors.ShapeError, match="smaller than"):
        nn.Conv2d(1, 1, 5)(np.zeros((1, 1, 3, 3)))
    with pytest.raises(ng.errors.ShapeError, match="stride=1"):
        nn.Conv2d(1, 1, 3, stride=2, padding="same")(np.zeros((1, 1, 5, 5)))
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ng.errors.ShapeError, match="expected 3"):
        nn.BatchNorm2d(3)(np.zeros((2, 4, 2, 2)))
    with pytest.raises(ng.errors.ShapeError, match="normalized_shape"):
        nn.LayerNorm(4)(np.zeros((2, 5)))
    with pytest.raises(ng.errors.ShapeError, match="num_groups"):
        ng.group_norm(np.zeros((2, 5, 3)), 2)
    with pytest.raises(ng.errors.ShapeError, match="half the kernel"):
        nn.MaxPool2d(2, padding=2)(np.zeros((1, 1, 6, 6)))


def test_anchor_model_matches_torch():
    """The benchmark's model (conv3x3 1→8, ReLU, max-pool 2, linear 10) at its image size."""
    tmodel = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                                 torch.nn.Linear(8 * 13 * 13, 10))
    model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 13 * 13, 10))
    check(model, tmodel, np.random.default_rng(7).standard_normal((4, 1, 28, 28)))


_HVP_CASES = [
    ("max_pool2d", lambda m, x: m.max_pool2d(x, 3, 2, 1), (2, 2, 7, 6)),
    ("max_pool2d-2", lambda m, x: m.max_pool2d(x, 2), (2, 2, 4, 6)),
    ("max_pool1d", lambda m, x: m.max_pool1d(x, 2, 1), (2, 3, 7)),
    ("avg_pool2d", lambda m, x: m.avg_pool2d(x, 3, 2, 1), (2, 2, 7, 6)),
    ("adaptive_avg_pool2d", lambda m, x: m.adaptive_avg_pool2d(x, (2, 3)), (2, 2, 5, 7)),
    ("conv1d", lambda m, x: m.conv1d(x, _W1, None, 2, 1), (2, 2, 7)),
    ("conv_transpose2d", lambda m, x: m.conv_transpose2d(x, _WT, None, 2, 1, 1), (2, 2, 3, 4)),
    ("batch_norm-train", lambda m, x: m.batch_norm(x, None, None, _G3, _B3, True), (4, 3, 2)),
    ("layer_norm", lambda m, x: m.layer_norm(x, (3, 2), _G32, _B32), (4, 3, 2)),
    ("group_norm", lambda m, x: m.group_norm(x, 3, _G3, _B3), (4, 3, 2)),
]
_r = np.random.default_rng(11)
_W1, _WT = _r.standard_normal((3, 2, 3)), _r.standard_normal((2, 3, 3, 3))
_G3, _B3, _G32, _B32 = _r.standard_normal(3), _r.standard_normal(3), _r.standard_normal((3, 2)), _r.standard_normal((3, 2))


class _TorchF:
    """torch.nn.functional with the module-level weights as tensors (so one lambda serves both)."""

    def __getattr__(self, name):
        fn = getattr(torch.nn.functional, name)

        def call(*args):
            return fn(*[_t(a) if isinstance(a, np.ndarray) else a for a in args])

        return call


@pytest.mark.parametrize("name,f,shape", _HVP_CASES, ids=[c[0] for c in _HVP_CASES])
def test_second_derivative_matches_torch(name, f, shape):
    """Backward functions are recorded ops: Hessian-vector products through every fused op match PyTorch."""
    hvp = getattr(ng, "hvp", None)
    if hvp is None:
        pytest.skip("new_grad.hvp not available")
    rng = np.random.default_rng(12)
    x, v = rng.standard_normal(shape), rng.standard_normal(shape)
    c = rng.standard_normal(np.shape(f(ng, x)))

    got = hvp(lambda x_: ng.sum(ng.multiply(ng.tanh(f(ng, x_)), c)), x, v)
    tx = _t(x).requires_grad_(True)
    (gx,) = torch.autograd.grad((torch.tanh(f(_TorchF(), tx)) * _t(c)).sum(), tx, create_graph=True)
    (want,) = torch.autograd.grad((gx * _t(v)).sum(), tx)
    assert_close(got, want.numpy(), f"{name}: Hessian-vector product", 1e-7, 1e-9)


def test_training_trajectory_matches_torch():
    """Same CNN, same initialisation, same data: 8 SGD steps give the same losses (float64, 1e-8)."""
    torch.manual_seed(1)
    tmodel = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding="same"), torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 4, 3, groups=2), torch.nn.GroupNorm(2, 4), torch.nn.SiLU(), torch.nn.AvgPool2d(2),
        torch.nn.Flatten(), torch.nn.LayerNorm(4), torch.nn.Dropout(0.0),
    )
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding="same"), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, groups=2), nn.GroupNorm(2, 4), nn.SiLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.LayerNorm(4), nn.Dropout(0.0),
    )
    load_from_torch(model, tmodel)
    rng = np.random.default_rng(3)
    x = ng.constant(rng.standard_normal((8, 1, 8, 8)))
    labels = rng.integers(0, 4, 8)
    onehot = ng.constant(np.eye(4)[labels])
    opt = torch.optim.SGD(tmodel.parameters(), lr=0.1)
    e = ng.Autograd()
    model.set_engine(e)
    params = [pair for _, pair in model.named_parameters()]
    for step in range(8):
        model.zero_grad()
        with e:
            loss = ng.softmax_cross_entropy(model(x), onehot)
        e.backward(1)
        for p, g in params:
            p -= 0.1 * g
        opt.zero_grad()
        tloss = torch.nn.functional.cross_entropy(tmodel(_t(x)), torch.tensor(labels))
        tloss.backward()
        opt.step()
        assert abs(float(loss) - tloss.item()) < 1e-8, (step, float(loss), tloss.item())
    for name, b in model.named_buffers():
        assert_close(b, tmodel.get_buffer(name).numpy(), f"buffer {name}", 1e-7, 1e-10)


@pytest.mark.parametrize("dims", [1, 2])
def test_max_pool_non_finite_windows_route_the_gradient_as_torch(dims):
    """A window of −∞ sends its gradient to its first pixel (not the −∞ padding, where it was lost); a window
    holding NaN to its last NaN (where ``== max`` finds nothing) — PyTorch's argmax rule, eager and recorded."""
    from new_grad.ops.conv import max_pool1d_backward, max_pool2d_backward

    rng = np.random.default_rng(5)
    shape = (2, 3, 7) if dims == 1 else (2, 3, 6, 7)
    x = rng.standard_normal(shape)
    mark = rng.random(shape)
    x[mark < 0.15] = np.nan
    x[(mark > 0.15) & (mark < 0.45)] = -np.inf
    x[(mark > 0.45) & (mark < 0.5)] = np.inf
    x[0, 0] = -np.inf  # whole planes of −∞: every window there, padding at the edges
    args = (3, 2, 1, 1, True)  # kernel, stride, padding, dilation, ceil_mode
    ours, ours_bw = (ng.max_pool1d, max_pool1d_backward) if dims == 1 else (ng.max_pool2d, max_pool2d_backward)
    xt = torch.tensor(x, requires_grad=True)
    yt = (torch.nn.functional.max_pool1d if dims == 1 else torch.nn.functional.max_pool2d)(xt, *args)
    g = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(g))
    e = ng.Autograd()
    with e:
        y = ours(x, *args)
    e.backward(g)
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_allclose(e.memory_buffer.get_param(x), xt.grad.numpy(), rtol=1e-12)
    recorded = ours_bw(g, x, *args, out=None)[0]  # the form create_graph=True records
    np.testing.assert_allclose(np.asarray(recorded), xt.grad.numpy(), rtol=1e-12)
