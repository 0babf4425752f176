"""The same code on CuPy arrays: every op, every layer, the optimisers and training, against NumPy.

Marked ``gpu`` and skipped where CuPy or a CUDA GPU is absent (``benchmarks/gpu_check.sh``
runs them on a GPU machine). The same checks run in CI on the CPU stand-in for a device
(``test_standin.py``), which catches NumPy calls hard-wired where the input's namespace belongs;
``NEW_GRAD_TEST_DEVICE=standin pytest -m gpu`` runs this file itself there (a rehearsal without a GPU).
Tolerances: float64 within 1e-10, float32 within 1e-5 (relative).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import new_grad as ng
from new_grad import nn
from new_grad.backends import cuda_available, device_of, to_device, to_numpy
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

DEVICE = os.environ.get("NEW_GRAD_TEST_DEVICE", "gpu")
DTYPES = [np.float64, np.float32]
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(DEVICE == "gpu" and not cuda_available(), reason="needs CuPy and a CUDA GPU"),
]


def test_cpu_moves_are_no_ops():
    x = np.ones(3)
    assert to_device(x, "cpu") is x
    layer = ng.nn.Linear(3, 2)
    W = layer.W
    assert layer.to("cpu") is layer and layer.W is W
    with pytest.raises(ng.NewGradError, match="unknown device"):
        to_device(x, "tpu")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_op_on_gpu_matches_numpy(case, dtype, data):
    check_case_on_device(case, data, DEVICE, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", LAYER_CASES, ids=lambda c: c.name)
def test_layer_on_gpu_matches_numpy(case, dtype):
    check_layer_on_device(case, DEVICE, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kind,kw", OPTIMISER_CASES, ids=lambda v: str(v))
def test_optimiser_on_gpu_follows_numpy(kind, kw, dtype, tmp_path):
    check_optimiser_on_device(kind, kw, DEVICE, dtype, tmp_path)


def test_training_on_gpu_matches_numpy():
    np.testing.assert_allclose(training_losses(DEVICE), training_losses("cpu"), rtol=1e-10)
    np.testing.assert_allclose(training_losses(DEVICE, np.float32), training_losses("cpu", np.float32), rtol=1e-5)


def test_replay_on_gpu_matches_numpy():
    np.testing.assert_allclose(replay_losses(DEVICE), replay_losses("cpu"), rtol=1e-10)
    np.testing.assert_allclose(replay_losses(DEVICE, np.float32), replay_losses("cpu", np.float32), rtol=1e-5)


def test_cli_train_on_gpu_matches_cpu(tmp_path):
    cpu, dev = cli_metrics(tmp_path, DEVICE, 2)
    for key in ("train_loss", "val_loss", "train_error", "val_error"):
        np.testing.assert_allclose(dev["epochs"][-1][key], cpu["epochs"][-1][key], rtol=1e-8)
    np.testing.assert_allclose(dev["test_loss"], cpu["test_loss"], rtol=1e-8)


def test_host_and_device_arrays_in_one_op_is_a_clear_error():
    for op in (lambda a, b: ng.add(a, b), lambda a, b: ng.matmul(b, ng.transpose(a)),
               lambda a, b: ng.concatenate([b, a]), lambda a, b: ng.einsum("ij,ij->i", a, b)):
        with pytest.raises(DeviceError, match=rf"two devices \(cpu, {DEVICE}\)"):
            op(np.ones((2, 3)), to_device(np.ones((2, 3)), DEVICE))
    model = nn.Linear(3, 2).to(DEVICE)
    with pytest.raises(DeviceError, match="model.to"):
        model(np.ones((4, 3)))


def test_module_to_gpu_and_back():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    state = model.state_dict()
    model.to(DEVICE)
    assert all(device_of(p) == DEVICE and device_of(g) == DEVICE for p, g in model.parameters())
    assert all(device_of(b) == DEVICE for b in model.buffers())
    model.to("cpu")
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(to_numpy(v), state[k])
