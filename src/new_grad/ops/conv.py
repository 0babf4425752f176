"""Convolution and pooling: fused ops with closed-form backward, one tape entry each.

A convolution is im2col + one GEMM: a strided *view* of the (padded) input puts every
receptive field on its own row (no Python loop over pixels), and a matrix product with
the flattened kernel does the rest. Its two gradients are themselves convolutions:

- the gradient for the input is ``conv2d_input`` (the adjoint of conv2d in ``x``, which is
  also what ``conv_transpose2d`` computes), and
- the gradient for the weight is ``conv2d_weight`` (the receptive fields times the
  upstream gradient).

``conv2d``, ``conv2d_input`` and ``conv2d_weight`` differentiate into each other, so
gradients of gradients (``create_graph=True``) work through convolutions. The names
and argument orders are PyTorch's (``torch.nn.functional`` and ``torch.nn.grad``).

Pooling: max pooling is the maximum of ``kh·kw`` strided views (much faster than a
reshape + max); average pooling, with or without padding, is separable, so it is two
matrix products with small constant averaging matrices (``A_h @ x @ A_wᵀ``), whose
backward is the transposed products.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..autograd_engine import STATE, constant
from ..backends import namespace
from ..errors import ShapeError, UnsupportedError
from ._core import EVERY, primitive
from .indexing import getitem, index_add
from .linalg import matmul
from .reductions import sum as _sum
from .shape import expand_dims, reshape

_Pads = tuple[tuple[int, int], tuple[int, int]]

# -- argument normalisation -------------------------------------------------------------------------


def _pair(v: Any, name: str, op: str) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    t = tuple(int(a) for a in v)
    if len(t) == 1:
        return t[0], t[0]
    if len(t) != 2:
        raise ShapeError(f"{op}: {name}={v!r} must be an int or a pair (h, w)")
    return t  # type: ignore[return-value]


def _pads(padding: Any, kernel: tuple[int, int], dilation: tuple[int, int], stride: tuple[int, int], op: str) -> _Pads:
    """``padding`` (int, (h, w), 'valid', 'same' or ((top, bottom), (left, right))) as per-side pairs."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ShapeError(f"{op}: padding='same' needs stride=1 (got stride={stride}), as in PyTorch")
            out = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                out.append((total // 2, total - total // 2))  # PyTorch: the extra one goes right/bottom
            return out[0], out[1]
        raise ShapeError(f"{op}: padding={padding!r}; use an int, a pair, 'valid' or 'same'")
    if isinstance(padding, (tuple, list)) and len(padding) == 2 and not isinstance(padding[0], (int, np.integer)):
        return (int(padding[0][0]), int(padding[0][1])), (int(padding[1][0]), int(padding[1][1]))
    ph, pw = _pair(padding, "padding", op)
    if ph < 0 or pw < 0:
        raise ShapeError(f"{op}: padding={padding!r} must not be negative")
    return (ph, ph), (pw, pw)


def _out_size(n: int, pads: tuple[int, int], k: int, s: int, d: int) -> int:
    return (n + pads[0] + pads[1] - d * (k - 1) - 1) // s + 1


def _check_conv(x: Any, w: Any, groups: int, op: str, transposed: bool = False) -> None:
    if x.ndim != 4 or w.ndim != 4:
        raise ShapeError(
            f"{op}: input {tuple(x.shape)} and weight {tuple(w.shape)} must both be 4-d: input (N, C, H, W), "
            f"weight {'(C_in, C_out/groups, kH, kW)' if transposed else '(C_out, C_in/groups, kH, kW)'}"
        )
    c_in = w.shape[0] if transposed else w.shape[1] * groups
    if x.shape[1] != c_in:
        raise ShapeError(
            f"{op}: input {tuple(x.shape)} has {x.shape[1]} channels but weight {tuple(w.shape)} with "
            f"groups={groups} expects {c_in}"
        )
    if groups < 1 or w.shape[0] % groups:  # C_out (or, transposed, C_in) splits into the groups
        raise ShapeError(f"{op}: weight {tuple(w.shape)}: channels must be divisible by groups={groups}")


# -- kernels (plain array code) ----------------------------------------------------------------------


def _pad(x: Any, pads: _Pads, value: float = 0.0) -> Any:
    """Pad H and W per side; a negative pad crops (gradients of transposed convs use it)."""
    if min(*pads[0], *pads[1]) < 0:
        h, w = x.shape[-2:]
        (t, b), (left, r) = pads
        x = x[..., max(0, -t) : h - max(0, -b), max(0, -left) : w - max(0, -r)]
        pads = (max(0, t), max(0, b)), (max(0, left), max(0, r))
    if not any(pads[0]) and not any(pads[1]):
        return x
    return _padded(x, pads[0], pads[1], value)


def _padded(x: Any, ph: tuple[int, int], pw: tuple[int, int], value: float) -> Any:
    """``x`` padded on its last two axes with ``value``: one fill and one copy (``pad`` costs 5× that on
    small arrays, in Python)."""
    xp = namespace(x)
    if x.dtype.kind != "f" and value != 0:  # an infinite fill on integers: let pad decide
        widths = [(0, 0)] * (x.ndim - 2) + [ph, pw]
        return xp.pad(x, widths, constant_values=value)
    h, w = x.shape[-2:]
    out = xp.full((*x.shape[:-2], h + ph[0] + ph[1], w + pw[0] + pw[1]), value, dtype=x.dtype)
    out[..., ph[0] : ph[0] + h, pw[0] : pw[0] + w] = x
    return out


def _windows(a: Any, kh: int, kw: int, ho: int, wo: int, stride: tuple[int, int], dil: tuple[int, int]) -> Any:
    """A read-only strided view (N, C, kh, kw, Ho, Wo) of every receptive field of ``a``: no copy.

    Output pixels are the innermost axes, so copying it (im2col) reads runs along the rows.
    """
    n, c = a.shape[:2]
    s = a.strides
    return namespace(a).lib.stride_tricks.as_strided(
        a, (n, c, kh, kw, ho, wo), (s[0], s[1], s[2] * dil[0], s[3] * dil[1], s[2] * stride[0], s[3] * stride[1])
    )


def _cols(x: Any, kshape: tuple[int, int], ho: int, wo: int, stride: Any, pads: _Pads, dil: Any, groups: int) -> Any:
    """im2col: (N, G, C/G·kh·kw, Ho·Wo), a receptive field per column (this is the one copy)."""
    n, c = x.shape[:2]
    kh, kw = kshape
    win = _windows(_pad(x, pads), kh, kw, ho, wo, stride, dil)
    return win.reshape(n, groups, (c // groups) * kh * kw, ho * wo)


def _kernel(w: Any, groups: int) -> Any:
    """(O, C/G, kh, kw) -> (G, O/G, C/G·kh·kw): one GEMM operand per group."""
    return w.reshape(groups, w.shape[0] // groups, -1)


#: im2col matrices of recorded convolutions, kept for their weight gradient: id(output) -> (output, cols).
#: The backward takes its entry (one im2col copy fewer per convolution); an output that dies first takes
#: its entry with it. Larger matrices than ``_SAVE_BYTES`` are recomputed instead of kept.
_SAVED_COLS: dict[int, tuple[weakref.ref, Any]] = {}
_SAVE_BYTES = 16 << 20


def _save_cols(y: Any, cols: Any) -> None:
    k = id(y)

    def drop(r: weakref.ref, k: int = k) -> None:
        if _SAVED_COLS.get(k, (None,))[0] is r:
            del _SAVED_COLS[k]

    _SAVED_COLS[k] = (weakref.ref(y, drop), cols)


def _saved_cols(out: Any) -> Any:
    """The im2col matrix the forward that produced ``out`` kept (and forget it), or ``None``."""
    saved = _SAVED_COLS.pop(id(out), None) if out is not None else None
    return saved[1] if saved is not None and saved[0]() is out else None


def _conv_forward(x: Any, w: Any, stride: Any, pads: _Pads, dil: Any, groups: int, save: bool = False) -> Any:
    n, _, h, wd = x.shape
    o, cg, kh, kw = w.shape
    ho, wo = _out_size(h, pads[0], kh, stride[0], dil[0]), _out_size(wd, pads[1], kw, stride[1], dil[1])
    if ho < 1 or wo < 1:
        raise ShapeError(
            f"conv2d: input {tuple(x.shape)} padded by {pads} is smaller than the dilated kernel "
            f"{(kh, kw)} (dilation {dil}); pad the input or use a smaller kernel"
        )
    cols = _cols(x, (kh, kw), ho, wo, stride, pads, dil, groups)
    y = (_kernel(w, groups) @ cols).reshape(n, o, ho, wo)  # (N, G, O/G, Ho·Wo): already NCHW, contiguous
    if save and cols.nbytes <= _SAVE_BYTES:
        _save_cols(y, cols)
    return y


def _conv_input(g: Any, w: Any, xshape: tuple, stride: Any, pads: _Pads, dil: Any, groups: int) -> Any:
    """The adjoint of conv2d in its input (col2im): scatter-add every kernel tap, vectorised over pixels."""
    xp = namespace(g)
    n, c, h, wd = xshape
    o, cg, kh, kw = w.shape
    _, _, ho, wo = g.shape
    # a negative bottom/right pad (``_fit``) crops x: those rows get a zero gradient
    hp, wp = h + pads[0][0] + max(pads[0][1], 0), wd + pads[1][0] + max(pads[1][1], 0)
    hp = max(hp, (ho - 1) * stride[0] + dil[0] * (kh - 1) + 1)
    wp = max(wp, (wo - 1) * stride[1] + dil[1] * (kw - 1) + 1)
    if stride == (1, 1):
        return _conv_input_rows(g, w, (n, c, h, wd), (hp, wp), pads, dil, groups)[
            :, :, pads[0][0] : pads[0][0] + h, pads[1][0] : pads[1][0] + wd
        ]
    gy = g.reshape(n, groups, o // groups, ho * wo)
    cols = (_kernel(w, groups).transpose(0, 2, 1) @ gy).reshape(n, c, kh, kw, ho, wo)
    gx = xp.zeros((n, c, hp, wp), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            tap = _tap(gx, i, j, stride, dil, ho, wo)
            tap += cols[:, :, i, j]  # in place on the view (``gx[...] +=`` would copy it back once more)
    return gx[:, :, pads[0][0] : pads[0][0] + h, pads[1][0] : pads[1][0] + wd]


def _conv_input_rows(g: Any, w: Any, xshape: tuple, padded: tuple, pads: _Pads, dil: Any, groups: int) -> Any:
    """col2im for stride 1 on whole padded rows, with the kernel's columns folded into the GEMM.

    G is widened with zero columns to the padded width ``wp`` and flattened per channel, so
    tap (i, j) of every output pixel lands at flat offset ``i·dh·wp + j·dw`` plus the pixel's
    own flat index. Shifted copies of G (one per kernel column, a strided view copied once)
    let one GEMM sum over the output channels *and* the kernel columns: what is left is one
    contiguous add per kernel row (kh adds instead of kh·kw strided ones, and a GEMM output
    kw times smaller than im2col's).
    """
    xp = namespace(g)
    n, c = xshape[:2]
    o, cg, kh, kw = w.shape
    _, _, ho, wo = g.shape
    hp, wp = padded
    run = ho * wp
    shift = (kw - 1) * dil[1]
    span = run + shift  # where one kernel row's taps land, for one output row-run
    gp = xp.zeros((n, o, shift + run + shift), dtype=g.dtype)
    gp[:, :, shift : shift + run].reshape(n, o, ho, wp)[..., :wo] = g
    st = gp.strides
    shifted = xp.lib.stride_tricks.as_strided(gp, (n, o, kw, span), (st[0], st[1], st[2] * dil[1], st[2]))
    shifted = shifted.reshape(n, groups, (o // groups) * kw, span)  # the one copy
    # W (O, C/G, kh, kw) with its columns reversed, as (G, C/G·kh, O/G·kw) to match ``shifted``
    wf = w[:, :, :, ::-1].reshape(groups, o // groups, cg, kh, kw).transpose(0, 2, 3, 1, 4)
    rows = (wf.reshape(groups, cg * kh, (o // groups) * kw) @ shifted).reshape(n, c, kh, span)
    flat = xp.zeros((n, c, hp * wp + shift), dtype=rows.dtype)
    for i in range(kh):
        at = i * dil[0] * wp
        tap = flat[:, :, at : at + span]
        tap += rows[:, :, i]
    return flat[:, :, : hp * wp].reshape(n, c, hp, wp)


def _conv_weight(
    x: Any, g: Any, wshape: tuple, stride: Any, pads: _Pads, dil: Any, groups: int, cols: Any = None
) -> Any:
    """Σ over the batch of G (O/G, Ho·Wo) @ colsᵀ (Ho·Wo, C/G·kh·kw), per group (``cols``: x's im2col, if kept)."""
    n, o, ho, wo = g.shape
    if cols is None:
        cols = _cols(x, wshape[2:], ho, wo, stride, pads, dil, groups)
    gy = g.reshape(n, groups, o // groups, ho * wo)
    return (gy @ cols.transpose(0, 1, 3, 2)).sum(axis=0).reshape(wshape)


def _bias_grad(g: Any, axes: tuple[int, ...]) -> Any:
    return _sum(g, axis=axes)


def _fit(pads: _Pads, x_hw: tuple, out_hw: tuple, w: Any, s: tuple, d: tuple) -> _Pads:
    """Trim the bottom/right pads so conv2d of an ``x_hw`` image gives exactly ``out_hw``.

    A transposed conv's output can have rows no input pixel reads (output_padding ≥ stride);
    conv2d of its gradient must ignore them to land back on the input's shape.
    """
    fitted = []
    for n, o, k, st, dl, (lo, hi) in zip(x_hw, out_hw, w.shape[2:], s, d, pads):
        excess = n + lo + hi - dl * (k - 1) - 1 - (o - 1) * st
        fitted.append((lo, hi - excess))
    return fitted[0], fitted[1]


def _conv_args(weight_size: Any, stride: Any, padding: Any, dilation: Any, op: str) -> tuple:
    """(stride, per-side pads, dilation) for a kernel of ``weight_size`` (O, C/G, kh, kw)."""
    s = _pair(stride, "stride", op)
    d = _pair(dilation, "dilation", op)
    return s, _pads(padding, tuple(weight_size[2:]), d, s, op), d


# -- conv2d and its two gradients -------------------------------------------------------------------


def conv2d_backward(
    grad_output: Any, input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
    dilation: Any = 1, groups: int = 1, out: Any = None, needs: Any = EVERY,
) -> tuple:
    """∂x = conv2d_input(G, W) (a transposed convolution), ∂W = conv2d_weight(x, G), ∂b = Σ G over N, H, W."""
    s, p, d = _conv_args(weight.shape, stride, padding, dilation, "conv2d")
    g = grad_output
    cols = _saved_cols(out)
    gx = conv2d_input(input.shape, weight, g, s, p, d, groups) if needs[0] else None
    if needs[1] and cols is not None:  # the im2col the forward kept (none when out is None: a recorded backward)
        gw = _conv_weight(input, g, weight.shape, s, p, d, groups, cols)
    else:
        gw = conv2d_weight(input, weight.shape, g, s, p, d, groups) if needs[1] else None
    gb = _bias_grad(g, (0, 2, 3)) if bias is not None and needs[2] else None
    return gx, gw, gb, None, None, None, None


@primitive(conv2d_backward, formula="∂x = conv_transpose(G, W), ∂W = Σ windows(x)·G, ∂b = ΣG")
def conv2d(
    input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1
) -> Any:
    """PyTorch's ``F.conv2d`` (cross-correlation), NCHW; ``padding`` may also be 'same' or 'valid'."""
    _check_conv(input, weight, groups, "conv2d")
    s, p, d = _conv_args(weight.shape, stride, padding, dilation, "conv2d")
    y = _conv_forward(input, weight, s, p, d, groups, save=STATE.engine is not None)
    if bias is not None:
        y += bias.reshape(-1, 1, 1)
    return y


def conv2d_input_backward(
    grad_output: Any, input_size: Any, weight: Any, grad: Any, stride: Any = 1, padding: Any = 0,
    dilation: Any = 1, groups: int = 1, out: Any = None, needs: Any = EVERY,
) -> tuple:
    """Linear in W and in G: ∂W = conv2d_weight(Gx, W.shape, G), ∂G = conv2d(Gx, W)."""
    s, p, d = _conv_args(weight.shape, stride, padding, dilation, "conv2d_input")
    gw = conv2d_weight(grad_output, weight.shape, grad, s, p, d, groups) if needs[1] else None
    gg = None
    if needs[2]:
        gg = conv2d(grad_output, weight, None, s, _fit(p, input_size[2:], grad.shape[2:], weight, s, d), d, groups)
    return None, gw, gg, None, None, None, None


@primitive(conv2d_input_backward, formula="∂W = conv2d_weight(Gx, G), ∂G = conv2d(Gx, W)")
def conv2d_input(
    input_size: Any, weight: Any, grad_output: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
    groups: int = 1,
) -> Any:
    """``torch.nn.grad.conv2d_input``: the gradient of conv2d for its input, given the upstream gradient."""
    s, p, d = _conv_args(weight.shape, stride, padding, dilation, "conv2d_input")
    return _conv_input(grad_output, weight, tuple(input_size), s, p, d, groups)


def conv2d_weight_backward(
    grad_output: Any, input: Any, weight_size: Any, grad: Any, stride: Any = 1, padding: Any = 0,
    dilation: Any = 1, groups: int = 1, out: Any = None, needs: Any = EVERY,
) -> tuple:
    """Linear in x and in G: ∂x = conv2d_input(x.shape, Gw, G), ∂G = conv2d(x, Gw).

    x may have rows/columns no window of G reads (x is the output of a transposed conv with
    output_padding, or stride leaves a remainder): ``_fit`` trims them so ∂G has G's shape.
    """
    s, p, d = _conv_args(weight_size, stride, padding, dilation, "conv2d_weight")
    gx = conv2d_input(input.shape, grad_output, grad, s, p, d, groups) if needs[0] else None
    gg = None
    if needs[2]:
        gg = conv2d(input, grad_output, None, s, _fit(p, input.shape[2:], grad.shape[2:], grad_output, s, d), d, groups)
    return gx, None, gg, None, None, None, None


@primitive(conv2d_weight_backward, formula="∂x = conv2d_input(Gw, G), ∂G = conv2d(x, Gw)")
def conv2d_weight(
    input: Any, weight_size: Any, grad_output: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
    groups: int = 1,
) -> Any:
    """``torch.nn.grad.conv2d_weight``: the gradient of conv2d for its weight, given the upstream gradient."""
    s, p, d = _conv_args(weight_size, stride, padding, dilation, "conv2d_weight")
    return _conv_weight(input, grad_output, tuple(weight_size), s, p, d, groups)


# -- conv_transpose2d -------------------------------------------------------------------------------


def _transpose_geometry(x: Any, w: Any, stride: Any, padding: Any, output_padding: Any, groups: int, dilation: Any):
    op = "conv_transpose2d"
    s, d = _pair(stride, "stride", op), _pair(dilation, "dilation", op)
    ph, pw = _pair(padding, "padding", op)
    oph, opw = _pair(output_padding, "output_padding", op)
    if oph >= max(s[0], d[0]) or opw >= max(s[1], d[1]):
        raise ShapeError(f"{op}: output_padding={output_padding!r} must be smaller than stride or dilation")
    n, _, h, wd = x.shape
    kh, kw = w.shape[2:]
    ho = (h - 1) * s[0] - 2 * ph + d[0] * (kh - 1) + oph + 1
    wo = (wd - 1) * s[1] - 2 * pw + d[1] * (kw - 1) + opw + 1
    if ho < 1 or wo < 1:
        raise ShapeError(f"{op}: input {tuple(x.shape)} with padding {padding} gives an empty output ({ho}, {wo})")
    return (n, w.shape[1] * groups, ho, wo), s, ((ph, ph), (pw, pw)), d


def conv_transpose2d_backward(
    grad_output: Any, input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
    output_padding: Any = 0, groups: int = 1, dilation: Any = 1, out: Any = None, needs: Any = EVERY,
) -> tuple:
    """The adjoint of conv2d: ∂x = conv2d(G, W), ∂W = conv2d_weight(G, W.shape, x), ∂b = ΣG."""
    _, s, p, d = _transpose_geometry(input, weight, stride, padding, output_padding, groups, dilation)
    g = grad_output
    gx = None
    if needs[0]:
        gx = conv2d(g, weight, None, s, _fit(p, g.shape[2:], input.shape[2:], weight, s, d), d, groups)
    gw = conv2d_weight(g, weight.shape, input, s, p, d, groups) if needs[1] else None
    gb = _bias_grad(g, (0, 2, 3)) if bias is not None and needs[2] else None
    return gx, gw, gb, None, None, None, None, None


@primitive(conv_transpose2d_backward, formula="∂x = conv2d(G, W), ∂W = conv2d_weight(G, x), ∂b = ΣG")
def conv_transpose2d(
    input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, output_padding: Any = 0,
    groups: int = 1, dilation: Any = 1,
) -> Any:
    """PyTorch's ``F.conv_transpose2d``; weight (C_in, C_out/groups, kH, kW)."""
    _check_conv(input, weight, groups, "conv_transpose2d", transposed=True)
    shape, s, p, d = _transpose_geometry(input, weight, stride, padding, output_padding, groups, dilation)
    y = _conv_input(input, weight, shape, s, p, d, groups)
    if bias is not None:
        y += bias.reshape(-1, 1, 1)
    return y


# -- conv1d: conv2d on a height-1 image -------------------------------------------------------------


def _conv1d_args(weight: Any, stride: Any, padding: Any, dilation: Any) -> tuple:
    op = "conv1d"
    (s,), (d,) = _single(stride, "stride", op), _single(dilation, "dilation", op)
    if isinstance(padding, str):
        p = _pads(padding, (1, weight.shape[-1]), (1, d), (1, s), op)[1]
    else:
        (p,) = _single(padding, "padding", op)
        p = (p, p)
    return (1, s), ((0, 0), p), (1, d)


def _single(v: Any, name: str, op: str) -> tuple[int]:
    if isinstance(v, (int, np.integer)):
        return (int(v),)
    t = tuple(int(a) for a in v)
    if len(t) != 1:
        raise ShapeError(f"{op}: {name}={v!r} must be an int or a 1-tuple")
    return t  # type: ignore[return-value]


def conv1d_backward(
    grad_output: Any, input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
    dilation: Any = 1, groups: int = 1, out: Any = None, needs: Any = EVERY,
) -> tuple:
    """conv2d's gradients on height-1 views of x, W and G."""
    s, p, d = _conv1d_args(weight, stride, padding, dilation)
    g4 = expand_dims(grad_output, 2)
    gx = gw = gb = None
    if needs[0]:
        x4 = (input.shape[0], input.shape[1], 1, input.shape[2])
        gx = reshape(conv2d_input(x4, expand_dims(weight, 2), g4, s, p, d, groups), input.shape)
    if needs[1]:
        w4 = (*weight.shape[:2], 1, weight.shape[2])
        gw = reshape(conv2d_weight(expand_dims(input, 2), w4, g4, s, p, d, groups), weight.shape)
    if bias is not None and needs[2]:
        gb = _bias_grad(grad_output, (0, 2))
    return gx, gw, gb, None, None, None, None


@primitive(conv1d_backward, formula="conv2d's gradients with H = 1")
def conv1d(
    input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1
) -> Any:
    """PyTorch's ``F.conv1d``: input (N, C, L), weight (C_out, C_in/groups, k)."""
    if input.ndim != 3 or weight.ndim != 3:
        raise ShapeError(
            f"conv1d: input {tuple(input.shape)} must be (N, C, L) and weight {tuple(weight.shape)} "
            "(C_out, C_in/groups, k)"
        )
    _check_conv(input[:, :, None], weight[:, :, None], groups, "conv1d")
    s, p, d = _conv1d_args(weight, stride, padding, dilation)
    y = _conv_forward(input[:, :, None, :], weight[:, :, None, :], s, p, d, groups)[:, :, 0, :]
    if bias is not None:
        y += bias.reshape(-1, 1)
    return y


# -- max pooling --------------------------------------------------------------------------------------


def _pool_out(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output size (in ceil mode the last window must start inside the input)."""
    span = n + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def _pool_args(x: Any, kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: bool, op: str):
    k = _pair(kernel_size, "kernel_size", op)
    s = k if stride is None or (not isinstance(stride, int) and len(stride) == 0) else _pair(stride, "stride", op)
    p = _pair(padding, "padding", op)
    d = _pair(dilation, "dilation", op)
    if p[0] * 2 > k[0] or p[1] * 2 > k[1]:
        raise ShapeError(f"{op}: padding {p} must be at most half the kernel size {k}, as in PyTorch")
    if x.ndim not in (3, 4):
        raise ShapeError(f"{op}: input {tuple(x.shape)} must be (N, C, H, W) or (C, H, W)")
    h, w = x.shape[-2:]
    ho, wo = _pool_out(h, k[0], s[0], p[0], d[0], ceil_mode), _pool_out(w, k[1], s[1], p[1], d[1], ceil_mode)
    if ho < 1 or wo < 1:
        raise ShapeError(f"{op}: input {tuple(x.shape)} is smaller than the kernel {k} (padding {p}, dilation {d})")
    return k, s, p, d, ho, wo


def _tap(a: Any, i: int, j: int, s: tuple, d: tuple, ho: int, wo: int) -> Any:
    """The strided view of ``a`` that kernel tap (i, j) reads for every output pixel."""
    hs, ws = i * d[0], j * d[1]
    return a[..., hs : hs + s[0] * (ho - 1) + 1 : s[0], ws : ws + s[1] * (wo - 1) + 1 : s[1]]


def _pool_pad(x: Any, k: tuple, s: tuple, p: tuple, d: tuple, ho: int, wo: int, value: float) -> Any:
    h, w = x.shape[-2:]
    extra_h = max(0, (ho - 1) * s[0] + d[0] * (k[0] - 1) + 1 - (h + 2 * p[0]))
    extra_w = max(0, (wo - 1) * s[1] + d[1] * (k[1] - 1) + 1 - (w + 2 * p[1]))
    if not (p[0] or p[1] or extra_h or extra_w):
        return x
    return _padded(x, (p[0], p[0] + extra_h), (p[1], p[1] + extra_w), value)


def _max_pool(x: Any, k: tuple, s: tuple, p: tuple, d: tuple, ho: int, wo: int) -> Any:
    xp = namespace(x)
    a = _pool_pad(x, k, s, p, d, ho, wo, -xp.inf)
    y = _tap(a, 0, 0, s, d, ho, wo).copy()
    for i in range(k[0]):
        for j in range(k[1]):
            if i or j:
                xp.maximum(y, _tap(a, i, j, s, d, ho, wo), out=y)
    return y


def _window_argmax(x: Any, a: Any, k: tuple, s: tuple, p: tuple, d: tuple, ho: int, wo: int) -> Any:
    """Each window's argmax as a tap number ``i·k[1] + j``, by PyTorch's rule over the input's own pixels.

    The taps are read in order, padding skipped: a larger value or a NaN takes over, so the
    first maximum wins ties, the last NaN wins a window holding NaNs, and a window of −∞
    picks its first pixel. Used where a window's maximum is not finite: there ``tap == max``
    cannot find it (NaN), or finds the −∞ padding, which would swallow the gradient.
    """
    xp = namespace(x)
    h, w = x.shape[-2:]
    shape = a.shape[:-2] + (ho, wo)
    best = xp.full(shape, -1, dtype=xp.int64)
    best_val = xp.full(shape, -xp.inf, dtype=a.dtype)
    for i in range(k[0]):
        rows = xp.arange(ho) * s[0] + i * d[0] - p[0]
        row_ok = (rows >= 0) & (rows < h)
        for j in range(k[1]):
            cols = xp.arange(wo) * s[1] + j * d[1] - p[1]
            valid = row_ok[:, None] & ((cols >= 0) & (cols < w))[None, :]
            tap = _tap(a, i, j, s, d, ho, wo)
            take = valid & ((tap > best_val) | xp.isnan(tap) | (best < 0))
            best[take] = i * k[1] + j
            best_val[take] = tap[take]
    return best


def _max_pool_grad(g: Any, x: Any, y: Any, k: tuple, s: tuple, p: tuple, d: tuple, ho: int, wo: int) -> Any:
    """Route each output's gradient to the first maximum of its window (PyTorch's choice on ties)."""
    xp = namespace(x)
    a = _pool_pad(x, k, s, p, d, ho, wo, -xp.inf)
    if not bool(xp.isfinite(y).all()):  # NaN or infinite maxima: PyTorch's argmax rule, tap by tap
        best = _window_argmax(x, a, k, s, p, d, ho, wo)
        ga = xp.zeros(a.shape, dtype=g.dtype)
        for i in range(k[0]):
            for j in range(k[1]):
                _tap(ga, i, j, s, d, ho, wo)[...] += g * (best == i * k[1] + j)
        h, w = x.shape[-2:]
        return ga[..., p[0] : p[0] + h, p[1] : p[1] + w]
    disjoint = s[0] >= d[0] * (k[0] - 1) + 1 and s[1] >= d[1] * (k[1] - 1) + 1  # no pixel in two windows
    # windows that tile the (padded) input write every entry of ga once: no zeroing first
    tiled = k == s and d == (1, 1) and a.shape[-2:] == (ho * s[0], wo * s[1])
    ga = (xp.empty if tiled else xp.zeros)(a.shape, dtype=g.dtype)
    for i, j, hit in _first_maxima(a, y, k, s, d, ho, wo):
        tap = _tap(ga, i, j, s, d, ho, wo)
        if disjoint:
            xp.multiply(g, hit, out=tap)
        else:
            tap += g * hit
    h, w = x.shape[-2:]
    return ga[..., p[0] : p[0] + h, p[1] : p[1] + w]


def _first_maxima(a: Any, y: Any, k: tuple, s: tuple, d: tuple, ho: int, wo: int) -> Iterator[tuple[int, int, Any]]:
    """For each kernel tap (i, j): where that tap holds its window's maximum and no earlier tap did (ties go to
    the first maximum, as in PyTorch)."""
    taken = None
    for i in range(k[0]):
        for j in range(k[1]):
            hit = _tap(a, i, j, s, d, ho, wo) == y
            if taken is None:
                taken = hit
            else:
                namespace(hit).greater(hit, taken, out=hit)  # hit and not taken
                taken |= hit
            yield i, j, hit


def _max_pool_grad_recorded(g: Any, x: Any, k: tuple, s: tuple, p: tuple, d: tuple, ho: int, wo: int) -> Any:
    """The same routing as index arithmetic + ``index_add`` (recorded ops), for ``create_graph=True``.

    The argmax positions are constants, so the second derivative is the gradient routed
    the same way, as in PyTorch.
    """
    xp = namespace(x)
    a = _pool_pad(x, k, s, p, d, ho, wo, -xp.inf)
    y = _max_pool(x, k, s, p, d, ho, wo)
    if not bool(xp.isfinite(y).all()):  # NaN or infinite maxima: PyTorch's argmax rule, tap by tap
        best = _window_argmax(x, a, k, s, p, d, ho, wo)
    else:
        best = xp.zeros(y.shape, dtype=xp.int64)
        for i, j, hit in _first_maxima(a, y, k, s, d, ho, wo):
            best[hit] = i * k[1] + j
    hp, wp = a.shape[-2:]
    lead = int(np.prod(a.shape[:-2]))
    planes = xp.arange(lead).reshape(a.shape[:-2] + (1, 1))
    rows = (best // k[1]) * d[0] + (xp.arange(ho) * s[0])[:, None]
    cols = (best % k[1]) * d[1] + (xp.arange(wo) * s[1])[None, :]
    flat = ((planes * hp + rows) * wp + cols).reshape(-1)
    zeros = constant(xp.zeros(lead * hp * wp, dtype=g.dtype))
    ga = reshape(index_add(zeros, flat, reshape(g, (-1,))), a.shape)
    h, w = x.shape[-2:]
    return getitem(ga, (Ellipsis, slice(p[0], p[0] + h), slice(p[1], p[1] + w)))


def max_pool2d_backward(
    grad_output: Any, input: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
    ceil_mode: bool = False, return_indices: bool = False, out: Any = None, needs: Any = EVERY,
) -> tuple:
    """∂x: each output's gradient goes to the (first) maximum of its window."""
    geo = _pool_args(input, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d")
    if out is None:  # the backward is being recorded: use recorded ops
        return (_max_pool_grad_recorded(grad_output, input, *geo),) + (None,) * 6
    return (_max_pool_grad(grad_output, input, out, *geo),) + (None,) * 6


@primitive(max_pool2d_backward, formula="∂x = G routed to the argmax of each window")
def max_pool2d(
    input: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """PyTorch's ``F.max_pool2d`` (``stride`` defaults to ``kernel_size``); no ``return_indices``."""
    if return_indices:
        raise UnsupportedError("max_pool2d: return_indices=True is not supported; call it with return_indices=False")
    return _max_pool(input, *_pool_args(input, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d"))


def _as1d(v: Any, name: str) -> Any:
    if v is None:
        return None
    (a,) = _single(v, name, "max_pool1d")
    return (1, a)


def max_pool1d_backward(
    grad_output: Any, input: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
    ceil_mode: bool = False, return_indices: bool = False, out: Any = None, needs: Any = EVERY,
) -> tuple:
    """max_pool2d's rule on a height-1 view."""
    k, s = _as1d(kernel_size, "kernel_size"), _as1d(stride, "stride")
    p, d = (0, _single(padding, "padding", "max_pool1d")[0]), _as1d(dilation, "dilation")
    x4 = input[..., None, :]
    geo = _pool_args(x4, k, s, p, d, ceil_mode, "max_pool1d")
    if out is None:  # the backward is being recorded: use recorded ops
        gx = _max_pool_grad_recorded(expand_dims(grad_output, -2), x4, *geo)
        return (reshape(gx, input.shape),) + (None,) * 6
    return (_max_pool_grad(grad_output[..., None, :], x4, out[..., None, :], *geo)[..., 0, :],) + (None,) * 6


@primitive(max_pool1d_backward, formula="∂x = G routed to the argmax of each window")
def max_pool1d(
    input: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """PyTorch's ``F.max_pool1d`` on (N, C, L) or (C, L)."""
    if return_indices:
        raise UnsupportedError("max_pool1d: return_indices=True is not supported; call it with return_indices=False")
    k, s = _as1d(kernel_size, "kernel_size"), _as1d(stride, "stride")
    p, d = (0, _single(padding, "padding", "max_pool1d")[0]), _as1d(dilation, "dilation")
    x4 = input[..., None, :]
    return _max_pool(x4, *_pool_args(x4, k, s, p, d, ceil_mode, "max_pool1d"))[..., 0, :]


# -- average pooling: separable, so two small matrix products ----------------------------------------


@functools.lru_cache(maxsize=256)
def _avg_matrix(n: int, k: int, s: int, p: int, out: int, count_include_pad: bool, divide: bool) -> np.ndarray:
    """(out, n): row o averages window o of a length-n axis (PyTorch's divisor rules)."""
    m = np.zeros((out, n))
    for o in range(out):
        start = o * s - p
        end = min(start + k, n + p)
        lo, hi = max(start, 0), min(end, n)
        size = (end - start) if count_include_pad else (hi - lo)
        m[o, lo:hi] = 1.0 / size if divide else 1.0
    return m


@functools.lru_cache(maxsize=256)
def _adaptive_matrix(n: int, out: int) -> np.ndarray:
    """(out, n): PyTorch's adaptive windows [⌊o·n/out⌋, ⌈(o+1)·n/out⌉)."""
    m = np.zeros((out, n))
    for o in range(out):
        lo, hi = (o * n) // out, -(-((o + 1) * n) // out)
        m[o, lo:hi] = 1.0 / (hi - lo)
    return m


def _const(m: np.ndarray, like: Any) -> Any:
    return namespace(like).asarray(m, dtype=like.dtype)


def _avg_matrices(input: Any, kernel_size: Any, stride: Any, padding: Any, ceil_mode: bool, count_include_pad: bool,
                  divisor_override: Any) -> tuple:
    k, s, p, _, ho, wo = _pool_args(input, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d")
    h, w = input.shape[-2:]
    divide = divisor_override is None
    ah = _avg_matrix(h, k[0], s[0], p[0], ho, count_include_pad, divide)
    aw = _avg_matrix(w, k[1], s[1], p[1], wo, count_include_pad, divide)
    if not divide:
        ah = ah / divisor_override
    return _const(ah, input), _const(aw, input)


def _separable(x: Any, ah: Any, aw: Any) -> Any:
    return (ah @ x) @ aw.T


def avg_pool2d_backward(
    grad_output: Any, input: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
    count_include_pad: bool = True, divisor_override: Any = None, out: Any = None, needs: Any = EVERY,
) -> tuple:
    """y = A_h x A_wᵀ is linear: ∂x = A_hᵀ G A_w."""
    ah, aw = _avg_matrices(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    return (matmul(matmul(ah.T, grad_output), aw),) + (None,) * 6


@primitive(avg_pool2d_backward, formula="y = A_h x A_wᵀ: ∂x = A_hᵀ G A_w")
def avg_pool2d(
    input: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
    count_include_pad: bool = True, divisor_override: Any = None,
) -> Any:
    """PyTorch's ``F.avg_pool2d`` (all its options), as two matrix products."""
    ah, aw = _avg_matrices(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    return _separable(input, ah, aw)


def _adaptive_matrices(input: Any, output_size: Any) -> tuple:
    if input.ndim not in (3, 4):
        raise ShapeError(f"adaptive_avg_pool2d: input {tuple(input.shape)} must be (N, C, H, W) or (C, H, W)")
    h, w = input.shape[-2:]
    oh, ow = (output_size, output_size) if isinstance(output_size, (int, np.integer)) else tuple(output_size)
    oh, ow = h if oh is None else int(oh), w if ow is None else int(ow)
    if oh < 1 or ow < 1:
        raise ShapeError(f"adaptive_avg_pool2d: output_size={output_size!r} must be positive")
    return _const(_adaptive_matrix(h, oh), input), _const(_adaptive_matrix(w, ow), input)


def adaptive_avg_pool2d_backward(
    grad_output: Any, input: Any, output_size: Any, out: Any = None, needs: Any = EVERY
) -> tuple:
    """y = A_h x A_wᵀ is linear: ∂x = A_hᵀ G A_w."""
    ah, aw = _adaptive_matrices(input, output_size)
    return matmul(matmul(ah.T, grad_output), aw), None


@primitive(adaptive_avg_pool2d_backward, formula="y = A_h x A_wᵀ: ∂x = A_hᵀ G A_w")
def adaptive_avg_pool2d(input: Any, output_size: Any) -> Any:
    """PyTorch's ``F.adaptive_avg_pool2d``: windows [⌊i·H/h⌋, ⌈(i+1)·H/h⌉); None keeps a side."""
    ah, aw = _adaptive_matrices(input, output_size)
    return _separable(input, ah, aw)
