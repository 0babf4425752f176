"""One implementation in its own process: builds workloads and times them on the driver's request.

Protocol: one JSON object per line on stdin, one JSON reply per line on stdout.
``python -m benchmarks.worker IMPL --rss FN KWARGS STEPS`` instead measures peak memory
of STEPS steps in this fresh process and exits (row D).
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import time

IMPLS = {
    "new_grad": "impl_new_grad",
    "replay": "impl_replay",
    "torch": "impl_torch",
    "autograd": "impl_autograd",
    "mygrad": "impl_mygrad",
    "floor": "impl_floor",
}


def load(impl: str):
    mod = importlib.import_module(f"benchmarks.{IMPLS[impl]}")
    if impl == "torch":
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    return mod


def _run(bench, inner: int) -> float:
    """Seconds spent in ``inner`` calls of ``bench.timed`` (``prepare`` untimed)."""
    timed, prepare = bench.timed, bench.prepare
    if prepare is None:
        t = time.perf_counter()
        for _ in range(inner):
            timed()
        return time.perf_counter() - t
    total = 0.0
    for _ in range(inner):
        prepare()
        t = time.perf_counter()
        timed()
        total += time.perf_counter() - t
    return total


def calibrate(bench, target_s: float) -> int:
    """Warm up, then pick how many calls make one sample last about ``target_s``."""
    _run(bench, 2)  # the first calls may record, compile or allocate: never time them
    inner = 1
    while True:
        t = _run(bench, inner)
        if t >= target_s or inner >= 1 << 16:
            return inner
        inner = max(inner * 2, int(inner * target_s / max(t, 1e-9) * 1.1))


def rss_now_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def serve(impl: str) -> None:
    mod = load(impl)
    benches: dict = {}
    out = sys.stdout
    sys.stdout = sys.stderr  # nothing an implementation prints may corrupt the protocol
    for line in sys.stdin:
        req = json.loads(line)
        op = req["op"]
        try:
            if op == "setup":
                fn = getattr(mod, req["fn"], None)
                if fn is None:
                    reply = {"error": "n/a"}
                else:
                    bench = fn(**req["kw"])
                    inner = calibrate(bench, req["target_s"])
                    benches[req["key"]] = (bench, inner)
                    reply = {"loss": bench.loss, "inner": inner}
            elif op == "sample":
                bench, inner = benches[req["key"]]
                reply = {"t": _run(bench, inner) / (inner * bench.units)}
            elif op == "drop":
                benches.pop(req["key"], None)
                reply = {}
            else:  # quit
                break
        except Exception as err:  # report, don't die: the other implementations go on
            reply = {"error": f"{type(err).__name__}: {err}"[:70]}
        out.write(json.dumps(reply) + "\n")
        out.flush()


def measure_rss(impl: str, fn: str, kw: dict, steps: int) -> dict:
    mod = load(impl)
    bench = getattr(mod, fn)(**kw)
    setup = rss_now_mib()
    for _ in range(steps):
        if bench.prepare is not None:
            bench.prepare()
        bench.timed()
    return {"setup_mib": setup, "peak_mib": peak_rss_mib(), "loss": bench.loss}


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[2] == "--rss":
        res = measure_rss(sys.argv[1], sys.argv[3], json.loads(sys.argv[4]), int(sys.argv[5]))
        print(json.dumps(res))
    else:
        serve(sys.argv[1])
