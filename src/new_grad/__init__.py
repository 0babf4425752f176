"""new_grad: reverse-mode automatic differentiation for plain NumPy arrays.

No tensor class: ops record themselves on a tape (``Autograd.operation_list``),
gradients live in a memory buffer beside the arrays, and backpropagation is
one loop over the tape in reverse.

    import new_grad as ng
    engine = ng.Autograd()
    with engine:
        y = ng.sum(ng.tanh(x))
    engine.backward(1)
    dx = engine.memory_buffer.get_param(x)
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import data, errors, linalg, nn, ops, optim
from .autograd_engine import (
    Autograd,
    Operation,
    active_engine,
    bind_gradient,
    bound_gradient,
    constant,
    is_constant,
    is_grad_enabled,
    mark_modified,
    no_grad,
)
from .backends import get_default_dtype, namespace, set_default_dtype
from .custom import custom_op, defvjp
from .errors import NewGradError
from .gradcheck import gradcheck, gradgradcheck
from .ops import *  # noqa: F403 - every op at the top level, under NumPy's names
from .replay import CompiledStep, compile  # noqa: A004 - new_grad.compile: tape replay
from .serialization import load, save
from .transforms import grad, hessian, hvp, jacobian, jacrev, jvp, value_and_grad, vjp
from .utils import GradientBuffer, MemoryBuffer

__all__ = [
    "__version__",
    "Autograd",
    "Operation",
    "MemoryBuffer",
    "GradientBuffer",
    "NewGradError",
    "active_engine",
    "bind_gradient",
    "bound_gradient",
    "mark_modified",
    "constant",
    "data",
    "errors",
    "get_default_dtype",
    "is_constant",
    "is_grad_enabled",
    "linalg",
    "namespace",
    "nn",
    "no_grad",
    "ops",
    "optim",
    "save",
    "load",
    "set_default_dtype",
    *ops.__all__,
    "custom_op",
    "defvjp",
    "gradcheck",
    "gradgradcheck",
    "compile",
    "CompiledStep",
    "grad",
    "value_and_grad",
    "vjp",
    "jvp",
    "jacobian",
    "jacrev",
    "hessian",
    "hvp",
]
