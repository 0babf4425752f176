"""Cases for the elementwise ops (ops/elementwise.py) beyond the core set."""

from __future__ import annotations

import numpy as np
import torch

import new_grad as ng

from ..opcheck import OpCase, away_from_zero, positive, unit_open


def _where_shapes(data):
    from hypothesis.extra import numpy as hnp

    return list(data.draw(hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=4)).input_shapes)


def _above_one(a):
    return np.abs(a) + 1.5


def _cbrt(t):
    return torch.sign(t) * t.abs() ** (1 / 3)


def _specials(a):
    """Some inf, -inf and NaN among ordinary values."""
    return np.where(a > 1.2, np.inf, np.where(a < -1.2, -np.inf, np.where(np.abs(a) < 0.1, np.nan, a)))


def _as_float(fn):
    """Boolean results compared as 0./1. (assert_allclose cannot subtract bools)."""
    return lambda *xs: ng.namespace(*xs).asarray(fn(*xs), dtype=np.float64)


def _torch_float(fn):
    return lambda *ts: fn(*ts).double()


_ties = np.round  # integer-valued draws: ties and zeros happen often


_COMPARE = [
    ("equal", torch.eq), ("not_equal", torch.ne), ("less", torch.lt), ("less_equal", torch.le),
    ("greater", torch.gt), ("greater_equal", torch.ge), ("logical_and", torch.logical_and),
    ("logical_or", torch.logical_or), ("logical_xor", torch.logical_xor),
]

CASES = [
    # the condition is drawn as a float array and compared inside, so it stays non-differentiable
    OpCase("where", lambda c, x, y: torch.where(c > 0, x, y), 3, ng_fn=lambda c, x, y: ng.where(c > 0, x, y),
           shapes=_where_shapes, nondiff=(0,)),
    OpCase("where", lambda x: torch.where(x > 0, x, 0.0), ng_fn=lambda x: ng.where(x > 0, x, 0.0), name="scalar-branch"),
    OpCase("erf", torch.erf),
    OpCase("positive", torch.positive),
    OpCase("square", torch.square),
    OpCase("reciprocal", torch.reciprocal, domain=away_from_zero),
    OpCase("abs", torch.abs, domain=away_from_zero),
    OpCase("abs", torch.abs, domain=_ties, name="at-zero"),
    OpCase("sign", torch.sign, domain=_ties),
    OpCase("floor", torch.floor),
    OpCase("ceil", torch.ceil),
    OpCase("round", torch.round, domain=lambda a: a * 3),
    OpCase("round", lambda x: torch.round(x, decimals=2), ng_fn=lambda x: ng.round(x, 2), name="decimals"),
    OpCase("float_power", torch.float_power, 2, domain=positive),
    OpCase("float_power", lambda x: torch.float_power(x, 2.5), ng_fn=lambda x: ng.float_power(x, 2.5),
           domain=positive, name="scalar-exponent"),
    OpCase("exp2", torch.exp2),
    OpCase("expm1", torch.expm1),
    OpCase("log2", torch.log2, domain=positive),
    OpCase("log10", torch.log10, domain=positive),
    OpCase("log1p", torch.log1p, domain=lambda a: np.abs(a) - 0.5),
    OpCase("sqrt", torch.sqrt, domain=positive),
    OpCase("cbrt", _cbrt, domain=away_from_zero),
    OpCase("sin", torch.sin),
    OpCase("cos", torch.cos),
    OpCase("tan", torch.tan, domain=unit_open),
    OpCase("arcsin", torch.asin, domain=unit_open),
    OpCase("arccos", torch.acos, domain=unit_open),
    OpCase("arctan", torch.atan),
    OpCase("sinh", torch.sinh),
    OpCase("cosh", torch.cosh),
    OpCase("arcsinh", torch.asinh),
    OpCase("arccosh", torch.acosh, domain=_above_one),
    OpCase("arctanh", torch.atanh, domain=unit_open),
    OpCase("maximum", torch.maximum, 2),
    OpCase("maximum", torch.maximum, 2, domain=_ties, name="ties"),
    OpCase("maximum", lambda x: torch.clamp(x, min=0.0), ng_fn=lambda x: ng.maximum(x, 0.0), domain=away_from_zero,
           name="scalar"),
    OpCase("minimum", torch.minimum, 2),
    OpCase("minimum", torch.minimum, 2, domain=_ties, name="ties"),
    OpCase("fmax", torch.fmax, 2),
    OpCase("fmax", torch.fmax, 2, domain=_ties, name="ties"),
    OpCase("fmin", torch.fmin, 2),
    OpCase("fmin", torch.fmin, 2, domain=_ties, name="ties"),
    OpCase("hypot", torch.hypot, 2, domain=away_from_zero),
    OpCase("arctan2", torch.atan2, 2, domain=away_from_zero),
    OpCase("clip", lambda x: torch.clamp(x, -0.5, 0.7), ng_fn=lambda x: ng.clip(x, -0.5, 0.7)),
    OpCase("clip", lambda x: torch.clamp(x, min=-0.5), ng_fn=lambda x: ng.clip(x, -0.5), name="min-only"),
    OpCase("clip", lambda x: torch.clamp(x, max=0.5), ng_fn=lambda x: ng.clip(x, a_max=0.5), name="max-only"),
    OpCase("clip", lambda x: torch.clamp(x, -1.0, 1.0), ng_fn=lambda x: ng.clip(x, -1.0, 1.0), domain=_ties,
           name="boundary"),
    # broadcast first: torch.clamp's backward fails when x is smaller than its bounds' broadcast
    OpCase("clip", lambda x, lo, hi: torch.clamp(*torch.broadcast_tensors(x, lo, hi)), 3, name="array-bounds"),
    OpCase("astype", lambda x: x.to(torch.float64) * 1, ng_fn=lambda x: ng.astype(x, np.float64)),
    OpCase("astype", lambda x: x.to(torch.float32).to(torch.float64),
           ng_fn=lambda x: ng.astype(ng.astype(x, np.float32), np.float64), rtol=1e-6, name="float32-roundtrip"),
    *[OpCase(name, _torch_float(tf), 2, ng_fn=_as_float(getattr(ng, name)), domain=_ties, grad=False)
      for name, tf in _COMPARE],
    OpCase("logical_not", _torch_float(torch.logical_not), ng_fn=_as_float(ng.logical_not), domain=_ties, grad=False),
    OpCase("isfinite", _torch_float(torch.isfinite), ng_fn=_as_float(ng.isfinite), domain=_specials, grad=False),
    OpCase("isnan", _torch_float(torch.isnan), ng_fn=_as_float(ng.isnan), domain=_specials, grad=False),
    OpCase("isinf", _torch_float(torch.isinf), ng_fn=_as_float(ng.isinf), domain=_specials, grad=False),
]
