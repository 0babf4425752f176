"""Optimisers and gradient clipping against ``torch.optim`` / ``torch.nn.utils`` in float64.

Trajectories: the same parameters and the same gradients fed to both, many
steps, parameters equal within 1e-10 (open loop: random gradients; closed loop:
each follows the gradient of a quadratic at its own parameters).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import new_grad as ng
from new_grad.errors import AnomalyError, DtypeError, OptimizerError

SHAPES = [(3, 4), (5,), (1,), (2, 1, 3)]

OPTIMISERS = {
    "SGD": [
        dict(lr=0.1),
        dict(lr=0.05, momentum=0.9),
        dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01),
        dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.02),
        dict(lr=0.05, momentum=0.5, maximize=True),
    ],
    "Adam": [
        dict(lr=0.01),
        dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05),
        dict(lr=0.01, amsgrad=True),
        dict(lr=0.01, amsgrad=True, weight_decay=0.1, maximize=True),
        dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
    ],
    "AdamW": [
        dict(lr=0.01),
        dict(lr=0.02, weight_decay=0.1, amsgrad=True),
        dict(lr=0.01, betas=(0.5, 0.9), maximize=True),
    ],
    "RMSprop": [
        dict(lr=0.01),
        dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.05),
        dict(lr=0.01, centered=True),
        dict(lr=0.005, momentum=0.9),
        dict(lr=0.005, momentum=0.5, centered=True, weight_decay=0.1, maximize=True),
    ],
    "Adagrad": [
        dict(lr=0.1),
        dict(lr=0.1, lr_decay=0.01),
        dict(lr=0.1, initial_accumulator_value=0.5, eps=1e-8, weight_decay=0.1),
        dict(lr=0.05, lr_decay=0.001, maximize=True),
    ],
}
CASES = [(name, kw) for name, kws in OPTIMISERS.items() for kw in kws]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for name, kw in CASES]


def make_pair(rng, kind, kw, shapes=SHAPES, groups=False):
    params = [rng.standard_normal(s) for s in shapes]
    grads = [np.zeros_like(p) for p in params]
    tparams = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    pairs = list(zip(params, grads))
    if groups:  # two groups, the second with its own lr
        ours_arg = [{"params": pairs[:2]}, {"params": pairs[2:], "lr": kw["lr"] * 3}]
        theirs_arg = [{"params": tparams[:2]}, {"params": tparams[2:], "lr": kw["lr"] * 3}]
    else:
        ours_arg, theirs_arg = pairs, tparams
    ours = getattr(ng.optim, kind)(ours_arg, **kw)
    theirs = getattr(torch.optim, kind)(theirs_arg, foreach=False, **kw)
    return ours, theirs, params, grads, tparams


def feed(grads, tparams, values):
    for g, tp, v in zip(grads, tparams, values):
        g[...] = v
        tp.grad = torch.tensor(v.copy())


def max_diff(params, tparams):
    return max(float(np.abs(p - tp.detach().numpy()).max()) for p, tp in zip(params, tparams))


@pytest.mark.parametrize("kind,kw", CASES, ids=IDS)
def test_open_loop_trajectory_matches_torch(kind, kw):
    rng = np.random.default_rng(0)
    ours, theirs, params, grads, tparams = make_pair(rng, kind, kw, groups=True)
    for _ in range(150):
        feed(grads, tparams, [rng.standard_normal(g.shape) for g in grads])
        ours.step()
        theirs.step()
    assert max_diff(params, tparams) < 1e-10
    # the buffers too, under PyTorch's names
    tstate = theirs.state_dict()["state"]
    for i, s in ours.state_dict()["state"].items():
        assert set(s) == set(tstate[i]), (s.keys(), tstate[i].keys())
        for name, v in s.items():
            np.testing.assert_allclose(np.asarray(v), tstate[i][name].numpy(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind,kw", CASES, ids=IDS)
def test_closed_loop_quadratic_matches_torch(kind, kw):
    """Each side follows the gradient of ½·xᵀAx − bᵀx at its own parameters for 150 steps.

    The minimum is far away, so the adaptive methods (steps of about ``lr``
    whatever the gradient's size) are still travelling, not oscillating around
    it: there their map is unstable and amplifies the last-bit differences
    (PyTorch's CPU kernels fuse multiply-adds, NumPy cannot) exponentially, as it
    would amplify any perturbation of PyTorch's own run.
    """
    rng = np.random.default_rng(1)
    n = 6
    m = rng.standard_normal((n, n))
    A = m @ m.T / n + np.eye(n)
    b = A @ (20 * rng.standard_normal(n))
    sign = -1.0 if kw.get("maximize") else 1.0  # maximize climbs −f
    ours, theirs, params, grads, tparams = make_pair(rng, kind, kw, shapes=[(n,)])
    for _ in range(150):
        grads[0][...] = sign * (A @ params[0] - b)
        tparams[0].grad = sign * (torch.tensor(A) @ tparams[0].detach() - torch.tensor(b))
        ours.step()
        theirs.step()
    assert max_diff(params, tparams) < 1e-10


def test_model_training_matches_torch_with_adam():
    """A Linear model trained with Adam on a regression: same parameters as torch after 30 steps."""
    np.random.seed(0)
    engine = ng.Autograd()
    lin = ng.nn.Linear(4, 3, engine)
    tlin = torch.nn.Linear(4, 3).double()
    with torch.no_grad():
        tlin.weight.copy_(torch.tensor(lin.W))
        tlin.bias.copy_(torch.tensor(lin.b))
    opt = ng.optim.Adam(lin.parameters(), lr=0.05, amsgrad=True, weight_decay=0.01)
    topt = torch.optim.Adam(tlin.parameters(), lr=0.05, amsgrad=True, weight_decay=0.01, foreach=False)
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((16, 4)), rng.standard_normal((16, 3))
    loss_fn = ng.nn.MSELoss(engine)
    for _ in range(30):
        opt.zero_grad()
        engine.zero_grad()
        loss_fn(y, lin(ng.constant(x)))
        loss_fn.backward()
        opt.step()
        topt.zero_grad()
        torch.nn.functional.mse_loss(tlin(torch.tensor(x)), torch.tensor(y)).backward()
        topt.step()
    np.testing.assert_allclose(lin.W, tlin.weight.detach().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(lin.b, tlin.bias.detach().numpy(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind,kw", [CASES[2], CASES[8], CASES[16], CASES[19]], ids=lambda v: str(v))
def test_state_dict_resume_is_bit_identical(kind, kw):
    rng = np.random.default_rng(3)
    ours, _, params, grads, _ = make_pair(rng, kind, kw)
    for _ in range(5):
        for g in grads:
            g[...] = rng.standard_normal(g.shape)
        ours.step()
    saved = ours.state_dict()
    copies = [p.copy() for p in params]
    clone_pairs = [(c, np.zeros_like(c)) for c in copies]
    other = getattr(ng.optim, kind)(clone_pairs, lr=123.0)  # hyper-parameters come from the state dict
    other.load_state_dict(saved)
    for _ in range(5):
        values = [rng.standard_normal(g.shape) for g in grads]
        for (_, g), (_, g2), v in zip(zip(params, grads), clone_pairs, values):
            g[...] = v
            g2[...] = v
        ours.step()
        other.step()
    for p, c in zip(params, copies):
        assert np.array_equal(p, c)
    # the saved dict is a snapshot, not a view of live buffers
    assert saved is not ours.state_dict()


def test_float32_stays_float32():
    rng = np.random.default_rng(4)
    for name, kw in [
        ("SGD", dict(lr=0.1, momentum=0.9)),
        ("Adam", {}),
        ("RMSprop", dict(centered=True)),
        ("Adagrad", {}),
    ]:
        p = rng.standard_normal((3, 3)).astype(np.float32)
        g = rng.standard_normal((3, 3)).astype(np.float32)
        opt = getattr(ng.optim, name)([(p, g)], **kw)
        opt.step()
        assert p.dtype == np.float32
        for v in opt.state[id(p)].values():
            if hasattr(v, "dtype"):
                assert v.dtype == np.float32, name


def test_updates_in_place_and_zero_grad_keeps_binding():
    lin = ng.nn.Linear(3, 2)
    W, dW = lin.W, lin.dW
    dW[...] = 1.0
    lin.db[...] = 1.0
    opt = ng.optim.SGD(lin.parameters(), lr=0.5)
    before = W.copy()
    opt.step()
    assert lin.W is W and np.allclose(W, before - 0.5)
    opt.zero_grad()
    assert lin.dW is dW and not dW.any()


def test_course_style_model_and_closure():
    class Layer:
        def __init__(self):
            self.W, self.dW = np.ones((2, 2)), np.full((2, 2), 2.0)
            self.b, self.db = np.zeros(2), np.ones(2)

    class Model:
        layers = [Layer(), object()]  # layers without parameters are skipped

    model = Model()
    opt = ng.optim.Adam(model, lr=0.1)
    assert len(opt.param_groups[0]["params"]) == 2
    assert opt.step(closure=lambda: 7.5) == 7.5
    assert np.allclose(model.layers[0].W, 0.9) and np.allclose(model.layers[0].b, -0.1)


def test_add_param_group_and_repr():
    a, b = (np.zeros(2), np.ones(2)), (np.zeros(3), np.ones(3))
    opt = ng.optim.SGD([a], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": [b], "lr": 0.01})
    assert opt.param_groups[1]["momentum"] == 0.9 and opt.param_groups[1]["lr"] == 0.01
    with pytest.raises(OptimizerError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})
    assert "Parameter Group 1" in repr(opt) and "lr: 0.01" in repr(opt)


def test_errors_are_clear():
    p = (np.zeros(2), np.zeros(2))
    with pytest.raises(OptimizerError, match="invalid lr"):
        ng.optim.Adam([p], lr=-1)
    with pytest.raises(OptimizerError, match="betas"):
        ng.optim.Adam([p], betas=(1.0, 0.9))
    with pytest.raises(OptimizerError, match="Nesterov"):
        ng.optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(OptimizerError, match="empty parameter list"):
        ng.optim.SGD([], lr=0.1)
    with pytest.raises(OptimizerError, match="pairs"):
        ng.optim.SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(OptimizerError, match="gradient is"):
        ng.optim.SGD([(np.zeros(2), np.zeros(3))], lr=0.1)
    with pytest.raises(DtypeError, match="float"):
        ng.optim.SGD([(np.zeros(2, int), np.zeros(2, int))], lr=0.1)
    opt = ng.optim.Adam([p])
    opt.step()
    with pytest.raises(OptimizerError, match="parameters per group"):
        ng.optim.Adam([p, (np.zeros(1), np.zeros(1))]).load_state_dict(opt.state_dict())
    bad = opt.state_dict()
    bad["state"][0]["exp_avg"] = np.zeros(5)
    with pytest.raises(OptimizerError, match="exp_avg"):
        ng.optim.Adam([p]).load_state_dict(bad)


# -- clipping ------------------------------------------------------------------------------------------------
def grads_pair(rng, dtype=np.float64, scale=1.0):
    grads = [rng.standard_normal(s).astype(dtype) * scale for s in SHAPES]
    tparams = []
    for g in grads:
        t = torch.zeros(g.shape, dtype=torch.float64 if dtype == np.float64 else torch.float32, requires_grad=True)
        t.grad = torch.tensor(g.copy())
        tparams.append(t)
    return grads, tparams


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.0, 0.5])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    rng = np.random.default_rng(5)
    grads, tparams = grads_pair(rng)
    pairs = [(np.zeros_like(g), g) for g in grads]
    total = ng.nn.utils.clip_grad_norm_(pairs, max_norm, norm_type=norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tparams, max_norm, norm_type=norm_type, foreach=False)
    assert abs(float(total) - ttotal.item()) < 1e-12
    for g, t in zip(grads, tparams):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=0, atol=1e-14)


def test_clip_grad_norm_on_a_model_arrays_and_float32():
    rng = np.random.default_rng(6)
    lin = ng.nn.Linear(4, 3)
    lin.dW[...] = rng.standard_normal(lin.dW.shape) * 10
    lin.db[...] = rng.standard_normal(lin.db.shape) * 10
    ng.optim.clip_grad_norm_(lin, 1.0)  # a model
    assert np.sqrt((lin.dW**2).sum() + (lin.db**2).sum()) <= 1.0 + 1e-6
    grads, tparams = grads_pair(rng, np.float32, scale=5.0)
    total = ng.optim.clip_grad_norm_(grads, 2.0)  # bare gradient arrays
    ttotal = torch.nn.utils.clip_grad_norm_(tparams, 2.0)
    assert total.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
    assert abs(float(total) - ttotal.item()) < 1e-4 * ttotal.item()
    for g, t in zip(grads, tparams):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_clip_grad_norm_nonfinite():
    g = np.array([1.0, np.nan])
    with pytest.raises(AnomalyError, match="non-finite|nan"):
        ng.nn.utils.clip_grad_norm_([g], 1.0, error_if_nonfinite=True)
    total = ng.nn.utils.clip_grad_norm_([np.array([1.0, np.inf])], 1.0)
    assert math.isinf(float(total))


def test_clip_grad_value_matches_torch():
    rng = np.random.default_rng(7)
    grads, tparams = grads_pair(rng, scale=2.0)
    pairs = [(np.zeros_like(g), g) for g in grads]
    ng.nn.utils.clip_grad_value_(pairs, 0.7)
    torch.nn.utils.clip_grad_value_(tparams, 0.7, foreach=False)
    for g, t in zip(grads, tparams):
        assert np.array_equal(g, t.grad.numpy())
    assert ng.optim.clip_grad_value_ is ng.nn.utils.clip_grad_value_


# -- GPU ----------------------------------------------------------------------------------------------------
def _cuda() -> bool:
    from new_grad.backends import cuda_available

    return cuda_available()


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda(), reason="needs CuPy and a CUDA GPU")
@pytest.mark.parametrize("kind,kw", [CASES[3], CASES[8], CASES[17], CASES[21]], ids=lambda v: str(v))
def test_cupy_arrays_follow_the_numpy_trajectory(kind, kw, tmp_path):
    import cupy as cp

    rng = np.random.default_rng(8)
    params = [rng.standard_normal(s) for s in SHAPES]
    grads = [np.zeros_like(p) for p in params]
    gparams = [cp.asarray(p) for p in params]
    ggrads = [cp.zeros_like(p) for p in gparams]
    cls = getattr(ng.optim, kind)
    opt, gopt = cls(list(zip(params, grads)), **kw), cls(list(zip(gparams, ggrads)), **kw)
    for _ in range(20):
        for g, gg in zip(grads, ggrads):
            g[...] = rng.standard_normal(g.shape)
            gg[...] = cp.asarray(g)
        ng.optim.clip_grad_norm_(grads, 1.0)
        ng.optim.clip_grad_norm_(ggrads, 1.0)
        opt.step()
        gopt.step()
    for p, gp in zip(params, gparams):
        assert isinstance(gp, cp.ndarray)
        np.testing.assert_allclose(cp.asnumpy(gp), p, rtol=0, atol=1e-10)
    ng.save(gopt.state_dict(), tmp_path / "g.npz")  # CuPy buffers are written from host copies
    fresh = cls(list(zip([p.copy() for p in gparams], [g.copy() for g in ggrads])), **kw)
    fresh.load_state_dict(ng.load(tmp_path / "g.npz"))  # and come back onto the GPU
    assert all(isinstance(v, cp.ndarray) for s in fresh.state.values() for v in s.values() if hasattr(v, "shape"))
