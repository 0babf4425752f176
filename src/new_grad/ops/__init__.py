"""Every differentiable op, by family; ``new_grad`` re-exports them at the top level.

A family file defines each op's public function (NumPy's name) and its course-style
backward (``NAME_backward``) side by side. Everything public a family module
defines is exported here, so adding an op is: write it in its family file.
"""

from __future__ import annotations

from types import ModuleType

from ..autograd_engine import GRAPH_OPS
from . import activations, conv, elementwise, indexing, linalg, losses, nn_ops, norm, recurrent, reductions, shape
from ._core import REGISTRY, OpInfo, nondifferentiable, primitive, record, register, unbroadcast, unbroadcast_to

FAMILIES: tuple[ModuleType, ...] = (elementwise, reductions, activations, shape, indexing, linalg, nn_ops, conv, norm, losses, recurrent)


def _public(mod: ModuleType) -> dict[str, object]:
    hidden = getattr(mod, "NOT_TOP_LEVEL", ())  # e.g. linalg's decompositions: only in new_grad.linalg
    return {
        n: v
        for n, v in vars(mod).items()
        if not n.startswith("_") and n not in hidden and callable(v) and getattr(v, "__module__", None) == mod.__name__
    }


__all__ = ["REGISTRY", "OpInfo", "primitive", "nondifferentiable", "record", "register", "unbroadcast", "unbroadcast_to"]
for _mod in FAMILIES:
    _names = _public(_mod)
    globals().update(_names)
    __all__ += list(_names)

# The engine records its own gradient accumulation under create_graph with these (it imports nothing above it).
GRAPH_OPS.update(add=elementwise.add, astype=elementwise.astype)
