"""``new-grad bench``: run the benchmark suite (the ``benchmarks`` package of a source checkout)."""

from __future__ import annotations

import importlib
import sys

from ..errors import NewGradError


def run_bench(argv: list[str]) -> int:
    """Delegate to ``benchmarks.run(argv)`` (or ``benchmarks.__main__.main``) and return its status."""
    argv = [a for a in argv if a != "--"]
    try:
        suite = importlib.import_module("benchmarks")
    except ImportError:
        raise NewGradError(
            "bench: the benchmark suite is not installed; run `new-grad bench` from a source checkout of new_grad "
            "(it lives in benchmarks/), with the peers installed: pip install -e '.[bench]'"
        ) from None
    run = getattr(suite, "run", None) or getattr(suite, "main", None)
    if run is None:
        try:
            run = importlib.import_module("benchmarks.__main__").main
        except (ImportError, AttributeError):
            raise NewGradError("bench: the benchmarks package has no run() or main() to call yet") from None
    status = run(argv)
    sys.stdout.flush()
    return int(status or 0)
