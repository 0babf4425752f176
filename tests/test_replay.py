"""Tape replay (``new_grad.compile``): bitwise the eager step, and clear errors when it cannot be."""

from __future__ import annotations

import numpy as np
import pytest

import new_grad as ng
from new_grad.errors import ReplayError
from new_grad.ops import REGISTRY


def _mlp(seed: int = 0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    eng = ng.Autograd()
    layers = [ng.nn.Linear(a, b, eng, dtype=dtype) for a, b in ((20, 16), (16, 16), (16, 5))]
    for layer in layers:  # the same initial values in every model built with this seed
        layer.W[...] = rng.uniform(-0.3, 0.3, layer.W.shape)
        layer.b[...] = rng.uniform(-0.3, 0.3, layer.b.shape)
    params = [p for layer in layers for p in (layer.W, layer.b)]
    grads = [g for layer in layers for g in (layer.dW, layer.db)]

    def loss_fn(x, y):
        h = x
        for i, layer in enumerate(layers):
            h = layer(h)
            if i < len(layers) - 1:
                h = ng.tanh(h) if i == 0 else ng.relu(h)
        return ng.softmax_cross_entropy(h, y)

    return eng, params, grads, loss_fn


def _batches(n: int, dtype=np.float32):
    rng = np.random.default_rng(42)
    out = []
    for _ in range(n):
        x = rng.standard_normal((8, 20)).astype(dtype)
        y = np.eye(5, dtype=dtype)[rng.integers(0, 5, 8)]
        out.append((ng.constant(x), ng.constant(y)))
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mlp_training_with_replay_is_bitwise_eager(dtype):
    data = _batches(12, dtype)
    runs = []
    for replay in (False, True):
        eng, params, grads, loss_fn = _mlp(dtype=dtype)
        opt = ng.optim.SGD(list(zip(params, grads)), lr=0.1, momentum=0.9, weight_decay=1e-3)
        step = ng.compile(loss_fn, eng)
        losses = []
        for x, y in data:  # a new batch object each step
            opt.zero_grad()
            if replay:
                loss = step(x, y)
            else:
                with eng:
                    loss = loss_fn(x, y)
                eng.backward(1)
            losses.append(loss.copy())
            opt.step()
        runs.append((losses, [p.copy() for p in params], [g.copy() for g in grads]))
    (l1, p1, g1), (l2, p2, g2) = runs
    assert all(np.array_equal(a, b) for a, b in zip(l1, l2))
    assert all(np.array_equal(a, b) for a, b in zip(p1, p2))
    assert all(np.array_equal(a, b) for a, b in zip(g1, g2))


def _leaf_grads(fn, arrays, compiled: bool, calls: int = 3):
    """Gradients of the leaves ``arrays`` after ``calls`` steps (the memory buffer accumulates, as eager)."""
    eng = ng.Autograd()
    step = ng.compile(fn, eng)
    for _ in range(calls):
        if compiled:
            step()
        else:
            with eng:
                fn()
            eng.backward(1)
    return [eng.memory_buffer.get_param(a).copy() for a in arrays]


@pytest.mark.parametrize("name", sorted(k for k, v in REGISTRY.items() if "replay" in v.extras))
def test_each_replay_rule_is_bitwise_its_backward(name):
    rng = np.random.default_rng(1)
    a = rng.uniform(0.2, 1.5, (6, 4)).astype(np.float32)
    b = rng.uniform(0.2, 1.5, (6, 4)).astype(np.float32)
    W = rng.uniform(-1, 1, (3, 4)).astype(np.float32)
    c = rng.uniform(-1, 1, (3,)).astype(np.float32)
    op = getattr(ng, name)

    def fn():
        if name == "linear":
            y = ng.tanh(op(a, W, c))
        elif name in ("add", "subtract", "multiply"):
            y = op(op(a, b), a)  # the same array twice: gradients accumulate
        else:
            y = op(ng.multiply(a, b))
        return ng.sum(ng.multiply(y, y))

    leaves = [a, W, c] if name == "linear" else [a, b]
    eager = _leaf_grads(fn, leaves, compiled=False)
    replay = _leaf_grads(fn, leaves, compiled=True)
    for e, r in zip(eager, replay):
        assert e.dtype == r.dtype and np.array_equal(e, r)


def test_generic_ops_broadcasting_and_numbers_replay_bitwise():
    rng = np.random.default_rng(2)
    x = rng.uniform(0.5, 1.5, (4, 3))
    v = rng.uniform(0.5, 1.5, (3,))

    def fn():
        y = ng.divide(ng.add(x, v), ng.power(v, 2.0))  # broadcasting: the generic backward path
        y = ng.reshape(ng.multiply(y, 3.0), (3, 4))
        y = ng.subtract(1.0, ng.exp(ng.negative(y)))
        return ng.mean(ng.log(ng.add(ng.multiply(y, y), 1.0)))

    eager = _leaf_grads(fn, [x, v], compiled=False)
    replay = _leaf_grads(fn, [x, v], compiled=True)
    for e, r in zip(eager, replay):
        assert np.array_equal(e, r)


def test_replay_rereads_arguments_and_returns_a_fresh_loss():
    w = np.array([1.0, 2.0, 3.0])
    eng = ng.Autograd()
    step = ng.compile(lambda x: ng.sum(ng.multiply(x, w)), eng)
    first = step(np.array([1.0, 1.0, 1.0]))
    second = step(np.array([2.0, 0.0, 1.0]))
    assert float(first) == 6.0 and float(second) == 5.0  # the first loss was not overwritten
    assert eng.operation_list == [] and eng._consumed


def test_argument_gradients_land_in_the_memory_buffer_like_eager():
    w = np.array([1.0, 2.0, 3.0])
    eng = ng.Autograd()
    step = ng.compile(lambda x: ng.sum(ng.multiply(ng.multiply(x, x), w)), eng)
    for k in range(3):
        x = np.array([1.0, 2.0, 3.0]) * (k + 1)
        step(x)
        np.testing.assert_array_equal(eng.memory_buffer.get_param(x), 2 * x * w)


def test_argument_gradients_share_no_memory_with_the_replayed_step():
    """As in eager, a gradient read from the buffer is the caller's: scaling it in place changes no later step."""
    w, dw = np.array([1.0, 2.0, 3.0]), np.zeros(3)
    ng.bind_gradient(w, dw)
    eng = ng.Autograd()
    step = ng.compile(lambda t, x: ng.add(ng.sum(ng.multiply(ng.multiply(w, w), x)), t), eng)
    x = np.array([0.5, -1.0, 2.0])
    for _ in range(4):
        eng.memory_buffer.clear()
        dw[:] = 0.0
        t = np.array(0.25)
        step(t, ng.constant(x))
        np.testing.assert_array_equal(dw, 2 * w * x)
        g = eng.memory_buffer.get_param(t)
        assert g == 1.0
        g *= 0.0  # the caller's own array: the next step must not see it


def test_one_array_passed_as_two_arguments_is_part_of_what_replay_checks():
    """Recorded with step(x, x), the replayed program reads one argument for both: step(x, y) must not run it."""
    w = np.array([1.0, 2.0])
    x, y = ng.constant(np.ones(2)), ng.constant(np.full(2, 5.0))
    step = ng.compile(lambda a, b: ng.sum(ng.multiply(ng.multiply(a, b), w)), ng.Autograd())
    step(x, x)
    with pytest.raises(ReplayError, match="argument 1 is not the same array as argument 0"):
        step(x, y)
    step = ng.compile(lambda a, b: ng.sum(ng.multiply(ng.multiply(a, b), w)), ng.Autograd())
    step(x, y)
    step(x, y)
    with pytest.raises(ReplayError, match="argument 1 is the same array as argument 0"):
        step(x, x)  # both gradients would land in one slot, one overwriting the other
    assert float(step(x, y)) == 15.0


def test_shape_dtype_and_constness_changes_raise():
    w = np.ones(3, np.float32)
    step = ng.compile(lambda x: ng.sum(ng.multiply(x, w)), ng.Autograd())
    step(ng.constant(np.ones(3, np.float32)))
    with pytest.raises(ReplayError, match="argument 0"):
        step(ng.constant(np.ones(4, np.float32)))
    with pytest.raises(ReplayError, match="float64"):
        step(ng.constant(np.ones(3, np.float64)))
    with pytest.raises(ReplayError, match="constant"):
        step(np.ones(3, np.float32))  # not marked constant: eager would compute its gradient
    with pytest.raises(ReplayError, match="2 arguments|1 arguments"):
        step(ng.constant(np.ones(3, np.float32)), 1)


def test_control_flow_change_is_caught_by_check_every():
    w = np.ones(3)
    eng = ng.Autograd()

    def fn(x):
        y = ng.multiply(x, w)
        if float(np.sum(x)) > 10:  # data-dependent control flow
            y = ng.exp(y)
        return ng.sum(y)

    step = ng.compile(fn, eng, check_every=2)
    step(np.ones(3))
    step(np.ones(3))  # a check: same ops, fine
    step(np.full(3, 5.0))  # replayed (frozen control flow)
    with pytest.raises(ReplayError, match="differ"):
        step(np.full(3, 5.0))  # the check sees the other branch


def test_what_cannot_be_replayed_is_refused():
    w = np.ones(3)
    with pytest.raises(ReplayError, match="last value"):
        ng.compile(_returns_first, ng.Autograd())(np.ones(3))
    with pytest.raises(ReplayError, match="not an input"):
        ng.compile(lambda x: ng.sum(ng.multiply(x.reshape(3), w)), ng.Autograd())(np.ones((1, 3)))
    with pytest.raises(ReplayError, match="anomaly"):
        ng.compile(lambda x: ng.sum(ng.multiply(x, w)), ng.Autograd(detect_anomaly=True))(np.ones(3))
    with pytest.raises(ReplayError, match="recorded no ops"):
        ng.compile(lambda x: ng.sum(x), ng.Autograd())(ng.constant(np.ones(3)))


def _returns_first(x):
    y = ng.multiply(x, 2.0)
    ng.sum(y)
    return y


def test_rebound_gradient_is_refused():
    eng = ng.Autograd()
    layer = ng.nn.Linear(3, 2, eng)
    step = ng.compile(lambda x: ng.sum(layer(x)), eng)
    x = ng.constant(np.ones((4, 3)))
    step(x)
    layer.dW = np.zeros_like(layer.W)  # a new gradient array: the replayed step would write the old one
    with pytest.raises(ReplayError, match="bound"):
        step(x)


def test_source_shows_the_program():
    w = np.ones(3)
    step = ng.compile(lambda x: ng.sum(ng.multiply(x, w)), ng.Autograd())
    with pytest.raises(ReplayError, match="nothing recorded"):
        step.source  # noqa: B018
    step(np.ones(3))
    assert step.source.startswith("def replay(") and "out=" in step.source


def test_joins_replay_bitwise():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))

    def fn():
        s = ng.stack([a, ng.tanh(b)], axis=1)  # (2, 2, 3)
        c = ng.concatenate([a, b], axis=0)  # (4, 3)
        return ng.add(ng.sum(ng.multiply(s, s)), ng.sum(ng.exp(c)))

    for e, r in zip(_leaf_grads(fn, [a, b], compiled=False), _leaf_grads(fn, [a, b], compiled=True)):
        assert np.array_equal(e, r)


def test_non_array_arguments_are_frozen_and_checked():
    w = np.ones(3)
    step = ng.compile(lambda x, scale: ng.sum(ng.multiply(ng.multiply(x, w), scale)), ng.Autograd())
    assert float(step(np.ones(3), 2.0)) == 6.0
    assert float(step(np.full(3, 2.0), 2.0)) == 12.0
    with pytest.raises(ReplayError, match="frozen"):
        step(np.ones(3), 3.0)


def test_modules_bound_to_another_engine_record_on_the_step_s_engine():
    layer = ng.nn.Linear(3, 2, ng.Autograd())
    step = ng.compile(lambda x: ng.sum(layer(x)), ng.Autograd())
    x = ng.constant(np.ones((2, 3)))
    for _ in range(3):  # the first call records, the others replay
        layer.dW[...] = 0
        step(x)
        np.testing.assert_array_equal(layer.dW, np.full((2, 3), 2.0))


def test_arrays_made_inside_the_step_are_refused():
    w = np.ones(3)
    step = ng.compile(lambda x: ng.sum(ng.multiply(x, w * 2)), ng.Autograd())  # w * 2 is plain NumPy
    step(np.ones(3))
    with pytest.raises(ReplayError, match="plain NumPy"):
        step(np.ones(3))


def test_an_index_array_made_inside_the_step_in_a_tuple_key_is_refused():
    E, dE = np.arange(12.0).reshape(6, 2), np.zeros((6, 2))
    ng.bind_gradient(E, dE)
    rows = iter([np.array([0, 1]), np.array([3, 4]), np.array([5, 5])])
    step = ng.compile(lambda: ng.sum(ng.getitem(E, (next(rows), slice(None)))), ng.Autograd())
    step()
    with pytest.raises(ReplayError, match="new array on each call"):
        step()  # replay would keep gathering rows 0 and 1


def test_a_python_number_that_changes_between_calls_is_caught():
    """A number the step reads from outside (a loss weight on a schedule) is frozen by replay: the checks see it."""
    w = np.array([1.0, 2.0])
    eng = ng.Autograd()
    weight = [1.0]
    x = ng.constant(np.ones(2))
    step = ng.compile(lambda x: ng.sum(ng.multiply(ng.multiply(w, x), weight[0])), eng)
    step(x)
    weight[0] = 0.5
    with pytest.raises(ReplayError, match="number"):
        step(x)  # the confirming call ran with another weight than the recorded one
    step = ng.compile(lambda x: ng.sum(ng.multiply(ng.multiply(w, x), weight[0])), eng, check_every=3)
    step(x)
    step(x)
    weight[0] = 2.0
    with pytest.raises(ReplayError, match="number"):
        step(x)  # the third call is a check: it runs eagerly, with the new weight, and sees the change


def test_cnn_training_with_replay_is_bitwise_eager():
    rng = np.random.default_rng(5)
    x = ng.constant(rng.standard_normal((4, 1, 8, 8)).astype(np.float32))
    y = ng.constant(np.eye(3, dtype=np.float32)[rng.integers(0, 3, 4)])
    runs = []
    for replay in (False, True):
        eng = ng.Autograd()
        conv = ng.nn.Conv2d(1, 2, 3, padding=1, autograd_engine=eng, dtype=np.float32)
        fc = ng.nn.Linear(2 * 4 * 4, 3, eng, dtype=np.float32)
        conv.weight[...] = np.linspace(-0.5, 0.5, conv.weight.size).reshape(conv.weight.shape)
        fc.W[...] = np.linspace(-0.3, 0.3, fc.W.size).reshape(fc.W.shape)
        conv.bias[...] = 0.1
        fc.b[...] = -0.1
        opt = ng.optim.SGD([*conv.parameters(), *fc.parameters()], lr=0.1)

        def loss_fn(x, y, conv=conv, fc=fc):
            h = ng.max_pool2d(ng.relu(conv(x)), 2)
            return ng.softmax_cross_entropy(fc(ng.reshape(h, (h.shape[0], -1))), y)

        step = ng.compile(loss_fn, eng)
        losses = []
        for _ in range(5):
            opt.zero_grad()
            if replay:
                loss = step(x, y)
            else:
                with eng:
                    loss = loss_fn(x, y)
                eng.backward(1)
            losses.append(float(loss))
            opt.step()
        runs.append((losses, conv.weight.copy(), fc.W.copy()))
    assert runs[0][0] == runs[1][0]
    assert np.array_equal(runs[0][1], runs[1][1]) and np.array_equal(runs[0][2], runs[1][2])


def test_aux_values_come_back_with_the_loss_bitwise_eager():
    rng = np.random.default_rng(3)
    x = ng.constant(rng.standard_normal((8, 5)))
    y = ng.constant(np.eye(3)[rng.integers(0, 3, 8)])
    runs = []
    for replay in (False, True):
        np.random.seed(0)
        eng = ng.Autograd()
        model = ng.nn.Sequential(ng.nn.Linear(5, 4), ng.nn.Tanh(), ng.nn.Linear(4, 3))
        opt = ng.optim.SGD(model.parameters(), lr=0.1)

        def fn(x, y, model=model):
            logits = model(x)
            return ng.softmax_cross_entropy(logits, y), logits

        step = ng.compile(fn, eng, has_aux=True)
        out = []
        for _ in range(5):
            opt.zero_grad()
            if replay:
                loss, logits = step(x, y)
            else:
                with eng:
                    loss, logits = fn(x, y)
                eng.backward(1.0, output=loss)
                loss, logits = loss.copy(), logits.copy()
            opt.step()
            out.append((loss, logits))
        runs.append(out)
    for (l0, z0), (l1, z1) in zip(*runs):
        assert np.array_equal(l0, l1) and np.array_equal(z0, z1)


@pytest.mark.parametrize("batch", [1, 2])
def test_linear_replays_bitwise_at_one_sample_and_more(batch):
    # one sample takes the broadcast outer product for the weight gradient in both paths
    rng = np.random.default_rng(2)
    x = ng.constant(rng.uniform(-1, 1, (batch, 5)).astype(np.float32))
    W = rng.uniform(-1, 1, (3, 5)).astype(np.float32)
    c = rng.uniform(-1, 1, (3,)).astype(np.float32)

    def fn():
        y = ng.tanh(ng.linear(x, W, c))
        return ng.sum(ng.multiply(y, y))

    eager = _leaf_grads(fn, [W, c], compiled=False)
    replay = _leaf_grads(fn, [W, c], compiled=True)
    for e, r in zip(eager, replay):
        assert e.dtype == r.dtype and np.array_equal(e, r)


def test_a_step_that_raises_while_recording_leaves_the_engine_ready_for_the_next_call():
    """The error is the step's own; the ops it recorded before raising must not block the next call."""
    w = np.ones(3)
    eng = ng.Autograd()
    calls = []

    def step(x):
        calls.append(1)
        y = ng.sum(ng.multiply(x, w))
        if len(calls) == 1:
            raise RuntimeError("a bug in the step")
        return y

    compiled = ng.compile(step, eng)
    with pytest.raises(RuntimeError, match="a bug in the step"):
        compiled(np.arange(3.0))
    assert eng.operation_list == []
    x = np.arange(3.0)
    assert float(compiled(x)) == 3.0
    np.testing.assert_array_equal(eng.memory_buffer.get_param(x), w)


@pytest.mark.parametrize("momentum", [0.1, None], ids=["momentum", "cumulative"])
def test_batch_norm_counts_and_averages_its_batches_when_replayed_as_when_eager(momentum):
    """BatchNorm's batch counter (saved in checkpoints) and, with momentum=None, its cumulative average step
    are part of the recorded op, so a replayed training step updates them exactly as an eager one."""
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal((6, 3)) for _ in range(5)]
    models, engines = [], []
    for _ in range(2):
        models.append(ng.nn.BatchNorm1d(3, momentum=momentum))
        engines.append(ng.Autograd())
        models[-1].set_engine(engines[-1])
    eager_model, replayed_model = models
    weights = ng.constant(np.arange(1.0, 4.0))
    step = ng.compile(lambda x: ng.sum(ng.multiply(replayed_model(x), weights)), engines[1])
    for x in batches:
        with engines[0]:
            loss = ng.sum(ng.multiply(eager_model(x), weights))
        engines[0].backward(1, output=loss)
        step(ng.constant(x))
    for name in ("num_batches_tracked", "running_mean", "running_var"):
        np.testing.assert_array_equal(getattr(replayed_model, name), getattr(eager_model, name))
    assert int(replayed_model.num_batches_tracked) == len(batches)


def _step_loss(replay: bool, step, loss_fn, eng, x) -> float:
    """One training step's loss: the compiled step, or the same function eagerly with its backward."""
    if replay:
        return float(step(x))
    with eng:
        loss = float(loss_fn(x))
    eng.backward(1)
    return loss


def test_switching_train_and_eval_is_checked_not_replayed_stale():
    rng = np.random.default_rng(3)
    x = ng.constant(rng.standard_normal((4, 3)))
    runs = []
    for replay in (False, True):
        eng = ng.Autograd()
        lin = ng.nn.Linear(3, 2, eng, dtype=np.float64)
        lin.W[...] = np.linspace(-0.5, 0.5, 6).reshape(2, 3)
        lin.b[...] = 0.1
        model = ng.nn.Sequential(lin, ng.nn.BatchNorm1d(2)).set_engine(eng)

        def loss_fn(x, model=model):
            return ng.sum(ng.multiply(model(x), model(x)))

        step = ng.compile(loss_fn, eng)
        losses = []
        for train in (True, True, True, False, True, True):  # an eager eval in between, then training again
            model.train(train)
            lin.dW[...] = 0
            if not train:
                with eng:
                    loss_fn(x)
                eng.zero_grad()
                continue
            losses.append(_step_loss(replay, step, loss_fn, eng, x))
        runs.append((losses, lin.dW.copy(), model[1].running_mean.copy()))
        if replay:
            model.eval()  # the plan holds training-mode batch norm: replaying it in eval mode would be wrong
            with pytest.raises(ReplayError, match="train and eval mode"):
                step(x)
            model.train()
            step(x)  # back in the recorded mode: checked and replayed again
    assert runs[0][0] == runs[1][0]
    assert np.array_equal(runs[0][1], runs[1][1]) and np.array_equal(runs[0][2], runs[1][2])


@pytest.mark.parametrize("kind", ["RNN", "GRU", "LSTM", "RNNCell", "GRUCell", "LSTMCell"])
def test_recurrent_modules_without_an_initial_state_replay_bitwise(kind):
    rng = np.random.default_rng(4)
    data = [ng.constant(rng.standard_normal((3, 4, 2))) for _ in range(4)]
    runs = []
    for replay in (False, True):
        eng = ng.Autograd()
        np.random.seed(0)
        if kind.endswith("Cell"):
            cell = getattr(ng.nn, kind)(2, 3, autograd_engine=eng)

            def loss_fn(x, cell=cell):
                h = None
                for t in range(x.shape[1]):
                    h = cell(ng.getitem(x, (slice(None), t)), h)
                return ng.sum(ng.tanh(h[0] if isinstance(h, tuple) else h))

            model = cell
        else:
            model = getattr(ng.nn, kind)(2, 3, num_layers=2, batch_first=True, autograd_engine=eng)

            def loss_fn(x, model=model):
                return ng.sum(ng.tanh(model(x)[0]))

        opt = ng.optim.SGD(model.parameters(), lr=0.1)
        step = ng.compile(loss_fn, eng)
        losses = []
        for x in data:
            opt.zero_grad()
            losses.append(_step_loss(replay, step, loss_fn, eng, x))
            opt.step()
        runs.append((losses, [p.copy() for p, _ in model.parameters()]))
    assert runs[0][0] == runs[1][0]
    assert all(np.array_equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))


def test_replacing_a_modules_parameter_is_caught_not_replayed_stale():
    """``layer.W = new_array`` binds the new array to the same gradient array; the replayed program read the old
    one, so it must refuse rather than train a parameter the model no longer uses."""
    rng = np.random.default_rng(0)
    eng = ng.Autograd()
    layer = ng.nn.Linear(3, 2, eng)
    x = ng.constant(rng.standard_normal((4, 3)))
    step = ng.compile(lambda x: ng.sum(layer(x)), eng)
    for _ in range(3):
        layer.zero_grad()
        step(x)
    layer.W = rng.standard_normal((2, 3))
    with pytest.raises(ReplayError, match="replaced"):
        step(x)
