"""Suite-wide setup: one BLAS thread per test process.

The suite runs on two cores with pytest-xdist's two workers; idle-spinning BLAS
thread pools in both would fight for them (a small matmul then takes 100× longer).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

try:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
    pass

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass
