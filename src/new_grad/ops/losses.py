"""Loss functions as fused ops: one tape entry each and a closed-form backward.

Names, argument order and defaults are ``torch.nn.functional``'s (without the
long-deprecated ``size_average``/``reduce``). ``reduction`` is ``'none'``,
``'mean'`` or ``'sum'``; a reduced loss is a 0-d array.

Cross-entropy and NLL are written once, through a *coefficient* array ``A`` of
the input's shape: every variant (class indices, probabilities, ``weight``,
``ignore_index``, ``label_smoothing``) is ``loss_n = −Σ_c A[n, c]·logp[n, c]``
for its own ``A``, and the gradient with respect to the logits is then
``softmax·ΣA − A``. PyTorch's weighted mean divides by ``Σ weight[target]`` over
the targets not ignored; that is what ``denominator`` holds.

Backward functions use new_grad's ops (so they can be recorded for higher
derivatives); the coefficients, masks and the CTC path posteriors depend only on
targets (or are piecewise constant) and enter as constants.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd_engine import STATE
from ..backends import namespace
from ..errors import ArgumentError, GradientError, IndexingError, ShapeError
from ._core import EVERY, primitive
from .activations import _log_softmax_array, log_softmax, softmax, softplus
from .elementwise import add, divide, exp, log, multiply, negative, sigmoid, subtract
from .reductions import sum as _sum
from .shape import expand_dims, reshape

_REDUCTIONS = ("none", "mean", "sum")


# -- shared helpers ------------------------------------------------------------------------------------


def _check_reduction(op: str, reduction: str, allowed: tuple[str, ...] = _REDUCTIONS) -> None:
    if reduction not in allowed:
        raise ArgumentError(f"{op}: reduction={reduction!r} is not one of {allowed}")


def _reduce(op: str, loss: Any, reduction: str, dtype: Any, count: Any = None) -> Any:
    """Apply ``reduction`` to the elementwise ``loss`` (``count``: the mean's denominator)."""
    _check_reduction(op, reduction)
    xp = namespace(loss)
    if reduction == "none":
        return loss.astype(dtype, copy=False)
    total = xp.sum(loss)
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            total = total / (loss.size if count is None else count)  # nothing counted: 0/0 = nan, as in PyTorch
    return xp.asarray(total, dtype=dtype)


def _scale(grad_output: Any, reduction: str, count: Any) -> Any:
    """The upstream gradient of each element before reduction (broadcastable to it)."""
    if reduction == "mean":
        return divide(grad_output, count)
    return grad_output


def _difference_grads(
    op: str, grad_output: Any, x: Any, t: Any, reduction: str, local: Any, needs: Any
) -> tuple[Any, Any]:
    """(∂x, ∂t) of a reduced loss of d = x − t, given ∂ℓ/∂d elementwise (``local``)."""
    n = _n_elems(_pair_shape(op, x, t))
    g = multiply(_scale(grad_output, reduction, n), local)
    return g if needs[0] else None, negative(g) if needs[1] else None


def _weighted_scale(op: str, grad_output: Any, x: Any, t: Any, reduction: str, weight: Any) -> Any:
    """The upstream gradient of each element of a (``weight``-ed) elementwise loss of x and t."""
    g = _scale(grad_output, reduction, _n_elems(_pair_shape(op, x, t)))
    return g if weight is None else multiply(g, weight)


def _pair_shape(op: str, x: Any, t: Any) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(np.shape(x), np.shape(t)))
    except ValueError:
        raise ShapeError(
            f"{op}: input {tuple(np.shape(x))} and target {tuple(np.shape(t))} are not broadcastable; "
            "give the target the input's shape"
        ) from None


def _n_elems(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape)) if shape else 1


# -- regression losses ---------------------------------------------------------------------------------


def mse_loss_backward(grad_output: Any, input: Any, target: Any, reduction: str = "mean", out: Any = None, needs: Any = EVERY) -> tuple:  # noqa: A002
    local = multiply(subtract(input, target), 2.0)
    return *_difference_grads("mse_loss", grad_output, input, target, reduction, local, needs), None


@primitive(mse_loss_backward, formula="ℓ = (x − t)²: ∂ℓ/∂x = 2(x − t), ∂ℓ/∂t = −2(x − t)")
def mse_loss(input: Any, target: Any, reduction: str = "mean") -> Any:  # noqa: A002
    """Squared error (x − t)², reduced."""
    _pair_shape("mse_loss", input, target)
    d = input - target
    return _reduce("mse_loss", d * d, reduction, input.dtype)


def l1_loss_backward(grad_output: Any, input: Any, target: Any, reduction: str = "mean", out: Any = None, needs: Any = EVERY) -> tuple:  # noqa: A002
    sign = namespace(input).sign(input - target).astype(input.dtype)  # piecewise constant: 0 at a tie, like PyTorch
    return *_difference_grads("l1_loss", grad_output, input, target, reduction, sign, needs), None


@primitive(l1_loss_backward, formula="ℓ = |x − t|: ∂ℓ/∂x = sign(x − t)")
def l1_loss(input: Any, target: Any, reduction: str = "mean") -> Any:  # noqa: A002
    """Absolute error |x − t|, reduced."""
    _pair_shape("l1_loss", input, target)
    return _reduce("l1_loss", namespace(input).abs(input - target), reduction, input.dtype)


def _quadratic_then_linear_grad(
    op: str, grad_output: Any, x: Any, t: Any, reduction: str, width: float, slope: float, needs: Any
) -> tuple:
    """Gradient of a loss quadratic for |d| < width and linear (slope·sign d) outside, d = x − t.

    Inside: ∂ℓ/∂d = d·slope/width; outside: slope·sign(d). ``width`` 0 is pure L1.
    """
    xp = namespace(x)
    d_arr = x - t
    inside = (xp.abs(d_arr) < width).astype(x.dtype)
    outside = (slope * xp.sign(d_arr) * (1 - inside)).astype(x.dtype)
    local = add(multiply(subtract(x, t), inside * (slope / width) if width > 0 else 0.0), outside)
    return *_difference_grads(op, grad_output, x, t, reduction, local, needs), None, None


def smooth_l1_loss_backward(grad_output: Any, input: Any, target: Any, reduction: str = "mean", beta: float = 1.0, out: Any = None, needs: Any = EVERY) -> tuple:  # noqa: A002
    return _quadratic_then_linear_grad("smooth_l1_loss", grad_output, input, target, reduction, beta, 1.0, needs)


@primitive(smooth_l1_loss_backward, formula="|d| < β: d²/2β, else |d| − β/2; ∂ℓ/∂d = d/β or sign d")
def smooth_l1_loss(input: Any, target: Any, reduction: str = "mean", beta: float = 1.0) -> Any:  # noqa: A002
    """L1 with the kink near zero smoothed into a parabola of width ``beta`` (``beta=0``: L1)."""
    if beta < 0:
        raise ArgumentError(f"smooth_l1_loss: beta={beta} must be non-negative")
    _pair_shape("smooth_l1_loss", input, target)
    xp = namespace(input)
    a = xp.abs(input - target)
    loss = xp.where(a < beta, 0.5 * a * a / (beta if beta > 0 else 1.0), a - 0.5 * beta)
    return _reduce("smooth_l1_loss", loss, reduction, input.dtype)


def huber_loss_backward(grad_output: Any, input: Any, target: Any, reduction: str = "mean", delta: float = 1.0, out: Any = None, needs: Any = EVERY) -> tuple:  # noqa: A002
    return _quadratic_then_linear_grad("huber_loss", grad_output, input, target, reduction, delta, delta, needs)


@primitive(huber_loss_backward, formula="|d| < δ: d²/2, else δ(|d| − δ/2); ∂ℓ/∂d = d or δ·sign d")
def huber_loss(input: Any, target: Any, reduction: str = "mean", delta: float = 1.0) -> Any:  # noqa: A002
    """Huber loss: ``delta``·smooth_l1 with beta = ``delta``."""
    if delta <= 0:
        raise ArgumentError(f"huber_loss: delta={delta} must be positive")
    _pair_shape("huber_loss", input, target)
    xp = namespace(input)
    a = xp.abs(input - target)
    loss = xp.where(a < delta, 0.5 * a * a, delta * (a - 0.5 * delta))
    return _reduce("huber_loss", loss, reduction, input.dtype)


# -- binary cross-entropy ------------------------------------------------------------------------------

_BCE_EPS = 1e-12  # PyTorch's clamp of x(1 − x) in the gradient


def binary_cross_entropy_backward(grad_output: Any, input: Any, target: Any, weight: Any = None, reduction: str = "mean", out: Any = None, needs: Any = EVERY) -> tuple:  # noqa: A002
    x, t = input, target
    xp = namespace(x)
    g = _weighted_scale("binary_cross_entropy", grad_output, x, t, reduction, weight)
    denom = multiply(x, subtract(1.0, x))
    floor = xp.maximum(x * (1 - x), _BCE_EPS) - x * (1 - x)  # PyTorch's clamp, as a constant
    gx = divide(multiply(g, subtract(x, t)), add(denom, floor.astype(x.dtype)))
    gt = multiply(g, subtract(log(subtract(1.0, x)), log(x)))
    return gx if needs[0] else None, gt if needs[1] else None, None, None


@primitive(binary_cross_entropy_backward, formula="ℓ = −w[t log x + (1−t) log(1−x)]: ∂ℓ/∂x = w(x − t)/(x(1 − x))")
def binary_cross_entropy(input: Any, target: Any, weight: Any = None, reduction: str = "mean") -> Any:  # noqa: A002
    """Binary cross-entropy of probabilities ``input`` in [0, 1]; logs clamped at −100 like PyTorch."""
    _pair_shape("binary_cross_entropy", input, target)
    xp = namespace(input)
    if xp.any((input < 0) | (input > 1)):
        raise ArgumentError(
            f"binary_cross_entropy: input {tuple(input.shape)} values must lie in [0, 1] (probabilities); for logits use "
            "binary_cross_entropy_with_logits"
        )
    with np.errstate(divide="ignore"):
        lx = xp.maximum(xp.log(input), -100.0)
        l1x = xp.maximum(xp.log1p(-input), -100.0)
    loss = -(target * lx + (1 - target) * l1x)
    if weight is not None:
        loss = loss * weight
    return _reduce("binary_cross_entropy", loss, reduction, input.dtype)


def _softplus_neg(x: Any) -> Any:
    """log(1 + e⁻ˣ), stable, in array code."""
    xp = namespace(x)
    return xp.log1p(xp.exp(-xp.abs(x))) + xp.maximum(-x, 0)


def binary_cross_entropy_with_logits_backward(
    grad_output: Any,
    input: Any,  # noqa: A002
    target: Any,
    weight: Any = None,
    reduction: str = "mean",
    pos_weight: Any = None, out: Any = None, needs: Any = EVERY,
) -> tuple:
    x, t = input, target
    g = _weighted_scale("binary_cross_entropy_with_logits", grad_output, x, t, reduction, weight)
    s_neg = sigmoid(negative(x))  # σ(−x)
    if pos_weight is None:
        gx = multiply(g, subtract(subtract(1.0, t), s_neg))  # σ(x) − t
        gt = multiply(g, negative(x))
    else:
        lw = add(multiply(subtract(pos_weight, 1.0), t), 1.0)  # 1 + (p − 1)t
        gx = multiply(g, subtract(subtract(1.0, t), multiply(lw, s_neg)))
        # softplus(−x) = log(1 + e⁻ˣ), recorded (∂²/∂x∂t); threshold 40: e⁻⁴⁰ is below float64's resolution
        gt = multiply(g, add(negative(x), multiply(subtract(pos_weight, 1.0), softplus(negative(x), 1.0, 40.0))))
    return gx if needs[0] else None, gt if needs[1] else None, None, None, None


@primitive(
    binary_cross_entropy_with_logits_backward,
    formula="ℓ = w[(1−t)x + (1+(p−1)t)·log(1+e⁻ˣ)]: ∂ℓ/∂x = w[(1−t) − (1+(p−1)t)σ(−x)]",
)
def binary_cross_entropy_with_logits(
    input: Any,  # noqa: A002
    target: Any,
    weight: Any = None,
    reduction: str = "mean",
    pos_weight: Any = None,
) -> Any:
    """Sigmoid + binary cross-entropy in one stable op; ``pos_weight`` (per class, last axis) scales positives."""
    _pair_shape("binary_cross_entropy_with_logits", input, target)
    sp = _softplus_neg(input)
    if pos_weight is None:
        loss = (1 - target) * input + sp
    else:
        loss = (1 - target) * input + (1 + (pos_weight - 1) * target) * sp
    if weight is not None:
        loss = loss * weight
    return _reduce("binary_cross_entropy_with_logits", loss, reduction, input.dtype)


# -- KL divergence -------------------------------------------------------------------------------------


def _kl_count(input: Any, reduction: str) -> Any:  # noqa: A002
    if reduction == "batchmean":
        return input.shape[0] if input.ndim else 1
    return input.size


def kl_div_backward(grad_output: Any, input: Any, target: Any, reduction: str = "mean", log_target: bool = False, out: Any = None, needs: Any = EVERY) -> tuple:  # noqa: A002
    red = "mean" if reduction == "batchmean" else reduction
    g = _scale(grad_output, red, _kl_count(input, reduction))
    if log_target:
        et = exp(target)
        gx = multiply(g, negative(et))
        gt = multiply(g, multiply(et, add(subtract(target, input), 1.0)))
    else:
        gx = multiply(g, negative(target))
        gt = multiply(g, subtract(add(log(target), 1.0), input))
    return gx if needs[0] else None, gt if needs[1] else None, None, None


@primitive(kl_div_backward, formula="ℓ = t(log t − x): ∂ℓ/∂x = −t, ∂ℓ/∂t = log t + 1 − x")
def kl_div(input: Any, target: Any, reduction: str = "mean", log_target: bool = False) -> Any:  # noqa: A002
    """KL(target ‖ exp(input)) with ``input`` log-probabilities; ``'batchmean'`` is the true KL mean."""
    _check_reduction("kl_div", reduction, (*_REDUCTIONS, "batchmean"))
    _pair_shape("kl_div", input, target)
    xp = namespace(input)
    if log_target:
        loss = xp.exp(target) * (target - input)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            tlogt = xp.where(target > 0, target * xp.log(xp.where(target > 0, target, 1)), 0)
        loss = tlogt - target * input
    red = "mean" if reduction == "batchmean" else reduction
    return _reduce("kl_div", loss, red, input.dtype, _kl_count(input, reduction))


# -- cross-entropy and NLL -----------------------------------------------------------------------------


def _class_axis(input: Any) -> int:  # noqa: A002
    return 1 if input.ndim >= 2 else 0


def _class_coefficients(
    op: str, input: Any, target: Any, weight: Any, ignore_index: int, label_smoothing: float  # noqa: A002
) -> tuple[Any, Any]:
    """``A`` (input's shape) with loss_n = −Σ_c A[n, c]·logp[n, c], and the weighted-mean denominator."""
    xp = namespace(input)
    cax = _class_axis(input)
    C = input.shape[cax]
    dtype = input.dtype
    wshape = [1] * input.ndim
    wshape[cax] = C
    w = None if weight is None else xp.asarray(weight, dtype=dtype).reshape(wshape)
    t = xp.asarray(target)
    if t.dtype.kind in "fc":  # probabilities (or soft labels), one row per sample
        if t.shape != input.shape:
            raise ShapeError(
                f"{op}: probability targets {tuple(t.shape)} must have the input's shape {tuple(input.shape)}; "
                "class-index targets must be an integer array"
            )
        if label_smoothing > 0:
            t = t * (1 - label_smoothing) + label_smoothing / C
        A = t if w is None else t * w
        return A.astype(dtype, copy=False), input.size // C if C else 0
    expect = input.shape[:cax] + input.shape[cax + 1 :]
    if t.shape != expect:
        raise ShapeError(
            f"{op}: input {tuple(input.shape)} (classes on axis {cax}) needs class-index targets of shape "
            f"{tuple(expect)}, got {tuple(t.shape)}"
        )
    valid = t != ignore_index
    tc = xp.where(valid, t, 0)
    if tc.size and (int(tc.min()) < 0 or int(tc.max()) >= C):
        bad = int(tc.min()) if int(tc.min()) < 0 else int(tc.max())
        raise IndexingError(f"{op}: target class {bad} is out of range for {C} classes (input {tuple(input.shape)})")
    classes = xp.arange(C).reshape(wshape)
    onehot = xp.expand_dims(tc, cax) == classes
    per_sample_w = valid.astype(dtype) if w is None else xp.asarray(weight, dtype=dtype)[tc] * valid
    wt = xp.expand_dims(per_sample_w, cax)
    A = onehot * wt if label_smoothing == 0 else (1 - label_smoothing) * onehot * wt
    if label_smoothing > 0:
        smooth = xp.expand_dims(valid.astype(dtype), cax) * (label_smoothing / C)
        A = A + (smooth if w is None else smooth * w)
    return A.astype(dtype, copy=False), xp.sum(per_sample_w)


def _class_grad_scale(grad_output: Any, input: Any, reduction: str, denom: Any) -> Any:  # noqa: A002
    if reduction == "none":
        return expand_dims(grad_output, _class_axis(input))
    # every target ignored: the loss is 0/0 = nan but A is all zeros, so the gradient is 0 (PyTorch)
    return _scale(grad_output, reduction, denom if denom != 0 else 1)


def cross_entropy_backward(
    grad_output: Any,
    input: Any,  # noqa: A002
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    out: Any = None, needs: Any = EVERY,
) -> tuple:
    """∂z = g·(softmax(z)·ΣA − A); for probability targets also ∂t = −g·(1 − ε)·w·log softmax(z).

    First order takes ``A`` from ``_class_coefficients`` (array code). When the backward is
    recorded (``out is None``) probability targets build ``A`` from ``target`` with recorded
    ops, so ∂²/∂z∂t flows through ΣA and A.
    """
    xp = namespace(input)
    cax = _class_axis(input)
    w = 1.0
    if weight is not None:
        wshape = [1] * input.ndim
        wshape[cax] = input.shape[cax]
        w = xp.array(weight, dtype=input.dtype).reshape(wshape)  # a copy: no untracked view of an input
    soft = xp.asarray(target).dtype.kind in "fc"
    if soft and out is None:
        _class_coefficients("cross_entropy", input, target, weight, ignore_index, label_smoothing)  # checks
        C = input.shape[cax]
        A = target
        if label_smoothing > 0:
            A = add(multiply(A, 1.0 - label_smoothing), label_smoothing / C)
        A = A if weight is None else multiply(A, w)
        denom = input.size // C if C else 0
        sum_a = _sum(A, cax, True)
    else:
        A, denom = _class_coefficients("cross_entropy", input, target, weight, ignore_index, label_smoothing)
        sum_a = xp.sum(A, axis=cax, keepdims=True)
    g = _class_grad_scale(grad_output, input, reduction, denom)
    gx = multiply(g, subtract(multiply(softmax(input, cax), sum_a), A)) if needs[0] else None
    gt = None
    if len(needs) > 1 and needs[1] and soft:
        gt = multiply(g, multiply(log_softmax(input, cax), -(1 - label_smoothing) * w))
    return gx, gt, None, None, None, None


@primitive(cross_entropy_backward, formula="ℓ = −Σ A·log softmax(z): ∂ℓ/∂z = softmax(z)·ΣA − A")
def cross_entropy(
    input: Any,  # noqa: A002
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Any:
    """log_softmax + NLL in one op: class-index targets (ints) or class probabilities (floats).

    ``input`` is (N, C), (N, C, d1, ...) or unbatched (C,). The weighted mean is
    PyTorch's: Σ w[t]·ℓ / Σ w[t] over targets ≠ ``ignore_index``.
    """
    if not 0.0 <= label_smoothing <= 1.0:
        raise ArgumentError(f"cross_entropy: label_smoothing={label_smoothing} must be in [0, 1]")
    A, denom = _class_coefficients("cross_entropy", input, target, weight, ignore_index, label_smoothing)
    cax = _class_axis(input)
    per_sample = -namespace(input).sum(A * _log_softmax_array(input, cax), axis=cax)
    return _reduce("cross_entropy", per_sample, reduction, input.dtype, denom)


def nll_loss_backward(
    grad_output: Any,
    input: Any,  # noqa: A002
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean", out: Any = None, needs: Any = EVERY,
) -> tuple:
    A, denom = _class_coefficients("nll_loss", input, target, weight, ignore_index, 0.0)
    g = _class_grad_scale(grad_output, input, reduction, denom)
    return multiply(g, -A), None, None, None, None


@primitive(nll_loss_backward, formula="ℓ = −w[t]·x[t]: ∂ℓ/∂x = −w[t]·onehot(t)")
def nll_loss(
    input: Any,  # noqa: A002
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Any:
    """Negative log-likelihood of class-index targets given log-probabilities ``input``."""
    if namespace(input).asarray(target).dtype.kind in "fc":
        raise ShapeError("nll_loss: targets must be class indices (an integer array); use cross_entropy for probabilities")
    A, denom = _class_coefficients("nll_loss", input, target, weight, ignore_index, 0.0)
    per_sample = -namespace(input).sum(A * input, axis=_class_axis(input))
    return _reduce("nll_loss", per_sample, reduction, input.dtype, denom)


# -- CTC -----------------------------------------------------------------------------------------------


def _logsumexp3(a: Any, b: Any, c: Any) -> Any:
    xp = namespace(a)
    m = xp.maximum(xp.maximum(a, b), c)
    m = xp.where(xp.isfinite(m), m, 0)
    with np.errstate(divide="ignore"):
        return m + xp.log(xp.exp(a - m) + xp.exp(b - m) + xp.exp(c - m))


def _ctc_prepare(log_probs: Any, targets: Any, input_lengths: Any, target_lengths: Any, blank: int) -> tuple:
    """Batched views: (T, N, C) log-probs, extended labels (N, 2S+1), lengths, skip mask."""
    xp = namespace(log_probs)
    lp = log_probs if log_probs.ndim == 3 else log_probs[:, None, :]
    T, N, C = lp.shape
    in_len = xp.asarray(input_lengths, dtype=np.int64).reshape(-1)
    tg_len = xp.asarray(target_lengths, dtype=np.int64).reshape(-1)
    tg = xp.asarray(targets, dtype=np.int64)
    if in_len.shape != (N,) or tg_len.shape != (N,):
        raise ShapeError(
            f"ctc_loss: log_probs {tuple(log_probs.shape)} has batch {N} but input_lengths has "
            f"{in_len.size} and target_lengths {tg_len.size} entries; give one length per sample"
        )
    if N and (int(in_len.max()) > T or int(in_len.min()) < 0):
        raise ShapeError(f"ctc_loss: input_lengths must lie in [0, T={T}], got {in_len.tolist()}")
    S = int(tg_len.max()) if N else 0
    if log_probs.ndim == 2:
        tg = tg.reshape(1, -1)
    if tg.ndim == 1:  # concatenated targets: split them by target_lengths into a padded (N, S) array
        if tg.size != int(xp.sum(tg_len)):
            raise ShapeError(
                f"ctc_loss: concatenated targets have {tg.size} labels but target_lengths sum to {int(xp.sum(tg_len))}"
            )
        starts = xp.cumsum(tg_len) - tg_len
        pos = xp.arange(S)[None, :]
        idx = xp.minimum(starts[:, None] + pos, max(tg.size - 1, 0))
        padded = tg[idx] if tg.size else xp.zeros((N, S), dtype=np.int64)
        tg = xp.where(pos < tg_len[:, None], padded, blank)
    elif tg.shape[1] < S:
        raise ShapeError(f"ctc_loss: padded targets {tuple(tg.shape)} are shorter than target_lengths {tg_len.tolist()}")
    tg = tg[:, :S]
    L = 2 * S + 1
    ext = xp.full((N, L), blank, dtype=np.int64)
    ext[:, 1::2] = tg
    skip = xp.zeros((N, L), dtype=bool)
    if L > 2:
        skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    valid_s = xp.arange(L)[None, :] < (2 * tg_len + 1)[:, None]
    lpe = lp[:, xp.arange(N)[:, None], ext]  # (T, N, L): log-prob of each extended label
    return lp, ext, skip, valid_s, lpe, in_len, tg_len


def _shift(a: Any, k: int, fill: float) -> Any:
    """Shift along the last axis: k > 0 moves right (index s gets s − k), k < 0 moves left."""
    xp = namespace(a)
    out = xp.full_like(a, fill)
    if k > 0:
        out[..., k:] = a[..., :-k]
    else:
        out[..., :k] = a[..., -k:]
    return out


def _ctc_alpha(lpe: Any, skip: Any, valid_s: Any, in_len: Any) -> tuple[Any, Any]:
    """Forward variables log α (T, N, L), −inf outside each sample's length, and the final α."""
    xp = namespace(lpe)
    T, N, L = lpe.shape
    ninf = -np.inf
    alpha = xp.full((T, N, L), ninf, dtype=lpe.dtype)
    a = xp.full((N, L), ninf, dtype=lpe.dtype)
    if T == 0:
        return alpha, a
    a[:, :2] = lpe[0, :, :2]
    a = xp.where(valid_s & (in_len[:, None] > 0), a, ninf)
    alpha[0] = a
    for t in range(1, T):
        p1 = _shift(a, 1, ninf)
        p2 = xp.where(skip, _shift(a, 2, ninf), ninf)
        new = xp.where(valid_s, _logsumexp3(a, p1, p2) + lpe[t], ninf)
        live = (t < in_len)[:, None]
        alpha[t] = xp.where(live, new, ninf)
        a = xp.where(live, new, a)
    return alpha, a


def _ctc_beta(lpe: Any, skip: Any, valid_s: Any, in_len: Any, tg_len: Any) -> Any:
    """Backward variables log β (T, N, L), each including the emission at its own step."""
    xp = namespace(lpe)
    T, N, L = lpe.shape
    ninf = -np.inf
    beta = xp.full((T, N, L), ninf, dtype=lpe.dtype)
    s = xp.arange(L)[None, :]
    ends = (s == 2 * tg_len[:, None]) | (s == 2 * tg_len[:, None] - 1)
    skip_next = _shift(skip, -2, False)  # s → s + 2 allowed
    b = xp.full((N, L), ninf, dtype=lpe.dtype)
    for t in range(T - 1, -1, -1):
        n1 = _shift(b, -1, ninf)
        n2 = xp.where(skip_next, _shift(b, -2, ninf), ninf)
        rec = _logsumexp3(b, n1, n2) + lpe[t]
        init = xp.where(ends, lpe[t], ninf)
        b = xp.where((t == in_len - 1)[:, None], init, xp.where((t < in_len - 1)[:, None], rec, ninf))
        b = xp.where(valid_s, b, ninf)
        beta[t] = b
    return beta


def _ctc_nll(a_final: Any, tg_len: Any) -> Any:
    xp = namespace(a_final)
    N = a_final.shape[0]
    rows = xp.arange(N)
    last = a_final[rows, 2 * tg_len]
    prev = xp.where(tg_len > 0, a_final[rows, xp.maximum(2 * tg_len - 1, 0)], -np.inf)
    m = xp.maximum(last, prev)
    m = xp.where(xp.isfinite(m), m, 0)
    with np.errstate(divide="ignore"):
        return -(m + xp.log(xp.exp(last - m) + xp.exp(prev - m)))


def _ctc_reduce(nll: Any, tg_len: Any, reduction: str, batched: bool, dtype: Any) -> Any:
    xp = namespace(nll)
    if reduction == "none":
        return (nll if batched else nll[0]).astype(dtype, copy=False)
    if reduction == "sum":
        return xp.asarray(xp.sum(nll), dtype=dtype)
    return xp.asarray(xp.mean(nll / xp.maximum(tg_len, 1)), dtype=dtype)


def ctc_loss_op_backward(
    grad_output: Any,
    log_probs: Any,
    targets: Any,
    input_lengths: Any,
    target_lengths: Any,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False, out: Any = None, needs: Any = EVERY,
) -> tuple:
    """∂(−log p)/∂ log y[t, c] = −Σ_{s: l'_s = c} α_t(s)β_t(s) / (y_t(c)·p): the path posterior, negated.

    This is the gradient with respect to ``log_probs`` themselves. PyTorch's CPU
    kernel returns ``exp(log_probs)`` minus this posterior instead (a shortcut that
    assumes log_softmax comes next); both give the same gradient for the logits
    that feed a log_softmax.
    """
    if STATE.engine is not None:
        raise GradientError(
            "ctc_loss: gradients of gradients (create_graph, new_grad.grad of a gradient) are not supported "
            "through the CTC loss: its path posteriors are computed in array code. Differentiate the CTC loss "
            "once, or exclude it from the higher-order part of the computation."
        )
    xp = namespace(log_probs)
    lp, ext, skip, valid_s, lpe, in_len, tg_len = _ctc_prepare(log_probs, targets, input_lengths, target_lengths, blank)
    alpha, a_final = _ctc_alpha(lpe, skip, valid_s, in_len)
    beta = _ctc_beta(lpe, skip, valid_s, in_len, tg_len)
    nll = _ctc_nll(a_final, tg_len)
    T, N, C = lp.shape
    with np.errstate(invalid="ignore"):
        post = xp.exp(alpha + beta - lpe + nll[None, :, None])  # (T, N, L), γ
    post = xp.where(xp.isfinite(alpha + beta), post, 0)
    onehot = (ext[:, :, None] == xp.arange(C)[None, None, :]).astype(lp.dtype)  # (N, L, C)
    dlp = -xp.einsum("tns,nsc->tnc", post, onehot)
    inf = ~xp.isfinite(nll)
    if zero_infinity:
        dlp = xp.where(inf[None, :, None], 0, dlp)
    if reduction == "none":
        g = reshape(grad_output, (1, N, 1))
    elif reduction == "sum":
        g = grad_output
    else:
        g = reshape(divide(grad_output, (xp.maximum(tg_len, 1) * N).astype(lp.dtype)), (1, N, 1))
    gx = multiply(dlp.astype(lp.dtype, copy=False), g)
    if log_probs.ndim == 2:
        gx = reshape(gx, log_probs.shape)
    return gx, None, None, None, None, None, None


@primitive(ctc_loss_op_backward, formula="−log Σ_paths Π y: α/β recursions in log space; ∂/∂log y = −posterior")
def ctc_loss(
    log_probs: Any,
    targets: Any,
    input_lengths: Any,
    target_lengths: Any,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> Any:
    """Connectionist temporal classification loss, batched, in log space.

    ``log_probs`` (T, N, C) (log_softmax outputs; or unbatched (T, C)); ``targets``
    padded (N, S) or concatenated (Σ target_lengths,); lengths per sample. ``'mean'``
    divides each loss by its target length, then averages over the batch (PyTorch).
    """
    _check_reduction("ctc_loss", reduction)
    if log_probs.ndim not in (2, 3):
        raise ShapeError(f"ctc_loss: log_probs must be (T, N, C) or (T, C), got {tuple(log_probs.shape)}")
    xp = namespace(log_probs)
    _, _, skip, valid_s, lpe, in_len, tg_len = _ctc_prepare(log_probs, targets, input_lengths, target_lengths, blank)
    _, a_final = _ctc_alpha(lpe, skip, valid_s, in_len)
    nll = _ctc_nll(a_final, tg_len)
    if zero_infinity:
        nll = xp.where(xp.isfinite(nll), nll, 0)
    return _ctc_reduce(nll, tg_len, reduction, log_probs.ndim == 3, log_probs.dtype)
