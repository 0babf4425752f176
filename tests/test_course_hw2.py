"""The course's later backward functions (conv, resampling, flatten, CTC) against PyTorch in float64.

Each is called as the course calls it, then recorded through the raw door as the
course's layers record it, and run through the engine.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import new_grad as ng
from new_grad.errors import ShapeError
from new_grad.nn import functional_hw2 as F2

from .opcheck import course_close

CONV1D = [(2, 3, 4, 9, 3), (1, 1, 2, 5, 5), (3, 2, 5, 7, 1)]  # N, C_in, C_out, W_in, K


@pytest.mark.parametrize("N,C_in,C_out,W_in,K", CONV1D)
def test_conv1d_stride1_backward(N, C_in, C_out, W_in, K):
    rng = np.random.default_rng(N * 10 + K)
    A, W, b = rng.standard_normal((N, C_in, W_in)), rng.standard_normal((C_out, C_in, K)), rng.standard_normal(C_out)
    tA, tW, tb = (torch.tensor(v, requires_grad=True) for v in (A, W, b))
    Z = torch.nn.functional.conv1d(tA, tW, tb)
    dLdZ = rng.standard_normal(tuple(Z.shape))
    Z.backward(torch.tensor(dLdZ))
    dA, dW, db = F2.conv1d_stride1_backward(dLdZ, A, W, b)
    course_close(dA, tA.grad)
    course_close(dW, tW.grad)
    course_close(db, tb.grad)


@pytest.mark.parametrize("N,C_in,C_out,H,W_in,K1,K2", [(2, 3, 4, 6, 7, 3, 3), (1, 2, 1, 4, 4, 4, 4), (2, 1, 3, 5, 6, 2, 3)])
def test_conv2d_stride1_backward(N, C_in, C_out, H, W_in, K1, K2):
    rng = np.random.default_rng(H * W_in)
    A, W = rng.standard_normal((N, C_in, H, W_in)), rng.standard_normal((C_out, C_in, K1, K2))
    b = rng.standard_normal(C_out)
    tA, tW, tb = (torch.tensor(v, requires_grad=True) for v in (A, W, b))
    Z = torch.nn.functional.conv2d(tA, tW, tb)
    dLdZ = rng.standard_normal(tuple(Z.shape))
    Z.backward(torch.tensor(dLdZ))
    dA, dW, db = F2.conv2d_stride1_backward(dLdZ, A, W, b)
    course_close(dA, tA.grad)
    course_close(dW, tW.grad)
    course_close(db, tb.grad)


def test_conv_backward_names_mismatched_shapes():
    with pytest.raises(ShapeError, match="conv1d_stride1_backward"):
        F2.conv1d_stride1_backward(np.ones((1, 2, 5)), np.ones((1, 3, 6)), np.ones((2, 3, 3)), np.ones(2))


class CourseConv1dStride1:
    """A course-shaped stride-1 conv layer: one raw-door op whose weight gradients go into dW, db in place."""

    def __init__(self, W, b, engine):
        self.W, self.b, self.engine = W, b, engine
        self.dW, self.db = np.zeros_like(W), np.zeros_like(b)

    def forward(self, A):
        K = self.W.shape[2]
        win = np.lib.stride_tricks.sliding_window_view(A, K, axis=2)
        Z = np.einsum("nitk,oik->not", win, self.W) + self.b[None, :, None]
        self.engine.add_operation([A, self.W, self.b], Z, [None, self.dW, self.db], F2.conv1d_stride1_backward)
        return Z


def test_course_conv_layer_then_downsample_then_flatten_through_the_engine():
    rng = np.random.default_rng(1)
    A, W, b = rng.standard_normal((2, 3, 12)), rng.standard_normal((4, 3, 3)), rng.standard_normal(4)
    eng = ng.Autograd()
    conv = CourseConv1dStride1(W, b, eng)
    Z = conv.forward(A)
    factor = np.array(2)  # the course passes the factor as an array, so it can sit on the tape
    D = Z[:, :, ::2]
    eng.add_operation([Z, factor], D, [None, None], F2.downsampling1d_backward)
    flat = D.reshape(D.shape[0], -1)
    eng.add_operation([D], flat, [None], F2.flatten_backward)  # a bare-array backward
    c = rng.standard_normal(flat.shape)
    eng.backward(c)

    tA, tW, tb = (torch.tensor(v, requires_grad=True) for v in (A, W, b))
    tflat = torch.nn.functional.conv1d(tA, tW, tb)[:, :, ::2].reshape(2, -1)
    course_close(flat, tflat)
    tflat.backward(torch.tensor(c))
    course_close(eng.memory_buffer.get_param(A), tA.grad)
    course_close(conv.dW, tW.grad)
    course_close(conv.db, tb.grad)


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("dims", [1, 2])
def test_downsampling_backward(k, dims):
    rng = np.random.default_rng(k + dims)
    A = rng.standard_normal((2, 3, 7) if dims == 1 else (2, 3, 7, 8))
    key = (slice(None), slice(None)) + (slice(None, None, k),) * dims
    tA = torch.tensor(A, requires_grad=True)
    Z = tA[key]
    dLdZ = rng.standard_normal(tuple(Z.shape))
    Z.backward(torch.tensor(dLdZ))
    fn = F2.downsampling1d_backward if dims == 1 else F2.downsampling2d_backward
    dA, dfactor = fn(dLdZ, A, np.array(k))
    course_close(dA, tA.grad)
    assert dfactor is None


def test_flatten_backward_returns_one_array():
    A = np.random.default_rng(2).standard_normal((2, 3, 4))
    tA = torch.tensor(A, requires_grad=True)
    Z = tA.reshape(2, -1)
    dLdZ = np.random.default_rng(3).standard_normal((2, 12))
    Z.backward(torch.tensor(dLdZ))
    course_close(F2.flatten_backward(dLdZ, A), tA.grad)


# -- CTC: the course's forward-backward (what students write), its gradient, and a PyTorch twin ---------------


def extend_target_with_blank(target, blank=0):
    ext, skip = [blank], [0]
    for i, s in enumerate(target):
        ext += [int(s), blank]
        skip += [int(i > 0 and target[i - 1] != s), 0]
    return np.array(ext), np.array(skip)


def course_posteriors(y, ext, skip):
    """γ[t, i] from the course's α and β recursions (β divided by y, as the handout does)."""
    T, S = y.shape[0], len(ext)
    alpha, beta = np.zeros((T, S)), np.zeros((T, S))
    alpha[0, 0], alpha[0, 1] = y[0, ext[0]], y[0, ext[1]]
    for t in range(1, T):
        alpha[t, 0] = alpha[t - 1, 0] * y[t, ext[0]]
        for i in range(1, S):
            a = alpha[t - 1, i] + alpha[t - 1, i - 1] + (alpha[t - 1, i - 2] if skip[i] else 0.0)
            alpha[t, i] = a * y[t, ext[i]]
    beta[T - 1, S - 1], beta[T - 1, S - 2] = y[T - 1, ext[S - 1]], y[T - 1, ext[S - 2]]
    for t in range(T - 2, -1, -1):
        beta[t, S - 1] = beta[t + 1, S - 1] * y[t, ext[S - 1]]
        for i in range(S - 2, -1, -1):
            b = beta[t + 1, i] + beta[t + 1, i + 1] + (beta[t + 1, i + 2] if i + 2 < S and skip[i + 2] else 0.0)
            beta[t, i] = b * y[t, ext[i]]
    beta = beta / y[:, ext]
    gamma = alpha * beta
    return gamma / gamma.sum(axis=1, keepdims=True)


def torch_ctc_nll(y, ext, skip):
    """−log P(target) by the α recursion in torch, differentiable in the probabilities ``y``."""
    S = len(ext)
    alpha = torch.zeros(S, dtype=y.dtype)
    alpha = alpha.index_put((torch.tensor([0, 1]),), y[0, ext[:2]])
    for t in range(1, y.shape[0]):
        prev = alpha
        a = prev.clone()
        a[1:] = a[1:] + prev[:-1]
        a[2:] = a[2:] + prev[:-2] * torch.tensor(skip[2:], dtype=y.dtype)
        alpha = a * y[t, ext]
    return -torch.log(alpha[-1] + alpha[-2])


def test_ctc_loss_backward_is_the_gradient_of_the_summed_ctc_divergence():
    rng = np.random.default_rng(4)
    T, B, C = 8, 3, 5
    logits = rng.standard_normal((T, B, C))
    y = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)  # the course's "logits" are probabilities
    targets = [np.array([1, 2, 2]), np.array([3]), np.array([4, 1, 3, 1])]
    input_lengths = np.array([8, 6, 7])
    exts, gammas = [], []
    for b in range(B):
        ext, skip = extend_target_with_blank(targets[b])
        exts.append(ext)
        gammas.append(course_posteriors(y[: input_lengths[b], b], ext, skip))
    ext_symbols = np.empty(B, dtype=object)  # ragged: the course keeps them in object arrays
    gam = np.empty(B, dtype=object)
    for b in range(B):
        ext_symbols[b], gam[b] = exts[b], gammas[b]

    ty = torch.tensor(y, requires_grad=True)
    total = sum(
        torch_ctc_nll(ty[: input_lengths[b], b], exts[b], extend_target_with_blank(targets[b])[1]) for b in range(B)
    )
    # the recursion is CTC: PyTorch's own loss agrees on the value
    ref = torch.nn.functional.ctc_loss(
        torch.log(torch.tensor(y)), torch.tensor(np.concatenate(targets)), torch.tensor(input_lengths),
        torch.tensor([len(t) for t in targets]), reduction="sum",
    )  # fmt: skip
    assert np.isclose(total.item(), ref.item(), rtol=1e-10)
    total.backward()

    dY, d_len, d_gam, d_ext = F2.ctc_loss_backward(np.ones(1), y, input_lengths, gam, ext_symbols)
    course_close(dY, ty.grad)
    assert d_len is None and d_gam is None and d_ext is None
    half, *_ = F2.ctc_loss_backward(0.5, y, input_lengths, gam, ext_symbols)
    course_close(half, ty.grad * 0.5)

    # recorded through the raw door as the course's CTCLoss does, the gradient reaches the probabilities
    eng = ng.Autograd()
    loss = np.array([total.item()])
    eng.add_operation([y, input_lengths, gam, ext_symbols], loss, [None] * 4, F2.ctc_loss_backward)
    eng.backward(1)
    course_close(eng.memory_buffer.get_param(y), ty.grad)


@pytest.mark.parametrize("dims", [1, 2])
def test_downsampling_backward_refuses_a_gradient_of_another_shape(dims):
    """A dLdZ for one sample of the batch must not broadcast over it."""
    A = np.zeros((2, 3, 7) if dims == 1 else (2, 3, 7, 8))
    fn = F2.downsampling1d_backward if dims == 1 else F2.downsampling2d_backward
    out = (2, 3, 4) if dims == 1 else (2, 3, 4, 4)
    assert fn(np.ones(out), A, np.array(2))[0].shape == A.shape
    with pytest.raises(ng.errors.ShapeError, match=r"gives an output of shape \(2, 3, 4.*but dLdZ is \(1, 3, 4"):
        fn(np.ones((1,) + out[1:]), A, np.array(2))
    with pytest.raises(ng.errors.ShapeError, match=r"gives an output of shape .*but dLdZ is \(2, 3, 5"):
        fn(np.ones((2, 3, 5) + out[3:]), A, np.array(2))
    with pytest.raises(ng.errors.ShapeError, match=f"must have {2 + dims} axes"):
        fn(np.ones(4), np.zeros(7), np.array(2))
