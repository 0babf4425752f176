"""Backends: which array library an array belongs to, and moving arrays between devices.

Ops never hard-wire ``numpy``: they ask :func:`namespace` for the module that owns
their inputs (NumPy, CuPy on a GPU) and compute with it, so the same code runs on
every backend. A backend is registered under a device name:

- ``cpu``: NumPy, always there;
- ``gpu`` (alias ``cuda``): CuPy, loaded on first use (or when the user imported it);
- ``standin``: a CPU stand-in for a device (:mod:`new_grad.backends.standin`): NumPy
  arithmetic behind an array type that plain NumPy refuses, so any NumPy call hard-wired
  where the input's namespace belongs fails on the CPU, as it would on a GPU.

This module imports nothing of new_grad but the errors: the engine stands on it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import DeviceError, NewGradError, shape_str

ndarray = np.ndarray
_default_dtype = np.dtype(np.float64)


@dataclass(frozen=True)
class Backend:
    """One device: its array module, its array class and the copies to and from host memory."""

    device: str
    xp: Any  # the array namespace (numpy, cupy, the stand-in's)
    array_type: type
    from_host: Callable[[np.ndarray], Any]  # a NumPy array -> an array on this device
    to_host: Callable[[Any], np.ndarray]  # an array of this device -> a NumPy array


def _numpy_backend() -> Backend:
    return Backend("cpu", np, np.ndarray, lambda a: a, lambda a: a)


def _cupy_backend() -> Backend:
    try:
        import cupy
    except ImportError as err:
        raise DeviceError(
            "device 'gpu' needs CuPy and an NVIDIA GPU: pip install 'new_grad[gpu-cuda12]' or "
            f"'new_grad[gpu-cuda13]' (the CUDA major version of your driver; see nvidia-smi) ({err})"
        ) from None
    return Backend("gpu", cupy, cupy.ndarray, cupy.asarray, cupy.asnumpy)


def _standin_backend() -> Backend:
    from . import standin

    return Backend("standin", standin.xp, standin.StandInArray, standin.from_host, standin.to_host)


_LOADERS: dict[str, Callable[[], Backend]] = {
    "cpu": _numpy_backend,
    "gpu": _cupy_backend,
    "standin": _standin_backend,
}
_ALIASES = {"cuda": "gpu", "numpy": "cpu", "cupy": "gpu"}
_LOADED: dict[str, Backend] = {}
_BY_TYPE: dict[type, Backend] = {}  # array class (and subclasses met so far) -> its backend
_NOT_ARRAYS: set[type] = set()  # classes already found to be no backend's arrays


def register_backend(device: str, loader: Callable[[], Backend], *aliases: str) -> None:
    """Make ``device`` a name :func:`to_device` and ``Module.to`` accept; ``loader`` runs on first use."""
    _LOADERS[device] = loader
    _LOADED.pop(device, None)
    for a in aliases:
        _ALIASES[a] = device


def devices() -> list[str]:
    """The registered device names."""
    return list(_LOADERS)


def get_backend(device: str) -> Backend:
    """The backend of ``device`` ('cpu', 'gpu', 'standin' or another registered name), loaded."""
    name = _ALIASES.get(device, device)
    b = _LOADED.get(name)
    if b is not None:
        return b
    loader = _LOADERS.get(name) if isinstance(name, str) else None
    if loader is None:
        raise DeviceError(f"unknown device {device!r}; use one of {sorted(_LOADERS)}")
    b = loader()
    _LOADED[name] = b
    _BY_TYPE[b.array_type] = b
    _NOT_ARRAYS.clear()
    return b


_BY_TYPE[np.ndarray] = get_backend("cpu")


def _backend_of_type(t: type) -> Backend | None:
    """The backend owning arrays of class ``t`` (None for numbers, lists, ...); cached per class."""
    b = _BY_TYPE.get(t)
    if b is not None or t in _NOT_ARRAYS:
        return b
    if "gpu" not in _LOADED and "cupy" in sys.modules:  # CuPy imported by the user: its arrays count
        get_backend("gpu")
    for at, ab in list(_BY_TYPE.items()):
        if issubclass(t, at):
            _BY_TYPE[t] = ab
            return ab
    _NOT_ARRAYS.add(t)
    return None


def array_types() -> tuple[type, ...]:
    """The array classes that get gradient slots: NumPy's, plus each loaded backend's."""
    _backend_of_type(type(None))
    return tuple({b.array_type for b in _BY_TYPE.values()})


def is_array(x: Any) -> bool:
    """True for arrays of any backend (what the tape tracks); False for numbers and the rest."""
    t = type(x)
    return t is np.ndarray or _backend_of_type(t) is not None


def namespace(*xs: Any) -> ModuleType:
    """The array module of the first array among ``xs`` (NumPy when there is none)."""
    for x in xs:
        t = type(x)
        if t is np.ndarray:
            return np
        b = _backend_of_type(t)
        if b is not None:
            return b.xp
    return np


def device_of(x: Any) -> str | None:
    """The device name of an array ('cpu', 'gpu', 'standin'); None for numbers and other objects."""
    b = _backend_of_type(type(x))
    return None if b is None else b.device


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy array with ``x``'s values (a host copy for device arrays); NumPy arrays pass through."""
    if type(x) is np.ndarray:
        return x
    b = _backend_of_type(type(x))
    return np.asarray(x) if b is None else b.to_host(x)


def to_device(x: Any, device: str) -> Any:
    """``x`` as an array on ``device``; returns ``x`` itself if it is already there."""
    target = get_backend(device)
    src = _backend_of_type(type(x))
    if src is target:
        return x
    host = np.asarray(x) if src is None else src.to_host(x)
    return target.from_host(host)


def cuda_available() -> bool:
    """True when CuPy imports and sees at least one GPU."""
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def _arrays_in(values: Any) -> list[Any]:
    out = []
    for v in values:
        if isinstance(v, (list, tuple)):
            out.extend(_arrays_in(v))
        elif is_array(v):
            out.append(v)
    return out


def mixed_devices(name: str, args: tuple, kwargs: dict | None = None) -> DeviceError | None:
    """A :class:`DeviceError` naming ``name``'s operands if they live on two devices, else None."""
    arrays = _arrays_in(list(args) + list((kwargs or {}).values()))
    seen = {device_of(a) for a in arrays}
    if len(seen) < 2:
        return None
    ops = ", ".join(f"{device_of(a)} {shape_str(a)}" for a in arrays)
    first = device_of(arrays[0])
    return DeviceError(
        f"{name}({ops}): arrays on two devices ({', '.join(sorted(seen))}) meet in one op; move them to one "
        f"device first: new_grad.backends.to_device(x, {first!r}) for arrays, model.to({first!r}) for a Module"
    )


def check_same_device(name: str, *arrays: Any) -> None:
    """Raise :class:`DeviceError` if ``arrays`` live on two devices."""
    err = mixed_devices(name, arrays)
    if err is not None:
        raise err


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


__all__ = [
    "Backend",
    "DeviceError",
    "NewGradError",
    "array_types",
    "check_same_device",
    "cuda_available",
    "device_of",
    "devices",
    "get_backend",
    "get_default_dtype",
    "is_array",
    "mixed_devices",
    "namespace",
    "register_backend",
    "set_default_dtype",
    "to_device",
    "to_numpy",
]
