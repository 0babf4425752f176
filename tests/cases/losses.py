"""Cases for the fused loss ops (``new_grad.ops.losses``), against ``torch.nn.functional``.

Targets that must be integers (class indices, CTC labels) are derived from a
drawn float array the same way on both sides; options (reduction, weights,
smoothing) are drawn by Hypothesis. ``tests/test_losses.py`` covers the option
grid of every loss module exhaustively.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

import new_grad as ng

from ..opcheck import OpCase

REDUCTIONS = st.sampled_from(["none", "mean", "sum"])


def _red(data, shapes):
    return {"reduction": data.draw(REDUCTIONS, label="reduction")}


def _same_shapes(n, min_dims=0):
    from hypothesis.extra import numpy as hnp

    def draw(data):
        s = data.draw(hnp.array_shapes(min_dims=min_dims, max_dims=3, min_side=1, max_side=4), label="shape")
        return [s] * n

    return draw


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def classes_from(t: np.ndarray, n_classes: int, ignore: bool = False) -> np.ndarray:
    """Deterministic class indices from a float draw; some set to -100 (ignored) if asked."""
    xp = ng.namespace(t)
    c = (abs(t) * 1000).astype(np.int64) % n_classes
    if ignore:
        c = xp.where((abs(t) * 1000).astype(np.int64) % 5 == 0, -100, c)
    return c


def _tensor(a):
    return None if a is None else torch.as_tensor(np.asarray(a))


# -- cross-entropy / NLL --------------------------------------------------------------------------


def _ce_shapes(data):
    kind = data.draw(st.sampled_from(["2d", "4d", "1d"]), label="kind")
    n, c = data.draw(st.integers(1, 4)), data.draw(st.integers(2, 4))
    if kind == "2d":
        return [(n, c), (n,), (c,)]
    if kind == "4d":
        return [(n, c, 2, 3), (n, 2, 3), (c,)]
    return [(c,), (), (c,)]


def _ce_kwargs(data, shapes):
    return {
        "reduction": data.draw(REDUCTIONS, label="reduction"),
        "label_smoothing": data.draw(st.sampled_from([0.0, 0.25]), label="smoothing"),
        "use_weight": data.draw(st.booleans(), label="weight"),
        "ignore": data.draw(st.booleans(), label="ignore"),
    }


def _ce_ng(x, t, w, reduction, label_smoothing, use_weight, ignore):
    C = x.shape[1 if x.ndim > 1 else 0]
    return ng.cross_entropy(x, classes_from(t, C, ignore), abs(w) + 0.1 if use_weight else None,
                            reduction=reduction, label_smoothing=label_smoothing)


def _ce_torch(x, t, w, reduction, label_smoothing, use_weight, ignore):
    C = x.shape[1 if x.ndim > 1 else 0]
    tgt = torch.as_tensor(classes_from(t.detach().numpy(), C, ignore))
    return F.cross_entropy(x, tgt, w.detach().abs() + 0.1 if use_weight else None,
                           reduction=reduction, label_smoothing=label_smoothing)


def _nll_ng(x, t, w, reduction, label_smoothing, use_weight, ignore):
    C = x.shape[1 if x.ndim > 1 else 0]
    return ng.nll_loss(x, classes_from(t, C, ignore), abs(w) + 0.1 if use_weight else None, reduction=reduction)


def _nll_torch(x, t, w, reduction, label_smoothing, use_weight, ignore):
    C = x.shape[1 if x.ndim > 1 else 0]
    tgt = torch.as_tensor(classes_from(t.detach().numpy(), C, ignore))
    return F.nll_loss(x, tgt, w.detach().abs() + 0.1 if use_weight else None, reduction=reduction)


def _ce_prob_ng(x, p, w, reduction, label_smoothing, use_weight, ignore):
    return ng.cross_entropy(x, ng.softmax(p, axis=-1), abs(w) + 0.1 if use_weight else None,
                            reduction=reduction, label_smoothing=label_smoothing)


def _ce_prob_torch(x, p, w, reduction, label_smoothing, use_weight, ignore):
    return F.cross_entropy(x, torch.softmax(p, -1), w.detach().abs() + 0.1 if use_weight else None,
                           reduction=reduction, label_smoothing=label_smoothing)


# -- CTC ------------------------------------------------------------------------------------------------


def _ctc_setup(data, shapes):
    T, N, C = shapes[0]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="ctc-seed"))
    S = 3
    targets = rng.integers(1, C, (N, S))
    target_lengths = rng.integers(0, S + 1, N)
    input_lengths = rng.integers(max(1, T - 3), T + 1, N)
    return {
        "targets": targets,
        "input_lengths": input_lengths,
        "target_lengths": target_lengths,
        "reduction": data.draw(REDUCTIONS, label="reduction"),
    }


def _ctc_ng(x, targets, input_lengths, target_lengths, reduction):
    # through log_softmax: PyTorch's CTC kernel returns a gradient that is right only after one
    return ng.ctc_loss(ng.log_softmax(x, axis=-1), targets, input_lengths, target_lengths,
                       reduction=reduction, zero_infinity=True)


def _ctc_torch(x, targets, input_lengths, target_lengths, reduction):
    return F.ctc_loss(torch.log_softmax(x, -1), _tensor(targets), _tensor(input_lengths), _tensor(target_lengths),
                      reduction=reduction, zero_infinity=True)


def _pw_ng(x, t, w, pw, reduction):
    return ng.binary_cross_entropy_with_logits(x, ng.sigmoid(t), abs(w), reduction, abs(pw) + 0.5)


def _pw_torch(x, t, w, pw, reduction):
    return F.binary_cross_entropy_with_logits(x, torch.sigmoid(t), w.detach().abs(), reduction=reduction,
                                              pos_weight=pw.detach().abs() + 0.5)


def _kl_kwargs(data, shapes):
    return {
        "reduction": data.draw(st.sampled_from(["none", "mean", "sum", "batchmean"]), label="reduction"),
        "log_target": data.draw(st.booleans(), label="log_target"),
    }


def _kl_ng(x, t, reduction, log_target):
    return ng.kl_div(x, t if log_target else ng.exp(t), reduction=reduction, log_target=log_target)


def _kl_torch(x, t, reduction, log_target):
    return F.kl_div(x, t if log_target else torch.exp(t), reduction=reduction, log_target=log_target)


def _beta(data, shapes):
    return {"reduction": data.draw(REDUCTIONS, label="reduction"),
            "beta": data.draw(st.sampled_from([0.0, 0.5, 1.0, 2.0]), label="beta")}


def _delta(data, shapes):
    return {"reduction": data.draw(REDUCTIONS, label="reduction"),
            "delta": data.draw(st.sampled_from([0.5, 1.0, 2.0]), label="delta")}


CASES = [
    OpCase("mse_loss", F.mse_loss, 2, shapes=_same_shapes(2), kwargs=_red),
    OpCase("l1_loss", F.l1_loss, 2, shapes=_same_shapes(2), kwargs=_red),
    OpCase("smooth_l1_loss", F.smooth_l1_loss, 2, shapes=_same_shapes(2), kwargs=_beta),
    OpCase("huber_loss", F.huber_loss, 2, shapes=_same_shapes(2), kwargs=_delta),
    OpCase("binary_cross_entropy", lambda x, t, w, reduction: F.binary_cross_entropy(x, t, w, reduction=reduction),
           3, shapes=_same_shapes(3), kwargs=_red, domain=_sigmoid, nondiff=(2,)),
    OpCase("binary_cross_entropy_with_logits",
           lambda x, t, reduction: F.binary_cross_entropy_with_logits(x, torch.sigmoid(t), reduction=reduction),
           2, shapes=_same_shapes(2), kwargs=_red,
           ng_fn=lambda x, t, reduction: ng.binary_cross_entropy_with_logits(x, ng.sigmoid(t), reduction=reduction)),
    OpCase("binary_cross_entropy_with_logits", _pw_torch, 4, ng_fn=_pw_ng, kwargs=_red, nondiff=(2, 3),
           shapes=lambda d: [(3, 4), (3, 4), (3, 4), (4,)], name="weights"),
    OpCase("kl_div", _kl_torch, 2, ng_fn=_kl_ng, shapes=_same_shapes(2, min_dims=1), kwargs=_kl_kwargs),
    OpCase("cross_entropy", _ce_torch, 3, ng_fn=_ce_ng, shapes=_ce_shapes, kwargs=_ce_kwargs, nondiff=(1, 2)),
    OpCase("cross_entropy", _ce_prob_torch, 3, ng_fn=_ce_prob_ng, kwargs=_ce_kwargs, nondiff=(2,),
           shapes=lambda d: [(3, 4), (3, 4), (4,)], name="probabilities"),
    OpCase("nll_loss", _nll_torch, 3, ng_fn=_nll_ng, shapes=_ce_shapes, kwargs=_ce_kwargs, nondiff=(1, 2)),
    OpCase("ctc_loss", _ctc_torch, 1, ng_fn=_ctc_ng, shapes=[(7, 3, 4)], kwargs=_ctc_setup),
]
