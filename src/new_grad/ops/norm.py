"""Normalisation, dropout and embedding lookup: fused ops with closed-form backward.

All three normalisations share one rule. With ``x̂ = (x − μ)/σ`` over the normalised
axes (n elements) and ``y = γ x̂ + β``, the input gradient is

    ∂x = (1/σ) · (ĝ − mean(ĝ) − x̂ · mean(ĝ x̂)),   ĝ = γ G,

and ``∂γ = Σ G x̂``, ``∂β = Σ G`` over the axes the parameters are broadcast along.
Backward functions recompute ``x̂`` and ``σ`` with new_grad's own ops, so the backward
pass can itself be recorded (gradients of gradients). The forwards use plain array code.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd_engine import constant
from ..backends import namespace
from ..errors import ArgumentError, ShapeError
from ._core import EVERY, primitive, traceable
from .elementwise import add, multiply, power, subtract
from .indexing import index_add
from .reductions import mean
from .reductions import sum as _sum
from .shape import reshape

# -- the shared rule --------------------------------------------------------------------------------


def _stats(x: Any, axes: tuple[int, ...], eps: float) -> tuple[Any, Any]:
    """x̂ and 1/σ (keepdims) over ``axes``, with new_grad ops (so they can be differentiated)."""
    xc = subtract(x, mean(x, axes, True))
    inv = power(add(mean(multiply(xc, xc), axes, True), eps), -0.5)
    return multiply(xc, inv), inv


def _input_grad(gh: Any, xhat: Any, inv: Any, axes: tuple[int, ...]) -> Any:
    """(1/σ)(ĝ − mean ĝ − x̂ mean(ĝ x̂)): the gradient through x̂ = (x − μ)/σ."""
    centred = subtract(gh, mean(gh, axes, True))
    return multiply(inv, subtract(centred, multiply(xhat, mean(multiply(gh, xhat), axes, True))))


def _normalise(x: Any, axes: tuple[int, ...], eps: float) -> Any:
    """Plain-array x̂ for the forwards (float32 stays float32)."""
    xp = namespace(x)
    mu = xp.mean(x, axis=axes, keepdims=True)
    xc = x - mu
    var = xp.mean(xc * xc, axis=axes, keepdims=True)
    return xc / xp.sqrt(var + x.dtype.type(eps))


def _affine(y: Any, weight: Any, bias: Any, shape: tuple[int, ...]) -> Any:
    if weight is not None:
        y *= weight.reshape(shape)
    if bias is not None:
        y += bias.reshape(shape)
    return y


def _channel_shape(x: Any) -> tuple[int, ...]:
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


# -- batch_norm ---------------------------------------------------------------------------------------


def batch_norm_backward(
    grad_output: Any, input: Any, running_mean: Any, running_var: Any, weight: Any = None, bias: Any = None,
    training: bool = False, momentum: float | None = 0.1, eps: float = 1e-5, num_batches_tracked: Any = None,
    out: Any = None, needs: Any = EVERY,
) -> tuple:
    """Training: the shared rule over (N, *spatial). Eval: y is affine in x, ∂x = G γ / √(var_running + ε)."""
    g = grad_output
    cs = _channel_shape(input)
    axes = (0,) + tuple(range(2, input.ndim))
    gamma = None if weight is None else reshape(weight, cs)
    gh = g if gamma is None else multiply(g, gamma)
    if training or running_mean is None:
        xhat, inv = _stats(input, axes, eps)
        gx = _input_grad(gh, xhat, inv, axes) if needs[0] else None
    else:
        xp = namespace(input)
        inv = constant((1.0 / xp.sqrt(running_var.reshape(cs) + eps)).astype(input.dtype))
        xhat = multiply(subtract(input, constant(running_mean.reshape(cs).astype(input.dtype))), inv)
        gx = multiply(gh, inv) if needs[0] else None
    gw = _sum(multiply(g, xhat), axes) if weight is not None and needs[3] else None
    gb = _sum(g, axes) if bias is not None and needs[4] else None
    return gx, None, None, gw, gb, None, None, None, None


@primitive(batch_norm_backward, formula="∂x = (γ/σ)(G − mean G − x̂ mean(G x̂)); ∂γ = Σ G x̂; ∂β = Σ G")
def batch_norm(
    input: Any, running_mean: Any, running_var: Any, weight: Any = None, bias: Any = None, training: bool = False,
    momentum: float | None = 0.1, eps: float = 1e-5, num_batches_tracked: Any = None,
) -> Any:
    """PyTorch's ``F.batch_norm`` on (N, C), (N, C, L) or (N, C, H, W).

    Training normalises with the batch statistics and updates ``running_mean`` and
    ``running_var`` (unbiased) in place: ``r ← (1 − momentum) r + momentum · batch``.
    Eval uses the running statistics. ``num_batches_tracked`` (new_grad's addition, what
    ``nn.BatchNorm`` passes) is a 0-d integer counter that training increments in place;
    ``momentum=None`` then averages cumulatively, with momentum 1/count. Both happen
    inside the op, so a replayed step (``new_grad.compile``) counts and averages too.
    """
    if input.ndim < 2:
        raise ShapeError(f"batch_norm: input {tuple(input.shape)} must be (N, C, ...)")
    c = input.shape[1]
    for name, a in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        if a is not None and tuple(a.shape) != (c,):
            raise ShapeError(f"batch_norm: {name} {tuple(a.shape)} must have shape ({c},), one per channel")
    xp = namespace(input)
    cs = _channel_shape(input)
    axes = (0,) + tuple(range(2, input.ndim))
    if training or running_mean is None:
        n = input.size // c
        if n <= 1 and training:
            raise ShapeError(
                f"batch_norm: input {tuple(input.shape)} has one value per channel; training needs more than "
                "one (a batch of 1 with no spatial axes cannot be normalised)"
            )
        mu = xp.mean(input, axis=axes, keepdims=True)
        xc = input - mu
        var = xp.mean(xc * xc, axis=axes, keepdims=True)
        y = xc / xp.sqrt(var + input.dtype.type(eps))
        if training and running_mean is not None:
            if num_batches_tracked is not None:
                num_batches_tracked += 1
            if momentum is None:  # the cumulative average
                if num_batches_tracked is None:
                    raise ArgumentError("batch_norm: momentum=None (a cumulative average) needs num_batches_tracked")
                momentum = 1.0 / float(num_batches_tracked)
            running_mean *= 1 - momentum
            running_mean += momentum * mu.reshape(c).astype(running_mean.dtype)
            running_var *= 1 - momentum
            running_var += momentum * (var.reshape(c) * (n / max(n - 1, 1))).astype(running_var.dtype)
    else:
        inv = 1.0 / xp.sqrt(running_var.reshape(cs) + input.dtype.type(eps))
        y = (input - running_mean.reshape(cs)) * inv.astype(input.dtype)
        y = y.astype(input.dtype, copy=False)
    return _affine(y, weight, bias, cs)


# -- layer_norm -----------------------------------------------------------------------------------------


def _last_axes(x: Any, normalized_shape: Any, op: str) -> tuple[int, ...]:
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
    k = len(shape)
    if tuple(x.shape[x.ndim - k :]) != tuple(shape) or k > x.ndim:
        raise ShapeError(
            f"{op}: input {tuple(x.shape)} must end with normalized_shape {shape} (the axes to normalise)"
        )
    return tuple(range(x.ndim - k, x.ndim))


def layer_norm_backward(
    grad_output: Any, input: Any, normalized_shape: Any, weight: Any = None, bias: Any = None, eps: float = 1e-5,
    out: Any = None, needs: Any = EVERY,
) -> tuple:
    """The shared rule over the last axes; ∂γ, ∂β sum over the leading ones."""
    g = grad_output
    axes = _last_axes(input, normalized_shape, "layer_norm")
    xhat, inv = _stats(input, axes, eps)
    gh = g if weight is None else multiply(g, weight)
    gx = _input_grad(gh, xhat, inv, axes) if needs[0] else None
    gw = multiply(g, xhat) if weight is not None and needs[2] else None
    gb = g if bias is not None and needs[3] else None
    return gx, None, gw, gb, None


@primitive(layer_norm_backward, formula="∂x = (1/σ)(ĝ − mean ĝ − x̂ mean(ĝ x̂)), ĝ = γG")
def layer_norm(input: Any, normalized_shape: Any, weight: Any = None, bias: Any = None, eps: float = 1e-5) -> Any:
    """PyTorch's ``F.layer_norm``: normalise over the trailing ``normalized_shape`` axes."""
    axes = _last_axes(input, normalized_shape, "layer_norm")
    shape = tuple(input.shape[axes[0] :]) if axes else ()
    for name, a in (("weight", weight), ("bias", bias)):
        if a is not None and tuple(a.shape) != shape:
            raise ShapeError(f"layer_norm: {name} {tuple(a.shape)} must have normalized_shape {shape}")
    return _affine(_normalise(input, axes, eps), weight, bias, shape)


# -- group_norm -----------------------------------------------------------------------------------------


def _groups(x: Any, num_groups: int) -> tuple[int, ...]:
    if x.ndim < 2 or num_groups < 1 or x.shape[1] % num_groups:
        raise ShapeError(
            f"group_norm: input {tuple(x.shape)} must be (N, C, ...) with C divisible by num_groups={num_groups}"
        )
    return (x.shape[0], num_groups, -1)


def group_norm_backward(
    grad_output: Any, input: Any, num_groups: int, weight: Any = None, bias: Any = None, eps: float = 1e-5,
    out: Any = None, needs: Any = EVERY,
) -> tuple:
    """The shared rule within each (sample, group); γ, β are per channel."""
    g = grad_output
    cs = _channel_shape(input)
    gshape = _groups(input, num_groups)
    xhat, inv = _stats(reshape(input, gshape), (2,), eps)
    gh = g if weight is None else multiply(g, reshape(weight, cs))
    gx = reshape(_input_grad(reshape(gh, gshape), xhat, inv, (2,)), input.shape) if needs[0] else None
    axes = (0,) + tuple(range(2, input.ndim))
    gw = _sum(multiply(g, reshape(xhat, input.shape)), axes) if weight is not None and needs[2] else None
    gb = _sum(g, axes) if bias is not None and needs[3] else None
    return gx, None, gw, gb, None


@primitive(group_norm_backward, formula="∂x = (1/σ)(ĝ − mean ĝ − x̂ mean(ĝ x̂)) per group, ĝ = γG")
def group_norm(input: Any, num_groups: int, weight: Any = None, bias: Any = None, eps: float = 1e-5) -> Any:
    """PyTorch's ``F.group_norm``: channels split into ``num_groups``, each normalised per sample."""
    y = _normalise(input.reshape(_groups(input, num_groups)), (2,), eps).reshape(input.shape)
    return _affine(y, weight, bias, _channel_shape(input))


# -- embedding ------------------------------------------------------------------------------------------


def embedding_backward(
    grad_output: Any, input: Any, weight: Any, padding_idx: Any = None, out: Any = None, needs: Any = EVERY
) -> tuple:
    """Each looked-up row gets its output's gradient (repeats add up); the padding row gets none."""
    g = grad_output
    if padding_idx is not None:
        keep = constant((input != padding_idx % weight.shape[0])[..., None].astype(g.dtype))
        g = multiply(g, keep)
    zeros = constant(namespace(weight).zeros(weight.shape, dtype=weight.dtype))
    return None, index_add(zeros, input, g), None


@primitive(embedding_backward, formula="∂W[i] = Σ G over the positions that looked up i (none for padding_idx)")
def embedding(input: Any, weight: Any, padding_idx: Any = None) -> Any:
    """PyTorch's ``F.embedding``: rows of ``weight`` (num_embeddings, dim) at integer ``input``."""
    if input.dtype.kind not in "iu":
        raise ShapeError(f"embedding: indices have dtype {input.dtype}; pass an integer array")
    if weight.ndim != 2:
        raise ShapeError(f"embedding: weight {tuple(weight.shape)} must be (num_embeddings, embedding_dim)")
    if input.size and (int(input.min()) < 0 or int(input.max()) >= weight.shape[0]):
        raise ShapeError(
            f"embedding: indices in [{int(input.min())}, {int(input.max())}] but weight {tuple(weight.shape)} has "
            f"{weight.shape[0]} rows; indices must lie in [0, {weight.shape[0]})"
        )
    return weight[input]


# -- dropout ----------------------------------------------------------------------------------------------


@traceable
def dropout(input: Any, p: float = 0.5, training: bool = True, generator: Any = None) -> Any:
    """PyTorch's ``F.dropout``: zero each element with probability ``p``, scale the rest by 1/(1 − p).

    The mask is a constant, so on the tape this is one ``multiply``; its gradient is the
    same mask. ``generator``: an optional ``numpy.random.Generator`` (reproducible masks).
    Eval mode (or p = 0) returns a recorded identity.
    """
    from .shape import identity

    if not 0.0 <= p <= 1.0:
        raise ShapeError(f"dropout: p={p} must be a probability in [0, 1]")
    if not training or p == 0.0:
        return identity(input)
    xp = namespace(input)
    if p == 1.0:
        return multiply(input, constant(xp.zeros(input.shape, dtype=input.dtype)))
    if generator is not None:
        u = xp.asarray(generator.random(input.shape))
    else:
        u = xp.random.random(input.shape)
    mask = (u >= p).astype(input.dtype)
    mask *= input.dtype.type(1.0 / (1.0 - p))
    return multiply(input, constant(mask))
