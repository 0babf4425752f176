"""``new_grad.linalg``: NumPy's ``linalg`` namespace, differentiable.

A thin namespace over :mod:`new_grad.ops.linalg`, where each function is defined
beside its gradient. Decompositions live only here, as in NumPy.
"""

from __future__ import annotations

from .ops.linalg import (
    EighResult,
    QRResult,
    SlogdetResult,
    SVDResult,
    cholesky,
    det,
    eigh,
    inv,
    matmul,
    norm,
    outer,
    pinv,
    qr,
    slogdet,
    solve,
    svd,
    svdvals,
    tensordot,
)
from .ops.shape import diagonal, trace

__all__ = [
    "EighResult",
    "QRResult",
    "SVDResult",
    "SlogdetResult",
    "cholesky",
    "det",
    "diagonal",
    "eigh",
    "inv",
    "matmul",
    "norm",
    "outer",
    "pinv",
    "qr",
    "slogdet",
    "solve",
    "svd",
    "svdvals",
    "tensordot",
    "trace",
]
