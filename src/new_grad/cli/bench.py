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


# the peers the suite compares with, and the module each needs
PEERS = {"torch": ("torch", "PyTorch"), "autograd": ("autograd", "HIPS autograd"), "mygrad": ("mygrad", "MyGrad")}


def _installed(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _option(argv: list[str], name: str) -> str | None:
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def _installed_impls(argv: list[str], all_impls: tuple[str, ...]) -> list[str]:
    """Restrict the run to the implementations whose library is installed, saying so in one line."""
    if any(a in ("-h", "--help") for a in argv):
        return argv
    asked = _option(argv, "--impls")
    wanted = asked.split(",") if asked is not None else list(all_impls)
    missing = [i for i in wanted if i in PEERS and not _installed(PEERS[i][0])]
    if not missing:
        return argv
    names = ", ".join(PEERS[i][1] for i in missing)
    if asked is not None:
        raise NewGradError(f"bench: --impls names {names}, which is not installed; pip install 'new_grad[bench]' "
                           "(or leave it out of --impls)")
    kept = [i for i in wanted if i not in missing]
    print(f"new-grad bench: {names} not installed, so comparing {', '.join(kept)} only; "
          "pip install 'new_grad[bench]' for the full comparison", file=sys.stderr, flush=True)
    return [*argv, "--impls", ",".join(kept)]


def run_bench(argv: list[str]) -> int:
    """Run the benchmark suite with ARGV in this process; its table goes to stdout."""
    main = _suite_main()
    from benchmarks import ALL_IMPLS

    args = _installed_impls([a for a in argv if a not in ("--", "--debug")], tuple(ALL_IMPLS))
    status = main(args, prog="new-grad bench")
    sys.stdout.flush()
    return int(status or 0)
