"""The engine off the paved road: threads, tied weights, two engines, mutation, aliasing, misuse."""

from __future__ import annotations

import sys
import threading
import warnings

import numpy as np
import pytest
import torch

import new_grad as ng
from new_grad.errors import AnomalyError, EmptyTapeError, GradientError, TapeError, TapeGrowthWarning

# -- threads ------------------------------------------------------------------------------------------


def test_each_thread_has_its_own_active_engine():
    """A enters `with e1`, then B enters `with e2`; A's ops must still land on e1."""
    e1, e2 = ng.Autograd(), ng.Autograd()
    x = np.array([1.0, 2.0, 3.0])
    a_in, b_in, b_done = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def thread_a() -> None:
        with e1:
            a_in.set()
            b_in.wait(5)
            seen["a"] = ng.multiply(x, x)
        b_done.wait(5)

    def thread_b() -> None:
        a_in.wait(5)
        with e2:
            b_in.set()
            b_done.set()

    ta, tb = threading.Thread(target=thread_a), threading.Thread(target=thread_b)
    ta.start()
    tb.start()
    ta.join(10)
    tb.join(10)
    assert len(e1.operation_list) == 1 and e1.operation_list[0].output is seen["a"]
    assert e2.operation_list == []
    assert ng.autograd_engine.active_engine() is None  # nothing left behind in this thread


def _train_loop(seed: int, steps: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(4, 3))
    x = ng.constant(rng.normal(size=(5, 4)))
    grads = []
    for _ in range(steps):
        eng = ng.Autograd()
        with eng:
            t = ng.tanh(ng.matmul(x, w))
            y = ng.sum(ng.multiply(t, t))
        eng.backward(1.0, output=y)
        g = eng.memory_buffer.get_param(w)
        w = w - 0.01 * g
        grads.append(g.sum())
    return np.array(grads)


def test_concurrent_training_loops_equal_their_single_threaded_results():
    steps = 150
    expected = [_train_loop(s, steps) for s in range(4)]
    results: dict[int, np.ndarray] = {}
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=lambda s=s: results.__setitem__(s, _train_loop(s, steps))) for s in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        sys.setswitchinterval(old)
    for s in range(4):
        np.testing.assert_array_equal(results[s], expected[s])


# -- tied weights -------------------------------------------------------------------------------------


def test_tied_weights_get_one_summed_gradient_and_one_update():
    np.random.seed(0)
    l1, l2 = ng.nn.Linear(3, 3), ng.nn.Linear(3, 3)
    l2.W = l1.W
    model = ng.nn.Sequential(l1, ng.nn.Tanh(), l2)
    x = np.random.randn(4, 3)
    eng = ng.Autograd()
    with eng:
        out = model(ng.constant(x))
        loss = ng.sum(ng.multiply(out, out))
    eng.backward(1.0, output=loss)

    W = torch.tensor(l1.W, requires_grad=True)
    b1, b2 = torch.tensor(l1.b), torch.tensor(l2.b)
    out = torch.tanh(torch.tensor(x) @ W.T + b1) @ W.T + b2
    (out**2).sum().backward()
    assert l1.dW is l2.dW
    np.testing.assert_allclose(l1.dW, W.grad.numpy(), rtol=1e-12)

    pairs = list(model.parameters())
    assert sum(p is l1.W for p, _ in pairs) == 1  # the optimiser sees the shared parameter once
    before = l1.W.copy()
    ng.optim.SGD(model.parameters(), lr=0.1).step()
    np.testing.assert_allclose(l1.W, before - 0.1 * W.grad.numpy(), rtol=1e-12)


# -- two engines --------------------------------------------------------------------------------------


def test_the_active_engine_wins_over_a_module_s_own():
    e1, e2 = ng.Autograd(), ng.Autograd()
    layer = ng.nn.Linear(3, 2, e1)
    x = ng.constant(np.ones((4, 3)))
    with e2:
        y = ng.sum(layer(x))
    assert e1.operation_list == []
    e2.backward(1.0, output=y)
    np.testing.assert_allclose(layer.dW, np.full((2, 3), 4.0))
    with pytest.raises(EmptyTapeError):  # the other engine has nothing: impossible to miss
        e1.backward(1)


def test_a_module_with_its_own_engine_records_there_when_none_is_active():
    e1 = ng.Autograd()
    layer = ng.nn.Linear(3, 2, e1)
    layer(ng.constant(np.ones((4, 3))))
    assert len(e1.operation_list) == 1


# -- mutation between forward and backward ------------------------------------------------------------


def test_anomaly_mode_detects_an_input_modified_in_place():
    x = np.array([1.0, 2.0, 3.0])
    eng = ng.Autograd(detect_anomaly=True)
    with eng:
        y = ng.multiply(x, x)
    x += 1
    with pytest.raises(AnomalyError, match="modified in place"):
        eng.backward(1.0, output=y)


def test_an_optimiser_step_before_backward_is_an_error():
    np.random.seed(1)
    layer = ng.nn.Linear(3, 2)
    opt = ng.optim.SGD(layer.parameters(), lr=0.1)
    eng = ng.Autograd()
    with eng:
        loss = ng.sum(layer(ng.constant(np.ones((4, 3)))))
    opt.step()
    with pytest.raises(GradientError, match="modified in place"):
        eng.backward(1.0, output=loss)


def test_the_usual_loop_is_not_a_false_alarm():
    np.random.seed(2)
    layer = ng.nn.Linear(3, 2)
    opt = ng.optim.SGD(layer.parameters(), lr=0.1)
    eng = ng.Autograd()
    for _ in range(3):
        with eng:
            loss = ng.sum(ng.tanh(layer(ng.constant(np.ones((4, 3))))))
        opt.zero_grad()
        eng.backward(1.0, output=loss)
        opt.step()
        eng.zero_grad()


# -- aliasing -----------------------------------------------------------------------------------------


def test_gradients_never_share_memory_with_each_other_or_the_divergence():
    a, b = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    d = np.array([1.0, 1.0])
    eng = ng.Autograd()
    with eng:
        ng.add(a, b)
    eng.backward(d)
    ga, gb = eng.memory_buffer.get_param(a), eng.memory_buffer.get_param(b)
    assert not np.shares_memory(ga, gb)
    assert not np.shares_memory(ga, d) and not np.shares_memory(gb, d)
    ga *= 10
    np.testing.assert_array_equal(gb, [1.0, 1.0])
    np.testing.assert_array_equal(d, [1.0, 1.0])


# -- misuse -------------------------------------------------------------------------------------------


def test_backward_none_is_an_error():
    x = np.ones(3)
    eng = ng.Autograd()
    with eng:
        ng.exp(x)
    with pytest.raises(GradientError, match="None"):
        eng.backward(None)


def test_anomaly_mode_checks_gradients_added_into_a_bound_gradient():
    W, dW = np.ones(3), np.zeros(3)
    eng = ng.Autograd(detect_anomaly=True)
    eng.add_operation([W], W * 2, [dW], lambda g, w: (g * np.nan,))  # course style: straight into dW
    with pytest.raises(AnomalyError, match="gradient"):
        eng.backward(1.0)
    assert not np.isnan(dW).any()


def test_a_tape_that_keeps_growing_across_retained_backwards_warns_once():
    w = np.array([1.0, 2.0])
    eng = ng.Autograd()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(40):
            with eng:
                y = ng.sum(ng.multiply(w, w))
            eng.backward(1.0, retain_graph=True, output=y)
    growth = [w for w in caught if issubclass(w.category, TapeGrowthWarning)]
    assert len(growth) == 1 and "zero_grad" in str(growth[0].message)


def test_retained_backwards_with_zero_grad_do_not_warn():
    w = np.array([1.0, 2.0])
    eng = ng.Autograd()
    with warnings.catch_warnings():
        warnings.simplefilter("error", TapeGrowthWarning)
        for _ in range(40):
            with eng:
                y = ng.sum(ng.multiply(w, w))
            eng.backward(1.0, retain_graph=True, output=y)
            eng.zero_grad()


# -- starting backward from a named output ------------------------------------------------------------


def test_backward_from_a_named_output():
    x = np.array([1.0, 2.0])
    eng = ng.Autograd()
    with eng:
        y = ng.sum(ng.multiply(x, x))
        ng.exp(y)  # recorded after the loss: not part of it
    eng.backward(1.0, output=y)
    np.testing.assert_allclose(eng.memory_buffer.get_param(x), 2 * x)


def test_a_retained_backward_from_an_intermediate_keeps_the_ops_after_it():
    """retain_graph=True keeps the whole tape: a later backward from the final loss still runs (as in PyTorch)."""
    x, w = np.array([0.3, -1.2, 0.7]), np.array([1.5, 0.4, -0.8])
    eng = ng.Autograd()
    with eng:
        h = ng.tanh(ng.multiply(x, w))
        loss = ng.sum(ng.multiply(h, h))
    eng.backward(1.0, output=h, retain_graph=True)
    eng.backward(1.0, output=loss)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w)
    th = torch.tanh(tx * tw)
    expected = torch.autograd.grad(th.sum() + (th * th).sum(), tx)[0].numpy()
    np.testing.assert_allclose(eng.memory_buffer.get_param(x), expected, rtol=1e-12)


def test_a_backward_from_an_intermediate_frees_what_the_ops_after_it_held():
    """Without retain_graph the ops after the starting point are dropped: the buffer keeps none of their arrays."""
    x = np.array([0.3, -1.2, 0.7])
    eng = ng.Autograd()
    with eng:
        h = ng.tanh(x)
        later = ng.exp(h)
        loss = ng.sum(later)
    eng.backward(1.0, output=h)
    assert not eng.memory_buffer.tracks(later) and not eng.memory_buffer.tracks(loss)
    assert not eng.memory_buffer.is_in_memory(later)
    np.testing.assert_allclose(eng.memory_buffer.get_param(x), 1 - np.tanh(x) ** 2)


def test_backward_from_an_array_computed_in_plain_numpy_is_an_error():
    x = np.array([1.0, 2.0])
    eng = ng.Autograd()
    with eng:
        y = ng.multiply(x, x)
    loss = np.sum(y)  # plain NumPy after the last recorded op
    with pytest.raises(TapeError, match="not an output recorded"):
        eng.backward(1.0, output=loss)


# -- the course's later engine API --------------------------------------------------------------------


def test_later_course_names_and_bare_array_backward_returns():
    eng = ng.Autograd(debug=False)
    assert eng.gradient_buffer is eng.memory_buffer
    assert ng.utils.GradientBuffer is ng.utils.MemoryBuffer
    x = np.array([1.0, 2.0, 3.0])
    y = np.exp(x)
    eng.add_operation([x], y, [None], lambda g, a: g * np.exp(a))  # a bare array, not a 1-tuple
    eng.backward(np.ones(3))
    np.testing.assert_allclose(eng.memory_buffer.get_param(x), np.exp(x))


def test_device_values_computed_from_constants_are_constants():
    from new_grad.backends import to_device

    x = ng.constant(to_device(np.ones(3), "standin"))
    eng = ng.Autograd()
    with eng:
        y = ng.exp(x)
    assert eng.operation_list == [] and ng.is_constant(y)
