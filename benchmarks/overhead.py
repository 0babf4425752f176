"""The quick speed check: rows A (per-op overhead) and B (MLP step) next to PyTorch, in one run.

``python -m benchmarks.overhead`` prints the table with the ratios new_grad/PyTorch and new_grad/floor
(targets: A ≤ 0.6× PyTorch; B ≤ 1.05× the floor).
"""

from __future__ import annotations

from . import run


def main() -> None:
    print(run(rows="AB", impls=("new_grad", "torch", "floor"), echo=print))


if __name__ == "__main__":
    main()
