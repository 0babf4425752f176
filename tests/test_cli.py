"""The `new-grad` command end to end: files, metrics, determinism, resume, Ctrl-C, and every user error."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import new_grad as ng
from new_grad.cli import main

QUICK = ["--epochs", "3", "--hidden", "16", "--batch-size", "128", "--quiet", "--no-plots"]
EPOCH_KEYS = ["epoch", "train_loss", "train_error", "val_loss", "val_error", "lr", "seconds"]


def train(out: Path, *extra: str) -> int:
    return main(["train", "--out", str(out), *QUICK, *extra])


def metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


def without_seconds(m: dict) -> dict:
    return {**m, "epochs": [{k: v for k, v in r.items() if k != "seconds"} for r in m["epochs"]]}


def params(path: Path) -> dict:
    return ng.load(path)["model"]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# -- a run and what it writes ------------------------------------------------------------------------


def test_train_writes_metrics_plots_and_checkpoints(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--epochs", "2", "--hidden", "16", "--batch-size", "128"]) == 0
    stdout = capsys.readouterr().out
    assert "epoch 1/2" in stdout and "epoch 2/2" in stdout and "test accuracy" in stdout
    m = metrics(out)
    assert list(m) == ["config", "epochs", "test_loss", "test_accuracy"]
    assert m["config"]["model"] == "mlp" and m["config"]["epochs"] == 2 and m["config"]["dtype"] == "float32"
    assert [list(r) for r in m["epochs"]] == [EPOCH_KEYS, EPOCH_KEYS]
    assert [r["epoch"] for r in m["epochs"]] == [1, 2]
    for r in m["epochs"]:
        assert r["train_loss"] > 0 and 0 <= r["train_error"] <= 1 and 0 <= r["val_error"] <= 1 and r["seconds"] >= 0
    assert 0 < m["test_loss"] and 0 <= m["test_accuracy"] <= 1
    for name in ("loss.png", "error.png", "confusion.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("last.npz", "best.npz"):
        state = ng.load(out / name)
        assert state["model"]["fc1.W"].dtype == np.float32


def test_same_seed_same_results_bit_for_bit(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert train(a) == 0 and train(b) == 0 and train(c, "--seed", "1") == 0
    assert without_seconds(metrics(a)) == without_seconds(metrics(b))
    pa, pb = params(a / "last.npz"), params(b / "last.npz")
    assert all(np.array_equal(pa[k], pb[k]) for k in pa)
    assert without_seconds(metrics(a)) != without_seconds(metrics(c))


@pytest.mark.parametrize("stop_after", [4, 9])  # mid-epoch 1 of 9 batches; exactly at the end of epoch 1 of 9
def test_interrupt_then_resume_equals_uninterrupted(tmp_path, capsys, stop_after):
    full, part = tmp_path / "full", tmp_path / "part"
    extra = ["--optimizer", "adam", "--scheduler", "onecycle", "--batch-size", "150"]
    assert main(["train", "--out", str(full), *QUICK, *extra]) == 0
    assert main(["train", "--out", str(part), *QUICK, *extra, "--stop-after-steps", str(stop_after)]) == 130
    err = capsys.readouterr().err
    assert "new-grad train --resume" in err
    assert len(metrics(part)["epochs"]) < 3 and metrics(part)["test_accuracy"] is None
    assert main(["train", "--resume", str(part / "last.npz"), "--quiet", "--no-plots"]) == 0
    assert without_seconds(metrics(part)) == without_seconds(metrics(full))
    pf, pp = params(full / "last.npz"), params(part / "last.npz")
    assert all(np.array_equal(pf[k], pp[k]) for k in pf)


def test_resume_can_extend_a_finished_run(tmp_path):
    out = tmp_path / "run"
    assert train(out, "--scheduler", "none") == 0
    assert main(["train", "--resume", str(out / "last.npz"), "--epochs", "4", "--quiet", "--no-plots"]) == 0
    assert [r["epoch"] for r in metrics(out)["epochs"]] == [1, 2, 3, 4]


def test_sigint_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "new_grad", "train", "--out", str(out), "--epochs", "500", "--no-plots",
           "--hidden", "16", "--scheduler", "none"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        while line and not line.startswith("epoch"):
            line = proc.stdout.readline()
        assert line.startswith("epoch"), "the run never printed an epoch line"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "--resume" in err
    state = ng.load(out / "last.npz")
    assert state["loop"]["epoch"] >= 1
    assert metrics(out)["test_accuracy"] is None


# -- errors: one line, non-zero, no traceback -------------------------------------------------------


def test_unknown_option_value_is_one_line(tmp_path, capsys):
    assert main(["train", "--model", "transformer", "--out", str(tmp_path)]) == 2
    line = one_error_line(capsys)
    assert "invalid choice: 'transformer'" in line and "--help" in line
    assert main(["train", "--epochs", "zero"]) == 2
    assert "not a whole number" in one_error_line(capsys)
    assert main(["train", "--dataset", "cifar"]) == 2
    assert "mnist-npy:DIR" in one_error_line(capsys)


def test_missing_dataset_dir(tmp_path, capsys):
    assert train(tmp_path / "o", "--dataset", f"mnist-npy:{tmp_path / 'nowhere'}") == 1
    assert "not a directory" in one_error_line(capsys)
    assert train(tmp_path / "o", "--dataset", f"mnist-idx:{tmp_path / 'nowhere'}") == 1
    assert "not a directory" in one_error_line(capsys)


def test_malformed_mnist_file(tmp_path, capsys):
    data = tmp_path / "mnist"
    data.mkdir()
    for split in ("train", "test"):
        np.save(data / f"{split}_data.npy", np.zeros((6, 784), dtype=np.uint8))
        np.save(data / f"{split}_labels.npy", np.zeros(6, dtype=np.int64))
    np.save(data / "test_labels.npy", np.zeros(5, dtype=np.int64))
    assert train(tmp_path / "o", "--dataset", f"mnist-npy:{data}") == 1
    assert "5 labels for 6 images" in one_error_line(capsys)


def test_mnist_npy_run(tmp_path, capsys):
    data = tmp_path / "mnist"
    data.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("val", 10), ("test", 10)):
        np.save(data / f"{split}_data.npy", rng.integers(0, 256, (n, 784), dtype=np.uint8))
        np.save(data / f"{split}_labels.npy", rng.integers(0, 10, n))
    assert train(tmp_path / "o", "--dataset", f"mnist-npy:{data}", "--epochs", "1") == 0
    m = metrics(tmp_path / "o")
    assert m["config"]["dataset"] == f"mnist-npy:{data}" and len(m["epochs"]) == 1


def test_corrupted_foreign_and_incompatible_checkpoints(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 definitely not a zip archive")
    assert main(["train", "--resume", str(bad)]) == 1
    assert "corrupted" in one_error_line(capsys)
    assert main(["train", "--resume", str(tmp_path / "missing.npz")]) == 1
    assert "no checkpoint" in one_error_line(capsys)
    ng.save({"model": {"W": np.zeros(3)}}, tmp_path / "other.npz")
    assert main(["train", "--resume", str(tmp_path / "other.npz")]) == 1
    assert "not a `new-grad train` checkpoint" in one_error_line(capsys)
    run = tmp_path / "run"
    assert train(run, "--epochs", "1") == 0
    assert main(["train", "--resume", str(run / "last.npz"), "--model", "cnn", "--quiet"]) == 1
    assert "trained with --model mlp" in one_error_line(capsys)
    state = ng.load(run / "last.npz")
    state["model"]["fc1.W"] = np.zeros((3, 3), dtype=np.float32)
    ng.save(state, run / "tampered.npz")
    assert main(["train", "--resume", str(run / "tampered.npz"), "--quiet"]) == 1
    assert "does not fit this model" in one_error_line(capsys)


def test_unwritable_output_dir(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    assert train(blocker / "run") == 1
    assert "cannot write to the output directory" in one_error_line(capsys)


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ng.errors.NewGradError):
        main(["train", "--dataset", f"mnist-npy:{tmp_path / 'nowhere'}", "--debug", "--out", str(tmp_path / "o")])


# -- tape, bench, python -m ------------------------------------------------------------------------------


def test_tape_prints_the_table_and_writes_dot(tmp_path, capsys):
    dot = tmp_path / "tape.dot"
    assert main(["tape", "--dot", str(dot), "--hidden", "8"]) == 0
    out = capsys.readouterr().out
    for word in ("linear", "relu", "cross_entropy", "fc1.W (8,64)", "#0 (8,8)", "6 ops", "Backward pass", "loss"):
        assert word in out
    text = dot.read_text()
    assert text.startswith("digraph tape {") and 'label="fc1.W\\n(8, 64) float32"' in text


@pytest.mark.skipif(shutil.which("dot") is not None, reason="Graphviz is installed here")
def test_tape_svg_without_graphviz_says_how_to_install(tmp_path, capsys):
    assert main(["tape", "--svg", str(tmp_path / "t.svg")]) == 1
    line = one_error_line(capsys)
    assert "apt install graphviz" in line and (tmp_path / "t.dot").exists()


def test_python_m_new_grad_is_the_command():
    done = subprocess.run([sys.executable, "-m", "new_grad", "train", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0
    for option in ("--model", "--dataset", "--optimizer", "--scheduler", "--resume", "--val-fraction", "--device"):
        assert option in done.stdout


def test_gpu_without_cupy_is_one_line(tmp_path, capsys):
    pytest.importorskip("numpy")
    try:
        import cupy  # noqa: F401

        pytest.skip("CuPy is installed")
    except ImportError:
        pass
    assert train(tmp_path / "o", "--device", "gpu") == 1
    assert "CuPy" in one_error_line(capsys)


def test_short_runs_stay_fast(tmp_path):
    tic = time.perf_counter()
    assert train(tmp_path / "o", "--epochs", "1") == 0
    assert time.perf_counter() - tic < 20


def test_bench_runs_the_suite(capsys):
    if not (Path.cwd() / "benchmarks" / "__main__.py").is_file():
        pytest.skip("not at the root of a source checkout")
    assert main(["bench", "--quick", "--rows", "A", "--impls", "new_grad,floor"]) == 0
    out = capsys.readouterr().out
    assert "| work |" in out and "new_grad" in out


def test_bench_without_the_suite_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "benchmarks", None)
    monkeypatch.setitem(sys.modules, "benchmarks.__main__", None)
    assert main(["bench"]) == 1
    assert "source checkout" in one_error_line(capsys)


@pytest.mark.parametrize("model, op", [("cnn", "conv2d"), ("gru", "gru")])
def test_each_model_trains_and_shows_its_tape(tmp_path, capsys, model, op):
    assert train(tmp_path / model, "--model", model, "--epochs", "1", "--hidden", "8") == 0
    m = metrics(tmp_path / model)
    assert m["config"]["model"] == model and 0 <= m["test_accuracy"] <= 1
    assert main(["tape", "--model", model, "--hidden", "8"]) == 0
    assert op in capsys.readouterr().out


def test_mnist_idx_run(tmp_path):
    import gzip

    data = tmp_path / "idx"
    data.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 30), ("t10k", 10)):
        for kind, shape in (("images-idx3", (n, 28, 28)), ("labels-idx1", (n,))):
            a = rng.integers(0, 10 if kind.startswith("labels") else 256, shape).astype(np.uint8)
            raw = bytes([0, 0, 8, a.ndim]) + np.asarray(a.shape, dtype=">u4").tobytes() + a.tobytes()
            (data / f"{prefix}-{kind}-ubyte.gz").write_bytes(gzip.compress(raw))
    assert train(tmp_path / "o", "--dataset", f"mnist-idx:{data}", "--epochs", "1", "--model", "cnn") == 0
    assert metrics(tmp_path / "o")["config"]["dataset"] == f"mnist-idx:{data}"
