"""Training checkpoints for the command: model, optimiser, scheduler and loop state in one file.

A thin layer over :func:`new_grad.save` / :func:`new_grad.load` (atomic ``.npz``, no
pickle): it adds a ``run`` tag so that ``--resume`` can tell a training checkpoint
from any other new_grad file, and says so in one line when it is not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from ..serialization import load, save

FORMAT = "new_grad.train/1"


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> Path:
    """Write ``payload`` (state dicts and the loop's state) to ``path`` atomically."""
    save({"run": FORMAT, **payload}, path)
    return Path(path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; any other file is a ``CheckpointError``.

    Every value a resume reads is checked (types, ranges, dtypes) before it is returned.
    """
    obj = load(path)
    if not isinstance(obj, dict) or "run" not in obj:
        raise CheckpointError(
            f"checkpoint {path} is a new_grad file but not a `new-grad train` checkpoint (no training state in it); "
            "give the last.npz or best.npz of a run"
        )
    if obj["run"] != FORMAT:
        raise CheckpointError(f"checkpoint {path} is of kind {obj['run']!r}; this new_grad resumes {FORMAT!r}")
    from .resume import check_checkpoint  # imports .train, which imports this module

    check_checkpoint(obj, path)
    return obj
