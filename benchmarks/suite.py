"""The driver: one worker process per implementation, interleaved samples, medians and ratios.

Every worker gets the same thread count for every pool (OpenBLAS, MKL, OpenMP and
``torch.set_num_threads``), so no two idle-spinning pools share the cores. Before a
workload is timed, every implementation's loss on it is compared with the floor's.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .common import GRU, GRU_QUICK

ALL_IMPLS = ("new_grad", "replay", "torch", "autograd", "mygrad", "floor")
LABELS = {
    "new_grad": "new_grad",
    "replay": "new_grad replay",
    "torch": "PyTorch",
    "autograd": "HIPS autograd",
    "mygrad": "MyGrad",
    "floor": "NumPy floor",
}
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Work:
    """One timed row: ``fn(**kw)`` in every implementation, reported in ``unit`` (seconds × ``scale``)."""

    row: str
    key: str
    fn: str
    kw: dict
    unit: str
    scale: float
    repeats: int | None = None  # fewer samples for the slowest rows
    results: dict = field(default_factory=dict)  # impl -> list of seconds per unit, or an error string


def workloads(rows: str, quick: bool) -> list[Work]:
    gru = GRU_QUICK if quick else GRU
    w: list[Work] = []
    if "A" in rows:
        n = 20 if quick else 200
        w.append(Work("A", f"A per-op, {n} ops on (8,), fwd+bwd", "chain", {"n": n}, "µs/op", 1e6))
        w.append(Work("A", f"A per-op with Python-number operands, {n} ops on (8,)", "chain", {"n": n, "numbers": True},
                      "µs/op", 1e6))
    if "B" in rows:
        b = 4 if quick else 128
        w.append(Work("B", f"B MLP 784-256-256-10 SGD step, batch {b}", "mlp", {"batch": b}, "ms", 1e3))
    if "C" in rows:
        b = 2 if quick else 32
        w.append(Work("C", f"C small CNN step, batch {b}", "cnn", {"kind": "small", "batch": b}, "ms", 1e3))
        w.append(Work("C", f"C LeNet-5 step, batch {b}", "cnn", {"kind": "lenet", "batch": b}, "ms", 1e3))
    if "E" in rows:
        for n in (100, 1000) if quick else (100, 1_000, 10_000, 100_000):
            w.append(Work("E", f"E backward, tape of {n:.0e} ops", "tape", {"n": n}, "µs/op", 1e6,
                          repeats=5 if n >= 100_000 else None))
        for b in (1, 8) if quick else (1, 16, 128, 1024, 4096):
            w.append(Work("E", f"E MLP step, batch {b}", "mlp", {"batch": b}, "ms", 1e3))
    if "F" in rows:
        w.append(Work("F", f"F GRU cell by cell, {gru['steps']} steps", "gru", dict(gru), "ms", 1e3))
        w.append(Work("F", f"F GRU module (nn.GRU), {gru['steps']} steps", "gru_module", dict(gru), "ms", 1e3))
    return w


class Worker:
    def __init__(self, impl: str, env: dict) -> None:
        self.impl = impl
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.worker", impl],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT,
        )

    def ask(self, **req) -> dict:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            return {"error": f"worker {self.impl} died (exit {self.proc.wait()})"}
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.ask(op="quit")
            except (BrokenPipeError, OSError):
                pass
        self.proc.wait(timeout=30)


def thread_env(threads: int, steady_malloc: bool = True) -> dict:
    """The workers' environment: every pool pinned to ``threads``; with ``steady_malloc``, glibc keeps
    allocations up to 32 MiB on its heap. (By default it maps each large array afresh, page faults and
    all, until a free raises its threshold: the same step then runs 1.1 or 1.7 ms depending on what the
    process allocated before. Timing rows use the steady setting for every implementation; row D
    measures memory with the default.)"""
    env = dict(os.environ)
    if steady_malloc:
        env.setdefault("MALLOC_MMAP_THRESHOLD_", str(32 << 20))
        env.setdefault("MALLOC_TRIM_THRESHOLD_", str(64 << 20))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[var] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def time_work(works: list[Work], impls: tuple[str, ...], threads: int, repeats: int, target_s: float,
              echo: Callable[[str], None]) -> None:
    env = thread_env(threads)
    workers = [Worker(i, env) for i in impls]
    try:
        for work in works:
            live = []
            losses = {}
            for wk in workers:
                r = wk.ask(op="setup", key=work.key, fn=work.fn, kw=work.kw, target_s=target_s)
                if "error" in r:
                    work.results[wk.impl] = r["error"]
                else:
                    losses[wk.impl] = r["loss"]
                    live.append(wk)
            ref = losses.get("floor", losses.get("torch"))
            for wk in list(live):  # same loss before timing, or no timing at all
                if ref is not None and abs(losses[wk.impl] - ref) > 1e-3 * max(1.0, abs(ref)):
                    work.results[wk.impl] = f"loss {losses[wk.impl]:.6g} ≠ {ref:.6g}"
                    live.remove(wk)
            n = work.repeats or repeats
            # OpenBLAS and OpenMP threads spin for up to ~0.1 s after a BLAS call: the next worker must not
            # start while they do (on 2 cores that swings a GEMM-bound step by 2× and more)
            pause = 0.12 if work.unit == "ms" and target_s >= 0.01 else 0.005
            samples: dict[str, list[float]] = {wk.impl: [] for wk in live}
            for rnd in range(n):  # interleaved, in a rotating order
                k = rnd % max(len(live), 1)
                for wk in live[k:] + live[:k]:
                    r = wk.ask(op="sample", key=work.key)
                    if "error" in r:
                        work.results[wk.impl] = r["error"]
                    elif isinstance(work.results.get(wk.impl, []), list):
                        samples[wk.impl].append(r["t"])
                    time.sleep(pause)  # let the last worker's thread pools stop spinning
            for wk in live:
                wk.ask(op="drop", key=work.key)
                if not isinstance(work.results.get(wk.impl), str):
                    work.results[wk.impl] = samples[wk.impl]
            echo(format_line(work, impls))
    finally:
        for wk in workers:
            wk.close()


def measure_memory(impls: tuple[str, ...], threads: int, quick: bool) -> list[tuple[str, dict]]:
    """Row D: peak RSS of 20 steps (of B, and of C) in a fresh process per implementation."""
    env = thread_env(threads, steady_malloc=False)
    rows = [("B MLP", "mlp", {"batch": 4 if quick else 128}), ("C small CNN", "cnn", {"kind": "small", "batch": 2 if quick else 32})]
    out = []
    for label, fn, kw in rows:
        res = {}
        for impl in impls:
            p = subprocess.run(
                [sys.executable, "-m", "benchmarks.worker", impl, "--rss", fn, json.dumps(kw), "2" if quick else "20"],
                capture_output=True, text=True, env=env, cwd=ROOT,
            )
            if p.returncode == 0:
                res[impl] = json.loads(p.stdout.strip().splitlines()[-1])
            else:
                last = (p.stderr.strip().splitlines() or ["?"])[-1]
                res[impl] = "n/a" if "AttributeError" in last else last[:60]
        out.append((label, res))
    return out


# -- reporting -------------------------------------------------------------------------------------


def _med(v) -> float | None:
    return statistics.median(v) if isinstance(v, list) and v else None


def format_line(work: Work, impls: tuple[str, ...]) -> str:
    parts = []
    for i in impls:
        m = _med(work.results.get(i))
        parts.append(f"{LABELS[i]} {m * work.scale:.3g}" if m is not None else f"{LABELS[i]} {work.results.get(i)}")
    return f"{work.key} ({work.unit}): " + ", ".join(parts)


def _cell(work: Work, impl: str) -> str:
    v = work.results.get(impl)
    if isinstance(v, str) or v is None:
        return v or "–"
    if not v:
        return "–"
    s = work.scale
    return f"{_med(v) * s:.3g} ({min(v) * s:.3g}–{max(v) * s:.3g})"


def _ratio(work: Work, a: str, b: str) -> str:
    x, y = _med(work.results.get(a)), _med(work.results.get(b))
    return f"{x / y:.2f}×" if x is not None and y else "–"


def table(works: list[Work], impls: tuple[str, ...]) -> str:
    ours = [i for i in ("new_grad", "replay") if i in impls]
    head = ["work", "unit", *(LABELS[i] for i in impls)]
    for i in ours:
        head += [f"{LABELS[i]} / PyTorch", f"{LABELS[i]} / floor"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * (len(head) - 2)]
    for w in works:
        cells = [w.key, w.unit, *(_cell(w, i) for i in impls)]
        for i in ours:
            cells += [_ratio(w, i, "torch"), _ratio(w, i, "floor")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def memory_table(mem: list[tuple[str, dict]], impls: tuple[str, ...]) -> str:
    lines = ["| 20 steps of | " + " | ".join(LABELS[i] for i in impls) + " |", "|---|" + "---:|" * len(impls)]
    for label, res in mem:
        cells = []
        for i in impls:
            r = res.get(i)
            cells.append(f"{r['peak_mib']:.1f} ({r['peak_mib'] - r['setup_mib']:.1f})" if isinstance(r, dict) else str(r))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine(threads: int) -> str:
    import numpy as np

    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas_s = f"{blas.get('name')} {blas.get('version')}"
    except Exception:
        blas_s = "?"
    vers = []
    for mod in ("torch", "autograd", "mygrad"):
        try:
            from importlib.metadata import version

            vers.append(f"{mod} {version(mod)}")
        except Exception:
            pass
    return (
        f"{cpu}, {os.cpu_count()} logical cores, Linux {platform.release()}; Python {platform.python_version()}, "
        f"NumPy {np.__version__} ({blas_s}), {', '.join(vers)}; float32, {threads} thread(s) for every pool"
    )
