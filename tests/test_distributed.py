"""Data-parallel training over MPI equals single-process training on the same global batch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "mpi_scripts" / "data_parallel.py"


def _mpiexec():
    try:
        import mpi4py.MPI  # noqa: F401 - fails without an MPI library
    except Exception:
        return None
    here = Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else shutil.which("mpiexec")


@pytest.mark.mpi
def test_two_processes_match_one():
    mpiexec = _mpiexec()
    if mpiexec is None:
        pytest.skip("no MPI: pip install 'new_grad[mpi]'")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run(
        [mpiexec, "-n", "2", sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("max |parallel - single|") == 2


def test_shard_splits_a_batch_evenly():
    import numpy as np

    from new_grad import distributed as dist

    class FakeComm:
        def __init__(self, rank, size):
            self.r, self.s = rank, size

        def Get_rank(self):
            return self.r

        def Get_size(self):
            return self.s

    parts = [dist.shard(np.arange(10), FakeComm(r, 3)) for r in range(3)]
    assert [len(p) for p in parts] == [3, 4, 3]
    assert np.concatenate(parts).tolist() == list(range(10))
