"""The backward functions under the course's names, plus the functional forms of nn ops.

``NAME_backward(grad_output, *inputs)`` returns one gradient per input (``None``
for constants), with the shape the input had inside the op: an input that was
broadcast gets the broadcast gradient, which the engine sums back to its shape.
The course's binary functions (``add_backward``, ``sub_backward``,
``mul_backward``, ``div_backward``) sum it back themselves. They are defined beside their
forwards in :mod:`new_grad.ops`; this module gathers every one of them from the
registry, so there is one definition and two ways to reach it.

The 11-785 course's names come last and win (:mod:`.functional_hw1`,
:mod:`.functional_hw2`): ``sum_backward``, ``max_backward``, ``tanh_backward``,
``identity_backward``, ``transpose_backward``, ``expand_dims_backward``,
``squeeze_backward`` and ``ctc_loss_backward`` have the course's contract there
(the ops' own backward functions are ``NAME_op_backward``), and ``unbroadcast`` is
the course's ``unbroadcast(grad, shape, to_keep=0)`` (new_grad's own is
``new_grad.ops.unbroadcast(grad, like)``).
"""

from __future__ import annotations

from ..ops import *  # noqa: F403 - the functional forms (relu, sigmoid, linear, ...)
from ..ops import REGISTRY
from . import functional_hw2 as _course

__all__ = [name for name in globals() if not name.startswith("_")]

for _info in list(REGISTRY.values()):
    if _info.backward is not None:
        globals()[_info.backward.__name__] = _info.backward
        __all__.append(_info.backward.__name__)

for _name in _course.__all__:
    globals()[_name] = getattr(_course, _name)
    if _name not in __all__:
        __all__.append(_name)
