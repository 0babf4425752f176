"""nn.init: PyTorch's gains and fan modes, in place, reproducible with a generator."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from new_grad.nn import init


@pytest.mark.parametrize("name,param", [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None),
                                        ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2), ("selu", None)])
def test_gain_matches_torch(name, param):
    assert init.calculate_gain(name, param) == pytest.approx(torch.nn.init.calculate_gain(name, param))


def test_gain_rejects_unknown():
    with pytest.raises(ValueError, match="unsupported"):
        init.calculate_gain("swish")


@pytest.mark.parametrize("shape", [(5, 3), (8, 4, 3, 3), (6, 2, 5)])
def test_fans_match_torch(shape):
    a = np.empty(shape)
    assert init._calculate_fan_in_and_fan_out(a) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


def _bound_and_std(fn, shape, **kw):
    a = np.zeros(shape)
    out = fn(a, generator=np.random.default_rng(0), **kw)
    assert out is a
    return np.abs(a).max(), a.std(), a.mean()


def test_xavier():
    fan_in, fan_out = 3 * 9 * 10, 20 * 9
    bound = 2.0 * math.sqrt(6 / (fan_in + fan_out))
    m, s, mu = _bound_and_std(init.xavier_uniform_, (20, 30, 3, 3), gain=2.0)
    assert m <= bound and m > 0.99 * bound and s == pytest.approx(bound / math.sqrt(3), rel=0.02)
    _, s, mu = _bound_and_std(init.xavier_normal_, (200, 300))
    assert s == pytest.approx(math.sqrt(2 / 500), rel=0.02) and abs(mu) < 0.01


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
def test_kaiming(mode):
    shape = (64, 32, 3, 3)
    fan = 32 * 9 if mode == "fan_in" else 64 * 9
    m, s, _ = _bound_and_std(init.kaiming_uniform_, shape, mode=mode, nonlinearity="relu")
    bound = math.sqrt(2) * math.sqrt(3 / fan)
    assert m <= bound and m > 0.99 * bound
    _, s, _ = _bound_and_std(init.kaiming_normal_, shape, a=0.1, mode=mode)
    assert s == pytest.approx(math.sqrt(2 / 1.01) / math.sqrt(fan), rel=0.03)
    with pytest.raises(ValueError, match="fan_in"):
        init.kaiming_uniform_(np.zeros((2, 2)), mode="fan_avg")


def test_uniform_normal_constant_zeros_ones():
    a = np.zeros((100, 100), dtype=np.float32)
    init.uniform_(a, -2, 3, generator=np.random.default_rng(0))
    assert a.dtype == np.float32 and a.min() >= -2 and a.max() <= 3 and abs(a.mean() - 0.5) < 0.05
    init.normal_(a, 1.0, 0.5, generator=np.random.default_rng(0))
    assert abs(a.mean() - 1) < 0.02 and abs(a.std() - 0.5) < 0.02
    assert (init.constant_(a, 0.3) == np.float32(0.3)).all()
    assert not init.zeros_(a).any()
    assert (init.ones_(a) == 1).all()


@pytest.mark.parametrize("shape", [(4, 6), (6, 4), (3, 2, 2, 2)])
def test_orthogonal(shape):
    a = np.zeros(shape)
    init.orthogonal_(a, gain=2.0, generator=np.random.default_rng(0))
    flat = a.reshape(shape[0], -1)
    small = flat @ flat.T if flat.shape[0] <= flat.shape[1] else flat.T @ flat
    np.testing.assert_allclose(small, 4 * np.eye(small.shape[0]), atol=1e-12)


def test_generator_reproducible_and_global_seed_works():
    a, b = np.zeros((3, 4)), np.zeros((3, 4))
    init.xavier_uniform_(a, generator=np.random.default_rng(5))
    init.xavier_uniform_(b, generator=np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    np.random.seed(1)
    init.kaiming_normal_(a)
    np.random.seed(1)
    init.kaiming_normal_(b)
    np.testing.assert_array_equal(a, b)


def test_fan_needs_two_dimensions():
    with pytest.raises(ValueError, match="at least 2"):
        init.xavier_uniform_(np.zeros(3))
    with pytest.raises(ValueError, match="at least 2"):
        init.orthogonal_(np.zeros(3))
