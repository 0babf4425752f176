"""Every differentiable op, by family; ``new_grad`` re-exports them at the top level.

A family file defines each op's public function (NumPy's name) and its course-style
backward (``NAME_backward``) side by side. Everything public a family module
defines is exported here, so adding an op is: write it in its family file.
"""

from __future__ import annotations

from types import ModuleType

from ..autograd_engine import COMPLEX_OPS, GRAPH_OPS
from . import (
    _core,
    activations,
    conv,
    elementwise,
    indexing,
    linalg,
    losses,
    nn_ops,
    norm,
    recurrent,
    reductions,
    shape,
)
from ._core import (
    REGISTRY,
    OpInfo,
    nondifferentiable,
    primitive,
    record,
    register,
    traceable,
    unbroadcast,
    unbroadcast_to,
)

FAMILIES: tuple[ModuleType, ...] = (elementwise, reductions, activations, shape, indexing, linalg, nn_ops, conv, norm, losses, recurrent)


def _public(mod: ModuleType) -> dict[str, object]:
    hidden = getattr(mod, "NOT_TOP_LEVEL", ())  # e.g. linalg's decompositions: only in new_grad.linalg
    return {
        n: v
        for n, v in vars(mod).items()
        if not n.startswith("_") and n not in hidden and callable(v) and getattr(v, "__module__", None) == mod.__name__
    }


def _accept_traced(mod: ModuleType) -> None:
    """Ops composed in Python (variadic, multi-output, built from other ops) accept traced values too.

    Ops made by ``primitive`` check for them already; every other registered op of a
    family is wrapped once here (in its module, so every import sees the wrapped one).
    """
    by_public = {id(info.public): name for name, info in REGISTRY.items()}
    for n, v in list(vars(mod).items()):
        if (
            n.startswith("_") or n.endswith("_backward") or isinstance(v, type) or not callable(v)
            or getattr(v, "__module__", None) != mod.__name__ or hasattr(v, "backward") or hasattr(v, "_traceable")
            or id(v) not in by_public  # helpers backward functions call (expand_reduced, ...) stay lean
        ):
            continue
        wrapped = traceable(v)
        setattr(mod, n, wrapped)
        if id(v) in by_public:
            REGISTRY[by_public[id(v)]].public = wrapped


for _mod in FAMILIES:
    _accept_traced(_mod)

__all__ = ["REGISTRY", "OpInfo", "primitive", "nondifferentiable", "record", "register", "unbroadcast", "unbroadcast_to"]
for _mod in FAMILIES:
    _names = _public(_mod)
    globals().update(_names)
    __all__ += list(_names)

# The engine records its own gradient accumulation under create_graph with these (it imports nothing above it).
GRAPH_OPS.update(add=elementwise.add, astype=elementwise.astype, unbroadcast_to=unbroadcast_to, first_order=_core.first_order)
GRAPH_OPS.update(real=elementwise.real)

# The recorded ops whose backward follows the complex convention (the gradient of a real L of z = x + iy is
# ∂L/∂x − i·∂L/∂y, HIPS autograd's and JAX's): holomorphic ops need no rule of their own (their backward is the
# plain transpose), the others (abs, real, imag, conj, angle, var, std, norm, vdot, slogdet, pinv) have one.
# Any other op refuses a complex output that would get a gradient (DtypeError), so nothing is silently wrong.
COMPLEX_OPS.update((
    # elementwise
    "add", "subtract", "multiply", "divide", "negative", "positive", "power", "float_power", "square", "reciprocal",
    "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "sin", "cos", "tan", "arcsin", "arccos",
    "arctan", "sinh", "cosh", "tanh", "arcsinh", "arccosh", "arctanh", "sigmoid", "sinc", "where", "astype",
    "nan_to_num", "real", "imag", "conj", "angle", "abs",
    # reductions
    "sum", "mean", "prod", "var", "std", "average", "cumsum", "cumprod",
    # shape and indexing
    "reshape", "transpose", "swapaxes", "expand_dims", "broadcast_to", "identity", "ravel", "squeeze", "moveaxis",
    "flip", "roll", "tile", "repeat", "pad", "diagonal", "diag", "trace", "triu", "tril", "take",
    "take_along_axis", "linspace", "copy", "ascontiguousarray", "asfortranarray", "concatenate", "stack", "hstack", "vstack", "column_stack", "row_stack",
    "dstack", "append", "getitem", "index_add", "index_update",
    # products and linear algebra
    "matmul", "outer", "einsum", "dot", "inner", "vdot", "tensordot", "linalg.inv", "linalg.det", "linalg.slogdet",
    "linalg.slogdet.sign", "linalg.solve", "linalg.pinv", "linalg.norm", "linalg.eigh", "linalg.cholesky",
    "linalg.svdvals", "linalg.svd", "linalg.qr", "linalg.eig",
))  # fmt: skip

# Registered ops composed of the ops above (and so differentiating complex input too): docs/ops.md marks these and
# COMPLEX_OPS' registered names with ℂ, and tests/test_complex.py checks each against PyTorch.
COMPLEX_COMPOSITES = frozenset((
    "deg2rad", "rad2deg", "radians", "degrees", "nansum", "nanmean", "nanprod", "diff", "cumulative_sum",
    "cumulative_prod", "trapezoid", "atleast_2d", "flipud", "fliplr", "rot90", "kron", "cross", "vecdot", "matvec",
    "vecmat", "linalg.matrix_power", "linalg.multi_dot", "linalg.tensorinv", "linalg.tensorsolve", "convolve",
    "correlate", "polyval", "polymul", "polyadd", "linalg.eigvalsh", "linalg.lstsq", "linalg.cond", "linalg.eigvals",
))  # fmt: skip


def supports_complex(name: str) -> bool:
    """Does the registered op ``name`` differentiate complex64/complex128 input?"""
    return name in COMPLEX_OPS or name in COMPLEX_COMPOSITES
