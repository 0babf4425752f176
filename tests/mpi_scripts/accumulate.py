"""Run under mpiexec: gradients accumulated over micro-batches without zero_grad match one process.

Every process starts a step from the sums the last synchronize wrote; summing those again would count them
once per process. Micro-batches of 2 leave a process with an empty slice on 3 processes.
"""

from __future__ import annotations

import numpy as np

import new_grad as ng
from new_grad import distributed as dist

np.random.seed(0)
model = ng.nn.Sequential(ng.nn.Linear(3, 4), ng.nn.Tanh(), ng.nn.Linear(4, 2))
ddp = dist.DistributedDataParallel(model, bucket_bytes=64)  # several buckets, started during backward
rng = np.random.default_rng(5)
sizes = [4, 2, 5]
xs = [rng.standard_normal((m, 3)) for m in sizes]
ys = [rng.standard_normal((m, 2)) for m in sizes]
r, n = dist.rank(), dist.world_size()
engine = ng.Autograd()
loss_fn = ng.nn.MSELoss()
for x, y in zip(xs, ys):  # no zero_grad between the micro-batches: their gradients add up
    lo, hi = r * len(x) // n, (r + 1) * len(x) // n
    engine.zero_grad()
    if hi == lo:
        ddp.synchronize()
        continue
    with engine:
        loss_fn(ddp(x[lo:hi]), y[lo:hi])
    ddp.backward(engine, weight=(hi - lo) / len(x))

np.random.seed(0)
ref = ng.nn.Sequential(ng.nn.Linear(3, 4), ng.nn.Tanh(), ng.nn.Linear(4, 2))
ref.load_state_dict(model.state_dict())
for x, y in zip(xs, ys):
    engine.zero_grad()
    with engine:
        loss_fn(ref(x), y)
    engine.backward(1.0)
diff = max(float(np.abs(g - h).max()) for (_, g), (_, h) in zip(model.parameters(), ref.parameters()))
print(f"process {r}: max |accumulated parallel - single| {diff:.3g}")
assert diff < 1e-10, diff
