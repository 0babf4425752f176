"""``new-grad bench``: run the benchmark suite (the ``benchmarks`` package of a source checkout).

The suite lives beside the package, not inside it (it imports PyTorch, HIPS autograd
and MyGrad), so it is found on the path or in the current directory; its own
options (``--quick``, ``--rows``, ``--impls``…) pass straight through.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from ..errors import NewGradError

HOW = (
    "run `new-grad bench` from the root of a source checkout of new_grad (the suite is its benchmarks/ folder), "
    "with the peers installed: pip install -e '.[bench]'"
)


def _suite_main() -> Any:
    """``benchmarks.__main__.main``, importing from the current directory if needed."""
    try:
        return importlib.import_module("benchmarks.__main__").main
    except ModuleNotFoundError as e:
        if e.name not in ("benchmarks", "benchmarks.__main__"):
            raise NewGradError(f"bench: the benchmark suite needs {e.name}, which is not installed; {HOW}") from None
    here = Path.cwd()
    if (here / "benchmarks" / "__main__.py").is_file() and str(here) not in sys.path:
        sys.path.insert(0, str(here))
        try:
            return importlib.import_module("benchmarks.__main__").main
        except ModuleNotFoundError as e:
            raise NewGradError(f"bench: the benchmark suite needs {e.name}, which is not installed; {HOW}") from None
    raise NewGradError(f"bench: no benchmark suite found; {HOW}")


def run_bench(argv: list[str]) -> int:
    """Run ``python -m benchmarks ARGV`` in this process; its table goes to stdout."""
    main = _suite_main()
    status = main([a for a in argv if a not in ("--", "--debug")])
    sys.stdout.flush()
    return int(status or 0)
