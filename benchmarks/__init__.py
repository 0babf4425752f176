"""new_grad's benchmark suite: new_grad next to PyTorch eager, HIPS autograd, MyGrad and a NumPy floor.

Rows: A per-op overhead, B MLP step, C CNN steps, D peak memory, E scaling, F GRU.
Each implementation runs in its own worker process with every thread pool pinned to the same size;
samples are interleaved across workers; the report gives medians (min–max) and ratios.
``python -m benchmarks`` (or ``new-grad bench``) runs it; ``benchmarks.run(...)`` is the same from Python.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from .suite import ALL_IMPLS, machine, measure_memory, memory_table, table, time_work, workloads

__all__ = ["run", "ALL_IMPLS"]


def run(
    rows: str = "ABCDEF",
    impls: tuple[str, ...] = ALL_IMPLS,
    threads: int | None = None,
    repeats: int = 15,
    quick: bool = False,
    docs: str | Path | None = None,
    echo: Callable[[str], None] = lambda s: None,
) -> str:
    """Run the suite and return its report (Markdown). ``quick``: tiny sizes, 2 samples (a smoke test).

    ``docs``: also write the report there. ``echo`` receives one progress line per workload.
    """
    threads = threads or min(os.cpu_count() or 1, 2)
    if quick:
        repeats = min(repeats, 2)
    impls = tuple(impls)
    works = workloads(rows, quick)
    start = time.time()
    time_work(works, impls, threads, repeats, 0.002 if quick else 0.02, echo)
    parts = [
        "## Results",
        "",
        f"Machine: {machine(threads)}.",
        "",
        f"Medians of {repeats} interleaved samples (min–max in brackets), each implementation in its own "
        "process, losses checked equal before timing, data batches constant (no input gradient anywhere). "
        "Ratios are new_grad's median over the peer's, measured in this run. Command: "
        f"`python -m benchmarks{' --quick' if quick else ''}`.",
        "",
        table(works, impls),
    ]
    if "D" in rows:
        mem = measure_memory(tuple(i for i in impls if i != "replay") + (("replay",) if "replay" in impls else ()),
                             threads, quick)
        parts += ["", "D. Peak RSS in MiB of 20 training steps in a fresh process (in brackets: growth beyond "
                  "the set-up: imports, parameters and data).", "", memory_table(mem, impls)]
    parts += ["", f"Run took {time.time() - start:.0f} s."]
    report = "\n".join(parts) + "\n"
    if docs is not None:
        write_docs(Path(docs), report)
    return report


MARKER = "<!-- results: everything below is written by `python -m benchmarks --docs docs/benchmarks.md` -->"


def write_docs(path: Path, report: str) -> None:
    """Write ``report`` to ``path``, below the marker line when the file has one (keeping the notes above)."""
    old = path.read_text() if path.exists() else ""
    head, found, _ = old.partition(MARKER)
    path.write_text(f"{head}{MARKER}\n\n{report}" if found else report)
