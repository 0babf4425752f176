"""``new_grad.linalg``: NumPy's ``linalg`` namespace, differentiable.

A thin namespace over :mod:`new_grad.ops.linalg`, where each function is defined
beside its gradient. Decompositions live only here, as in NumPy. The array-API
helpers (``diagonal``, ``trace``, ``vector_norm``, ``matrix_norm``) follow
``numpy.linalg``: they act on the last two axes, or on any axes for vector norms.
"""

from __future__ import annotations

from typing import Any

from .ops._core import traceable
from .ops.linalg import (
    EighResult,
    EigResult,
    QRResult,
    SlogdetResult,
    SVDResult,
    cholesky,
    cond,
    cross,
    det,
    eig,
    eigh,
    eigvals,
    eigvalsh,
    inv,
    lstsq,
    matmul,
    matrix_power,
    multi_dot,
    norm,
    outer,
    pinv,
    qr,
    slogdet,
    solve,
    svd,
    svdvals,
    tensordot,
    tensorinv,
    tensorsolve,
    vecdot,
)
from .ops.shape import diagonal as _diagonal
from .ops.shape import matrix_transpose, moveaxis, reshape
from .ops.shape import trace as _trace


@traceable
def diagonal(x: Any, *, offset: int = 0) -> Any:
    """The diagonals of the matrices in the last two axes (``numpy.linalg.diagonal``)."""
    return _diagonal(x, offset, -2, -1)


@traceable
def trace(x: Any, *, offset: int = 0) -> Any:
    """The traces of the matrices in the last two axes (``numpy.linalg.trace``)."""
    return _trace(x, offset, -2, -1)


@traceable
def matrix_norm(x: Any, *, keepdims: bool = False, ord: Any = "fro") -> Any:
    """Norms of the matrices in the last two axes (``numpy.linalg.matrix_norm``)."""
    return norm(x, ord, (-2, -1), keepdims)


@traceable
def vector_norm(x: Any, *, axis: Any = None, keepdims: bool = False, ord: Any = 2) -> Any:
    """Vector norms over ``axis`` (an int, a tuple of axes, or all), like ``numpy.linalg.vector_norm``."""
    nd = x.ndim
    axes = tuple(range(nd)) if axis is None else ((axis,) if isinstance(axis, int) else tuple(axis))
    axes = tuple(a % nd for a in axes)
    if len(axes) == 1:
        return norm(x, ord, axes[0], keepdims)
    k = len(axes)
    moved = moveaxis(x, axes, tuple(range(nd - k, nd)))
    n = norm(reshape(moved, (*moved.shape[: nd - k], -1)), ord, -1)
    if keepdims:
        n = reshape(n, tuple(1 if i in axes else s for i, s in enumerate(x.shape)))
    return n


__all__ = [
    "EigResult",
    "EighResult",
    "QRResult",
    "SVDResult",
    "SlogdetResult",
    "cholesky",
    "cond",
    "cross",
    "det",
    "diagonal",
    "eig",
    "eigh",
    "eigvals",
    "eigvalsh",
    "inv",
    "lstsq",
    "matmul",
    "matrix_norm",
    "matrix_transpose",
    "matrix_power",
    "multi_dot",
    "norm",
    "outer",
    "pinv",
    "qr",
    "slogdet",
    "solve",
    "svd",
    "svdvals",
    "tensordot",
    "tensorinv",
    "tensorsolve",
    "trace",
    "vecdot",
    "vector_norm",
]
