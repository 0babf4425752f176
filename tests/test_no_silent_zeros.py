"""No gradient is lost in silence: each way a gradient used to vanish now differentiates or says so."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import new_grad as ng
from new_grad.errors import DtypeError, NoGradientError, NoGradientWarning, UntrackedViewWarning


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
