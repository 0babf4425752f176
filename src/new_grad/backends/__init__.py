"""Backends: NumPy on the CPU (default) and CuPy on an NVIDIA GPU.

Ops compute with their inputs' own array module (see :func:`new_grad.backend.namespace`),
so the same code runs on either: put the data and the model's parameters on the
GPU and everything downstream follows. This module moves them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd_engine import bind_gradient
from ..errors import NewGradError


def cuda_available() -> bool:
    """True when CuPy imports and sees at least one GPU."""
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def _cupy() -> Any:
    try:
        import cupy
    except ImportError as err:
        raise NewGradError(
            f"device 'gpu' needs CuPy: pip install 'new_grad[gpu]' (a CUDA GPU is required) ({err})"
        ) from None
    return cupy


def to_device(x: Any, device: str) -> Any:
    """An array on ``device`` ('cpu' or 'gpu'); returns ``x`` itself if it is already there."""
    if device == "cpu":
        return x if isinstance(x, np.ndarray) else x.get()
    if device in ("gpu", "cuda"):
        cp = _cupy()
        return x if isinstance(x, cp.ndarray) else cp.asarray(x)
    raise NewGradError(f"to_device: unknown device {device!r}; use 'cpu' or 'gpu'")


def module_to(module: Any, device: str) -> Any:
    """Move a Module's parameters, gradients and buffers to ``device``, in place; returns the module."""
    for m in module.modules():
        d = m.__dict__
        for pname, gname in m._parameters.items():
            if d[pname] is None:
                continue
            d[pname] = to_device(d[pname], device)
            d[gname] = to_device(d[gname], device)
            bind_gradient(d[pname], d[gname])
        for bname in m._buffers:
            if d[bname] is not None and hasattr(d[bname], "shape"):
                d[bname] = to_device(d[bname], device)
    return module


__all__ = ["cuda_available", "module_to", "to_device"]
