"""Learning-rate schedulers: the lr sequence (and cycled momentum) against ``torch.optim.lr_scheduler``."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import new_grad as ng
from new_grad.errors import OptimizerError
from new_grad.optim import lr_scheduler as ngs

tls = torch.optim.lr_scheduler


def _warmup(epoch):
    return min(1.0, (epoch + 1) / 5) * 0.95**epoch


SCHEDULERS = [
    ("StepLR", dict(step_size=7, gamma=0.5)),
    ("MultiStepLR", dict(milestones=[5, 12, 12, 30], gamma=0.3)),
    ("ExponentialLR", dict(gamma=0.93)),
    ("CosineAnnealingLR", dict(T_max=15)),
    ("CosineAnnealingLR", dict(T_max=10, eta_min=0.01)),  # 60 steps: three full periods, down and up
    ("LinearLR", dict()),
    ("LinearLR", dict(start_factor=0.1, end_factor=0.8, total_iters=20)),
    ("LambdaLR", dict(lr_lambda=_warmup)),
    ("OneCycleLR", dict(max_lr=0.5, total_steps=60)),
    ("OneCycleLR", dict(max_lr=[0.5, 0.2], epochs=6, steps_per_epoch=10, anneal_strategy="linear", pct_start=0.25)),
    ("OneCycleLR", dict(max_lr=0.3, total_steps=60, three_phase=True, div_factor=10.0, final_div_factor=100.0)),
]
IDS = [f"{n}-{i}" for i, (n, _) in enumerate(SCHEDULERS)]


def pair(opt_name, opt_kw):
    """The same two-group optimiser in new_grad and in PyTorch."""
    a, b = np.zeros(3), np.zeros(2)
    ours = getattr(ng.optim, opt_name)(
        [{"params": [(a, np.zeros(3))]}, {"params": [(b, np.zeros(2))], "lr": 0.05}], **opt_kw
    )
    theirs = getattr(torch.optim, opt_name)(
        [
            {"params": [torch.zeros(3, requires_grad=True)]},
            {"params": [torch.zeros(2, requires_grad=True)], "lr": 0.05},
        ],
        **opt_kw,
    )
    return ours, theirs


@pytest.mark.parametrize("opt_name,opt_kw", [("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=0.1))])
@pytest.mark.parametrize("name,kw", SCHEDULERS, ids=IDS)
def test_lr_sequence_matches_torch(name, kw, opt_name, opt_kw):
    ours, theirs = pair(opt_name, opt_kw)
    s, ts = getattr(ngs, name)(ours, **kw), getattr(tls, name)(theirs, **kw)
    assert s.get_last_lr() == ts.get_last_lr()
    for _ in range(59):
        ours.step()
        theirs.step()
        s.step()
        ts.step()
        np.testing.assert_allclose(s.get_last_lr(), ts.get_last_lr(), rtol=1e-14, atol=0)
        for g, tg in zip(ours.param_groups, theirs.param_groups):
            assert g["lr"] == pytest.approx(tg["lr"], rel=1e-14, abs=0)
            if "momentum" in tg:
                assert g["momentum"] == pytest.approx(tg["momentum"], rel=1e-14)
            if "betas" in tg:
                assert g["betas"][0] == pytest.approx(tg["betas"][0], rel=1e-14)
                assert g["betas"][1] == tg["betas"][1]


def test_chained_schedulers_match_torch():
    """Two chainable schedulers on one optimiser compose, as in PyTorch."""
    ours, theirs = pair("SGD", dict(lr=0.1))
    ss = [ngs.LinearLR(ours, start_factor=0.2, total_iters=4), ngs.ExponentialLR(ours, gamma=0.9)]
    ts = [tls.LinearLR(theirs, start_factor=0.2, total_iters=4), tls.ExponentialLR(theirs, gamma=0.9)]
    for _ in range(20):
        ours.step()
        theirs.step()
        for s, t in zip(ss, ts):
            s.step()
            t.step()
        np.testing.assert_allclose(ss[-1].get_last_lr(), ts[-1].get_last_lr(), rtol=1e-14)


@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(mode="max", factor=0.5, patience=2, threshold=0.1, threshold_mode="abs", cooldown=3),
        dict(patience=1, min_lr=[0.02, 0.001], eps=1e-12),
    ],
)
def test_reduce_lr_on_plateau_matches_torch(kw):
    ours, theirs = pair("SGD", dict(lr=0.1))
    s, ts = ngs.ReduceLROnPlateau(ours, **kw), tls.ReduceLROnPlateau(theirs, **kw)
    rng = np.random.default_rng(0)
    metrics = np.concatenate([np.linspace(1, 0.5, 10), 0.5 + 0.01 * rng.standard_normal(50)])
    for m in metrics:
        s.step(m)
        ts.step(torch.tensor(m))
        assert s.get_last_lr() == ts.get_last_lr()
        assert (s.num_bad_epochs, s.cooldown_counter, s.best) == (ts.num_bad_epochs, ts.cooldown_counter, ts.best)
    assert s.get_last_lr()[0] < 0.1  # it did reduce


@pytest.mark.parametrize(
    "name,kw", [SCHEDULERS[1], SCHEDULERS[4], SCHEDULERS[8]], ids=["multistep", "cosine", "onecycle"]
)
def test_state_dict_resume(name, kw, tmp_path):
    """Save optimiser + scheduler mid-run through new_grad.save, restore into fresh ones: same lrs after."""
    ours, _ = pair("SGD", dict(lr=0.1, momentum=0.9))
    s = getattr(ngs, name)(ours, **kw)
    for _ in range(20):
        ours.step()
        s.step()
    ng.save({"opt": ours.state_dict(), "sched": s.state_dict()}, tmp_path / "ck.npz")
    ck = ng.load(tmp_path / "ck.npz")
    fresh, _ = pair("SGD", dict(lr=0.1, momentum=0.9))
    s2 = getattr(ngs, name)(fresh, **kw)
    fresh.load_state_dict(ck["opt"])
    s2.load_state_dict(ck["sched"])
    for _ in range(20):
        ours.step()
        fresh.step()
        s.step()
        s2.step()
        assert s.get_last_lr() == s2.get_last_lr()
        assert [g["lr"] for g in ours.param_groups] == [g["lr"] for g in fresh.param_groups]


def test_lambda_state_dict_skips_functions():
    ours, _ = pair("SGD", dict(lr=0.1))
    s = ngs.LambdaLR(ours, lr_lambda=lambda e: 0.5**e)
    state = s.state_dict()
    assert state["lr_lambdas"] == [None, None] and "optimizer" not in state
    s.load_state_dict(state)


def test_step_with_epoch_uses_closed_form_and_warns():
    ours, theirs = pair("SGD", dict(lr=0.1))
    s, ts = ngs.StepLR(ours, step_size=3, gamma=0.5), tls.StepLR(theirs, step_size=3, gamma=0.5)
    ours.step()
    theirs.step()
    with pytest.warns(UserWarning, match="deprecated"):
        s.step(7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ts.step(7)
    assert s.get_last_lr() == ts.get_last_lr()


def test_errors():
    ours, _ = pair("SGD", dict(lr=0.1))
    with pytest.raises(OptimizerError, match="not a new_grad Optimizer"):
        ngs.StepLR(object(), step_size=2)
    with pytest.raises(OptimizerError, match="start_factor"):
        ngs.LinearLR(ours, start_factor=0)
    with pytest.raises(OptimizerError, match="factor"):
        ngs.ReduceLROnPlateau(ours, factor=1.5)
    with pytest.raises(OptimizerError, match="total_steps"):
        ngs.OneCycleLR(ours, max_lr=0.1)
    with pytest.raises(OptimizerError, match="initial_lr"):
        ngs.StepLR(ng.optim.SGD([(np.zeros(1), np.zeros(1))], lr=0.1), step_size=2, last_epoch=3)
    s = ngs.OneCycleLR(ours, max_lr=0.1, total_steps=2)
    ours.step()
    s.step()
    s.step()
    with pytest.raises(OptimizerError, match="total_steps is 2"):
        s.step()


def test_warns_when_stepped_before_the_optimizer():
    ours, _ = pair("SGD", dict(lr=0.1))
    s = ngs.ExponentialLR(ours, gamma=0.5)
    with pytest.warns(UserWarning, match="before optimizer.step"):
        s.step()
    ours.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s.step()
