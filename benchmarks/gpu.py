"""GPU benchmarks: new_grad on CuPy beside PyTorch CUDA eager on the same card, in one process.

``python -m benchmarks.gpu [--device gpu] [--out DIR] [--quick]``

Workloads (float32, PyTorch-initialised weights shared by every implementation):

- ``mlp-small``: MLP 784-256-256-10, batch 128, one SGD step (forward, backward, update);
- ``mlp-large``: MLP 4096-4096-4096-10, batch 4096, one SGD step;
- ``chain-8``, ``chain-1M``: a chain of elementwise ops (multiply, add) on (8,) and (1024, 1024),
  forward and backward, per op: the fixed cost of one recorded op on the device.

Implementations: new_grad eager, new_grad replay (``new_grad.compile``), PyTorch eager on
CUDA, and the same step written by hand with the device's array module (the floor). The
first loss of each is compared with PyTorch's before anything is timed. Each timing is the
median of interleaved rounds; a round runs a step enough times to last ~50 ms, with the
device synchronised before the clock is read. ``--device standin`` (PyTorch on the CPU)
rehearses the whole script without a GPU; its times mean nothing.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import new_grad as ng
from new_grad.backends import get_backend, to_device, to_numpy

from .common import mlp_data as common_mlp_data
from .impl_new_grad import sgd_step

F32 = np.float32
IMPLS = ("new_grad", "replay", "torch", "floor")
LABELS = {"new_grad": "new_grad eager", "replay": "new_grad replay", "torch": "PyTorch eager", "floor": "hand-written"}


# -- the device ------------------------------------------------------------------------------------------


class Device:
    """The array device under test and the PyTorch device beside it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.xp = get_backend(name).xp
        import torch

        self.torch = torch
        self.tdev = "cuda" if name == "gpu" else "cpu"
        if name == "gpu" and not torch.cuda.is_available():
            raise SystemExit("PyTorch sees no CUDA device: the comparison needs PyTorch with CUDA")

    def put(self, a: np.ndarray) -> Any:
        return to_device(np.ascontiguousarray(a), self.name)

    def sync(self) -> None:
        if self.name == "gpu":
            self.xp.cuda.Device().synchronize()

    def tsync(self) -> None:
        if self.tdev == "cuda":
            self.torch.cuda.synchronize()

    def card(self) -> str:
        if self.name == "gpu":
            props = self.xp.cuda.runtime.getDeviceProperties(self.xp.cuda.Device().id)
            name = props["name"]
            return name.decode() if isinstance(name, bytes) else str(name)
        return f"CPU stand-in ({platform.processor() or platform.machine()}): times mean nothing"


# -- workloads -------------------------------------------------------------------------------------------


def mlp_data(sizes: tuple[int, ...], batch: int) -> dict:
    """The suite's MLP data (same initialisation and batch), remembering the layer sizes."""
    return {**common_mlp_data(batch, sizes), "sizes": sizes}


def _ng_mlp(dev: Device, d: dict) -> tuple[Any, Any, Any, Any]:
    sizes = d["sizes"]
    eng = ng.Autograd()
    layers = [ng.nn.Linear(i, o, eng, dtype=F32) for i, o in zip(sizes[:-1], sizes[1:])]
    for layer, W, b in zip(layers, d["params"][::2], d["params"][1::2]):
        layer.W[...] = W
        layer.b[...] = b
    model = ng.nn.Sequential(*[m for layer in layers for m in (layer, ng.nn.ReLU())][:-1]).to(dev.name)
    model.set_engine(eng)
    opt = ng.optim.SGD(model.parameters(), lr=d["lr"])
    x, y = ng.constant(dev.put(d["x"])), ng.constant(dev.put(d["y"]))
    return eng, model, opt, (x, y)


def ng_mlp(dev: Device, d: dict) -> tuple[Callable[[], Any], Callable[[], None]]:
    eng, model, opt, (x, y) = _ng_mlp(dev, d)
    return (lambda: sgd_step(eng, model, opt, x, y)), dev.sync


def replay_mlp(dev: Device, d: dict) -> tuple[Callable[[], Any], Callable[[], None]]:
    eng, model, opt, (x, y) = _ng_mlp(dev, d)
    compiled = ng.compile(lambda x, y: ng.softmax_cross_entropy(model(x), y), eng)

    def step() -> Any:
        opt.zero_grad()
        loss = compiled(x, y)
        opt.step()
        return loss

    return step, dev.sync


def torch_mlp(dev: Device, d: dict) -> tuple[Callable[[], Any], Callable[[], None]]:
    torch = dev.torch
    sizes = d["sizes"]
    mods: list[Any] = []
    for i, o in zip(sizes[:-1], sizes[1:]):
        mods += [torch.nn.Linear(i, o), torch.nn.ReLU()]
    model = torch.nn.Sequential(*mods[:-1])
    with torch.no_grad():
        for layer, W, b in zip(model[::2], d["params"][::2], d["params"][1::2]):
            layer.weight.copy_(torch.from_numpy(W))
            layer.bias.copy_(torch.from_numpy(b))
    model.to(dev.tdev)
    opt = torch.optim.SGD(model.parameters(), lr=d["lr"])
    x, y = torch.from_numpy(d["x"]).to(dev.tdev), torch.from_numpy(d["y"]).to(dev.tdev)

    def step() -> Any:
        opt.zero_grad(set_to_none=True)
        loss = -(y * torch.log_softmax(model(x), 1)).sum(1).mean()
        loss.backward()
        opt.step()
        return loss.detach()

    return step, dev.tsync


def floor_mlp(dev: Device, d: dict) -> tuple[Callable[[], Any], Callable[[], None]]:
    xp = dev.xp
    params = [dev.put(p) for p in d["params"]]
    x, y, lr = dev.put(d["x"]), dev.put(d["y"]), d["lr"]
    n = x.shape[0]

    def step() -> Any:
        acts, h = [x], x
        for i in range(0, len(params), 2):
            h = h @ params[i].T + params[i + 1]
            if i + 2 < len(params):
                h = xp.maximum(h, 0)
                acts.append(h)
        z = h - h.max(axis=1, keepdims=True)
        lse = xp.log(xp.exp(z).sum(axis=1, keepdims=True))
        loss = -(y * (z - lse)).sum() / n
        g = (xp.exp(z - lse) - y) / n
        for i in range(len(params) - 2, -1, -2):
            a = acts[i // 2]
            gW, gb = g.T @ a, g.sum(axis=0)
            if i:
                g = (g @ params[i]) * (a > 0)
            params[i] -= lr * gW
            params[i + 1] -= lr * gb
        return loss

    return step, dev.sync


def chain_data(n: int, shape: tuple[int, ...]) -> dict:
    rng = np.random.default_rng(0)
    return {"n": n, "x": rng.standard_normal(shape).astype(F32), "w": (0.9 + 0.1 * rng.random(shape)).astype(F32),
            "b": (0.01 * rng.standard_normal(shape)).astype(F32)}


def ng_chain(dev: Device, d: dict, replay: bool = False) -> tuple[Callable[[], Any], Callable[[], None]]:
    eng = ng.Autograd()
    x, w, b = dev.put(d["x"]), dev.put(d["w"]), dev.put(d["b"])

    def forward(x: Any, w: Any, b: Any) -> Any:
        y = x
        for _ in range(d["n"] // 2):
            y = ng.add(ng.multiply(y, w), b)
        return ng.sum(y)

    if replay:
        compiled = ng.compile(forward, eng)

        def step() -> Any:
            eng.zero_grad()
            return compiled(x, w, b)
    else:

        def step() -> Any:
            eng.zero_grad()
            with eng:
                loss = forward(x, w, b)
            eng.backward(1)
            return loss

    return step, dev.sync


def torch_chain(dev: Device, d: dict) -> tuple[Callable[[], Any], Callable[[], None]]:
    torch = dev.torch
    x, w, b = (torch.from_numpy(d[k]).to(dev.tdev).requires_grad_() for k in ("x", "w", "b"))

    def step() -> Any:
        for t in (x, w, b):
            t.grad = None
        y = x
        for _ in range(d["n"] // 2):
            y = y * w + b
        loss = y.sum()
        loss.backward()
        return loss.detach()

    return step, dev.tsync


def floor_chain(dev: Device, d: dict) -> tuple[Callable[[], Any], Callable[[], None]]:
    x, w, b = dev.put(d["x"]), dev.put(d["w"]), dev.put(d["b"])
    xp = dev.xp

    def step() -> Any:
        ys = [x]
        for _ in range(d["n"] // 2):
            ys.append(ys[-1] * w + b)
        g = xp.ones_like(x)
        gw = xp.zeros_like(w)
        for y in reversed(ys[:-1]):
            gw += g * y
            g = g * w
        return ys[-1].sum(), g, gw

    return lambda: step()[0], dev.sync


def workloads(quick: bool) -> list[dict]:
    big = (256, 256, 256, 10) if quick else (4096, 4096, 4096, 10)
    return [
        {"key": "mlp-small", "label": "MLP 784-256-256-10, batch 128, SGD step", "unit": "ms", "scale": 1e3,
         "data": lambda: mlp_data((784, 256, 256, 10), 128), "impls": {
             "new_grad": ng_mlp, "replay": replay_mlp, "torch": torch_mlp, "floor": floor_mlp}},
        {"key": "mlp-large", "label": f"MLP {'-'.join(map(str, big))}, batch {256 if quick else 4096}, SGD step",
         "unit": "ms", "scale": 1e3, "data": lambda: mlp_data(big, 256 if quick else 4096), "impls": {
             "new_grad": ng_mlp, "replay": replay_mlp, "torch": torch_mlp, "floor": floor_mlp}},
        {"key": "chain-8", "label": "per op: 200 elementwise ops on (8,), fwd+bwd", "unit": "µs/op", "scale": 1e6,
         "per": 200, "data": lambda: chain_data(200, (8,)), "impls": {
             "new_grad": ng_chain, "replay": lambda dv, d: ng_chain(dv, d, True), "torch": torch_chain,
             "floor": floor_chain}},
        {"key": "chain-1M", "label": "per op: 20 elementwise ops on (1024, 1024), fwd+bwd", "unit": "µs/op",
         "scale": 1e6, "per": 20, "data": lambda: chain_data(20, (64, 64) if quick else (1024, 1024)), "impls": {
             "new_grad": ng_chain, "replay": lambda dv, d: ng_chain(dv, d, True), "torch": torch_chain,
             "floor": floor_chain}},
    ]


# -- timing ------------------------------------------------------------------------------------------------


def _loss(v: Any) -> float:
    if hasattr(v, "detach"):
        return float(v.detach().cpu())
    return float(to_numpy(v))


def run(dev: Device, quick: bool, rounds: int, budget_s: float, echo: Callable[[str], None]) -> list[dict]:
    results = []
    for w in workloads(quick):
        data = w["data"]()
        steps: dict[str, tuple[Callable, Callable]] = {}
        row: dict[str, Any] = {"key": w["key"], "label": w["label"], "unit": w["unit"], "times": {}, "errors": {},
                               "first_loss": {}}
        for impl in IMPLS:
            try:
                step, sync = w["impls"][impl](dev, data)
                row["first_loss"][impl] = _loss(step())
                for _ in range(2 if quick else 4):  # replay records, checks, then replays; kernels compile
                    step()
                sync()
                steps[impl] = (step, sync)
            except Exception as err:  # one implementation failing must not hide the others
                row["errors"][impl] = f"{type(err).__name__}: {err}".splitlines()[0][:300]
                echo(f"  {w['key']} {impl}: {row['errors'][impl]}")
                traceback.print_exc(file=sys.stderr)
        ref = row["first_loss"].get("torch")
        for impl, loss in list(row["first_loss"].items()):
            if ref is not None and not np.isclose(loss, ref, rtol=1e-3, atol=1e-4):
                row["errors"][impl] = f"first loss {loss:.6g} but PyTorch's is {ref:.6g}"
                steps.pop(impl, None)
        inner = {}
        for impl, (step, sync) in steps.items():
            t = time.perf_counter()
            step()
            sync()
            once = time.perf_counter() - t
            inner[impl] = max(1, min(500, int(budget_s / max(once, 1e-7))))
        samples: dict[str, list[float]] = {impl: [] for impl in steps}
        for _ in range(rounds):  # interleaved: each round runs every implementation once
            for impl, (step, sync) in steps.items():
                sync()
                t = time.perf_counter()
                for _ in range(inner[impl]):
                    step()
                sync()
                samples[impl].append((time.perf_counter() - t) / inner[impl])
        per = w.get("per", 1)
        for impl, s in samples.items():
            row["times"][impl] = statistics.median(s) / per * w.get("scale", 1.0)
        results.append(row)
        shown = ", ".join(f"{impl} {v:.4g}" for impl, v in row["times"].items())
        echo(f"  {w['label']} [{w['unit']}]: {shown}")
    return results


def report(dev: Device, results: list[dict], versions: dict[str, str]) -> str:
    card = dev.card()
    lines = [
        f"### GPU: {card}",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ". float32; median of interleaved rounds,",
        "device synchronised before each clock read. Ratio: new_grad eager (replay) time / PyTorch eager time.",
        "",
        f"| workload ({card}) | unit | " + " | ".join(LABELS[i] for i in IMPLS) + " | eager / PyTorch | replay / PyTorch |",
        "|---|---|" + "---:|" * (len(IMPLS) + 2),
    ]
    for r in results:
        t = r["times"]
        cells = [f"{t[i]:.4g}" if i in t else "error" for i in IMPLS]
        ratio = [f"{t[i] / t['torch']:.2f}×" if i in t and "torch" in t else "–" for i in ("new_grad", "replay")]
        lines.append(f"| {r['label']} | {r['unit']} | " + " | ".join(cells) + " | " + " | ".join(ratio) + " |")
    errors = [f"- {r['key']} {i}: {e}" for r in results for i, e in r["errors"].items()]
    if errors:
        lines += ["", "Errors:", *errors]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="gpu", help="gpu (CuPy), or standin to rehearse on the CPU")
    p.add_argument("--out", type=Path, default=None, help="write gpu_bench.md and gpu_bench.json here")
    p.add_argument("--quick", action="store_true", help="small sizes, few rounds: checks the script runs")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds per workload (default 7; quick 2)")
    a = p.parse_args(argv)
    dev = Device(a.device)
    versions = {"Python": platform.python_version(), "NumPy": np.__version__, "PyTorch": dev.torch.__version__}
    if a.device == "gpu":
        versions["CuPy"] = dev.xp.__version__
        versions["CUDA runtime"] = str(dev.xp.cuda.runtime.runtimeGetVersion())
    print(f"benchmarks on {dev.card()}", flush=True)
    results = run(dev, a.quick, a.rounds or (2 if a.quick else 7), 0.01 if a.quick else 0.05,
                  lambda s: print(s, flush=True))
    text = report(dev, results, versions)
    print(text)
    if a.out is not None:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "gpu_bench.md").write_text(text)
        (a.out / "gpu_bench.json").write_text(json.dumps({"card": dev.card(), "versions": versions,
                                                          "results": results}, indent=2) + "\n")
    return 1 if any(r["errors"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
