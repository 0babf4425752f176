"""``new-grad train --distributed``: the same run, data-parallel over the processes of ``mpiexec -n N``.

Every process builds the same model and the same shuffled loader; each takes its
slice of every global batch (``--batch-size`` stays the global batch), gradients are
summed across processes during backward (weighted by slice size, so the result is
the gradient of the global batch's mean loss), and the step's loss and error counts
are summed too. Process 0 alone prints, writes metrics, plots and checkpoints; the
checkpoint holds nothing that depends on the number of processes, so a run resumes
with any number of them. Evaluation is sharded the same way and summed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..backends import to_numpy
from ..data import Subset
from ..distributed import DistributedDataParallel, session_for, shard_bounds
from ..errors import NewGradError
from .train import StopRequest, Trainer


def shared_out_dir(make: Callable[[], Path]) -> Path:
    """Process 0 creates (and checks) the output directory; every process gets its path or its error."""
    s = session_for()
    text = ""
    if s.rank == 0:
        try:
            text = "ok:" + str(make())
        except (NewGradError, OSError) as e:
            text = "error:" + (str(e) or type(e).__name__)
    data = np.frombuffer(text.encode(), dtype=np.uint8)
    size = s.bcast(np.array([len(data)], dtype=np.int64), "the output directory")
    buf = np.zeros(int(size[0]), dtype=np.uint8)
    if s.rank == 0:
        buf[:] = data
    text = bytes(s.bcast(buf, "the output directory")).decode()
    kind, _, rest = text.partition(":")
    if kind == "error":
        raise OSError(rest)
    return Path(rest)


class DistributedTrainer(Trainer):
    """A :class:`Trainer` whose steps, evaluation and outputs are spread over MPI processes."""

    def __init__(self, cfg: dict[str, Any], out: Path, *, quiet: bool = False, **kwargs: Any) -> None:
        self.session = session_for()
        self.lead = self.session.rank == 0
        super().__init__(cfg, out, quiet=quiet or not self.lead, **kwargs)
        # checks that every process built the same model, then copies process 0's
        self.ddp = DistributedDataParallel(self.model, self.session)

    def _train_step(self, indices: np.ndarray, stop: StopRequest) -> tuple[float, int, int]:
        s = self.session
        a, b = shard_bounds(len(indices), s.size, s.rank)
        local = indices[a:b]
        self.engine.zero_grad()
        self.optimizer.zero_grad()
        loss_sum = wrong = 0.0
        if len(local):
            x, y = self.loader.fetch(local)
            xd, yd = self.device.put(x), self.device.put(y)
            with self.engine:
                logits = self.model(xd)
                loss = self.loss_fn(logits, yd)
            self.ddp.backward(self.engine, 1, weight=len(local) / len(indices))
            loss_sum = float(to_numpy(loss)) * len(local)
            wrong = float((to_numpy(logits).argmax(axis=1) != y).sum())
        else:  # a last batch smaller than the number of processes: take part with zero gradients
            self.ddp.synchronize()
        self.optimizer.step()
        # one message for the step's totals and for a stop request (Ctrl-C) seen by any process
        totals = s.allreduce(np.array([loss_sum, wrong, len(local), float(stop.requested)]), "the step's totals")
        if totals[3] and not stop.requested:
            stop.requested = True
        return float(totals[0]), int(totals[1]), int(totals[2])

    def evaluate(self, dataset: Any) -> tuple[float, float, np.ndarray, np.ndarray]:
        s = self.session
        n = len(dataset)
        a, b = shard_bounds(n, s.size, s.rank)
        preds = np.zeros(n, dtype=np.int64)
        labels = np.zeros(n, dtype=np.int64)
        sums = np.zeros(2)
        if b > a:
            loss, err, p, t = super().evaluate(Subset(dataset, np.arange(a, b)))
            sums[:] = loss * (b - a), round(err * (b - a))
            preds[a:b], labels[a:b] = p, t
        s.allreduce(sums, "the evaluation totals")
        s.allreduce(preds, "the evaluation predictions")
        s.allreduce(labels, "the evaluation labels")
        return float(sums[0] / n), float(sums[1] / n), preds, labels

    # process 0 alone speaks and writes
    def say(self, text: str, err: bool = False) -> None:
        if self.lead:
            super().say(text, err)

    def save(self, name: str) -> Path:
        return super().save(name) if self.lead else self.out / name

    def write_metrics(self, test_loss: float | None = None, test_accuracy: float | None = None) -> dict[str, Any]:
        if self.lead:
            return super().write_metrics(test_loss, test_accuracy)
        return {"config": self.cfg, "epochs": self.history, "test_loss": test_loss, "test_accuracy": test_accuracy}

    def _plot(self, preds: np.ndarray, labels: np.ndarray) -> list[str]:
        return super()._plot(preds, labels) if self.lead else []

    def run(self) -> dict[str, Any]:
        metrics = super().run()
        self.session.close()  # every process finished the same steps (or the job is stopped)
        return metrics


__all__ = ["DistributedTrainer", "shared_out_dir"]
