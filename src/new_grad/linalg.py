"""``new_grad.linalg``: NumPy's ``linalg`` namespace, differentiable."""

from __future__ import annotations

from .ops.linalg import *  # noqa: F403
