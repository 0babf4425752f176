"""The 11-785 course's later backward functions (``mytorch.nn.functional_hw2``): conv, resampling, CTC.

Same contract as :mod:`new_grad.nn.functional_hw1` (whose names this module also
offers, so either import path works): one gradient per input, a bare array for
a function of one input, ``None`` for inputs that get no gradient (a
downsampling factor, lengths, posteriors). Shapes are the course's: ``A`` is
(batch, channels, width) or (batch, channels, height, width), ``W`` is
(out_channels, in_channels, kernel...), the bias is (out_channels,).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import ShapeError, shape_str
from .functional_hw1 import *  # noqa: F403 - one module path offers every course name
from .functional_hw1 import __all__ as _hw1_names

__all__ = [
    *_hw1_names,
    "conv1d_stride1_backward",
    "conv2d_stride1_backward",
    "downsampling1d_backward",
    "downsampling2d_backward",
    "flatten_backward",
    "ctc_loss_backward",
]


def _check_conv(fn: str, dLdZ: Any, A: Any, W: Any, spatial: int) -> None:
    if A.ndim != spatial + 2 or W.ndim != spatial + 2 or dLdZ.ndim != spatial + 2:
        raise ShapeError(
            f"{fn}: expected A, W and dLdZ with {spatial + 2} axes, got A {shape_str(A)}, W {shape_str(W)}, "
            f"dLdZ {shape_str(dLdZ)}"
        )
    want = (A.shape[0], W.shape[0], *(n - k + 1 for n, k in zip(A.shape[2:], W.shape[2:])))
    if A.shape[1] != W.shape[1] or dLdZ.shape != want:
        raise ShapeError(
            f"{fn}: A {shape_str(A)} and W {shape_str(W)} (out, in, kernel...) give an output of shape "
            f"{want}, but dLdZ is {shape_str(dLdZ)}; in-channels must match and dLdZ must be that output's gradient"
        )


def _bias_grad(dLdZ: Any, b: Any, axes: tuple[int, ...]) -> Any:
    if b is None:
        return None
    db = dLdZ.sum(axis=axes)
    return db.reshape(np.shape(b)) if db.size == np.size(b) else db


def conv1d_stride1_backward(dLdZ: Any, A: Any, W: Any, b: Any) -> tuple[Any, Any, Any]:
    """Gradients of ``Z[n,o,t] = Σ_{i,k} A[n,i,t+k] W[o,i,k] + b[o]``: ``(dLdA, dLdW, dLdb)``."""
    _check_conv("conv1d_stride1_backward", dLdZ, A, W, 1)
    K = W.shape[2]
    dW = np.einsum("not,nitk->oik", dLdZ, sliding_window_view(A, K, axis=2), optimize=True)
    padded = np.pad(dLdZ, ((0, 0), (0, 0), (K - 1, K - 1)))
    dA = np.einsum("nosk,oik->nis", sliding_window_view(padded, K, axis=2), W[:, :, ::-1], optimize=True)
    return dA, dW, _bias_grad(dLdZ, b, (0, 2))


def conv2d_stride1_backward(dLdZ: Any, A: Any, W: Any, b: Any) -> tuple[Any, Any, Any]:
    """Gradients of ``Z[n,o,h,w] = Σ A[n,i,h+k,w+l] W[o,i,k,l] + b[o]``: ``(dLdA, dLdW, dLdb)``."""
    _check_conv("conv2d_stride1_backward", dLdZ, A, W, 2)
    K1, K2 = W.shape[2:]
    win = sliding_window_view(A, (K1, K2), axis=(2, 3))
    dW = np.einsum("nohw,nihwkl->oikl", dLdZ, win, optimize=True)
    padded = np.pad(dLdZ, ((0, 0), (0, 0), (K1 - 1, K1 - 1), (K2 - 1, K2 - 1)))
    pwin = sliding_window_view(padded, (K1, K2), axis=(2, 3))
    dA = np.einsum("nohwkl,oikl->nihw", pwin, W[:, :, ::-1, ::-1], optimize=True)
    return dA, dW, _bias_grad(dLdZ, b, (0, 2, 3))


def _factor(downsampling_factor: Any) -> int:
    k = int(np.asarray(downsampling_factor).reshape(()))  # the course passes it as an array (it sits on the tape)
    if k < 1:
        raise ShapeError(f"downsampling: factor must be a positive integer, got {k}")
    return k


def _downsampled(name: str, dLdZ: Any, A: Any, k: int, dims: int) -> tuple:
    """The index of the kept positions, once ``dLdZ`` is checked to be exactly their gradient.

    Assigning a smaller ``dLdZ`` (one sample for a batch, say) would broadcast silently.
    """
    if np.ndim(A) != 2 + dims:
        raise ShapeError(
            f"{name}: A {shape_str(A)} must have {2 + dims} axes (batch, channels, {dims} spatial)"
        )
    key = (slice(None), slice(None)) + (slice(None, None, k),) * dims
    want = tuple(n if i < 2 else len(range(0, n, k)) for i, n in enumerate(A.shape))
    if tuple(np.shape(dLdZ)) != want:
        raise ShapeError(
            f"{name}: A {shape_str(A)} downsampled by {k} gives an output of shape {want}, but dLdZ is "
            f"{shape_str(dLdZ)}; dLdZ must be that output's gradient"
        )
    return key


def downsampling1d_backward(dLdZ: Any, A: Any, downsampling_factor: Any) -> tuple[Any, None]:
    """``Z = A[:, :, ::k]``: the gradient goes back to every k-th position, zeros elsewhere."""
    k = _factor(downsampling_factor)
    dA = np.zeros(A.shape, dtype=np.result_type(A, dLdZ))
    dA[_downsampled("downsampling1d_backward", dLdZ, A, k, 1)] = dLdZ
    return dA, None


def downsampling2d_backward(dLdZ: Any, A: Any, downsampling_factor: Any) -> tuple[Any, None]:
    """``Z = A[:, :, ::k, ::k]``: the gradient goes back to every k-th row and column, zeros elsewhere."""
    k = _factor(downsampling_factor)
    dA = np.zeros(A.shape, dtype=np.result_type(A, dLdZ))
    dA[_downsampled("downsampling2d_backward", dLdZ, A, k, 2)] = dLdZ
    return dA, None


def flatten_backward(dLdZ: Any, A: Any) -> Any:
    """``Z = A.reshape(batch, -1)``: the gradient reshaped back to ``A``'s shape (one array)."""
    if np.size(dLdZ) != A.size:
        raise ShapeError(f"flatten_backward: dLdZ {shape_str(dLdZ)} has not the size of A {shape_str(A)}")
    return np.reshape(dLdZ, A.shape)


def ctc_loss_backward(
    grad_output: Any, logits: Any, input_lengths: Any, gammas: Any, ext_symbols: Any
) -> tuple[Any, None, None, None]:
    """The course's CTC divergence gradient with respect to the symbol probabilities ``logits`` (T, B, C).

    For each batch item ``b``, time ``t < input_lengths[b]`` and position ``i`` of the
    blank-extended target ``ext_symbols[b]``:
    ``dY[t, b, ext[i]] -= gammas[b][t, i] / logits[t, b, ext[i]]``, i.e. the gradient of the
    batch's summed ``−log P(target)`` (the course's ``CTCLoss.backward``), times ``grad_output``.
    """
    T, B, _ = logits.shape
    dY = np.zeros(logits.shape, dtype=np.result_type(logits, np.float32))
    for b in range(B):
        ext = np.asarray(ext_symbols[b]).astype(np.intp).reshape(-1)
        t_b = int(input_lengths[b])
        gamma = np.asarray(gammas[b])[:t_b, : ext.size]
        rows = np.arange(t_b)[:, None]
        np.add.at(dY[:, b], (rows, ext[None, :]), -gamma / logits[:t_b, b][:, ext])
    g = np.asarray(grad_output, dtype=dY.dtype)
    if g.size != 1:
        raise ShapeError(f"ctc_loss_backward: grad_output {shape_str(g)} must be the loss's scalar gradient")
    return dY * g.reshape(()), None, None, None
