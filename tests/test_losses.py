"""Loss modules against ``torch.nn`` (float64): every option, values and gradients.

The op-level Hypothesis cases live in ``tests/cases/losses.py``; here each module
runs its whole option grid on fixed data, plus the course's conventions and errors.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import new_grad as ng
from new_grad import nn

RTOL, ATOL = 1e-7, 1e-10


def grads_of(loss_fn, arrays):
    """new_grad: value and gradient of every array (upstream gradient of ones)."""
    eng = ng.Autograd()
    with eng:
        out = loss_fn(*arrays)
    g = np.random.default_rng(1).standard_normal(np.shape(out))
    eng.backward(g)
    buf = eng.memory_buffer
    return np.asarray(out), [buf.get_param(a) if buf.is_in_memory(a) else None for a in arrays], g


def torch_grads_of(loss_fn, arrays, g, diff):
    ts = [torch.tensor(a, requires_grad=d) for a, d in zip(arrays, diff)]
    out = loss_fn(*ts)
    wrt = [t for t in ts if t.requires_grad]
    gr = iter(torch.autograd.grad(out, wrt, torch.as_tensor(g)))
    return out.detach().numpy(), [next(gr).numpy() if d else None for d in diff]


def compare(ng_fn, torch_fn, arrays, diff):
    out, grads, g = grads_of(ng_fn, arrays)
    t_out, t_grads = torch_grads_of(torch_fn, arrays, g, diff)
    assert out.shape == t_out.shape
    np.testing.assert_allclose(out, t_out, rtol=RTOL, atol=ATOL, equal_nan=True)
    for i, (a, b) in enumerate(zip(grads, t_grads)):
        if b is not None:
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=f"gradient of input {i}")


rng = np.random.default_rng(0)
X = rng.standard_normal((5, 4))
T = rng.standard_normal((5, 4))
P = 1 / (1 + np.exp(-X))
Q = 1 / (1 + np.exp(-T))
W4 = np.abs(rng.standard_normal(4)) + 0.1
REDS = ["none", "mean", "sum"]


@pytest.mark.parametrize("reduction", REDS)
@pytest.mark.parametrize(
    "name, ng_kw, t_kw",
    [
        ("MSELoss", {}, {}),
        ("L1Loss", {}, {}),
        ("SmoothL1Loss", {"beta": 0.5}, {"beta": 0.5}),
        ("SmoothL1Loss", {"beta": 0.0}, {"beta": 0.0}),
        ("HuberLoss", {"delta": 0.7}, {"delta": 0.7}),
    ],
)
def test_regression_losses(name, ng_kw, t_kw, reduction):
    ours = getattr(nn, name)(reduction=reduction, **ng_kw)
    theirs = getattr(torch.nn, name)(reduction=reduction, **t_kw)
    compare(ours, theirs, [X.copy(), T.copy()], [True, True])


@pytest.mark.parametrize("reduction", REDS)
@pytest.mark.parametrize("weighted", [False, True])
def test_bce(reduction, weighted):
    w = W4 if weighted else None
    ours = nn.BCELoss(w, reduction=reduction)
    theirs = torch.nn.BCELoss(None if w is None else torch.tensor(w), reduction=reduction)
    compare(ours, theirs, [P.copy(), Q.copy()], [True, True])


@pytest.mark.parametrize("reduction", REDS)
@pytest.mark.parametrize("weighted, pos", list(itertools.product([False, True], [False, True])))
def test_bce_with_logits(reduction, weighted, pos):
    w = W4 if weighted else None
    pw = W4[::-1].copy() if pos else None
    ours = nn.BCEWithLogitsLoss(w, reduction=reduction, pos_weight=pw)
    theirs = torch.nn.BCEWithLogitsLoss(
        None if w is None else torch.tensor(w), reduction=reduction, pos_weight=None if pw is None else torch.tensor(pw)
    )
    compare(ours, theirs, [X * 3, Q.copy()], [True, True])


@pytest.mark.filterwarnings("ignore:reduction")
@pytest.mark.parametrize("reduction", [*REDS, "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(reduction, log_target):
    target = np.log(Q) if log_target else Q
    ours = nn.KLDivLoss(reduction=reduction, log_target=log_target)
    theirs = torch.nn.KLDivLoss(reduction=reduction, log_target=log_target)
    compare(ours, theirs, [np.log(P), target.copy()], [True, True])


TARGET = np.array([0, 3, -100, 1, 3])
TARGET_4D = rng.integers(0, 4, (2, 3, 2))
TARGET_4D[0, 0, 0] = -100


@pytest.mark.parametrize("reduction", REDS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
@pytest.mark.parametrize("layout", ["2d", "4d", "unbatched"])
def test_cross_entropy_class_indices(reduction, weighted, smoothing, layout):
    w = W4 if weighted else None
    x, t = {
        "2d": (X, TARGET),
        "4d": (rng.standard_normal((2, 4, 3, 2)), TARGET_4D),
        "unbatched": (X[0], np.array(2)),
    }[layout]
    ours = nn.CrossEntropyLoss(w, ignore_index=-100, reduction=reduction, label_smoothing=smoothing)
    theirs = torch.nn.CrossEntropyLoss(
        None if w is None else torch.tensor(w), ignore_index=-100, reduction=reduction, label_smoothing=smoothing
    )
    compare(lambda a: ours(a, t), lambda a: theirs(a, torch.as_tensor(t)), [x.copy()], [True])


def test_cross_entropy_other_ignore_index():
    t = np.array([0, 3, 2, 1, 3])
    ours = nn.CrossEntropyLoss(W4, ignore_index=3)
    theirs = torch.nn.CrossEntropyLoss(torch.tensor(W4), ignore_index=3)
    compare(lambda a: ours(a, t), lambda a: theirs(a, torch.as_tensor(t)), [X.copy()], [True])


@pytest.mark.parametrize("reduction", REDS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_cross_entropy_probabilities(reduction, weighted, smoothing):
    w = W4 if weighted else None
    probs = Q / Q.sum(1, keepdims=True)
    ours = nn.CrossEntropyLoss(w, reduction=reduction, label_smoothing=smoothing)
    theirs = torch.nn.CrossEntropyLoss(None if w is None else torch.tensor(w), reduction=reduction,
                                       label_smoothing=smoothing)
    compare(ours, theirs, [X.copy(), probs], [True, True])


@pytest.mark.parametrize("reduction", REDS)
@pytest.mark.parametrize("weighted", [False, True])
def test_nll(reduction, weighted):
    w = W4 if weighted else None
    ours = nn.NLLLoss(w, reduction=reduction)
    theirs = torch.nn.NLLLoss(None if w is None else torch.tensor(w), reduction=reduction)
    logp = X - np.log(np.exp(X).sum(1, keepdims=True))
    compare(lambda a: ours(a, TARGET), lambda a: theirs(a, torch.as_tensor(TARGET)), [logp], [True])


def test_cross_entropy_all_ignored_is_nan_with_zero_gradient():
    t = np.full(5, -100)
    out, (g,), _ = grads_of(lambda a: ng.cross_entropy(a, t), [X.copy()])
    assert np.isnan(out)
    np.testing.assert_array_equal(g, 0)


# -- CTC -------------------------------------------------------------------------------------------------

Tn, N, C = 10, 3, 5
LOGITS = rng.standard_normal((Tn, N, C))
TG = np.array([[1, 2, 2, 4], [3, 3, 1, 0], [2, 0, 0, 0]])
IL = np.array([10, 8, 6])
TL = np.array([4, 3, 1])


def _log_softmax_np(a):
    return a - np.log(np.exp(a).sum(-1, keepdims=True))


def _compare_ctc(ours, theirs, targets, input_lengths):
    """Our CTCLoss module against PyTorch's on log_softmax(LOGITS), values and gradients."""
    compare(
        lambda a: ours(ng.log_softmax(a, axis=-1), targets, input_lengths, TL),
        lambda a: theirs(
            torch.log_softmax(a, -1), torch.as_tensor(targets), torch.as_tensor(input_lengths), torch.as_tensor(TL)
        ),
        [LOGITS.copy()],
        [True],
    )


@pytest.mark.parametrize("reduction", REDS)
@pytest.mark.parametrize("concatenated", [False, True])
@pytest.mark.parametrize("blank", [0, 4])
def test_ctc_against_torch(reduction, concatenated, blank):
    tg = np.where(TG == blank, (blank + 1) % C, TG)
    targets = np.concatenate([tg[i, : TL[i]] for i in range(N)]) if concatenated else tg
    _compare_ctc(nn.CTCLoss(blank, reduction=reduction), torch.nn.CTCLoss(blank, reduction=reduction), targets, IL)


def test_ctc_gradient_is_the_true_gradient_of_log_probs():
    """Central differences on the log-probs themselves (PyTorch's kernel differs here by exp(log_probs))."""
    lp = _log_softmax_np(LOGITS[:5, :2])
    tg, il, tl = TG[:2, :2], np.array([5, 4]), np.array([2, 2])
    out, (g,), up = grads_of(lambda a: ng.ctc_loss(a, tg, il, tl, reduction="sum"), [lp.copy()])
    num = np.zeros_like(lp)
    eps = 1e-6
    for i in np.ndindex(lp.shape):
        hi, lo = lp.copy(), lp.copy()
        hi[i] += eps
        lo[i] -= eps
        num[i] = (ng.ctc_loss(hi, tg, il, tl, reduction="sum") - ng.ctc_loss(lo, tg, il, tl, reduction="sum")) / (2 * eps)
    np.testing.assert_allclose(g, num * up, rtol=1e-5, atol=1e-7)


def test_ctc_impossible_alignment_and_zero_infinity():
    il = np.array([10, 2, 6])  # 3 labels "3 3 1" need at least 4 steps
    out = ng.ctc_loss(_log_softmax_np(LOGITS), TG, il, TL, reduction="none")
    assert np.isinf(out[1]) and np.isfinite(out[[0, 2]]).all()
    _compare_ctc(nn.CTCLoss(zero_infinity=True), torch.nn.CTCLoss(zero_infinity=True), TG, il)


# -- conventions -----------------------------------------------------------------------------------------


def test_course_mse_loss_keeps_the_course_convention():
    eng = ng.Autograd()
    y, y_hat = T.copy(), X.copy()
    loss = nn.MSELoss(eng)
    with eng:
        val = loss(y, y_hat)
    assert val.shape == (1,) and loss.loss_val is val
    np.testing.assert_allclose(val[0], np.mean((X - T) ** 2))
    loss.backward()
    np.testing.assert_allclose(eng.memory_buffer.get_param(y_hat), 2 * (X - T) / X.size)


def test_pytorch_style_mse_returns_0d_and_backward_works():
    eng = ng.Autograd()
    x = X.copy()
    loss = nn.MSELoss(autograd_engine=eng, reduction="sum")
    val = loss(x, T)
    assert val.shape == ()
    loss.backward()
    np.testing.assert_allclose(eng.memory_buffer.get_param(x), 2 * (X - T))
    assert nn.MSELoss("none")(x, T).shape == X.shape
    assert nn.MSELoss()(x, T).shape == ()


def test_float32_stays_float32():
    x = X.astype(np.float32)
    for fn in (lambda a: ng.cross_entropy(a, TARGET), lambda a: ng.mse_loss(a, T.astype(np.float32)),
               lambda a: ng.binary_cross_entropy_with_logits(a, Q.astype(np.float32))):
        out, (g,), _ = grads_of(fn, [x.copy()])
        assert out.dtype == np.float32 and g.dtype == np.float32


def test_loss_weights_are_buffers_in_the_state_dict():
    m = nn.CrossEntropyLoss(W4)
    assert set(m.state_dict()) == {"weight"}


def test_errors_name_the_op_and_the_fix():
    with pytest.raises(ng.errors.ShapeError, match="cross_entropy.*targets of shape"):
        ng.cross_entropy(X, np.array([0, 1]))
    with pytest.raises(ng.errors.IndexingError, match="out of range for 4 classes"):
        ng.cross_entropy(X, np.array([0, 1, 2, 3, 4]))
    with pytest.raises(ValueError, match="reduction"):
        nn.L1Loss(reduction="avg")
    with pytest.raises(ValueError, match="with_logits"):
        ng.binary_cross_entropy(X, Q)
    with pytest.raises(ng.errors.ShapeError, match="not broadcastable"):
        ng.mse_loss(X, T[:, :3])


# -- second order ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ng_fn, torch_fn",
    [
        (lambda x: ng.cross_entropy(x, TARGET, weight=W4, label_smoothing=0.2),
         lambda x: torch.nn.functional.cross_entropy(x, torch.as_tensor(TARGET), weight=torch.tensor(W4),
                                                     label_smoothing=0.2)),
        (lambda x: ng.binary_cross_entropy_with_logits(x, Q, pos_weight=W4),
         lambda x: torch.nn.functional.binary_cross_entropy_with_logits(x, torch.tensor(Q), pos_weight=torch.tensor(W4))),
        (lambda x: ng.binary_cross_entropy(ng.sigmoid(x), Q),
         lambda x: torch.nn.functional.binary_cross_entropy(torch.sigmoid(x), torch.tensor(Q))),
        (lambda x: ng.smooth_l1_loss(x, T, beta=0.8), lambda x: torch.nn.functional.smooth_l1_loss(x, torch.tensor(T), beta=0.8)),
        (lambda x: ng.kl_div(ng.log_softmax(x, axis=-1), Q, reduction="batchmean"),
         lambda x: torch.nn.functional.kl_div(torch.log_softmax(x, -1), torch.tensor(Q), reduction="batchmean")),
    ],
    ids=["cross_entropy", "bce_with_logits", "bce", "smooth_l1", "kl_div"],
)
def test_hessian_vector_products_match_torch(ng_fn, torch_fn):
    v = np.random.default_rng(9).standard_normal(X.shape)
    hv = ng.hvp(ng_fn, X.copy(), v)
    hv = hv[1] if isinstance(hv, tuple) else hv
    tx = torch.tensor(X, requires_grad=True)
    (g,) = torch.autograd.grad(torch_fn(tx), tx, create_graph=True)
    (thv,) = torch.autograd.grad(g, tx, torch.tensor(v))
    np.testing.assert_allclose(hv, thv.numpy(), rtol=1e-7, atol=1e-10)


def test_ctc_refuses_gradients_of_gradients():
    lp = _log_softmax_np(LOGITS)
    with pytest.raises(ng.errors.GradientError, match="ctc_loss: gradients of gradients"):
        ng.hvp(lambda a: ng.ctc_loss(a, TG, IL, TL), lp, np.ones_like(lp))


def test_mse_loss_refuses_pytorchs_old_positional_reduction_instead_of_ignoring_it():
    """PyTorch's deprecated ``MSELoss(size_average, reduce, reduction)`` would put 'sum' where new_grad takes the
    dtype: it must be refused, not silently turned into a mean."""
    with pytest.raises(ng.errors.ArgumentError, match="reduction='sum'"):
        ng.nn.MSELoss(None, None, "sum")
    loss = ng.nn.MSELoss(None, "sum", np.float32)
    assert float(loss(np.ones(3), np.zeros(3))) == 3.0
