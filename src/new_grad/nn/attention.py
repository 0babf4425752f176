"""``MultiheadAttention`` and ``TransformerEncoderLayer``, PyTorch's API, built from recorded ops.

Attention is written out op by op (``linear``, ``reshape``, ``matmul``,
``softmax``, ``dropout``) rather than fused: every intermediate is on the tape,
which is the point of a teaching library (``print(engine)`` shows the whole
mechanism), and each op already has a closed-form backward.

Masks follow PyTorch: a boolean ``attn_mask`` or ``key_padding_mask`` marks
positions that may NOT be attended (``True`` → −∞ before the softmax); a float
mask is added to the scores. A query row whose keys are all masked gives NaN,
as in PyTorch.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import ops
from ..autograd_engine import Autograd, constant, is_constant
from ..backends import get_default_dtype, namespace
from ..errors import ArgumentError, ShapeError
from .container import ModuleList
from .dropout import Dropout
from .linear import Linear
from .module import Module, shared_constant
from .normalization import LayerNorm


def _additive(mask: Any, like: Any, what: str) -> Any:
    """A mask as a constant float array (on ``like``'s device) to add to the scores (bool: True → −∞).

    Computed with new_grad ops, so a compiled step (``new_grad.compile``) replays it from the mask it is passed.
    """
    xp = namespace(like)
    dtype = like.dtype
    if not hasattr(mask, "dtype"):
        mask = xp.asarray(mask)
    if mask.dtype == bool:
        return ops.where(mask, shared_constant(xp, (), dtype, -np.inf), shared_constant(xp, (), dtype, 0.0))
    if mask.dtype.kind == "f":
        if mask.dtype == dtype and is_constant(mask):
            return mask
        return constant(mask.astype(dtype))
    raise ShapeError(f"MultiheadAttention: {what} must be a bool or float array, got dtype {mask.dtype}")


class MultiheadAttention(Module):
    """Scaled dot-product attention over ``num_heads`` heads, with input and output projections.

    Parameters as in PyTorch: ``in_proj_weight`` (3E, E) (query, key, value
    stacked), ``in_proj_bias`` (3E,), ``out_proj`` a Linear(E, E). Inputs are
    (L, N, E) (``batch_first``: (N, L, E)) or unbatched (L, E).
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        *,
        autograd_engine: Autograd | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(autograd_engine)
        if embed_dim % num_heads:
            raise ShapeError(f"MultiheadAttention: embed_dim={embed_dim} must be divisible by num_heads={num_heads}")
        E = embed_dim
        self.embed_dim = E
        self.kdim = kdim if kdim is not None else E
        self.vdim = vdim if vdim is not None else E
        self.num_heads = num_heads
        self.head_dim = E // num_heads
        self.dropout = float(dropout)
        self.batch_first = batch_first
        self.add_zero_attn = add_zero_attn
        dt = np.dtype(dtype or get_default_dtype())

        def xavier(shape: tuple[int, int]) -> np.ndarray:  # xavier_uniform_, as PyTorch initialises them
            bound = math.sqrt(6.0 / (shape[0] + shape[1]))
            return np.random.uniform(-bound, bound, shape).astype(dt)

        self._same_dims = self.kdim == E and self.vdim == E
        if self._same_dims:
            self.register_parameter("in_proj_weight", xavier((3 * E, E)))
        else:  # keys/values of other sizes: three separate projections
            self.register_parameter("in_proj_weight", None)
            self.register_parameter("q_proj_weight", xavier((E, E)))
            self.register_parameter("k_proj_weight", xavier((E, self.kdim)))
            self.register_parameter("v_proj_weight", xavier((E, self.vdim)))
        self.register_parameter("in_proj_bias", np.zeros(3 * E, dtype=dt) if bias else None)
        self.out_proj = Linear(E, E, bias=bias, dtype=dt)
        if bias:
            self.out_proj.b[...] = 0
        std = math.sqrt(2.0 / (1 + E))  # xavier_normal_ on (1, 1, E)
        self.register_parameter("bias_k", (np.random.standard_normal((1, 1, E)) * std).astype(dt) if add_bias_kv else None)
        self.register_parameter("bias_v", (np.random.standard_normal((1, 1, E)) * std).astype(dt) if add_bias_kv else None)

    def forward(
        self,
        query: Any,
        key: Any,
        value: Any,
        key_padding_mask: Any = None,
        need_weights: bool = True,
        attn_mask: Any = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Any, Any]:
        """``(attn_output, attn_weights)``; weights (N, L, S) averaged over heads, (N, h, L, S) if not, or None."""
        E, h, d = self.embed_dim, self.num_heads, self.head_dim
        batched = query.ndim == 3
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise ShapeError(
                f"MultiheadAttention: query {tuple(query.shape)}, key {tuple(key.shape)}, value {tuple(value.shape)} "
                "must all be (L, N, E) (batch_first: (N, L, E)) or all unbatched (L, E)"
            )
        if query.shape[-1] != E or key.shape[-1] != self.kdim or value.shape[-1] != self.vdim:
            raise ShapeError(
                f"MultiheadAttention: query/key/value need {E}/{self.kdim}/{self.vdim} features (embed_dim, kdim, "
                f"vdim) but have {query.shape[-1]}/{key.shape[-1]}/{value.shape[-1]}"
            )
        self_attention = query is key and key is value
        # work in (N, L, E)
        if not batched:
            query = ops.expand_dims(query, 0)
            if key_padding_mask is not None:
                if not hasattr(key_padding_mask, "dtype"):
                    key_padding_mask = namespace(query).asarray(key_padding_mask)
                key_padding_mask = ops.expand_dims(key_padding_mask, 0)
        elif not self.batch_first:
            query = ops.swapaxes(query, 0, 1)
        if self_attention:
            key = value = query
        elif not batched:
            key, value = ops.expand_dims(key, 0), ops.expand_dims(value, 0)
        elif not self.batch_first:
            key, value = ops.swapaxes(key, 0, 1), ops.swapaxes(value, 0, 1)
        N, L, _ = query.shape
        S = key.shape[1]
        if value.shape[1] != S or key.shape[0] != N or value.shape[0] != N:
            raise ShapeError(
                f"MultiheadAttention: key {tuple(key.shape)} and value {tuple(value.shape)} must have the same "
                f"length and batch as each other and the query's batch {N}"
            )

        if self_attention and self._same_dims:  # one projection, then split
            qkv = ops.linear(query, self.in_proj_weight, self.in_proj_bias)
            q, k, v = ops.split(qkv, 3, axis=-1)
        else:
            if self._same_dims:
                w_q, w_k, w_v = ops.split(self.in_proj_weight, 3, axis=0)
            else:
                w_q, w_k, w_v = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
            b_q = b_k = b_v = None
            if self.in_proj_bias is not None:
                b_q, b_k, b_v = ops.split(self.in_proj_bias, 3, axis=0)
            q, k, v = ops.linear(query, w_q, b_q), ops.linear(key, w_k, b_k), ops.linear(value, w_v, b_v)

        extra = 0  # key positions added beyond the S given: bias_k/bias_v, a zero key
        if self.bias_k is not None:
            k = ops.concatenate([k, ops.broadcast_to(self.bias_k, (N, 1, E))], axis=1)
            v = ops.concatenate([v, ops.broadcast_to(self.bias_v, (N, 1, E))], axis=1)
            extra += 1

        def heads(a: Any) -> Any:  # (N, n, E) -> (N, h, n, d)
            return ops.transpose(ops.reshape(a, (N, a.shape[1], h, d)), (0, 2, 1, 3))

        q, k, v = heads(q), heads(k), heads(v)
        if self.add_zero_attn:
            zeros = shared_constant(namespace(k), (N, h, 1, d), k.dtype, 0.0)
            k, v = ops.concatenate([k, zeros], axis=2), ops.concatenate([v, zeros], axis=2)
            extra += 1
        scores = ops.matmul(ops.multiply(q, 1.0 / math.sqrt(d)), ops.swapaxes(k, -1, -2))  # (N, h, L, S)

        mask = self._mask(attn_mask, key_padding_mask, is_causal, N, L, S, scores, batched, extra)
        if mask is not None:
            scores = ops.add(scores, mask)
        attn = ops.softmax(scores, axis=-1)
        if self.dropout > 0 and self.training:
            attn = ops.dropout(attn, self.dropout, True)
        out = ops.matmul(attn, v)  # (N, h, L, d)
        out = ops.reshape(ops.transpose(out, (0, 2, 1, 3)), (N, L, E))
        out = self.out_proj(out)

        if not batched:
            out = ops.reshape(out, (L, E))
        elif not self.batch_first:
            out = ops.swapaxes(out, 0, 1)
        if not need_weights:
            return out, None
        weights = ops.mean(attn, axis=1) if average_attn_weights else attn
        if not batched:
            weights = ops.reshape(weights, weights.shape[1:])
        return out, weights

    def _mask(
        self,
        attn_mask: Any,
        key_padding_mask: Any,
        is_causal: bool,
        N: int,
        L: int,
        S: int,
        scores: Any,
        batched: bool,
        extra: int = 0,
    ) -> Any:
        """attn_mask (L, S) or (N·h, L, S) and key_padding_mask (N, S), merged into one additive mask.

        ``extra`` key positions (bias_k/bias_v, the zero key) are appended unmasked, as PyTorch pads.
        """
        h = self.num_heads
        if attn_mask is None and is_causal:
            attn_mask = shared_constant(namespace(scores), (L, S), bool, "causal")
        total = None
        if attn_mask is not None:
            m = _additive(attn_mask, scores, "attn_mask")
            if m.shape == (L, S):
                pass
            elif m.ndim == 3 and m.shape == (N * h, L, S):
                m = ops.reshape(m, (N, h, L, S))
            else:
                raise ShapeError(
                    f"MultiheadAttention: attn_mask {tuple(m.shape)} must be (L, S) = ({L}, {S}) or "
                    f"(N·num_heads, L, S) = ({N * h}, {L}, {S})"
                )
            total = m
        if key_padding_mask is not None:
            k = _additive(key_padding_mask, scores, "key_padding_mask")
            if k.shape != (N, S):
                raise ShapeError(
                    f"MultiheadAttention: key_padding_mask {tuple(k.shape)} must be (N, S) = ({N}, {S})"
                    + ("" if batched else " (unbatched: (S,))")
                )
            k = ops.reshape(k, (N, 1, 1, S))
            total = k if total is None else ops.add(total, k)
        if total is not None and extra:
            pad = shared_constant(namespace(total), (*total.shape[:-1], extra), total.dtype, 0.0)
            total = ops.concatenate([total, pad], axis=-1)
        return total

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}"


_ACTIVATIONS: dict[str, Callable[[Any], Any]] = {"relu": ops.relu, "gelu": ops.gelu}


class TransformerEncoderLayer(Module):
    """Self-attention + feed-forward, each with a residual and a LayerNorm (post-norm, or ``norm_first``)."""

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Callable[[Any], Any] = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        *,
        autograd_engine: Autograd | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(autograd_engine)
        if isinstance(activation, str):
            if activation not in _ACTIVATIONS:
                raise ArgumentError(f"TransformerEncoderLayer: activation={activation!r} must be 'relu' or 'gelu'")
            self.activation_name = activation
            activation = _ACTIVATIONS[activation]
        else:
            self.activation_name = getattr(activation, "__name__", "custom")
        self.activation = activation
        self.norm_first = norm_first
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, dtype=dtype)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)

    def forward(self, src: Any, src_mask: Any = None, src_key_padding_mask: Any = None, is_causal: bool = False) -> Any:
        x = src
        if self.norm_first:
            x = ops.add(x, self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal))
            x = ops.add(x, self._ff_block(self.norm2(x)))
        else:
            x = self.norm1(ops.add(x, self._sa_block(x, src_mask, src_key_padding_mask, is_causal)))
            x = self.norm2(ops.add(x, self._ff_block(x)))
        return x

    def _sa_block(self, x: Any, attn_mask: Any, key_padding_mask: Any, is_causal: bool) -> Any:
        out, _ = self.self_attn(
            x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False, is_causal=is_causal
        )
        return self.dropout1(out)

    def _ff_block(self, x: Any) -> Any:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def extra_repr(self) -> str:
        return f"activation={self.activation_name}, norm_first={self.norm_first}"


def _clone(module: Module) -> Module:
    """An independent deep copy whose parameters are bound to their own (new) gradient arrays."""
    twin = copy.deepcopy(module)
    for m in twin.modules():
        for name, grad_name in list(m._parameters.items()):
            value = m.__dict__[name]
            if value is not None:
                m.register_parameter(name, value, grad_name)
    return twin


class TransformerEncoder(Module):
    """``num_layers`` copies of ``encoder_layer`` (independent weights), then an optional final ``norm``."""

    def __init__(
        self,
        encoder_layer: TransformerEncoderLayer,
        num_layers: int,
        norm: Module | None = None,
        *,
        autograd_engine: Autograd | None = None,
    ) -> None:
        super().__init__(autograd_engine)
        self.layers = ModuleList([_clone(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src: Any, mask: Any = None, src_key_padding_mask: Any = None, is_causal: bool = False) -> Any:
        x = src
        for layer in self.layers.children():
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=is_causal)
        return self.norm(x) if self.norm is not None else x
