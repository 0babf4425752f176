"""``python -m benchmarks [--rows ABCDEF] [--impls ...] [--quick] [--docs docs/benchmarks.md]``."""

from __future__ import annotations

import argparse

from . import ALL_IMPLS, run


def main(argv: list[str] | None = None, prog: str = "python -m benchmarks") -> None:
    import benchmarks

    p = argparse.ArgumentParser(
        prog=prog,
        description="\n".join(line for line in (benchmarks.__doc__ or "").splitlines() if "python -m" not in line),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--rows", default="ABCDEF", help="which rows to run (letters A–F)")
    p.add_argument("--impls", default=",".join(ALL_IMPLS), help="comma-separated: " + ",".join(ALL_IMPLS))
    p.add_argument("--threads", type=int, default=None, help="threads for every pool (default: min(cores, 2))")
    p.add_argument("--repeats", type=int, default=15, help="interleaved samples per workload")
    p.add_argument("--quick", action="store_true", help="tiny sizes, 2 samples: checks the suite runs")
    p.add_argument("--docs", default=None, help="also write the report to this Markdown file")
    a = p.parse_args(argv)
    report = run(a.rows, tuple(a.impls.split(",")), a.threads, a.repeats, a.quick, a.docs, echo=print)
    print(report)


if __name__ == "__main__":
    main()
