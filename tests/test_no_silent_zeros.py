"""No gradient is lost in silence: each way a gradient used to vanish now differentiates or says so."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import new_grad as ng
from new_grad.errors import (
    DtypeError,
    GradientError,
    NoGradientError,
    NoGradientWarning,
    TapeError,
    UnsupportedError,
    UntrackedViewWarning,
)
from new_grad.traced import TracingError


def _line_of(marker: str) -> int:
    with open(__file__) as f:
        for n, line in enumerate(f, 1):
            if line.rstrip().endswith(f"# {marker}"):
                return n
    raise AssertionError(marker)


def _untracked(caught) -> list:
    return [w for w in caught if issubclass(w.category, UntrackedViewWarning)]


# -- warnings point at the user's own line -------------------------------------------------------------


def test_untracked_view_warning_names_each_user_line():
    eng = ng.Autograd()
    x = np.random.randn(3, 2)
    with eng, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        h = ng.exp(x)
        ng.sum(h.T)  # mistake-1
        ng.sum(h[1:])  # mistake-2
        ng.sum(h.reshape(6))  # mistake-3
    got = [(w.filename, w.lineno) for w in _untracked(caught)]
    assert got == [(__file__, _line_of(f"mistake-{i}")) for i in (1, 2, 3)]


class _Transposer(ng.nn.Module):
    def forward(self, h):
        return ng.sum(h.T)  # mistake-in-module


def test_untracked_view_warning_inside_a_module_names_its_forward():
    eng = ng.Autograd()
    with eng, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        h = ng.exp(np.random.randn(3, 2))
        _Transposer(eng)(h)
    got = [(w.filename, w.lineno) for w in _untracked(caught)]
    assert got == [(__file__, _line_of("mistake-in-module"))]


def test_untracked_view_warning_inside_a_transform_names_the_function_line():
    eng = ng.Autograd()
    x0 = np.random.randn(2, 3)
    with eng, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        h = ng.exp(np.random.randn(3, 2))

        def f(x):
            return ng.sum(ng.multiply(x, h.T))  # mistake-in-transform

        ng.grad(f)(x0)
    got = [(w.filename, w.lineno) for w in _untracked(caught)]
    assert got == [(__file__, _line_of("mistake-in-transform"))]


# -- case: plain NumPy in a training step leaves the parameters without gradient ----------------------


def _mse_step(plain_numpy: bool):
    eng = ng.Autograd()
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 2))
    lin = ng.nn.Linear(3, 2, eng)
    crit = ng.nn.MSELoss(eng)
    opt = ng.optim.SGD(lin.parameters(), lr=0.1)
    with eng:
        out = lin(X) * 2.0 if plain_numpy else ng.multiply(lin(X), 2.0)
    crit(y, out)
    crit.backward()
    return opt


def test_optimizer_step_warns_naming_parameters_that_got_no_gradient():
    opt = _mse_step(plain_numpy=True)
    with pytest.warns(NoGradientWarning, match=r"none of the 2 parameters.*Linear\.W, Linear\.b") as rec:
        opt.step()  # step-without-gradient
    assert (rec[0].filename, rec[0].lineno) == (__file__, _line_of("step-without-gradient"))


def test_optimizer_step_is_quiet_when_every_parameter_got_a_gradient():
    opt = _mse_step(plain_numpy=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoGradientWarning)
        opt.step()


def test_optimizer_names_only_the_parameters_cut_off():
    eng = ng.Autograd()
    model = ng.nn.Sequential(ng.nn.Linear(3, 4), ng.nn.Linear(4, 2)).set_engine(eng)
    head = ng.nn.Linear(3, 2, eng)
    opt = ng.optim.Adam([*model.parameters(), *head.parameters()])
    x = np.random.randn(5, 3)
    with eng:
        loss = ng.sum(ng.add(model(x), np.tanh(head(x))))  # np.tanh: plain NumPy cuts the head off
    eng.backward(1)
    with pytest.warns(NoGradientWarning, match=r"2 of the 6 parameters got no gradient.*Linear\.W, Linear\.b\)"):
        opt.step()
    assert loss.shape == ()
    opt.check_gradients = "error"
    with pytest.raises(NoGradientError, match="Linear.W"):
        opt.step()


def test_frozen_parameters_are_not_reported():
    eng = ng.Autograd()
    frozen, trained = ng.nn.Linear(3, 4, eng), ng.nn.Linear(4, 2, eng)
    ng.constant(frozen.W), ng.constant(frozen.b)  # marked constant: no gradient is ever computed
    opts = [ng.optim.SGD(trained.parameters(), lr=0.1), ng.optim.SGD(list(frozen.parameters()) + list(trained.parameters()))]
    with eng:
        loss = ng.sum(trained(frozen(np.random.randn(5, 3))))
    eng.backward(1)
    assert loss.shape == () and not frozen.dW.any()
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoGradientWarning)
        for opt in opts:
            opt.step()


def test_course_style_model_names_its_layers():
    class Layer:
        def __init__(self):
            self.W, self.dW = np.ones((2, 2)), np.zeros((2, 2))
            self.b, self.db = np.zeros(2), np.ones(2)

    class Model:
        layers = [Layer()]

    with pytest.warns(NoGradientWarning, match=r"layers\[0\]\.W \(Layer\)"):
        ng.optim.SGD(Model(), lr=0.1).step()


def test_train_command_makes_a_missing_gradient_an_error():
    from new_grad.cli.train import make_optimizer

    cfg = {"optimizer": "sgd", "lr": 0.1, "weight_decay": 0.0, "momentum": 0.0}
    assert make_optimizer(cfg, ng.nn.Linear(3, 2)).check_gradients == "error"


# -- case: integer arrays where a parameter is expected --------------------------------------------------


def test_integer_parameters_are_a_dtype_error():
    lin = ng.nn.Linear(3, 2)
    with pytest.raises(DtypeError, match=r"Linear\.W .*integer"):
        lin.W = np.ones((2, 3), dtype=int)
    with pytest.raises(DtypeError, match="integer"):
        lin.register_parameter("V", np.ones(3, dtype=bool))
    with pytest.raises(DtypeError, match="integer"):
        ng.optim.SGD([(np.zeros(2, int), np.zeros(2))], lr=0.1)
    with pytest.raises(DtypeError, match="float"):
        ng.bind_gradient(np.zeros(2, int), np.zeros(2))


def test_gradient_of_an_integer_array_is_a_dtype_error_not_unknown():
    eng = ng.Autograd()
    x, W_int = np.random.randn(4, 3), np.ones((3, 2), dtype=np.int64)
    with eng:
        ng.sum(ng.matmul(x, W_int))
    eng.backward(1)
    with pytest.raises(DtypeError, match="integer/boolean dtype, so it never gets a gradient"):
        eng.memory_buffer.get_param(W_int)


# -- plain NumPy inside the transforms is recorded, or refused by name -----------------------------------


def _tgrad(fn, *arrays):
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    return [g.numpy() for g in torch.autograd.grad(fn(*ts), ts)]


def test_plain_numpy_power_and_sum_differentiate():
    np.testing.assert_allclose(ng.grad(lambda x: np.sum(x**2))(np.ones(3)), 2 * np.ones(3))


def test_plain_number_added_to_a_recorded_op_differentiates():
    np.testing.assert_allclose(ng.grad(lambda x: ng.sum(ng.exp(x) + 1.0))(np.ones(3)), np.exp(np.ones(3)))


def test_autograd_style_numpy_code_matches_torch():
    rng = np.random.default_rng(1)
    W, b, X = rng.standard_normal((4, 3)), rng.standard_normal(3), rng.standard_normal((5, 4))

    def loss_np(W, b):
        h = np.tanh(np.dot(X, W) + b)
        z = h.T[1:].reshape(-1) * 0.5 - 1.0 / (1.0 + np.exp(-h[:, 0].sum()))
        return np.mean(z**2) + (W * W).sum() / W.shape[0] + np.max(np.abs(b)) + np.linalg.norm(W @ W.T)

    def loss_t(W, b):
        h = torch.tanh(X_t @ W + b)
        z = h.T[1:].reshape(-1) * 0.5 - 1.0 / (1.0 + torch.exp(-h[:, 0].sum()))
        return torch.mean(z**2) + (W * W).sum() / W.shape[0] + torch.max(torch.abs(b)) + torch.linalg.norm(W @ W.T)

    X_t = torch.tensor(X)
    gW, gb = ng.grad(loss_np, argnums=(0, 1))(W, b)
    tW, tb = _tgrad(loss_t, W, b)
    np.testing.assert_allclose(gW, tW, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gb, tb, rtol=1e-10, atol=1e-12)


def test_numpy_functions_that_return_several_arrays_return_them_all_on_traced_values():
    """np.modf and np.linalg.slogdet return pairs: a traced call that returned one part would unpack silently
    (a 2-element array, a batch of two matrices) into the wrong values."""
    x = np.array([1.25, -2.5])

    def parts(z):
        frac, whole = np.modf(z)
        return np.sum(frac * 10.0 + whole)

    value, g = ng.value_and_grad(parts)(x)
    assert float(value) == float(parts(x))
    np.testing.assert_array_equal(g, [10.0, 10.0])
    A = np.random.default_rng(3).standard_normal((2, 3, 3)) + 3 * np.eye(3)

    def logdet(a):
        sign, logabsdet = np.linalg.slogdet(a)
        return np.sum(sign * logabsdet)

    value, g = ng.value_and_grad(logdet)(A)
    np.testing.assert_allclose(value, logdet(A), rtol=1e-12)
    t = torch.tensor(A, requires_grad=True)
    sign, logabsdet = torch.linalg.slogdet(t)
    np.testing.assert_allclose(g, torch.autograd.grad((sign * logabsdet).sum(), t)[0].numpy(), rtol=1e-10)


def test_modules_and_numpy_mix_inside_a_transform():
    rng = np.random.default_rng(2)
    lin = ng.nn.Linear(3, 2)
    X, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))

    def loss(x):
        return np.mean((lin(x) * 2.0 - y) ** 2)

    lt = torch.nn.functional.linear
    expected = _tgrad(lambda x: torch.mean((lt(x, torch.tensor(lin.W), torch.tensor(lin.b)) * 2.0 - torch.tensor(y)) ** 2), X)
    np.testing.assert_allclose(ng.grad(loss)(X), expected[0], rtol=1e-10, atol=1e-12)
    assert not lin.dW.any()  # transforms never touch a module's gradient arrays


def test_unsupported_numpy_raises_naming_the_function_and_the_op_to_use():
    x = np.linspace(0.1, 1.0, 4)
    with pytest.raises(UnsupportedError, match=r"numpy\.unique .*new_grad\.sort"):
        ng.grad(lambda x: np.sum(np.unique(x)))(x)
    with pytest.raises(UnsupportedError, match=r"numpy\.fft\.fft .*new_grad's ops"):
        ng.grad(lambda x: np.sum(np.fft.fft(x).real))(x)


def test_fortran_order_is_refused_by_every_reshaping_method():
    x = np.arange(6.0).reshape(2, 3)
    calls = {"reshape": lambda x: x.reshape((3, 2), order="F"), "ravel": lambda x: x.ravel(order="F"),
             "flatten": lambda x: x.flatten("F")}
    for method, fortran in calls.items():
        with pytest.raises(UnsupportedError, match=rf"x\.{method}\(order='F'\).*x\.T\.ravel\(\)"):
            ng.grad(lambda x, fortran=fortran: np.sum(fortran(x)))(x)
    np.testing.assert_array_equal(ng.grad(lambda x: np.sum(x.T.ravel() * np.arange(6.0)))(x), np.arange(6.0).reshape(3, 2).T)


def test_conversions_that_would_drop_the_gradient_raise():
    x = np.linspace(0.1, 1.0, 4)
    for f, match in [
        (lambda x: np.sum(np.asarray(x)), "converted to a plain NumPy array"),
        (lambda x: np.sum(np.array([x[0], x[1]])), "converted to a plain NumPy array"),
        (lambda x: ng.sum(x) * float(x[0]), r"float\(x\)"),
        (lambda x: ng.sum(x) * x[0].item(), r"x\.item\(\)"),
    ]:
        with pytest.raises(TracingError, match=match):
            ng.grad(f)(x)

    def assign(x):
        x[0] = 1.0
        return ng.sum(x)

    with pytest.raises(TracingError, match="index_update"):
        ng.grad(assign)(x)
    with pytest.raises(TracingError, match="out="):
        ng.grad(lambda x: ng.sum(np.exp(x, out=np.empty(4))))(x)


def test_a_traced_value_that_escapes_its_transform_is_refused():
    kept = []

    def f(x):
        kept.append(x)
        return ng.sum(x)

    ng.grad(f)(np.ones(2))
    with pytest.raises(TracingError, match="after that transform returned"):
        np.sum(kept[0] * 2)


def test_detach_is_the_explicit_constant():
    x = np.array([1.0, 2.0])
    g = ng.grad(lambda x: ng.sum(x * x.detach()))(x)  # d/dx Σ x·c = c
    np.testing.assert_allclose(g, x)


# -- an output that does not depend on the inputs ---------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda f, x: ng.grad(f)(x),
        lambda f, x: ng.value_and_grad(f)(x),
        lambda f, x: ng.vjp(f, x),
        lambda f, x: ng.jvp(f, (x,), (x,)),
        lambda f, x: ng.jacobian(f)(x),
        lambda f, x: ng.hessian(f)(x),
        lambda f, x: ng.hvp(f, x, x),
    ],
    ids=["grad", "value_and_grad", "vjp", "jvp", "jacobian", "hessian", "hvp"],
)
def test_output_independent_of_the_inputs_raises_unless_allowed(call):
    w = np.array([1.0, -2.0])
    with pytest.raises(GradientError, match="allow_unused=True"):
        call(lambda x: np.sum(w * 3.0), np.ones(2))
    with pytest.raises(GradientError, match="allow_unused=True"):
        call(lambda x: np.sum(np.where(x > 0, w, 0.0)), np.ones(2))  # only through a comparison


def _through_no_grad(x):
    with ng.no_grad():
        c = x * 2.0
    return np.sum(c)


def test_a_value_computed_under_no_grad_is_a_constant_like_detach():
    """no_grad() inside the function cuts the gradient as x.detach() does: an output only through it raises."""
    x = np.array([1.0, -2.0])
    with pytest.raises(GradientError, match="allow_unused=True"):
        ng.grad(_through_no_grad)(x)
    np.testing.assert_array_equal(ng.grad(_through_no_grad, allow_unused=True)(x), np.zeros(2))
    np.testing.assert_allclose(ng.grad(lambda x: _through_no_grad(x) * np.sum(x))(x), np.full(2, -2.0))


def test_allow_unused_gives_zeros():
    w = np.array([1.0, -2.0])
    np.testing.assert_array_equal(ng.grad(lambda x: np.sum(w), allow_unused=True)(np.ones(2)), np.zeros(2))
    np.testing.assert_array_equal(ng.hessian(lambda x: np.sum(x * w), allow_unused=True)(np.ones(2)), np.zeros((2, 2)))


# -- jvp and vjp pullbacks differentiate wherever they are called -------------------------------------------


def test_grad_of_a_jvp_tangent_output_matches_torch_func():
    x, t0 = np.array([0.3, -1.2, 2.0]), np.array([1.0, 0.5, -2.0])
    got = ng.grad(lambda t: ng.sum(ng.jvp(ng.sin, (x,), (t,))[1]))(t0)
    want = torch.func.grad(lambda t: torch.func.jvp(torch.sin, (torch.tensor(x),), (t,))[1].sum())(torch.tensor(t0))
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-12)
    np.testing.assert_allclose(got, np.cos(x), rtol=1e-12)


def test_grad_of_jvp_primal_and_tangent_outputs_with_respect_to_the_primal():
    x0, t = np.array([0.3, -1.2, 2.0]), np.array([1.0, 0.5, -2.0])

    def f_ng(x):
        return np.tanh(x) * x

    def f_t(x):
        return torch.tanh(x) * x

    for k in (0, 1):
        got = ng.grad(lambda x, k=k: ng.sum(ng.jvp(f_ng, (x,), (t,))[k] ** 2))(x0)
        want = torch.func.grad(lambda x, k=k: (torch.func.jvp(f_t, (x,), (torch.tensor(t),))[k] ** 2).sum())(torch.tensor(x0))
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-10, atol=1e-12)


def test_jvp_of_jvp_third_order_matches_torch_func():
    x0, t = np.array([0.3, -1.2]), np.array([1.0, 0.5])

    def f_ng(x):
        return np.sum(np.sin(x) * x**2)

    def f_t(x):
        return (torch.sin(x) * x**2).sum()

    def d2_ng(x):
        return ng.jvp(lambda y: ng.jvp(f_ng, (y,), (t,))[1], (x,), (t,))[1]

    def d2_t(x):
        tt = torch.tensor(t)
        return torch.func.jvp(lambda y: torch.func.jvp(f_t, (y,), (tt,))[1], (x,), (tt,))[1]

    np.testing.assert_allclose(d2_ng(x0), d2_t(torch.tensor(x0)).numpy(), rtol=1e-10)
    got = ng.grad(d2_ng)(x0)  # third order
    want = torch.func.grad(d2_t)(torch.tensor(x0))
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-10, atol=1e-12)


def test_top_level_pullback_called_inside_another_transform_matches_torch_func():
    rng = np.random.default_rng(3)
    A, x, w, u0 = rng.standard_normal((3, 2)), rng.standard_normal(2), rng.standard_normal(2), rng.standard_normal(3)

    def f_ng(x):
        return np.tanh(A @ x)

    def f_t(x):
        return torch.tanh(torch.tensor(A) @ x)

    _, pb = ng.vjp(f_ng, x)
    got = ng.grad(lambda u: ng.sum(ng.multiply(pb(u)[0], w)))(u0)
    _, pb_t = torch.func.vjp(f_t, torch.tensor(x))
    want = torch.func.grad(lambda u: (pb_t(u)[0] * torch.tensor(w)).sum())(torch.tensor(u0))
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-12)
    J = (1 - np.tanh(A @ x) ** 2)[:, None] * A
    np.testing.assert_allclose(got, J @ w, rtol=1e-12)
    # and to second order: the pullback of a nested vjp, differentiated through the primal too
    got2 = ng.grad(lambda x: ng.sum(ng.vjp(f_ng, x)[1](np.sin(x @ A.T))[0] ** 2))(x)
    want2 = torch.func.grad(lambda x: (torch.func.vjp(f_t, x)[1](torch.sin(x @ torch.tensor(A).T))[0] ** 2).sum())(torch.tensor(x))
    np.testing.assert_allclose(got2, want2.numpy(), rtol=1e-10, atol=1e-12)


# -- the raw tape: backward starts from the loss, or refuses one that is not on the tape ---------------------


def test_backward_from_a_loss_finished_in_plain_numpy_is_refused():
    eng = ng.Autograd()
    x = np.random.randn(4)
    with eng:
        h = ng.tanh(x)
    loss = np.sum(h**2)  # plain NumPy after the last recorded op
    with pytest.raises(TapeError, match="not an output recorded on this engine's tape"):
        eng.backward(1, output=loss)


def test_loss_backward_starts_from_the_loss_not_the_last_recorded_op():
    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    eng = ng.Autograd()
    lin, crit = ng.nn.Linear(3, 2, eng), ng.nn.MSELoss(eng)
    with eng:
        out = lin(X)
        crit(y, out)
        ng.sum(ng.exp(out))  # a metric recorded after the loss
    crit.backward()
    Wt = torch.tensor(lin.W, requires_grad=True)
    torch.mean((torch.tensor(X) @ Wt.T + torch.tensor(lin.b) - torch.tensor(y)) ** 2).backward()
    np.testing.assert_allclose(lin.dW, Wt.grad.numpy(), rtol=1e-12)
