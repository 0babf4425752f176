"""First-order shortcuts of the layer ops and of SGD: the same numbers as the general path and as PyTorch.

Backward functions compute with plain array calls when nothing records the backward pass
(first order), and with new_grad's recordable ops under ``create_graph``; SGD's plain update
goes through a cache-sized scratch buffer. Each shortcut is checked against the path it
replaces (bitwise where the arithmetic is the same) and against PyTorch in float64.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import new_grad as ng
from new_grad.ops.nn_ops import SoftmaxCrossEntropy_backward, linear_backward

DTYPES = [np.float32, np.float64]


def _recorded(backward, *args, **kw):
    """The backward's general path: run it while an engine records (as create_graph does)."""
    with ng.Autograd():
        return backward(*args, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("xshape", [(1, 7), (7,), (4, 7), (2, 3, 7)])
def test_linear_gradients_first_order_equal_the_recorded_path_and_torch(dtype, xshape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xshape).astype(dtype)
    W = rng.standard_normal((5, 7)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    g = rng.standard_normal((*xshape[:-1], 5)).astype(dtype)
    fast = linear_backward(g, x, W, b, out=None, needs=(True, True, True))
    slow = _recorded(linear_backward, g, x, W, b, out=None, needs=(True, True, True))
    for a, s in zip(fast, slow):
        assert type(a) is np.ndarray and a.dtype == dtype and a.shape == s.shape
        np.testing.assert_array_equal(a, s)
    tx, tW, tb = (torch.tensor(a.astype(np.float64), requires_grad=True) for a in (x, W, b))
    torch.nn.functional.linear(tx, tW, tb).backward(torch.tensor(g.astype(np.float64)))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for a, t in zip(fast, (tx, tW, tb)):
        np.testing.assert_allclose(a, t.grad.numpy(), rtol=tol, atol=tol)


def test_linear_first_order_skips_what_is_not_needed():
    x, W, b = np.ones((3, 4)), np.ones((2, 4)), np.ones(2)
    assert linear_backward(np.ones((3, 2)), x, W, b, out=None, needs=(False, True, False))[::2] == (None, None)
    assert linear_backward(np.ones((3, 2)), x, W, None, out=None, needs=(True, False, False))[1:] == (None, None)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("soft", [False, True])
def test_softmax_cross_entropy_first_order_equals_the_recorded_path_and_torch(dtype, soft):
    rng = np.random.default_rng(1)
    z = (rng.standard_normal((6, 4)) * 5).astype(dtype)
    if soft:  # probabilities that do not sum to one: the gradient scales softmax by each row's total
        y = rng.uniform(0, 1, (6, 4)).astype(dtype)
    else:
        y = np.eye(4, dtype=dtype)[rng.integers(0, 4, 6)]
    g = np.asarray(0.7, dtype)
    fast = SoftmaxCrossEntropy_backward(g, z, y)
    slow = _recorded(SoftmaxCrossEntropy_backward, g, z, y)
    assert fast[1] is None and fast[0].dtype == dtype
    np.testing.assert_allclose(fast[0], slow[0], rtol=1e-6, atol=1e-7)
    tz = torch.tensor(z.astype(np.float64), requires_grad=True)
    ty = torch.tensor(y.astype(np.float64))
    (0.7 * -(ty * torch.log_softmax(tz, -1)).sum() / 6).backward()
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(fast[0], tz.grad.numpy(), rtol=tol, atol=tol)


def test_softmax_cross_entropy_first_order_keeps_float32_with_float64_targets():
    z = np.random.default_rng(2).standard_normal((3, 5)).astype(np.float32)
    y = np.eye(5)[[0, 2, 4]]
    eng = ng.Autograd()
    with eng:
        ng.softmax_cross_entropy(z, y)
    eng.backward(1)
    gz = eng.memory_buffer.get_param(z)
    assert gz.dtype == np.float32
    s = np.exp(z - z.max(1, keepdims=True))
    s /= s.sum(1, keepdims=True)
    np.testing.assert_allclose(gz, (s - y) / 3, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["small", "large", "large-transposed", "0-d"])
def test_plain_sgd_step_is_bitwise_p_minus_lr_grad_and_leaves_grad(dtype, layout):
    rng = np.random.default_rng(3)
    shape = {"small": (3, 5), "large": (300, 301), "large-transposed": (301, 300), "0-d": ()}[layout]
    p = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    if layout == "large-transposed":  # a parameter that is a non-contiguous view
        p, g = p.T, g.T
    p0, g0 = p.copy(), g.copy()
    opt = ng.optim.SGD([(p, g)], lr=0.03)
    for _ in range(3):
        opt.step()
        p0 += -0.03 * g0
        np.testing.assert_array_equal(p, p0)
        np.testing.assert_array_equal(g, g0)
        assert p.dtype == dtype


def test_plain_sgd_with_a_numpy_scalar_rate_and_mixed_dtypes_matches_the_formula():
    rng = np.random.default_rng(4)
    p = rng.standard_normal((70000,)).astype(np.float32)
    g = rng.standard_normal(70000)  # float64 gradient of a float32 parameter
    q, h = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    ref_p, ref_q = p.copy(), q - np.float64(0.1) * h
    ref_p += -np.float64(0.1) * g  # summed in float64, rounded once to the parameter's float32
    opt = ng.optim.SGD([(p, g), (q, h)], lr=0.1)
    opt.param_groups[0]["lr"] = np.float64(0.1)  # what a scheduler may leave there
    opt.step()
    np.testing.assert_array_equal(p, ref_p)
    np.testing.assert_allclose(q, ref_q, rtol=0, atol=1e-15)


def test_plain_sgd_trajectory_on_a_large_layer_matches_torch():
    rng = np.random.default_rng(5)
    W0 = rng.standard_normal((260, 300)) * 0.05
    x = rng.standard_normal((8, 300))
    lin = ng.nn.Linear(300, 260)
    lin.W[...] = W0
    lin.b[...] = 0
    opt = ng.optim.SGD(lin.parameters(), lr=0.1)
    tl = torch.nn.Linear(300, 260).double()
    with torch.no_grad():
        tl.weight.copy_(torch.tensor(W0))
        tl.bias.zero_()
    topt = torch.optim.SGD(tl.parameters(), lr=0.1)
    eng = ng.Autograd()
    for _ in range(5):
        opt.zero_grad()
        with eng:
            ng.mean(ng.multiply(lin(x), lin(x)))
        eng.backward(1)
        opt.step()
        topt.zero_grad()
        (tl(torch.tensor(x)) ** 2).mean().backward()
        topt.step()
    np.testing.assert_allclose(lin.W, tl.weight.detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(lin.b, tl.bias.detach().numpy(), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize(
    "xshape, wshape, kw",
    [
        ((4, 6, 14, 14), (16, 6, 5, 5), {}),
        ((3, 1, 12, 12), (6, 1, 5, 5), dict(padding=2)),
        ((2, 4, 9, 11), (6, 2, 3, 2), dict(padding=(1, 2), dilation=(2, 1), groups=2)),
        ((2, 3, 7, 8), (5, 3, 3, 3), dict(padding="same", dilation=(1, 2))),
        ((2, 3, 6, 6), (4, 3, 1, 1), {}),
    ],
)
def test_stride_one_conv_input_gradient_matches_torch(xshape, wshape, kw):
    """col2im over whole padded rows (stride 1) against PyTorch's conv2d input gradient, float64."""
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal(xshape), rng.standard_normal(wshape)
    eng = ng.Autograd()
    with eng:
        y = ng.conv2d(x, w, None, **kw)
    g = rng.standard_normal(y.shape)
    eng.backward(g)
    tx = torch.tensor(x, requires_grad=True)
    torch.nn.functional.conv2d(tx, torch.tensor(w), None, **kw).backward(torch.tensor(g))
    np.testing.assert_allclose(eng.memory_buffer.get_param(x), tx.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_transposed_conv_with_output_padding_gradients_match_torch():
    """conv_transpose2d's input gradient is a stride-1-or-more conv2d whose padding crops (``_fit``)."""
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((2, 3, 5, 4)), rng.standard_normal((3, 2, 3, 3))
    kw = dict(stride=2, padding=1, output_padding=1)
    eng = ng.Autograd()
    with eng:
        y = ng.conv_transpose2d(x, w, None, **kw)
    g = rng.standard_normal(y.shape)
    eng.backward(g)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    torch.nn.functional.conv_transpose2d(tx, tw, None, **kw).backward(torch.tensor(g))
    np.testing.assert_allclose(eng.memory_buffer.get_param(x), tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(eng.memory_buffer.get_param(w), tw.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_conv_weight_gradient_from_the_kept_im2col_equals_a_recomputed_one():
    """A recorded conv2d keeps its im2col matrix for the weight gradient: the same result as recomputing it,
    on a retained second pass too, and nothing is kept once the output is gone."""
    from new_grad.ops import conv

    rng = np.random.default_rng(8)
    x, w, b = rng.standard_normal((3, 2, 9, 9)), rng.standard_normal((4, 2, 3, 3)), rng.standard_normal(4)
    gw = np.zeros_like(w)
    ng.bind_gradient(w, gw)
    eng = ng.Autograd()
    with eng:
        y = ng.conv2d(x, w, b, padding=1)
        loss = ng.sum(ng.multiply(y, y))
    assert id(y) in conv._SAVED_COLS
    eng.backward(1, retain_graph=True)  # the kept im2col
    first = gw.copy()
    assert id(y) not in conv._SAVED_COLS
    gw[...] = 0
    eng.backward(1)  # recomputed
    np.testing.assert_array_equal(gw, first)
    tw = torch.tensor(w, requires_grad=True)
    (torch.nn.functional.conv2d(torch.tensor(x), tw, torch.tensor(b), padding=1) ** 2).sum().backward()
    np.testing.assert_allclose(first, tw.grad.numpy(), rtol=1e-12, atol=1e-12)
    del loss
    before = len(conv._SAVED_COLS)
    with eng:
        ng.conv2d(x, w, b, padding=1)  # recorded, never backpropagated
    eng.zero_grad()  # the tape lets go of the output: its im2col goes with it
    assert len(conv._SAVED_COLS) == before


@pytest.mark.parametrize("where", [None, "middle", "last-block", "transposed"])
def test_the_no_gradient_check_scans_zero_ended_gradients_to_the_end(where):
    """The step's all-zero check stops at the first nonzero block, and still finds a lone entry anywhere."""
    import warnings

    p = np.zeros((300, 301), np.float32)
    g = np.zeros_like(p)
    if where == "middle":
        g[150, 7] = 1e-30
    elif where == "last-block":
        g[-1, -2] = -1e-30
    elif where == "transposed":
        p, g = p.T, g.T
        g[5, 200] = 3.0
    opt = ng.optim.SGD([(p, g)], lr=0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        opt.step()
    warned = any(issubclass(w.category, ng.errors.NoGradientWarning) for w in caught)
    assert warned == (where is None)


@pytest.mark.parametrize("outputs", [70, 130])
@pytest.mark.parametrize("rows", [1, 8, 16, 48, 49])
def test_linear_forward_in_every_orientation_is_x_wt_and_c_ordered(rows, outputs):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((rows, 100)).astype(np.float32)
    W = rng.standard_normal((outputs, 100)).astype(np.float32)
    b = rng.standard_normal(outputs).astype(np.float32)
    y = ng.linear(x, W, b)
    assert y.flags.c_contiguous and y.dtype == np.float32 and y.shape == (rows, outputs)
    np.testing.assert_allclose(y, x.astype(np.float64) @ W.T.astype(np.float64) + b, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=2, padding=1), dict(kernel_size=3, stride=3)])
@pytest.mark.parametrize("hw", [(6, 6), (7, 9)])  # windows that tile the input, and ones that leave a remainder
def test_max_pool_gradient_with_ties_matches_torch(kw, hw):
    """Windows that tile the input write each gradient entry once (no zero fill): ties go to the first maximum."""
    rng = np.random.default_rng(10)
    x = np.maximum(rng.standard_normal((2, 3, *hw)), 0)  # ReLU zeros: windows of equal maxima
    x[0, 0, :3, :3] = 1.5
    eng = ng.Autograd()
    with eng:
        y = ng.max_pool2d(x, **kw)
    g = rng.standard_normal(y.shape)
    eng.backward(g)
    tx = torch.tensor(x, requires_grad=True)
    torch.nn.functional.max_pool2d(tx, **kw).backward(torch.tensor(g))
    np.testing.assert_array_equal(eng.memory_buffer.get_param(x), tx.grad.numpy())
