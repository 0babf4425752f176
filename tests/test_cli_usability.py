"""The command as a new user meets it: refusals that protect earlier work, one-line errors, honest help and docs."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import new_grad as ng
from new_grad.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--epochs", "2", "--hidden", "16", "--batch-size", "128", "--quiet", "--no-plots"]


def train(out: Path, *extra: str) -> int:
    return main(["train", "--out", str(out), *QUICK, *extra])


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


# -- an earlier run is never replaced by accident ------------------------------------------------------------


def test_training_into_a_finished_run_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert train(out) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert train(out, "--epochs", "1") == 1
    line = one_error_line(capsys)
    assert "already holds a run" in line and "--resume" in line and "--overwrite" in line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert train(out, "--epochs", "1", "--overwrite") == 0
    assert [r["epoch"] for r in metrics(out)["epochs"]] == [1]


def test_an_empty_existing_folder_is_fine(tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert train(out) == 0 and (out / "metrics.json").is_file()


# -- bad arguments: one argparse-style line, exit 2 ----------------------------------------------------------


@pytest.mark.parametrize(
    "argv, words",
    [
        (["train", "--seed", "-1"], "--seed"),
        (["train", "--seed", str(2**32)], "--seed"),
        (["tape", "--seed", "-3"], "--seed"),
        (["train", "--lr", "nan"], "--lr"),
        (["train", "--threads", "0"], "--threads"),
    ],
)
def test_bad_arguments_are_one_usage_line(tmp_path, capsys, argv, words):
    assert main([*argv, "--out", str(tmp_path / "o")] if argv[0] == "train" else argv) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"new-grad {argv[0]}: error: argument {words}") and "--help" in line
    assert not (tmp_path / "o").exists()


# -- a failed run leaves no empty folder behind --------------------------------------------------------------


def test_failed_runs_leave_no_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not a zip")
    assert main(["train", "--resume", str(bad), "--quiet"]) == 1
    assert main(["train", "--dataset", f"mnist-npy:{tmp_path / 'nowhere'}", "--quiet"]) == 1
    assert main(["train", "--device", "gpu", "--quiet"]) == 1 or _has_cupy()
    assert main(["train", "--lr", "1e6", "--epochs", "1", "--quiet", "--no-plots"]) == 1  # diverges at once
    capsys.readouterr()
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    out = tmp_path / "named"
    assert train(out, "--lr", "1e6") == 1
    assert "diverged" in one_error_line(capsys)  # no NumPy overflow warnings around it
    assert not out.exists()


def _has_cupy() -> bool:
    try:
        import cupy  # noqa: F401
    except ImportError:
        return False
    return True


# -- resuming: what extending means, and the no-op ----------------------------------------------------------


def test_resume_of_a_finished_run_without_more_epochs_is_an_error(tmp_path, capsys):
    out = tmp_path / "run"
    assert train(out, "--epochs", "3", "--scheduler", "none") == 0
    before = (out / "metrics.json").read_bytes()
    for extra in ([], ["--epochs", "3"], ["--epochs", "2"]):
        assert main(["train", "--resume", str(out / "last.npz"), "--quiet", "--no-plots", *extra]) == 1
        line = one_error_line(capsys)
        assert "already trained 3 epochs" in line and "--epochs" in line
    assert (out / "metrics.json").read_bytes() == before


@pytest.mark.parametrize("scheduler", ["cosine", "onecycle"])
def test_a_run_planned_over_its_length_cannot_be_extended(tmp_path, capsys, scheduler):
    out = tmp_path / "run"
    assert train(out, "--scheduler", scheduler) == 0
    before = (out / "metrics.json").read_bytes()
    assert main(["train", "--resume", str(out / "last.npz"), "--epochs", "4", "--quiet", "--no-plots"]) == 1
    line = one_error_line(capsys)
    assert f"--scheduler {scheduler}" in line and "cannot be extended" in line
    assert (out / "metrics.json").read_bytes() == before


@pytest.mark.parametrize("scheduler", ["step", "exponential", "none", "plateau"])
def test_extending_continues_the_schedule_and_never_raises_the_lr(tmp_path, scheduler):
    out = tmp_path / "run"
    assert train(out, "--scheduler", scheduler, "--epochs", "3") == 0
    assert main(["train", "--resume", str(out / "last.npz"), "--epochs", "6", "--quiet", "--no-plots"]) == 0
    lrs = [r["lr"] for r in metrics(out)["epochs"]]
    assert len(lrs) == 6 and all(b <= a for a, b in zip(lrs, lrs[1:])), lrs
    if scheduler == "exponential":
        np.testing.assert_allclose(lrs, [0.1 * 0.9**k for k in range(6)], rtol=1e-12)


# -- the data is checked when it is loaded ---------------------------------------------------------------


def _mnist_npy(root: Path, train_data: np.ndarray) -> None:
    root.mkdir()
    rng = np.random.default_rng(0)
    np.save(root / "train_data.npy", train_data)
    np.save(root / "train_labels.npy", rng.integers(0, 10, len(train_data)))
    np.save(root / "test_data.npy", rng.random((10, 784)).astype(np.float32))
    np.save(root / "test_labels.npy", rng.integers(0, 10, 10))


@pytest.mark.parametrize("bad, word", [(np.nan, "NaN"), (np.inf, "infinite")])
def test_non_finite_training_data_is_named_at_load(tmp_path, capsys, bad, word):
    x = np.random.default_rng(1).random((40, 784)).astype(np.float32)
    x[7, 3] = bad
    _mnist_npy(tmp_path / "d", x)
    assert train(tmp_path / "o", "--dataset", f"mnist-npy:{tmp_path / 'd'}") == 1
    line = one_error_line(capsys)
    assert word.lower()[:3] in line.lower() and "train" in line and ("sample 7" in line or "(7, 3)" in line)
    assert "diverged" not in line and "--lr" not in line


# -- bench in an environment without the peers; tape into a closed pipe ------------------------------------


def _hide_modules(tmp_path: Path, *names: str) -> dict[str, str]:
    """An environment in which importing ``names`` fails, as where they are not installed."""
    hide = tmp_path / "hide"
    hide.mkdir()
    for name in names:
        (hide / f"{name}.py").write_text(f"raise ModuleNotFoundError({'No module named ' + name!r}, name={name!r})\n")
    path = os.pathsep.join([str(hide), str(ROOT / "src"), str(ROOT)])
    return {**os.environ, "PYTHONPATH": path}


def test_bench_without_the_peers_runs_what_is_installed(tmp_path):
    env = _hide_modules(tmp_path, "torch", "autograd", "mygrad")
    done = subprocess.run([sys.executable, "-m", "new_grad", "bench", "--quick", "--rows", "A"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Broken pipe" not in done.stderr
    assert "new_grad" in done.stdout
    notes = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(notes) == 1 and "pip install" in notes[0] and "[bench]" in notes[0], done.stderr


def test_tape_into_a_closed_pipe_is_quiet():
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line, as `new-grad tape | head -0` makes it
    try:
        done = subprocess.run([sys.executable, "-m", "new_grad", "tape"], stdout=write, stderr=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, timeout=120)
    finally:
        os.close(write)
    assert done.stderr.decode() == ""
    assert done.returncode == 128 + 13  # like a tool killed by SIGPIPE


# -- tape --svg without Graphviz keeps the user's files ------------------------------------------------------


def test_svg_without_graphviz_never_overwrites_a_dot_file(tmp_path, capsys, monkeypatch):
    import new_grad.cli.tape as tape

    monkeypatch.setattr(tape.shutil, "which", lambda name: None)
    mine = tmp_path / "g.dot"
    mine.write_text("my own graph")
    assert main(["tape", "--svg", str(tmp_path / "g.svg"), "--hidden", "4"]) == 1
    line = one_error_line(capsys)
    assert "apt install graphviz" in line and "--dot" in line
    assert mine.read_text() == "my own graph"
    assert main(["tape", "--svg", str(tmp_path / "h.svg"), "--hidden", "4"]) == 1
    assert "h.dot" in one_error_line(capsys) and (tmp_path / "h.dot").read_text().startswith("digraph")


# -- a text file saved as .npy / .npz --------------------------------------------------------------------------


def test_a_text_file_named_npy_or_npz_is_called_what_it_is(tmp_path, capsys):
    root = tmp_path / "d"
    _mnist_npy(root, np.zeros((6, 784), dtype=np.uint8))
    (root / "train_data.npy").write_text("0,0,0\n1,2,3\n")
    assert train(tmp_path / "o", "--dataset", f"mnist-npy:{root}") == 1
    line = one_error_line(capsys)
    assert "not a NumPy file" in line and "allow_pickle" not in line
    fake = tmp_path / "last.npz"
    fake.write_text("epoch,loss\n1,0.5\n")
    assert main(["train", "--resume", str(fake)]) == 1
    line = one_error_line(capsys)
    assert "not a NumPy file" in line and "allow_pickle" not in line
    with pytest.raises(ng.errors.CheckpointError, match="not a NumPy file") as info:
        ng.load(fake)
    assert "allow_pickle" not in str(info.value)


# -- the help's examples work well ----------------------------------------------------------------------------


def _train_examples() -> list[list[str]]:
    sub = build_parser()._subparsers._group_actions[0].choices["train"]  # type: ignore[union-attr]
    lines = [line.strip() for line in (sub.epilog or "").splitlines()]
    return [shlex.split(line.split("(")[0])[1:] for line in lines if line.startswith("new-grad train")]


def test_help_examples_on_the_bundled_digits_reach_95_percent(tmp_path):
    examples = [a for a in _train_examples() if not any(x.startswith(("--dataset", "--resume")) for x in a)]
    assert len(examples) >= 2
    for i, argv in enumerate(examples):
        out = tmp_path / str(i)
        assert main([*argv, "--out", str(out), "--quiet", "--no-plots"]) == 0
        assert metrics(out)["test_accuracy"] >= 0.95, argv


# -- the README's default-run figures are the command's -------------------------------------------------------


def _default_run(tmp_path: Path, name: str, **env: str) -> dict:
    out = tmp_path / name
    done = subprocess.run([sys.executable, "-m", "new_grad", "train", "--out", str(out), "--quiet", "--no-plots"],
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src"), **env}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return metrics(out)


def test_readme_default_run_figures_are_what_the_command_prints(tmp_path):
    readme = (ROOT / "README.md").read_text()
    runs = [_default_run(tmp_path, "here")]
    # OpenBLAS picks its kernels by CPU; the AVX2 kernels sum in another order than the AVX-512 ones
    runs.append(_default_run(tmp_path, "avx2", OPENBLAS_CORETYPE="Haswell"))
    for m in runs:
        assert f"test accuracy {100 * m['test_accuracy']:.2f}%" in readme, m["test_accuracy"]
        assert f"val loss {m['epochs'][-1]['val_loss']:.4f}" in readme
    assert "BLAS" in readme


# -- the project speaks for itself ------------------------------------------------------------------------------

# The project's planning notes live beside the checkout (CI puts them there), not in it. User-facing text that
# names them, points at their numbered sections or cites tracker numbers means nothing to a reader of the
# repository alone.
PLANNING_NOTES = ROOT.parent / "shared"


def _work_item_references() -> re.Pattern:
    notes = sorted(p.stem for p in PLANNING_NOTES.glob("*.md") if p.stem.isupper()) if PLANNING_NOTES.is_dir() else []
    refs = [r"\b[Ii]ssues?\s*#?\d", "\N{SECTION SIGN}", *(rf"\b{re.escape(n)}\b" for n in notes)]
    return re.compile("|".join(refs))


WORK_ITEMS = _work_item_references()
SEED_JARGON = re.compile(r"seed's|\bseed[- ](API|style|names?|mode|signature|conventions?|layer)\b|beyond the seed",
                         re.IGNORECASE)


def test_no_internal_work_item_names_in_user_facing_text():
    files = [p for d in ("src", "docs", "benchmarks", "tests") for p in (ROOT / d).rglob("*") if p.suffix in (".py", ".md")]
    files += [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "pyproject.toml"]
    hits = []
    for path in files:
        if path.resolve() == Path(__file__).resolve():
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if WORK_ITEMS.search(line) or SEED_JARGON.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not hits, "\n".join(hits)


def test_bench_help_names_the_command(capsys):
    with pytest.raises(SystemExit) as done:
        main(["bench", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: new-grad bench") and "python -m benchmarks" not in out


# -- package metadata ---------------------------------------------------------------------------------------------


def test_package_metadata_names_author_and_license(tmp_path):
    from email.parser import Parser

    from setuptools import build_meta

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        name = build_meta.prepare_metadata_for_build_wheel(str(tmp_path))
    finally:
        os.chdir(cwd)
    meta = Parser().parsestr((tmp_path / name / "METADATA").read_text())
    assert meta.get("Author") or meta.get("Author-email")
    assert meta.get("License-Expression") == "MIT" and "LICENSE" in (meta.get_all("License-File") or [])
    assert meta.get("Summary") and meta.get("Requires-Python")


# -- plots: the legend and the best-epoch label hide no curve ---------------------------------------------------


@pytest.mark.parametrize("argv", [[], ["--model", "cnn", "--epochs", "10"]])
def test_plot_legend_and_best_label_cover_no_line(tmp_path, argv):
    pytest.importorskip("matplotlib")
    from new_grad.cli import plots

    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--quiet", "--no-plots", *argv]) == 0
    history = metrics(out)["epochs"]
    for key, percent in (("loss", False), ("error", True)):
        fig = plots.curve_figure(history, key, "t", key, percent)
        ax = fig.axes[0]
        renderer = fig.canvas.get_renderer()
        points = plots.line_points(ax)
        legend = ax.get_legend().get_window_extent(renderer)
        assert not legend.count_contains(points), f"the legend covers a line in the {key} plot"
        notes = [t for t in ax.texts]
        assert len(notes) == 1
        assert not notes[0].get_window_extent(renderer).count_contains(points), f"the label covers a line ({key})"
        plots.plt.close(fig)
