"""Every op, layer, optimiser and a training run on the CPU stand-in for a device.

The stand-in (``new_grad.backends.standin``) computes with NumPy behind an array type
plain NumPy refuses, as CuPy's is: a ``np.`` call hard-wired where the input's
namespace belongs fails here, without a GPU. Results must be arrays of the stand-in
device equal to the CPU's.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import new_grad as ng
from new_grad import nn
from new_grad.backends import device_of, to_device, to_numpy
from new_grad.errors import DeviceError

from .cases import ALL_CASES
from .devcheck import (
    LAYER_CASES,
    OPTIMISER_CASES,
    check_layer_on_device,
    check_optimiser_on_device,
    cli_metrics,
    replay_losses,
    training_losses,
)
from .opcheck import check_case_on_device

DEVICE = "standin"


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_op_on_standin_matches_cpu(case, data):
    check_case_on_device(case, data, DEVICE)


@pytest.mark.parametrize("case", LAYER_CASES, ids=lambda c: c.name)
def test_layer_on_standin_matches_cpu(case):
    check_layer_on_device(case, DEVICE)


def test_every_layer_has_a_device_case():
    named = {c.name.split("-")[0] for c in LAYER_CASES}
    layers = {n for n in dir(nn) if isinstance(getattr(nn, n), type) and issubclass(getattr(nn, n), nn.Module)}
    missing = sorted(layers - named - {"Module", "Activation"})
    assert not missing, f"layers without a device case in tests/devcheck.py: {missing}"


@pytest.mark.parametrize("kind,kw", OPTIMISER_CASES, ids=lambda v: str(v))
def test_optimiser_on_standin_follows_cpu(kind, kw, tmp_path):
    check_optimiser_on_device(kind, kw, DEVICE, np.float64, tmp_path)


def test_training_on_standin_matches_cpu():
    cpu, dev = training_losses("cpu"), training_losses(DEVICE)
    np.testing.assert_allclose(dev, cpu, rtol=1e-10)


def test_replay_on_standin_matches_cpu():
    np.testing.assert_allclose(replay_losses(DEVICE), replay_losses("cpu"), rtol=1e-10)


def test_cli_train_on_standin_matches_cpu(tmp_path):
    cpu, dev = cli_metrics(tmp_path, DEVICE, 1)
    assert dev["config"]["device"] == DEVICE
    for key in ("train_loss", "val_loss", "train_error"):
        np.testing.assert_allclose(dev["epochs"][-1][key], cpu["epochs"][-1][key], rtol=1e-10)
    np.testing.assert_allclose(dev["test_loss"], cpu["test_loss"], rtol=1e-10)


# -- the stand-in itself, devices meeting, Module.to ------------------------------------------------------


def test_standin_refuses_plain_numpy():
    x = to_device(np.arange(6.0).reshape(2, 3), DEVICE)
    assert device_of(x) == DEVICE and device_of(np.ones(2)) == "cpu" and device_of(1.0) is None
    xp = ng.namespace(x)
    assert device_of(xp.exp(x)) == DEVICE and device_of(x.sum()) == DEVICE  # reductions: 0-d arrays, like CuPy
    for hard_wired in (lambda: np.exp(x), lambda: np.asarray(x), lambda: np.concatenate([x, x]),
                       lambda: x + np.ones(3), lambda: np.ones(3) * x, lambda: xp.where(np.ones(3) > 0, x, x)):
        with pytest.raises(TypeError):
            hard_wired()
    with pytest.raises(AttributeError, match="CuPy's namespace has no 'errstate'"):
        xp.errstate  # noqa: B018 - NumPy has it, CuPy has not
    assert np.shape(x) == (2, 3) and np.ndim(x) == 2 and np.result_type(x, np.float32) == np.float64  # as CuPy
    np.testing.assert_array_equal(to_numpy(x * 2), np.arange(6.0).reshape(2, 3) * 2)
    assert x.T.base is x and x[1:].base is x


@pytest.mark.parametrize("op", [
    lambda a, b: ng.add(a, b), lambda a, b: ng.matmul(a, ng.transpose(b)), lambda a, b: ng.maximum(b, a),
    lambda a, b: ng.concatenate([a, b]), lambda a, b: ng.where(a > 0, a, b), lambda a, b: ng.einsum("ij,ij->i", a, b),
    lambda a, b: ng.stack([b, a]),
], ids=["add", "matmul", "maximum", "concatenate", "where", "einsum", "stack"])
def test_two_devices_in_one_op_is_a_clear_error(op):
    a = np.ones((2, 3))
    b = to_device(np.ones((2, 3)), DEVICE)
    with pytest.raises(DeviceError, match=r"two devices \(cpu, standin\).*to_device"):
        with ng.Autograd():
            op(a, b)


def test_two_devices_error_names_the_op_and_shapes():
    with pytest.raises(DeviceError, match=r"add\(cpu \(3,\) float64, standin \(2, 3\) float64\)"):
        ng.add(np.ones(3), to_device(np.ones((2, 3)), DEVICE))


def test_model_on_device_with_host_batch_is_a_clear_error():
    model = nn.Sequential(nn.Linear(3, 2)).to(DEVICE)
    with pytest.raises(DeviceError, match="model.to"):
        model(np.ones((4, 3)))


def test_module_to_moves_parameters_gradients_and_buffers():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 3))
    tied = nn.Sequential(model, nn.Linear(3, 3))
    state = {k: v.copy() for k, v in tied.state_dict().items()}
    assert tied.to(DEVICE) is tied
    for _, (p, g) in tied.named_parameters():
        assert device_of(p) == DEVICE and device_of(g) == DEVICE
    assert all(device_of(b) == DEVICE for b in tied.buffers())
    for k, v in tied.state_dict().items():
        np.testing.assert_array_equal(to_numpy(v), state[k])
    e = ng.Autograd()  # the gradients are still bound: backward lands in the moved dW
    tied.set_engine(e)
    with e:
        # rows that differ, weighted differently: the plain sum of a batch-normalised output does not depend
        # on its input, so its gradient would be zero or rounding noise
        rng = np.random.default_rng(0)
        x, weights = (to_device(rng.standard_normal(shape), DEVICE) for shape in ((5, 3), (5, 1)))
        out = ng.sum(ng.multiply(tied(x), weights))
    e.backward(1.0)
    assert float(to_numpy(abs(model[0].dW).sum())) > 0
    tied.to("cpu")
    assert all(type(p) is np.ndarray and type(g) is np.ndarray for p, g in tied.parameters())
    with pytest.raises(DeviceError, match="unknown device"):
        tied.to("tpu")
    del out


def test_module_to_keeps_shared_parameters_shared():
    a = nn.Linear(3, 3)
    model = nn.Sequential(a, nn.Tanh(), a).to(DEVICE)
    assert model[0].W is model[2].W and model[0].dW is model[2].dW


def test_gpu_benchmarks_rehearse_on_standin(tmp_path):
    from benchmarks.gpu import main

    assert main(["--device", DEVICE, "--quick", "--rounds", "1", "--out", str(tmp_path)]) == 0
    report = (tmp_path / "gpu_bench.md").read_text()
    assert "MLP 784-256-256-10" in report and "PyTorch eager" in report and "error" not in report


def test_gpu_check_script_parses():
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
