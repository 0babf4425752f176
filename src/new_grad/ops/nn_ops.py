"""Neural-network ops, fused: one tape entry and a closed-form backward each."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backends import namespace
from ..errors import ShapeError
from ._core import EVERY, primitive
from .activations import _log_softmax_array, softmax
from .elementwise import divide, multiply, subtract
from .linalg import matmul
from .reductions import sum as _sum
from .shape import reshape, swapaxes


def linear_backward(grad_output: Any, x: Any, W: Any, b: Any = None, out: Any = None, needs: Any = EVERY) -> tuple:
    """y = x Wᵀ + b:  ∂x = G W,  ∂W = Gᵀ x (batch axes folded),  ∂b = Σ G over the batch."""
    g = grad_output
    gx = matmul(g, W) if needs[0] else None
    gW = gb = None
    if needs[1] or (b is not None and needs[2]):
        g2 = reshape(g, (-1, g.shape[-1]))
        if needs[1]:
            x2 = reshape(x, (-1, x.shape[-1]))
            # one sample: Gᵀx is an outer product. matmul takes a slow path for an inner dimension of 1
            # (Gᵀ's strides are not BLAS-able), 5× slower than the broadcast product, which is exact alike
            gW = multiply(reshape(g2, (-1, 1)), x2) if g2.shape[0] == 1 else matmul(swapaxes(g2, 0, 1), x2)
        if b is not None and needs[2]:
            gb = _sum(g2, 0)
    return gx, gW, gb


# replay: on a 2-d batch, where linear_backward's reshapes to 2-d keep the very same views (one sample: the same
# broadcast product as the backward)
@primitive(
    linear_backward,
    formula="y = xWᵀ + b: ∂x = GW, ∂W = Gᵀx, ∂b = ΣG",
    replay=("g @ i1", "g.reshape(-1, 1) * i0 if g.shape[0] == 1 else g.T @ i0", "g.sum(axis=0)"),
)
def linear(x: Any, W: Any, b: Any = None) -> Any:
    """PyTorch's ``F.linear``: ``x @ W.T + b`` with ``W`` of shape (out, in)."""
    if x.shape[-1] != W.shape[-1]:
        raise ShapeError(
            f"linear: input {tuple(x.shape)} has {x.shape[-1]} features but W {tuple(W.shape)} expects "
            f"{W.shape[-1]} (W is (out_features, in_features))"
        )
    y = _x_wt(x, W)
    if b is not None:
        y += b
    return y


def _x_wt(x: Any, W: Any) -> Any:
    """``x @ W.T``. For a float32 batch of 8 to 48 rows and 128 outputs or more, NumPy's OpenBLAS sgemm is up
    to 1.5× slower with the transposed weight on the right than with the product turned around, ``W @ xᵀ``:
    take that, and copy its transpose back to rows (a small copy; the result is C-ordered like ``x @ W.T``'s).
    With fewer outputs the turned product is 15–25 % slower."""
    if (
        type(x) is np.ndarray and x.ndim == 2 and 8 <= x.shape[0] <= 48 and W.shape[0] >= 128
        and x.dtype == np.float32 and W.dtype == np.float32
    ):
        return np.ascontiguousarray((W @ x.T).T)
    return x @ W.T


def SoftmaxCrossEntropy_backward(
    grad_output: Any, pred: Any, ground_truth: Any, out: Any = None, needs: Any = EVERY
) -> tuple:
    """∂/∂logits of mean_n(−Σ y log softmax(logits)) = (softmax(logits)·Σy − y) / N."""
    n = pred.shape[0] if pred.ndim > 1 else 1
    y = ground_truth
    total = _sum(y, -1, True)  # 1 for one-hot or probability targets
    grad = divide(subtract(multiply(softmax(pred, -1), total), y), n)
    return multiply(grad, reshape(grad_output, ())), None


@primitive(SoftmaxCrossEntropy_backward, name="softmax_cross_entropy", formula="∂L/∂z = (softmax(z) − y)/N")
def softmax_cross_entropy(pred: Any, ground_truth: Any) -> Any:
    """Mean over the batch of −Σ y·log softmax(pred): the course's fused loss (targets one-hot/probabilities)."""
    if pred.shape != ground_truth.shape:
        raise ShapeError(
            f"softmax_cross_entropy: logits {tuple(pred.shape)} and targets {tuple(ground_truth.shape)} "
            "must have the same shape; targets are one-hot (or probabilities) per row"
        )
    xp = namespace(pred)
    n = pred.shape[0] if pred.ndim > 1 else 1
    loss = -(ground_truth * _log_softmax_array(pred, -1)).sum() / n
    return xp.asarray(loss, dtype=pred.dtype)
