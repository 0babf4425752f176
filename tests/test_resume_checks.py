"""`new-grad train --resume` on tampered checkpoints: every value read back is checked first, one error line each."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

import new_grad as ng
from new_grad.cli import main

QUICK = ["--epochs", "2", "--hidden", "16", "--batch-size", "128", "--quiet", "--no-plots"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "--out", str(out), *QUICK, "--stop-after-steps", "13"]) == 130  # in epoch 2: full loop state
    return out / "last.npz"


def _resume(tmp_path, ckpt: Path, capsys) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(["train", "--resume", str(ckpt), "--out", str(tmp_path / "out"), "--quiet", "--no-plots"])
    err = capsys.readouterr().err
    return rc, err


BAD = [
    ("config/lr", "abc", "lr"),
    ("config/lr", -0.1, "lr"),
    ("config/lr", float("nan"), "lr"),
    ("config/dtype", "object", "dtype"),
    ("config/hidden", 1e9, "hidden"),
    ("config/hidden", 10**9, "hidden"),
    ("config/hidden", True, "hidden"),
    ("config/model", "transformer", "model"),
    ("config/epochs", 0, "epochs"),
    ("config/batch_size", "64", "batch_size"),
    ("config/seed", -1, "seed"),
    ("config/val_fraction", 1.5, "val_fraction"),
    ("config/momentum", [0.9], "momentum"),
    ("config/weight_decay", float("inf"), "weight_decay"),
    ("config/dataset", "http://example.com/mnist", "dataset"),
    ("config/device", "tpu", "device"),
    ("config/bogus", 1, "bogus"),
    ("config", "mlp", "config"),
    ("loop", 5, "loop"),
    ("loop/epoch", -3, "epoch"),
    ("loop/epoch", 1.5, "epoch"),
    ("loop/epoch", "1", "epoch"),
    ("loop/step", -1, "step"),
    ("loop/acc", [1, 2], "acc"),
    ("loop/acc/seen", -5, "seen"),
    ("loop/acc/loss_sum", float("nan"), "loss_sum"),
    ("loop/epoch_lr", "fast", "epoch_lr"),
    ("loop/history", "abc", "history"),
    ("loop/history/0/train_loss", "low", "train_loss"),
    ("loop/best", {"loss": "x", "epoch": 1}, "best"),
    ("loop/np_random", ("MT19937", np.zeros(3, np.uint32), 0, 0, 0.0), "np_random"),
    ("loop/loader", {"generator": "x"}, "loader"),
    ("model/fc1.W", "complex", "complex"),
    ("loop/step", 10**6, "step"),
    ("config/hidden", 64, "does not fit"),  # a width the parameters have, but not this one
    ("model/fc1.W", "float64", "dtype"),
    ("model/fc1.W", "nan", "finite"),
    ("model/fc1.W", "int", "dtype"),
    ("model", [1, 2], "model"),
    ("optimizer/param_groups/0/lr", "abc", "lr"),
    ("optimizer/param_groups/0/momentum", float("nan"), "momentum"),
    ("optimizer/state/0/momentum_buffer", "complex", "complex"),
    ("optimizer/state/0/momentum_buffer", "nan", "finite"),
    ("optimizer/state", "x", "state"),
    ("scheduler/optimizer", 1, "optimizer"),
    ("scheduler", None, "scheduler"),
    ("scheduler/last_epoch", "one", "last_epoch"),
    ("scheduler/base_lrs", "abc", "base_lrs"),
]


ARRAY_EDITS = {
    "complex": lambda a: a.astype(np.complex64) + 1j,
    "float64": lambda a: a.astype(np.float64),
    "int": lambda a: a.astype(np.int64),
    "nan": lambda a: np.where(np.arange(a.size).reshape(a.shape) == 0, np.nan, a).astype(a.dtype),
}


def _tamper(state: dict, where: str, value) -> None:
    """Set the value at ``where`` (keys joined by '/'; numbers index lists and int-keyed dicts)."""
    *parents, last = where.split("/")
    d = state
    for p in parents:
        d = d[int(p)] if p.isdigit() and (isinstance(d, list) or int(p) in d) else d[p]
    key = int(last) if last.isdigit() and isinstance(d, list) else last
    if isinstance(value, str) and value in ARRAY_EDITS and isinstance(d.get(key), np.ndarray):
        value = ARRAY_EDITS[value](d[key])
    d[key] = value


@pytest.mark.parametrize("where,value,word", BAD, ids=[f"{w}={v!r}"[:40] for w, v, _ in BAD])
def test_tampered_checkpoint_is_one_line(tmp_path, capsys, finished_run, where, value, word):
    state = ng.load(finished_run)
    _tamper(state, where, value)
    bad = tmp_path / "tampered.npz"
    ng.save(state, bad)
    rc, err = _resume(tmp_path, bad, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert word in lines[0] and "--resume" in lines[0], lines[0]


def test_untampered_checkpoint_still_resumes(tmp_path, capsys, finished_run):
    copy = tmp_path / "last.npz"
    shutil.copy(finished_run, copy)
    rc, err = _resume(tmp_path, copy, capsys)
    assert rc == 0, err


def test_resume_from_a_fifo_is_one_line_and_does_not_hang(tmp_path, capsys):
    fifo = tmp_path / "last.npz"
    os.mkfifo(fifo)
    rc: list = []
    t = threading.Thread(target=lambda: rc.append(main(["train", "--resume", str(fifo), "--quiet"])), daemon=True)
    t.start()
    t.join(60)
    if t.is_alive():
        with open(fifo, "wb"):
            pass
        t.join(60)
        pytest.fail("--resume blocked on a named pipe")
    err = capsys.readouterr().err
    assert rc == [1] and "regular file" in err and "Traceback" not in err, err
