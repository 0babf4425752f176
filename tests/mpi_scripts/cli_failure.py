"""Run under mpiexec: ``new-grad train --distributed`` where process 1 fails in the second epoch.

``python cli_failure.py MODE OUT``: at its 30th step (the first epoch, 21 steps, is checkpointed) process 1
raises an unexpected exception (``raise``) or a new_grad error that the command reports and exits on
(``error``). Every process must stop in bounded time and ``OUT/last.npz`` must stay loadable.
"""

from __future__ import annotations

import sys

from new_grad import distributed as dist
from new_grad.cli import main
from new_grad.cli.distributed import DistributedTrainer
from new_grad.errors import DataError

MODE, OUT = sys.argv[1], sys.argv[2]
step = DistributedTrainer._train_step
calls = [0]


def failing_step(self, indices, stop):
    calls[0] += 1
    if dist.rank() == 1 and calls[0] == 30:
        if MODE == "raise":
            raise RuntimeError("something went wrong on process 1")
        raise DataError("a corrupt batch on process 1")
    return step(self, indices, stop)


DistributedTrainer._train_step = failing_step
sys.exit(main(["train", "--distributed", "--epochs", "3", "--out", OUT, "--no-plots", "--dtype", "float64"]))
