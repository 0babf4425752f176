"""The benchmark suite runs (tiny sizes, no timing asserts), and its floor computes the right gradients."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from benchmarks import impl_floor, impl_new_grad, impl_replay  # noqa: E402
from benchmarks.common import GRU_QUICK  # noqa: E402


def test_floor_gradients_match_new_grad():
    """The hand-derived floor is only a floor if it computes what the autodiff computes."""
    for a, b in zip(impl_floor.chain(10).timed(), impl_new_grad.chain(10).timed()):
        np.testing.assert_allclose(a, b, rtol=1e-5)
    (lf, gf), (ln, gn) = impl_floor.gru(**GRU_QUICK).timed(), impl_new_grad.gru(**GRU_QUICK).timed()
    np.testing.assert_allclose(lf, ln, rtol=1e-5)
    for a, b in zip(gf, gn):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    fl, ng_, rp = impl_floor.mlp(4), impl_new_grad.mlp(4), impl_replay.mlp(4)
    for _ in range(3):  # equal trajectories: equal gradients
        np.testing.assert_allclose(float(fl.timed()), float(ng_.timed()), rtol=1e-5)
        rp.timed()
    np.testing.assert_allclose(float(rp.timed()), float(ng_.timed()), rtol=0, atol=0)
    for kind in ("small", "lenet"):
        fl, ng_ = impl_floor.cnn(kind, 2), impl_new_grad.cnn(kind, 2)
        for _ in range(3):
            np.testing.assert_allclose(float(fl.timed()), float(ng_.timed()), rtol=1e-5)


def test_suite_runs_quick(tmp_path):
    import benchmarks

    out = tmp_path / "bench.md"
    report = benchmarks.run(quick=True, docs=out)
    assert out.read_text() == report  # no marker: the whole file is the report
    assert "≠" not in report  # every implementation computed the same loss
    for row in ("A per-op", "B MLP", "E backward", "F GRU", "20 steps of"):
        assert row in report
    table = [ln for ln in report.splitlines() if ln.startswith("| A per-op")][0]
    assert "Error" not in table and "died" not in table


@pytest.mark.parametrize("numbers", [False, True], ids=["arrays", "numbers"])
def test_every_rung_of_the_profile_ladder_computes_the_engines_gradients(numbers):
    """The ladder in benchmarks/profile.py prices each part of the engine by building it up from the bare tape
    design; its stand-in engines only price the engine if they compute exactly what it computes."""
    from benchmarks.profile import ladder_steps

    steps = ladder_steps(10, numbers)
    *rungs, whole = (step() for step in steps.values())
    assert len(rungs) == 4
    for grads in rungs:
        for got, want in zip(grads, whole):
            if want is None:
                assert got is None
            else:
                np.testing.assert_array_equal(got, want)
