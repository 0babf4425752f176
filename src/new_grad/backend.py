"""The old name of :mod:`new_grad.backends` (kept so existing imports work)."""

from __future__ import annotations

from .backends import (  # noqa: F401 - re-exported
    array_types,
    get_default_dtype,
    is_array,
    namespace,
    ndarray,
    set_default_dtype,
    to_numpy,
)
