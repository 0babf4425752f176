"""Data-parallel training over MPI: N processes equal one, the command runs distributed, failures end in bounded time.

The MPI cases launch ``mpiexec`` (2 and 3 processes; more processes than cores is fine) on the scripts in
``tests/mpi_scripts``, each under a subprocess timeout: a hang fails the test instead of stalling the suite.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from new_grad import distributed as dist
from new_grad.cli import main
from new_grad.cli.checkpoint import load_checkpoint
from new_grad.data import ArrayDataset, DataLoader
from new_grad.distributed.parameters import _mismatch

SCRIPTS = Path(__file__).parent / "mpi_scripts"
LIMIT = 90  # seconds: every launch must end well within this, hangs included


def _mpiexec() -> str | None:
    try:
        import mpi4py.MPI  # noqa: F401 - fails without an MPI library
    except Exception:
        return None
    here = Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else shutil.which("mpiexec")


MPIEXEC = _mpiexec()
needs_mpi = pytest.mark.skipif(MPIEXEC is None, reason="no MPI: pip install 'new_grad[mpi]'")


def launch(n: int, *args: str, cwd: Path | None = None, timeout_env: float | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    if timeout_env is not None:
        env["NEW_GRAD_DIST_TIMEOUT"] = str(timeout_env)
    assert MPIEXEC is not None
    return subprocess.run(
        [MPIEXEC, "-n", str(n), *args], capture_output=True, text=True, timeout=LIMIT, env=env, cwd=cwd
    )


def script(name: str, *args: str) -> list[str]:
    return [sys.executable, str(SCRIPTS / name), *args]


# -- N processes reach the parameters of one -------------------------------------------------------


@needs_mpi
@pytest.mark.mpi
@pytest.mark.parametrize("mode", ["overlap", "overlap-thread", "no-overlap", "blocking"])
@pytest.mark.parametrize("n", [2, 3])
def test_n_processes_match_one(n, mode):
    """10 steps, float64, global batch 32 (uneven slices on 3), a layer used twice: within 1e-10 of one process;
    with overlap, buckets start during backward."""
    proc = launch(n, *script("data_parallel.py", mode))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("max |parallel - single|") == n



@needs_mpi
@pytest.mark.mpi
@pytest.mark.parametrize("n", [2, 3])
def test_gradients_accumulated_without_zero_grad_match_one_process(n):
    """Micro-batches whose gradients add up over steps (no zero_grad): the sums already held count once."""
    proc = launch(n, *script("accumulate.py"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("max |accumulated parallel - single|") == n

# -- failures end in bounded time ------------------------------------------------------------------


@needs_mpi
@pytest.mark.mpi
@pytest.mark.parametrize(
    "mode, n, says",
    [
        ("raise", 2, "uncaught RuntimeError: something went wrong on this process; stopping all processes"),
        ("exit", 3, "process 2 stopped after 6 collectives while this process waits in the gradient allreduce"),
        ("kill", 2, "signal 9"),
        ("hang", 2, "no progress for 3 s in the gradient allreduce"),
    ],
)
def test_a_failing_process_stops_the_job(mode, n, says):
    # the no-progress deadline is short only where it is what ends the job, so a slow machine cannot pre-empt
    # the other mechanisms
    proc = launch(n, *script("failures.py", mode), timeout_env=3 if mode == "hang" else 30)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert says in out, out
    assert "finished 100000 steps" not in out


@needs_mpi
@pytest.mark.mpi
@pytest.mark.parametrize(
    "mode, says",
    [
        ("bigger", "parameter #0 is '0.W (9, 4) float64', on process 0 '0.W (8, 4) float64'"),
        ("smaller", "process 1 has 2 parameters, process 0 has 4"),
        ("reordered", "parameter #0 is '0.W (2, 8) float64', on process 0 '0.W (8, 4) float64'"),
        ("dtype", "parameter #0 is '0.W (8, 4) float32', on process 0 '0.W (8, 4) float64'"),
        ("order", "parameter #0 is '0.W (2, 8) float64'"),  # same total size, no broadcast
    ],
)
def test_different_models_are_an_error_on_every_process(mode, says):
    proc = launch(2, *script("failures.py", mode), timeout_env=10)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 3, out  # the script's exit status for a DistributedError it caught
    for r in range(2):
        assert f"rank {r}: DistributedError: the processes hold different models" in out, out
    assert says in out


# -- the command -------------------------------------------------------------------------------------

TRAIN = ["train", "--epochs", "2", "--dtype", "float64", "--no-plots", "--quiet"]


@pytest.fixture(scope="module")
def single_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    assert main([*TRAIN, "--out", str(out)]) == 0
    return out


def _same_run(a: Path, b: Path) -> None:
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
    assert len(ma["epochs"]) == len(mb["epochs"]) == 2
    for ea, eb in zip(ma["epochs"], mb["epochs"]):
        for key in ("train_loss", "train_error", "val_loss", "val_error", "lr"):
            assert ea[key] == pytest.approx(eb[key], rel=1e-10, abs=1e-12), key
    assert ma["test_accuracy"] == mb["test_accuracy"]
    assert ma["test_loss"] == pytest.approx(mb["test_loss"], rel=1e-10)
    ca, cb = load_checkpoint(a / "last.npz"), load_checkpoint(b / "last.npz")
    for k in ca["model"]:
        np.testing.assert_allclose(ca["model"][k], cb["model"][k], rtol=0, atol=1e-10, err_msg=k)


@needs_mpi
@pytest.mark.mpi
@pytest.mark.parametrize("n", [2, 3])
def test_command_distributed_equals_single_process(n, single_run, tmp_path):
    proc = launch(n, sys.executable, "-m", "new_grad", *TRAIN[:-1], "--distributed",
                  "--out", str(tmp_path / "d"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("new-grad train: mlp") == 1  # process 0 alone prints
    assert proc.stdout.count("test accuracy") == 1
    _same_run(single_run, tmp_path / "d")


@needs_mpi
@pytest.mark.mpi
@pytest.mark.parametrize("model", ["cnn", "gru"])
def test_command_trains_every_reference_model_distributed(model, tmp_path):
    run = ["train", "--model", model, "--epochs", "1", "--dtype", "float64", "--no-plots", "--quiet"]
    assert main([*run, "--out", str(tmp_path / "one")]) == 0
    proc = launch(2, sys.executable, "-m", "new_grad", *run, "--distributed", "--out", str(tmp_path / "two"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    a, b = load_checkpoint(tmp_path / "one" / "last.npz"), load_checkpoint(tmp_path / "two" / "last.npz")
    for k in a["model"]:
        np.testing.assert_allclose(a["model"][k], b["model"][k], rtol=0, atol=1e-10, err_msg=k)


@needs_mpi
@pytest.mark.mpi
def test_a_checkpoint_from_2_processes_resumes_on_3(single_run, tmp_path):
    run = [sys.executable, "-m", "new_grad", *TRAIN, "--distributed", "--out", str(tmp_path / "d")]
    first = launch(2, *run, "--stop-after-steps", "30")  # stops mid second epoch, saves last.npz
    assert first.returncode == 130, first.stdout + first.stderr
    assert load_checkpoint(tmp_path / "d" / "last.npz")["loop"]["step"] == 9
    second = launch(3, sys.executable, "-m", "new_grad", "train", "--distributed", "--quiet", "--no-plots",
                    "--resume", str(tmp_path / "d" / "last.npz"))
    assert second.returncode == 0, second.stdout + second.stderr
    _same_run(single_run, tmp_path / "d")


@needs_mpi
@pytest.mark.mpi
@pytest.mark.parametrize("mode", ["raise", "error"])
def test_command_failure_stops_every_process_and_keeps_the_checkpoint(mode, tmp_path):
    proc = launch(2, *script("cli_failure.py", mode, str(tmp_path / "d")), timeout_env=20)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    if mode == "raise":
        assert "process 1 of 2: uncaught RuntimeError: something went wrong on process 1" in out, out
    else:
        assert "new-grad: error: a corrupt batch on process 1" in out, out
        assert "process 1 stopped after" in out, out
    ckpt = load_checkpoint(tmp_path / "d" / "last.npz")
    assert ckpt["loop"]["epoch"] == 1 and ckpt["loop"]["step"] == 0
    assert all(np.isfinite(v).all() for v in ckpt["model"].values())


# -- without MPI: slices, the sampler, messages --------------------------------------------------------


def test_shard_splits_a_batch_evenly():
    class FakeComm:
        def __init__(self, rank, size):
            self.r, self.s = rank, size

        def Get_rank(self):
            return self.r

        def Get_size(self):
            return self.s

    parts = [dist.shard(np.arange(10), FakeComm(r, 3)) for r in range(3)]
    assert [len(p) for p in parts] == [4, 3, 3]
    assert np.concatenate(parts).tolist() == list(range(10))
    assert [dist.shard_bounds(2, 3, r) for r in range(3)] == [(0, 1), (1, 2), (2, 2)]


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_sampler_slices_are_disjoint_cover_the_data_and_reshuffle(size):
    data = ArrayDataset(np.arange(50.0), np.arange(50))
    samplers = [dist.DistributedSampler(DataLoader(data, batch_size=8, shuffle=True, seed=4), rank=r, size=size)
                for r in range(size)]
    single = DataLoader(data, batch_size=8, shuffle=True, seed=4)
    epochs = []
    for _ in range(2):
        per_rank = [s.batch_indices() for s in samplers]
        whole = single.batch_indices()
        for b, batch in enumerate(whole):
            slices = [per_rank[r][b][0] for r in range(size)]
            assert all(per_rank[r][b][1] == len(batch) for r in range(size))
            assert np.concatenate(slices).tolist() == batch.tolist()  # disjoint, complete, the global batch
        epochs.append(np.concatenate(whole))
    assert sorted(epochs[0].tolist()) == list(range(50))
    assert not np.array_equal(epochs[0], epochs[1])
    (x, y), w = next(iter(samplers[-1]))
    assert w == pytest.approx(len(y) / 8)


def test_the_mismatch_message_names_the_process_and_the_parameter():
    ref = "fc.W (8, 4) float64\nfc.b (8,) float64"
    msg = _mismatch([ref, ref, "fc.W (8, 4) float32\nfc.b (8,) float64", "fc.W (8, 4) float64"])
    assert "process 2 parameter #0 is 'fc.W (8, 4) float32', on process 0 'fc.W (8, 4) float64'" in msg
    assert "process 3 has 1 parameters, process 0 has 2" in msg
    assert "process 1" not in msg
