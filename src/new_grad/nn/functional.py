"""The backward functions under their seed names, plus the functional forms of nn ops.

``NAME_backward(grad_output, *inputs)`` returns one gradient per input, of that
input's exact shape (``None`` for constants). They are defined beside their
forwards in :mod:`new_grad.ops`; this module gathers every one of them from the
registry, so there is one definition and two ways to reach it.
"""

from __future__ import annotations

from ..ops import *  # noqa: F403 - the functional forms (relu, sigmoid, linear, ...)
from ..ops import REGISTRY

__all__ = [name for name in globals() if not name.startswith("_")]

for _info in list(REGISTRY.values()):
    if _info.backward is not None:
        globals()[_info.backward.__name__] = _info.backward
        __all__.append(_info.backward.__name__)
