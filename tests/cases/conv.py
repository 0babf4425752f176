"""Cases for convolution and pooling (weights and biases are differentiable inputs)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

import new_grad as ng

from ..opcheck import OpCase, distinct


def _conv2d_geometry(data):
    """Shapes and keyword arguments for a conv2d drawn together (groups divide the channels)."""
    groups = data.draw(st.sampled_from([1, 1, 2]), label="groups")
    cin, cout = groups * data.draw(st.integers(1, 2)), groups * data.draw(st.integers(1, 2))
    kh, kw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    stride = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)))
    dilation = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)))
    same = stride == (1, 1) and data.draw(st.booleans(), label="same")
    padding = "same" if same else (data.draw(st.integers(0, 2)), data.draw(st.integers(0, 1)))
    ph, pw = (0, 0) if same else padding
    h = data.draw(st.integers(max(1, dilation[0] * (kh - 1) + 1 - 2 * ph), 6))
    w = data.draw(st.integers(max(1, dilation[1] * (kw - 1) + 1 - 2 * pw), 6))
    n = data.draw(st.integers(1, 2))
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    return [(n, cin, h, w), (cout, cin // groups, kh, kw), (cout,)], kwargs


def _joint(geometry):
    """shapes= and kwargs= for an OpCase whose shapes and keyword arguments are drawn together."""
    state: dict = {}

    def shapes(data):
        s, state["kwargs"] = geometry(data)
        return s

    return {"shapes": shapes, "kwargs": lambda data, shapes: state["kwargs"]}


def _conv_transpose_geometry(data):
    groups = data.draw(st.sampled_from([1, 1, 2]), label="groups")
    cin, cout_g = groups * data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))
    kh, kw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    stride = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 2)))
    dilation = (data.draw(st.integers(1, 2)), 1)
    padding = (data.draw(st.integers(0, (kh - 1) // 2 * dilation[0])), data.draw(st.integers(0, (kw - 1) // 2)))
    output_padding = (data.draw(st.integers(0, max(stride[0], dilation[0]) - 1)), 0)
    h, w = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    h = max(h, 2)
    w = max(w, 2)
    kwargs = dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups, dilation=dilation)
    return [(2, cin, h, w), (cin, cout_g, kh, kw), (cout_g * groups,)], kwargs


def _conv1d_geometry(data):
    groups = data.draw(st.sampled_from([1, 2]), label="groups")
    cin, cout = groups * data.draw(st.integers(1, 2)), groups * data.draw(st.integers(1, 2))
    k, s, d = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))
    padding = "same" if s == 1 and data.draw(st.booleans()) else data.draw(st.integers(0, 2))
    p = 0 if padding == "same" else padding
    length = data.draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), 7))
    return [(2, cin, length), (cout, cin // groups, k), (cout,)], dict(stride=s, padding=padding, dilation=d,
                                                                      groups=groups)


def _pool_geometry(data, one_d=False, dilation=True):
    k = (1 if one_d else data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    s = (1 if one_d else data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    p = (0 if one_d else data.draw(st.integers(0, k[0] // 2)), data.draw(st.integers(0, k[1] // 2)))
    d = (1 if one_d else data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))) if dilation else (1, 1)
    ceil_mode = data.draw(st.booleans(), label="ceil_mode")
    h = 1 if one_d else data.draw(st.integers(d[0] * (k[0] - 1) + 1, 7))
    w = data.draw(st.integers(d[1] * (k[1] - 1) + 1, 7))
    shape = (2, 2, w) if one_d else (2, 2, h, w)
    if one_d:
        kw = dict(kernel_size=k[1], stride=s[1], padding=p[1], dilation=d[1], ceil_mode=ceil_mode)
    else:
        kw = dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil_mode)
        kw.update(dilation=d) if dilation else None
    return [shape], kw


def _avg_geometry(data):
    s, kw = _pool_geometry(data, dilation=False)
    kw["count_include_pad"] = data.draw(st.booleans(), label="count_include_pad")
    if data.draw(st.booleans(), label="divisor"):
        kw["divisor_override"] = data.draw(st.integers(1, 5))
    return s, kw


def _adaptive_shapes(data):
    h, w = data.draw(st.integers(1, 7)), data.draw(st.integers(1, 7))
    return [(2, 3, h, w)]


def _adaptive_kwargs(data, shapes):
    out = data.draw(st.sampled_from([1, 2, 3, (2, 5), (None, 3)]), label="output_size")
    return {"output_size": out}


def _grad_geometry(data):
    """A conv2d geometry (no 'same') as (x shape, w shape, upstream shape, kwargs)."""
    s, kw = _conv2d_geometry(data)
    x, w = s[0], s[1]
    if kw["padding"] == "same":
        kw["padding"] = (0, 0)
        x = (x[0], x[1], max(x[2], kw["dilation"][0] * (w[2] - 1) + 1), max(x[3], kw["dilation"][1] * (w[3] - 1) + 1))
    ho = (x[2] + 2 * kw["padding"][0] - kw["dilation"][0] * (w[2] - 1) - 1) // kw["stride"][0] + 1
    wo = (x[3] + 2 * kw["padding"][1] - kw["dilation"][1] * (w[3] - 1) - 1) // kw["stride"][1] + 1
    return x, w, (x[0], w[0], ho, wo), kw


def _input_grad_geometry(data):
    x, w, g, kw = _grad_geometry(data)
    return [w, g], {**kw, "input_size": x}


def _weight_grad_geometry(data):
    x, w, g, kw = _grad_geometry(data)
    return [x, g], {**kw, "weight_size": w}


CASES = [
    OpCase("conv2d", F.conv2d, **_joint(_conv2d_geometry)),
    OpCase("conv2d", F.conv2d, shapes=[(2, 3, 5, 4), (4, 3, 2, 3)], name="no-bias-valid", kwargs={"padding": "valid"}),
    OpCase("conv1d", F.conv1d, **_joint(_conv1d_geometry)),
    OpCase("conv_transpose2d", F.conv_transpose2d, **_joint(_conv_transpose_geometry)),
    OpCase(  # output_padding: the output has rows no input pixel reaches (∂²: conv2d_weight's ∂G must trim them)
        "conv_transpose2d",
        F.conv_transpose2d,
        shapes=[(2, 1, 2, 2), (1, 2, 2, 2), (2,)],
        kwargs={"stride": (3, 2), "output_padding": (2, 1)},
        name="output-padding",
    ),
    OpCase(
        "conv2d_input",
        lambda w, g, input_size, **kw: torch.nn.grad.conv2d_input(input_size, w, g, **kw),
        ng_fn=lambda w, g, input_size, **kw: ng.conv2d_input(input_size, w, g, **kw),
        **_joint(_input_grad_geometry),
    ),
    OpCase(
        "conv2d_weight",
        lambda x, g, weight_size, **kw: torch.nn.grad.conv2d_weight(x, weight_size, g, **kw),
        ng_fn=lambda x, g, weight_size, **kw: ng.conv2d_weight(x, weight_size, g, **kw),
        **_joint(_weight_grad_geometry),
    ),
    OpCase("max_pool2d", F.max_pool2d, domain=distinct, **_joint(_pool_geometry)),
    OpCase(
        "max_pool2d",
        lambda x: F.max_pool2d(x, 2),
        ng_fn=lambda x: ng.max_pool2d(x, 2),
        shapes=[(2, 3, 4, 6)],
        domain=lambda a: np.round(a),  # ties: the first maximum takes the gradient, as in PyTorch
        name="ties",
    ),
    OpCase("max_pool1d", F.max_pool1d, domain=distinct, **_joint(lambda d: _pool_geometry(d, one_d=True))),
    OpCase("avg_pool2d", F.avg_pool2d, **_joint(_avg_geometry)),
    OpCase("adaptive_avg_pool2d", F.adaptive_avg_pool2d, shapes=_adaptive_shapes, kwargs=_adaptive_kwargs),
]
