"""Backend and dtype policy: which array library an array belongs to.

Ops never hard-wire ``numpy``: they ask :func:`namespace` for the module that
owns their inputs (NumPy, or CuPy on a GPU) and compute with it. NumPy is the
default; CuPy is picked up only if it is already imported by the user.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import numpy as np

ndarray = np.ndarray
_default_dtype = np.dtype(np.float64)


def array_types() -> tuple[type, ...]:
    """The array classes that get gradient slots: NumPy's, plus CuPy's once imported."""
    cp = sys.modules.get("cupy")
    return (np.ndarray, cp.ndarray) if cp is not None else (np.ndarray,)


def is_array(x: Any) -> bool:
    """True for NumPy/CuPy arrays (what the tape tracks); False for numbers and the rest."""
    return type(x) is np.ndarray or isinstance(x, array_types())


def namespace(*xs: Any) -> ModuleType:
    """The array module of the first array among ``xs`` (NumPy when there is none)."""
    for x in xs:
        t = type(x)
        if t is np.ndarray:
            return np
        cp = sys.modules.get("cupy")
        if cp is not None and isinstance(x, cp.ndarray):
            return cp
    return np


def to_numpy(x: Any) -> np.ndarray:
    """Copy to host memory if needed (CuPy arrays); NumPy arrays pass through."""
    get = getattr(x, "get", None)
    return get() if callable(get) and not isinstance(x, np.ndarray) else np.asarray(x)


def set_default_dtype(dtype: Any) -> None:
    """Set the float dtype modules create parameters in (float64 by default, like the course)."""
    global _default_dtype
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"set_default_dtype: {dt} is not a floating dtype; use float32 or float64")
    _default_dtype = dt


def get_default_dtype() -> np.dtype:
    """The float dtype new parameters get."""
    return _default_dtype
