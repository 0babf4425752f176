"""`new-grad train` replays steps whose tape repeats (the default): the results are those of eager steps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import new_grad as ng
from new_grad.cli import main
from new_grad.cli import train as train_module


def _run(out: Path, *extra: str) -> tuple[dict, dict]:
    args = ["train", "--out", str(out), "--epochs", "2", "--hidden", "16", "--quiet", "--no-plots", *extra]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for e in metrics["epochs"]:
        e.pop("seconds")
    with np.load(out / "last.npz") as z:
        params = {k: z[k] for k in z.files if k.startswith("model")}
    return metrics, params


@pytest.mark.parametrize("model", ["mlp", "cnn", "gru"])
def test_replayed_training_equals_eager_training_bit_for_bit(tmp_path, model):
    m1, p1 = _run(tmp_path / "replay", "--model", model)
    m2, p2 = _run(tmp_path / "eager", "--model", model, "--no-replay")
    assert m1["epochs"] == m2["epochs"]
    assert p1.keys() == p2.keys() and all(np.array_equal(p1[k], p2[k]) for k in p1)


def test_the_default_run_replays_its_steps(tmp_path, monkeypatch):
    replayed = []
    real = ng.replay.CompiledStep.__call__

    def spy(self, *args):
        replayed.append(self._plan is not None)
        return real(self, *args)

    monkeypatch.setattr(ng.replay.CompiledStep, "__call__", spy)
    _run(tmp_path / "r")
    assert sum(replayed) > len(replayed) // 2  # after the two recording calls per batch shape, steps replay


def test_no_replay_runs_eagerly(tmp_path, monkeypatch):
    monkeypatch.setattr(train_module, "compile_step", lambda *a, **k: pytest.fail("replay used with --no-replay"))
    _run(tmp_path / "e", "--no-replay")
