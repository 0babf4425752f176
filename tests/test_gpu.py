"""The same code on CuPy arrays (skipped where there is no GPU)."""

from __future__ import annotations

import numpy as np
import pytest

import new_grad as ng
from new_grad.backends import cuda_available, module_to, to_device

gpu = pytest.mark.skipif(not cuda_available(), reason="needs CuPy and a CUDA GPU")


def test_cpu_moves_are_no_ops():
    x = np.ones(3)
    assert to_device(x, "cpu") is x
    layer = ng.nn.Linear(3, 2)
    W = layer.W
    module_to(layer, "cpu")
    assert layer.W is W
    with pytest.raises(ng.NewGradError, match="unknown device"):
        to_device(x, "tpu")


@pytest.mark.gpu
@gpu
def test_mlp_step_on_gpu_matches_cpu():
    import cupy as cp

    np.random.seed(0)
    eng_c, eng_g = ng.Autograd(), ng.Autograd()
    cpu = [ng.nn.Linear(8, 16, eng_c), ng.nn.Tanh(eng_c), ng.nn.Linear(16, 4, eng_c)]
    np.random.seed(0)
    gpu_layers = [module_to(m, "gpu") for m in (ng.nn.Linear(8, 16, eng_g), ng.nn.Tanh(eng_g), ng.nn.Linear(16, 4, eng_g))]
    for m in gpu_layers:
        m.set_engine(eng_g)
    x = np.random.randn(5, 8)
    y = np.eye(4)[np.random.randint(0, 4, 5)]
    losses = []
    for layers, eng, xp in ((cpu, eng_c, np), (gpu_layers, eng_g, cp)):
        h = ng.constant(xp.asarray(x))
        for m in layers:
            h = m(h)
        loss_fn = ng.nn.SoftmaxCrossEntropy(eng)
        losses.append(float(loss_fn(ng.constant(xp.asarray(y)), h)[0]))
        loss_fn.backward()
    assert abs(losses[0] - losses[1]) < 1e-10
    np.testing.assert_allclose(cp.asnumpy(gpu_layers[0].dW), cpu[0].dW, rtol=1e-10, atol=1e-12)
