"""Linear algebra: products (top level) and decompositions (``new_grad.linalg``).

Products reduce to one rule. Every product is an einsum, and the gradient of an
einsum with respect to one operand is another einsum: the upstream gradient
contracted with the other operands onto that operand's subscripts. Two details
make that exact for every subscript string: a letter only the operand carries
(summed away in the forward) comes back by contracting with a vector of ones,
and a letter the operand repeats (a diagonal, ``'ii->i'``) comes back by
contracting with an identity matrix.

Decompositions use the standard adjoint formulas (Giles 2008; Murray 2016 for
Cholesky; Walter & Lehmann for QR; PyTorch's SVD/eigh rules), written with
new_grad's own ops so they can be differentiated again. Ops with several outputs
(QR, eigh, SVD) are recorded once on a packed array that the public function
unpacks with recorded slices: one tape entry, the tape's one-output model intact.
"""

from __future__ import annotations

import builtins
import math
import string
from collections import Counter
from typing import Any, NamedTuple

import numpy as np

from ..autograd_engine import active_engine, constant
from ..backends import is_array, mixed_devices, namespace, to_numpy
from ..errors import GradientError, ShapeError, shape_str
from ._core import (
    EVERY,
    REGISTRY,
    primitive,
    record,
    register,
    traceable,
    unbroadcast_to,
)
from .elementwise import (
    _is_complex,
    add,
    as_array,
    conj,
    divide,
    imag,
    multiply,
    negative,
    power,
    real,
    subtract,
    where,
)
from .elementwise import abs as _abs
from .indexing import getitem
from .reductions import expand_reduced
from .reductions import sum as _sum
from .shape import broadcast_to, concatenate, expand_dims, moveaxis, reshape, swapaxes, tril, triu

# names only in ``new_grad.linalg`` (NumPy has them in ``numpy.linalg``, not at the top level)
NOT_TOP_LEVEL = (
    "inv", "det", "slogdet", "solve", "cholesky", "qr", "eigh", "svd", "svdvals", "norm", "pinv",
    "SlogdetResult", "QRResult", "EighResult", "SVDResult", "eig", "eigvals", "eigvalsh", "EigResult",
    "matrix_power", "multi_dot", "tensorinv", "tensorsolve", "cond", "lstsq", "LstsqResult",
)  # fmt: skip


def _mT(x: Any) -> Any:
    return swapaxes(x, -1, -2)


def _mH(x: Any) -> Any:
    """The conjugate transpose (the transpose of a real array)."""
    return conj(_mT(x)) if _is_complex(x) else _mT(x)


def _const(x: Any) -> Any:
    return constant(x)


def _eye(n: int, like: Any) -> Any:
    return _const(namespace(like).eye(n, dtype=like.dtype))


def _operand(x: Any) -> Any:
    """A Python number or list the forward accepted, as an array (it gets no gradient)."""
    return x if is_array(x) else _const(np.asarray(x))


def _operand_needs(needs: Any, *xs: Any) -> tuple:
    """Only float arrays get a gradient (not numbers or lists the forward accepted)."""
    needs = needs or (True,) * len(xs)
    return tuple(bool(n) and is_array(x) and x.dtype.kind in "fc" for n, x in zip(needs, xs))


# -- matmul and outer ------------------------------------------------------------------------------------


def _matmul_shape(sa: tuple[int, ...], sb: tuple[int, ...]) -> tuple[int, ...] | None:
    """The shape of ``a @ b``, or ``None`` when the operands don't chain."""
    if not sa or not sb:
        return None
    a2 = (1, *sa) if len(sa) == 1 else sa
    b2 = (*sb, 1) if len(sb) == 1 else sb
    if a2[-1] != b2[-2]:
        return None
    try:
        batch = np.broadcast_shapes(a2[:-2], b2[:-2])
    except ValueError:
        return None
    return batch + ((a2[-2],) if len(sa) > 1 else ()) + ((b2[-1],) if len(sb) > 1 else ())


def matmul_backward(grad_output: Any, a: Any, b: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    """∂(a@b)/∂a = g @ bᵀ and ∂(a@b)/∂b = aᵀ @ g, with 1-d operands and batch broadcasting.

    Called with arrays that don't chain (the course's tests do), it returns the plain
    formula ``(g @ b.T, a.T @ g)`` as the course does, rather than raising.
    """
    g = grad_output
    sa, sb, sg = np.shape(a), np.shape(b), np.shape(g)
    chains = len(sa) == 2 == len(sb) and sa[1] == sb[0] and sg == (sa[0], sb[1])  # the common case, quickly
    if not chains and sg != _matmul_shape(sa, sb):
        try:
            return g @ b.T, a.T @ g
        except ValueError as err:
            raise ShapeError(
                f"matmul_backward: gradient {shape_str(g)} does not match a @ b for a {shape_str(a)}, "
                f"b {shape_str(b)}, and g @ b.T, a.T @ g fails too ({err}); pass the gradient of a @ b"
            ) from None
    if a.ndim == 1 and b.ndim == 1:  # a dot product: g is a scalar
        return (multiply(g, b) if needs[0] else None), (multiply(g, a) if needs[1] else None)
    a2 = expand_dims(a, 0) if a.ndim == 1 else a  # (n,) acts as (1, n)
    b2 = expand_dims(b, -1) if b.ndim == 1 else b  # (n,) acts as (n, 1)
    if a.ndim == 1:
        g = expand_dims(g, -2)
    if b.ndim == 1:
        g = expand_dims(g, -1)
    ga = gb = None
    if needs[0]:
        ga = reshape(unbroadcast_to(matmul(g, _mT(b2)), a2.shape), a.shape)
    if needs[1]:
        gb = reshape(unbroadcast_to(matmul(_mT(a2), g), b2.shape), b.shape)
    return ga, gb


@primitive(matmul_backward, formula="∂(AB)/∂A = G Bᵀ, ∂(AB)/∂B = Aᵀ G")
def matmul(a: Any, b: Any) -> Any:
    return a @ b


def outer_backward(grad_output: Any, a: Any, b: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    na, nb = _operand_needs(None, a, b)
    a1, b1 = reshape(_operand(a), (-1,)), reshape(_operand(b), (-1,))
    ga = reshape(matmul(grad_output, b1), a.shape) if na else None
    gb = reshape(matmul(a1, grad_output), b.shape) if nb else None
    return ga, gb


@primitive(outer_backward, formula="∂(a⊗b)/∂a = G b, ∂(a⊗b)/∂b = Gᵀ a")
def outer(a: Any, b: Any) -> Any:
    return namespace(a, b).outer(a, b)


# -- einsum: parsing and the one gradient rule --------------------------------------------------------------


def _parse(subscripts: str, shapes: list[tuple[int, ...]]) -> tuple[list[str], str]:
    """Subscripts with every ``...`` spelled out in fresh letters and the output made explicit."""
    s = subscripts.replace(" ", "")
    lhs, arrow, rhs = s.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ShapeError(f"einsum('{subscripts}'): {len(terms)} operand subscripts for {len(shapes)} operands")
    free = [c for c in string.ascii_letters if c not in s]
    n_ell = builtins.max([len(sh) - (len(t) - 3) for t, sh in zip(terms, shapes) if "..." in t], default=0)
    ell = "".join(free[:n_ell])
    full = []
    for t, sh in zip(terms, shapes):
        if "..." in t:
            k = len(sh) - (len(t) - 3)
            t = t.replace("...", ell[n_ell - k :] if k else "")
        if len(t) != len(sh):
            raise ShapeError(
                f"einsum('{subscripts}'): subscripts '{t}' name {len(t)} axes but the operand has shape {tuple(sh)}"
            )
        full.append(t)
    if arrow:
        out = rhs.replace("...", ell)
    else:  # implicit mode: broadcast axes first, then the letters seen once, alphabetically
        counts = Counter(c for t in terms for c in t.replace("...", ""))
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1))
    return full, out


def _einsum_vjp(g: Any, terms: list[str], out: str, operands: tuple, i: int) -> Any:
    """∂/∂(operand i) of einsum(terms -> out), given the upstream gradient ``g``."""
    x = operands[i]
    term = terms[i]
    sizes: dict[str, int] = {}
    for t, op in zip([*terms, out], [*operands, g]):
        for c, n in zip(t, op.shape):
            sizes[c] = builtins.max(sizes.get(c, 1), n)
    used = set("".join(terms) + out)
    fresh = (c for c in string.ascii_letters if c not in used)
    target, deltas, seen = [], [], set()
    for c in term:
        if c in seen:  # a repeated letter: a diagonal; tie its copy to it with an identity
            d = next(fresh)
            target.append(d)
            deltas.append(c + d)
        else:
            seen.add(c)
            target.append(c)
    others = [out] + [t for j, t in enumerate(terms) if j != i]
    ops = [g] + [op for j, op in enumerate(operands) if j != i]
    available = set("".join(others))
    xp = namespace(g)
    for c in dict.fromkeys(term):
        if c not in available:  # summed away in the forward: every element gets the gradient
            others.append(c)
            ops.append(_const(xp.ones(sizes[c], dtype=g.dtype)))
    for cd in deltas:
        others.append(cd)
        ops.append(_eye(sizes[cd[0]], g))
    gx = einsum(",".join(others) + "->" + "".join(target), *ops)
    stretched = tuple(k for k, c in enumerate(term) if x.shape[k] == 1 and sizes[c] != 1)
    if stretched:  # a size-1 axis the forward broadcast: sum the gradient back
        gx = _sum(gx, axis=stretched, keepdims=True)
    if gx.shape != x.shape:  # an axis only the other operands had at size 1 (broadcast onto this one's)
        gx = broadcast_to(gx, x.shape)
    return gx


def _einsum_backward(terms: list[str], res: str) -> Any:
    def einsum_backward(grad_output: Any, *args: Any) -> tuple:
        *operands, _out, needs = args
        wants = _operand_needs(needs, *operands)
        ops = tuple(_operand(x) for x in operands)
        return tuple(_einsum_vjp(grad_output, terms, res, ops, i) if w else None for i, w in enumerate(wants))

    return einsum_backward


def _sublist_to_str(args: tuple) -> tuple[str, tuple]:
    """NumPy's interleaved form ``einsum(a, [0, 1], b, [1, 2], [0, 2])`` as a subscripts string."""

    def letters(sub: Any) -> str:
        return "".join("..." if s is Ellipsis else string.ascii_letters[s] for s in sub)

    ops, subs = list(args[0::2]), list(args[1::2])
    out = letters(args[-1]) if len(args) % 2 else None
    if len(args) % 2:
        ops = ops[:-1]
    s = ",".join(letters(x) for x in subs)
    return (s + "->" + out if out is not None else s), tuple(ops)


@traceable
def einsum(*args: Any, optimize: Any = None) -> Any:
    """``np.einsum``: any subscripts, ellipsis broadcasting, implicit output, NumPy's sublist form."""
    if isinstance(args[0], str):
        subscripts, operands = args[0], tuple(args[1:])
    else:
        subscripts, operands = _sublist_to_str(args)
    xp = namespace(*operands)
    shapes = [np.shape(o) for o in operands]  # lists and numbers too
    terms, res = _parse(subscripts, shapes)
    if optimize is None:  # a contraction path (BLAS) pays off once the naive loop is long; it costs ~10-30 µs
        sizes = {c: n for t, sh in zip(terms, shapes) for c, n in zip(t, sh)}
        optimize = len(operands) > 1 and math.prod(sizes.values()) > 20000
    try:
        out = xp.asarray(xp.einsum(subscripts, *operands, optimize=optimize))
    except TypeError as err:  # arrays of two devices
        mixed = mixed_devices("einsum", operands)
        if mixed is None:
            raise
        raise mixed from err
    except ValueError as err:
        raise ShapeError(f"einsum('{subscripts}', {', '.join(shape_str(o) for o in operands)}): {err}") from err
    return record("einsum", _einsum_backward(terms, res), operands, out)


register("einsum", None, einsum, formula="∂/∂xᵢ = einsum of G with the other operands onto xᵢ's subscripts")


# -- products as einsums ----------------------------------------------------------------------------------


def _letters(n: int, start: int = 0) -> str:
    return string.ascii_letters[start : start + n]


def _product_vjp(grad_output: Any, a: Any, b: Any, ta: str, tb: str, to: str, needs: Any) -> tuple:
    wants = _operand_needs(needs, a, b)
    terms, ops = [ta, tb], (_operand(a), _operand(b))
    return tuple(_einsum_vjp(grad_output, terms, to, ops, i) if w else None for i, w in enumerate(wants))


def _scalar_product(grad_output: Any, a: Any, b: Any, needs: Any) -> tuple:
    na, nb = _operand_needs(needs, a, b)
    return multiply(grad_output, _operand(b)) if na else None, multiply(grad_output, _operand(a)) if nb else None


def _dot_subscripts(a: Any, b: Any) -> tuple[str, str, str]:
    na, nb = np.ndim(a), np.ndim(b)
    ta = _letters(na)
    tb = list(_letters(nb, na))
    k = -2 if nb >= 2 else 0
    tb[k] = ta[-1]
    tb = "".join(tb)
    return ta, tb, ta[:-1] + tb.replace(ta[-1], "")


def dot_backward(grad_output: Any, a: Any, b: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return _scalar_product(grad_output, a, b, needs)
    return _product_vjp(grad_output, a, b, *_dot_subscripts(a, b), needs)


@primitive(dot_backward, formula="∂(a·b)/∂a = G·bᵀ, ∂(a·b)/∂b = aᵀ·G (over the contracted axis)")
def dot(a: Any, b: Any) -> Any:
    return namespace(a, b).asarray(namespace(a, b).dot(a, b))


def inner_backward(grad_output: Any, a: Any, b: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    na, nb = np.ndim(a), np.ndim(b)
    if na == 0 or nb == 0:
        return _scalar_product(grad_output, a, b, needs)
    ta, tb = _letters(na), _letters(nb - 1, na) + _letters(na)[-1]
    return _product_vjp(grad_output, a, b, ta, tb, ta[:-1] + tb[:-1], needs)


@primitive(inner_backward, formula="contract the last axes: ∂/∂a = G·b, ∂/∂b = G·a")
def inner(a: Any, b: Any) -> Any:
    return namespace(a, b).asarray(namespace(a, b).inner(a, b))


def vdot_backward(grad_output: Any, a: Any, b: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    # NumPy's vdot conjugates a: Σ āᵢbᵢ, so a's gradient is conj(g b) and b's is g ā (both conjugates vanish if real)
    ca = conj(a) if _is_complex(a) else a
    ga = gb = None
    if is_array(a):
        ga = multiply(grad_output, b)
        ga = reshape(conj(ga) if _is_complex(ga) else ga, a.shape)
    if is_array(b):
        gb = reshape(multiply(grad_output, ca), b.shape)
    return ga, gb


@primitive(vdot_backward, formula="∂(Σ āᵢbᵢ)/∂a = conj(g b), ∂/∂b = g ā (flattened)")
def vdot(a: Any, b: Any) -> Any:
    return namespace(a, b).asarray(namespace(a, b).vdot(a, b))


def _tensordot_subscripts(a: Any, b: Any, axes: Any) -> tuple[str, str, str]:
    a, b = _operand(a), _operand(b)
    if isinstance(axes, int):
        ax_a, ax_b = list(range(a.ndim - axes, a.ndim)), list(range(axes))
    else:
        ax_a, ax_b = axes
        ax_a = [ax_a] if isinstance(ax_a, int) else list(ax_a)
        ax_b = [ax_b] if isinstance(ax_b, int) else list(ax_b)
    ta = _letters(a.ndim)
    tb = list(_letters(b.ndim, a.ndim))
    for i, j in zip(ax_a, ax_b):
        tb[j % b.ndim] = ta[i % a.ndim]
    shared = {ta[i % a.ndim] for i in ax_a}
    tb = "".join(tb)
    return ta, tb, "".join(c for c in ta if c not in shared) + "".join(c for c in tb if c not in shared)


def tensordot_backward(grad_output: Any, a: Any, b: Any, axes: Any = 2, out: Any = None, needs: Any = EVERY) -> tuple:
    needs = needs or (True, True, False)
    return (*_product_vjp(grad_output, a, b, *_tensordot_subscripts(a, b, axes), needs[:2]), None)


@primitive(tensordot_backward, formula="∂/∂a = G contracted with b over b's free axes (and vice versa)")
def tensordot(a: Any, b: Any, axes: Any = 2) -> Any:
    return namespace(a, b).tensordot(a, b, axes)


# -- several outputs: one packed, recorded array, unpacked by recorded slices ---------------------------------


def _pack(name: str, backward: Any, inputs: tuple, outputs: tuple, nbatch: int) -> tuple:
    """Record ``outputs`` (sharing ``nbatch`` leading axes) as one op; return recorded views of them."""
    if active_engine() is None:
        return outputs
    xp = namespace(*outputs)
    batch = outputs[0].shape[:nbatch]
    sizes = [math.prod(o.shape[nbatch:]) for o in outputs]
    shapes = [o.shape for o in outputs]
    packed = xp.concatenate([o.reshape(*batch, n) for o, n in zip(outputs, sizes)], axis=-1)
    bounds = [0]
    for n in sizes:
        bounds.append(bounds[-1] + n)
    real_parts = [packed.dtype.kind == "c" and o.dtype.kind != "c" for o in outputs]  # eigh's w beside complex V

    def unpack(p: Any, recorded: bool) -> list[Any]:
        pieces = []
        for lo, hi, shape, re in zip(bounds[:-1], bounds[1:], shapes, real_parts):
            if recorded:
                piece = reshape(getitem(p, (Ellipsis, slice(lo, hi))), shape)
                pieces.append(real(piece) if re else piece)
            else:
                piece = p[..., lo:hi].reshape(shape)
                pieces.append(piece.real.copy() if re else piece)
        return pieces

    def packed_backward(grad_output: Any, *args: Any) -> tuple:
        *ins, out, _needs = args
        gs = unpack(grad_output, recorded=True)
        # a recorded backward (create_graph) must slice ``out`` with recorded ops too
        outs = None if out is None else unpack(out, recorded=active_engine() is not None)
        return backward(gs, outs, *ins)

    packed_backward.__name__ = name.rsplit(".", 1)[-1] + "_backward"
    tape = active_engine().operation_list
    before = len(tape)
    packed = record(name, packed_backward, inputs, packed)
    if len(tape) == before:  # not recorded: no input needed a gradient
        return outputs
    return tuple(unpack(packed, recorded=True))


# -- inverse, determinants, solve --------------------------------------------------------------------------------


def inv_backward(grad_output: Any, a: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    y = _mT(inv(a) if out is None else out)
    return (negative(matmul(y, matmul(grad_output, y))),)


@primitive(inv_backward, name="linalg.inv", formula="∂A⁻¹: Ā = −A⁻ᵀ G A⁻ᵀ")
def inv(a: Any) -> Any:
    return namespace(a).linalg.inv(a)


def _lift2(x: Any) -> Any:
    return expand_dims(expand_dims(x, -1), -1)


def _cofactors(a: Any) -> Any:
    """det(A)·A⁻ᵀ, the cofactor matrix, also where A is singular: with A = U S Vh it is
    det(U) det(Vh) · Ū diag(Π_{j≠i} s_j) V̄h (conjugates only for complex A)."""
    from .reductions import _prod_of_others_recorded

    u, s, vh = svd(a, full_matrices=False)
    phase = multiply(det(u), det(vh))  # ±1 for real A
    if _is_complex(a):
        u, vh = conj(u), conj(vh)
    others = _prod_of_others_recorded(s, -1)
    return multiply(_lift2(phase), matmul(multiply(u, expand_dims(others, -2)), vh))


def det_backward(grad_output: Any, a: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    d = det(a) if out is None else out
    if not bool(namespace(d).all(d != 0)):  # a singular matrix has no inverse, but its cofactors exist
        return (multiply(_lift2(grad_output), _cofactors(a)),)
    return (multiply(_lift2(multiply(grad_output, d)), _mT(inv(a))),)


@primitive(det_backward, name="linalg.det", formula="∂det A/∂A = det(A) A⁻ᵀ (singular A: its cofactors, by SVD)")
def det(a: Any) -> Any:
    return namespace(a).asarray(namespace(a).linalg.det(a))


class SlogdetResult(NamedTuple):
    sign: Any
    logabsdet: Any


def _singular_error(name: str, a: Any) -> GradientError:
    return GradientError(
        f"{name}: the matrix {shape_str(a)} is singular, so log|det| is −inf and its gradient A⁻ᵀ does not "
        "exist; differentiate linalg.det instead (its gradient, the cofactor matrix, exists everywhere)"
    )


def slogdet_backward(grad_output: Any, a: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    if out is not None and not bool(namespace(out).all(out > -np.inf)):
        raise _singular_error("linalg.slogdet", a)
    return (multiply(_lift2(grad_output), _mT(inv(a))),)


@primitive(slogdet_backward, name="linalg.slogdet", formula="∂log|det A|/∂A = A⁻ᵀ (the sign is constant)")
def _logabsdet(a: Any) -> Any:
    return namespace(a).asarray(namespace(a).linalg.slogdet(a)[1])


def _complex_sign_backward(grad_output: Any, a: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    # d(sign) = i·Im(tr(A⁻¹ dA))·sign, so the gradient is i·Im(sign·g)·A⁻ᵀ
    s = _complex_sign(a) if out is None else out
    coef = multiply(imag(multiply(s, grad_output)), 1j)
    return (multiply(_lift2(coef), _mT(inv(a))),)


@primitive(_complex_sign_backward, name="linalg.slogdet.sign", formula="complex A: sign = det A/|det A|")
def _complex_sign(a: Any) -> Any:
    return namespace(a).asarray(namespace(a).linalg.slogdet(a)[0])


REGISTRY.pop("linalg.slogdet.sign")  # a part of slogdet, not an op of its own (listed and tested as slogdet)


@traceable
def slogdet(a: Any) -> SlogdetResult:
    """(sign, log|det a|): the log-determinant is differentiable; so is the sign of a complex matrix (a unit
    complex number), while a real matrix's sign is a constant."""
    if _is_complex(a):
        return SlogdetResult(_complex_sign(a), _logabsdet(a))
    sign = namespace(a).asarray(namespace(a).linalg.slogdet(a)[0])
    return SlogdetResult(_const(sign), _logabsdet(a))


def solve_backward(grad_output: Any, a: Any, b: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    x = solve(a, b) if out is None else out
    vec = b.ndim == 1
    g2 = expand_dims(grad_output, -1) if vec else grad_output
    x2 = expand_dims(x, -1) if vec else x
    gb2 = solve(_mT(a), g2)  # the adjoint system: Aᵀ b̄ = G
    gb = reshape(unbroadcast_to(gb2, (*b.shape, 1) if vec else b.shape), b.shape) if needs[1] else None
    ga = unbroadcast_to(negative(matmul(gb2, _mT(x2))), a.shape) if needs[0] else None
    return ga, gb


@primitive(solve_backward, name="linalg.solve", formula="x = A⁻¹b: b̄ = A⁻ᵀ G, Ā = −b̄ xᵀ")
def solve(a: Any, b: Any) -> Any:
    # NumPy 2's rule (b is a vector only when 1-d; batch axes broadcast), spelled out so that
    # NumPy 1.x, which guesses vectors from b.ndim == a.ndim - 1, computes the same thing.
    xp = namespace(a)
    vec = b.ndim == 1
    b2 = b[:, None] if vec else b
    batch = tuple(np.broadcast_shapes(a.shape[:-2], b2.shape[:-2]))
    x = xp.linalg.solve(xp.broadcast_to(a, batch + a.shape[-2:]), xp.broadcast_to(b2, batch + b2.shape[-2:]))
    return x[..., 0] if vec else x


# -- Cholesky ------------------------------------------------------------------------------------------------


def _one_triangle(g: Any, lower: bool) -> Any:
    """The adjoint of "read one triangle, mirror it": NumPy's cholesky and eigh never look at the other one.

    The forward computes f(tril(A) + tril(A, −1)ᵀ) (lower), so a symmetric gradient G of f at that
    matrix becomes G on the diagonal, G_ij + G_ji = 2G_ij in the triangle read, and 0 in the other.
    """
    if _is_complex(g):  # the mirror is conjugated, and only the real part of the diagonal is read
        x = add(tril(g), conj(tril(_mT(g), -1))) if lower else add(triu(g), conj(triu(_mT(g), 1)))
        return where(_const(namespace(g).eye(g.shape[-1], dtype=bool)), real(x), x)
    if lower:
        return add(tril(g), tril(_mT(g), -1))
    return add(triu(g), triu(_mT(g), 1))


def cholesky_backward(grad_output: Any, a: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    L = cholesky(a) if out is None else out
    cplx = _is_complex(L)
    g = conj(grad_output) if cplx else grad_output  # complex: PyTorch's rule, on its (conjugate) gradient
    Lt = _mH(L)
    P = tril(matmul(Lt, g))
    S = multiply(add(P, _mH(tril(P, -1))), 0.5)  # Hermitian, diagonal halved (Murray's Φ)
    Y = solve(Lt, S)  # L⁻ᴴ S
    G = _mH(solve(Lt, _mH(Y)))  # L⁻ᴴ S L⁻¹
    return (_one_triangle(conj(G) if cplx else G, lower=True),)  # on the lower triangle read


@primitive(
    cholesky_backward, name="linalg.cholesky",
    formula="G = L⁻ᵀ Φ(Lᵀ L̄) L⁻¹ (Φ: symmetrised lower part); Ā = tril(G + Gᵀ) − diag G: only the lower triangle is read",
)
def cholesky(a: Any) -> Any:
    """The lower Cholesky factor. Like NumPy, only the lower triangle of ``a`` is read, and the gradient is
    that of the function as computed: zero on the strict upper triangle, doubled below the diagonal (for
    complex Hermitian input: the mirror is conjugated and the diagonal's imaginary part is not read)."""
    return namespace(a).linalg.cholesky(a)


# -- QR ----------------------------------------------------------------------------------------------------------


class QRResult(NamedTuple):
    Q: Any
    R: Any


def _qr_deep(Q: Any, R: Any, gQ: Any, gR: Any) -> Any:
    """QR adjoint for m ≥ n: Ā = (Q̄ + Q copyltu(M)) R⁻ᵀ, M = R R̄ᵀ − Q̄ᵀ Q (complex: PyTorch's gradients, ᴴ for ᵀ,
    and the real part of M's diagonal, as NumPy's R has a real diagonal)."""
    M = subtract(matmul(R, _mH(gR)), matmul(_mH(gQ), Q))
    if _is_complex(M):
        low = tril(M, -1)
        sym = add(add(low, _mH(low)), multiply(real(M), _eye(M.shape[-1], real(M))))
    else:
        Ml = tril(M)
        sym = subtract(add(Ml, _mT(Ml)), multiply(Ml, _eye(Ml.shape[-1], Ml)))  # diagonal counted once
    rhs = add(gQ, matmul(Q, sym))
    return _mH(solve(R, _mH(rhs)))  # rhs R⁻ᴴ


def _qr_backward(gs: list, outs: Any, a: Any, mode: str) -> tuple:
    Q, R = qr(a) if outs is None else outs
    gQ, gR = gs
    if _is_complex(a):  # PyTorch's rule on its gradients (the conjugates of new_grad's), conjugated back
        (ga,) = _qr_backward_torch(Q, R, conj(gQ), conj(gR), a)
        return (conj(ga),)
    return _qr_backward_torch(Q, R, gQ, gR, a)


def _qr_backward_torch(Q: Any, R: Any, gQ: Any, gR: Any, a: Any) -> tuple:
    m, n = a.shape[-2], a.shape[-1]
    if m >= n:
        return (_qr_deep(Q, R, gQ, gR),)
    # wide: A = [X | Y] with X = Q U square; Y = Q V contributes through Q
    Y = getitem(a, (Ellipsis, slice(m, None)))
    U = getitem(R, (Ellipsis, slice(0, m)))
    gU = getitem(gR, (Ellipsis, slice(0, m)))
    gV = getitem(gR, (Ellipsis, slice(m, None)))
    gX = _qr_deep(Q, U, add(gQ, matmul(Y, _mH(gV))), gU)
    return (concatenate([gX, matmul(Q, gV)], axis=-1),)


@traceable
def qr(a: Any, mode: str = "reduced") -> Any:
    """``np.linalg.qr`` (modes reduced, complete when m ≤ n, and r)."""
    a = as_array(a)
    xp = namespace(a)
    m, n = a.shape[-2], a.shape[-1]
    if mode not in ("reduced", "r") and not (mode == "complete" and m <= n):
        raise ShapeError(
            f"linalg.qr({shape_str(a)}, mode={mode!r}): only mode='reduced', 'r' (and 'complete' when m ≤ n) are "
            "differentiable; the extra columns of a complete Q are not unique"
        )
    Q, R = xp.linalg.qr(a, mode="reduced")
    res = _pack("linalg.qr", lambda gs, outs, x: _qr_backward(gs, outs, x, mode), (a,), (Q, R), a.ndim - 2)
    return res[1] if mode == "r" else QRResult(*res)


register("linalg.qr", None, qr, formula="Ā = (Q̄ + Q copyltu(R R̄ᵀ − Q̄ᵀQ)) R⁻ᵀ (m ≥ n; wide: split A = [X|Y])")


# -- symmetric eigendecomposition --------------------------------------------------------------------------------


class EighResult(NamedTuple):
    eigenvalues: Any
    eigenvectors: Any


def _offdiag_inverse(w: Any) -> Any:
    """1/(w_j − w_i) off the diagonal, 0 on it (a recorded function of w)."""
    n = w.shape[-1]
    eye = _eye(n, w)
    E = subtract(expand_dims(w, -2), expand_dims(w, -1))
    return multiply(divide(1.0, add(E, eye)), _const(1 - eye))


def _eigh_backward(gs: list, outs: Any, a: Any, UPLO: str) -> tuple:
    w, V = eigh(a, UPLO) if outs is None else outs
    gw, gV = gs
    cplx = _is_complex(V)
    if cplx:  # PyTorch's rule (conjugate transposes) on its gradient, the conjugate of new_grad's
        gV = conj(gV)
    Vh = _mH(V)
    M = matmul(Vh, gV)
    skew = multiply(subtract(M, _mH(M)), 0.5)
    core = add(multiply(skew, _offdiag_inverse(w)), multiply(expand_dims(gw, -1), _eye(w.shape[-1], w)))
    G = matmul(V, matmul(core, Vh))
    return (_one_triangle(conj(G) if cplx else G, lower=UPLO.upper() == "L"),)


@traceable
def eigh(a: Any, UPLO: str = "L") -> EighResult:
    """Eigenvalues (ascending) and eigenvectors of a symmetric matrix (batched).

    Like NumPy, only the ``UPLO`` triangle of ``a`` is read (the other is taken as its mirror), and the
    gradient is that of the function as computed: zero on the triangle not read, doubled off the diagonal
    of the one read. ``gradcheck`` on any square matrix passes. For complex (Hermitian) input the mirror is
    conjugated and the diagonal's imaginary part is not read; the eigenvectors' arbitrary phases are projected out
    of the gradient (it is that of a phase-free loss, as in JAX).
    """
    w, V = namespace(a).linalg.eigh(a, UPLO)
    res = _pack("linalg.eigh", lambda gs, outs, x: _eigh_backward(gs, outs, x, UPLO), (a,), (w, V), a.ndim - 2)
    return EighResult(*res)


register("linalg.eigh", None, eigh, formula="G = V (diag(w̄) + F∘skew(VᵀV̄)) Vᵀ, F_ij = 1/(w_j − w_i); on the UPLO triangle read")


# -- SVD ---------------------------------------------------------------------------------------------------------


class SVDResult(NamedTuple):
    U: Any
    S: Any
    Vh: Any


def _svd_adjoint(U: Any, S: Any, Vh: Any, gU: Any, gS: Any, gVh: Any, m: int, n: int) -> Any:
    """PyTorch's svd_backward for the reduced SVD of an m×n matrix, in new_grad ops (complex: on PyTorch's
    gradients, with conjugate transposes and the term of the singular vectors' common phase)."""
    k = S.shape[-1]
    eye = _eye(k, S)
    S2 = multiply(S, S)
    E = subtract(expand_dims(S2, -2), expand_dims(S2, -1))  # E_jk = s_k² − s_j²
    Finv = multiply(divide(1.0, add(E, eye)), _const(1 - eye))
    V, gV = _mH(Vh), _mH(gVh)
    UhgU = matmul(_mH(U), gU)
    VhgV = matmul(_mH(V), gV)
    UhgU = subtract(UhgU, _mH(UhgU))
    VhgV = subtract(VhgV, _mH(VhgV))
    core = multiply(add(multiply(UhgU, expand_dims(S, -2)), multiply(expand_dims(S, -1), VhgV)), Finv)
    core = add(core, multiply(expand_dims(gS, -1), eye))
    if _is_complex(UhgU):  # i·Im(Uᴴ Ū)ᵢᵢ/σᵢ on the diagonal (a loss should not depend on the phase uᵢ, vᵢ share)
        phase = divide(multiply(imag(_diagonal(UhgU)), 0.5j), S)
        core = add(core, multiply(expand_dims(phase, -1), eye))
    if m > k:
        gUS = divide(gU, expand_dims(S, -2))
        ga = add(matmul(U, core), subtract(gUS, matmul(U, matmul(_mH(U), gUS))))
        return matmul(ga, Vh)
    if n > k:
        SgV = divide(_mH(gV), expand_dims(S, -1))
        ga = add(matmul(core, Vh), subtract(SgV, matmul(matmul(SgV, V), Vh)))
        return matmul(U, ga)
    return matmul(U, matmul(core, Vh))


def _svd_backward(gs: list, outs: Any, a: Any, full_matrices: bool) -> tuple:
    m, n = a.shape[-2], a.shape[-1]
    k = builtins.min(m, n)
    U, S, Vh = svd(a, full_matrices=False) if outs is None else outs
    gU, gS, gVh = gs
    if full_matrices and m != n:  # only the first k columns of U (rows of Vh) are determined by a
        xp = namespace(a)
        extra_u = getattr(gU, "shape", (0,))[-1] > k and bool(xp.any(gU[..., k:] != 0))
        extra_v = getattr(gVh, "shape", (0, 0))[-2] > k and bool(xp.any(gVh[..., k:, :] != 0))
        if extra_u or extra_v:
            raise GradientError(
                f"linalg.svd({shape_str(a)}, full_matrices=True): a gradient reached the completing columns of U or "
                "rows of Vh, which are not unique; use full_matrices=False"
            )
        U, Vh = getitem(U, (Ellipsis, slice(0, k))), getitem(Vh, (Ellipsis, slice(0, k), slice(None)))
        gU, gVh = getitem(gU, (Ellipsis, slice(0, k))), getitem(gVh, (Ellipsis, slice(0, k), slice(None)))
    if _is_complex(a):  # PyTorch's rule on its gradients (the conjugates of new_grad's), conjugated back
        return (conj(_svd_adjoint(U, S, Vh, conj(gU), real(gS), conj(gVh), m, n)),)
    return (_svd_adjoint(U, S, Vh, gU, gS, gVh, m, n),)


@traceable
def svd(a: Any, full_matrices: bool = True, compute_uv: bool = True, hermitian: bool = False) -> Any:
    """``np.linalg.svd`` (batched). Differentiable for distinct singular values; with ``full_matrices``
    and a non-square ``a`` the completing columns must not receive a gradient."""
    a = as_array(a)
    if not compute_uv:
        return svdvals(a)
    extra = {"hermitian": True} if hermitian else {}  # (CuPy's svd has no hermitian argument)
    U, S, Vh = namespace(a).linalg.svd(a, full_matrices=full_matrices, **extra)
    res = _pack("linalg.svd", lambda gs, outs, x: _svd_backward(gs, outs, x, full_matrices), (a,), (U, S, Vh),
                a.ndim - 2)
    return SVDResult(*res)


register("linalg.svd", None, svd, formula="Ā = U[(F∘skew(UᵀŪ))S + S(F∘skew(VᵀV̄)) + diag(S̄)]Vᵀ + …")


def svdvals_backward(grad_output: Any, x: Any, out: Any = None, needs: Any = EVERY) -> tuple:
    U, _, Vh = svd(x, full_matrices=False)
    g = matmul(multiply(U, expand_dims(grad_output, -2)), Vh)
    return (conj(g) if _is_complex(g) else g,)


@primitive(svdvals_backward, name="linalg.svdvals", formula="∂σᵢ/∂A = uᵢ vᵢᵀ (complex: ūᵢ v̄ᵢᴴ)")
def svdvals(x: Any) -> Any:
    return namespace(x).linalg.svd(x, compute_uv=False)


# -- pseudo-inverse -------------------------------------------------------------------------------------------------


def pinv_backward(
    grad_output: Any, a: Any, rcond: Any = None, hermitian: bool = False, out: Any = None, needs: Any = EVERY
) -> tuple:
    """PyTorch's pinv_backward (exact where the rank is constant near ``a``).

    For complex ``a`` that rule (with conjugate transposes) maps PyTorch's gradient, the conjugate of
    new_grad's: it runs on conj(g) and its result is conjugated back.
    """
    P = pinv(a, rcond, hermitian) if out is None else out
    if _is_complex(a) or _is_complex(grad_output):
        cg = conj(grad_output)
        ga = _pinv_adjoint(cg, a, P, lambda x: conj(_mT(x)) if _is_complex(x) else _mT(x))
        return conj(ga), None, None
    return _pinv_adjoint(grad_output, a, P, _mT), None, None


def _pinv_adjoint(grad_output: Any, a: Any, P: Any, _mT: Any) -> Any:
    m, n = a.shape[-2], a.shape[-1]
    Ph, gh = _mT(P), _mT(grad_output)
    if m <= n:
        K = matmul(gh, P)
        KPh = matmul(K, Ph)
        ga = add(
            subtract(KPh, _mT(matmul(P, K))),
            subtract(matmul(matmul(Ph, P), subtract(gh, matmul(K, a))), matmul(matmul(a, P), KPh)),
        )
    else:
        K = matmul(P, gh)
        PhK = matmul(Ph, K)
        ga = add(
            subtract(matmul(matmul(subtract(gh, matmul(a, K)), P), Ph), _mT(matmul(K, P))),
            subtract(PhK, matmul(matmul(PhK, P), a)),
        )
    return ga


@primitive(pinv_backward, name="linalg.pinv", formula="the adjoint of A⁺ for constant rank (Golub & Pereyra)")
def pinv(a: Any, rcond: Any = None, hermitian: bool = False) -> Any:
    xp = namespace(a)
    kw: dict[str, Any] = {"hermitian": True} if hermitian else {}  # (CuPy's pinv has no hermitian argument)
    if rcond is not None:
        kw["rcond"] = rcond
    return xp.linalg.pinv(a, **kw)


# -- norms ---------------------------------------------------------------------------------------------------------


def _norm_axes(x: Any, ord: Any, axis: Any) -> tuple[tuple[int, ...], bool]:
    """The reduced axes and whether it is a matrix norm (NumPy's rules)."""
    if axis is None:
        if ord is not None and x.ndim == 2:
            return (0, 1), ord not in (None,)
        return tuple(range(x.ndim)), False
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    axes = tuple(a % x.ndim for a in axes)
    return axes, len(axes) == 2


def _mask_share(mask: Any, axis: Any, dtype: Any) -> Any:
    """``mask`` divided by its count over ``axis``: ties share the gradient (PyTorch's amax rule)."""
    xp = namespace(mask)
    return _const((mask / xp.maximum(xp.sum(mask, axis=axis, keepdims=True), 1)).astype(dtype))


def norm_backward(
    grad_output: Any, x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False, out: Any = None, needs: Any = EVERY
) -> tuple:
    xp = namespace(x)
    axes, matrix = _norm_axes(x, ord, axis)
    n = norm(x, ord, axis, True) if out is None else (out if keepdims else reshape(out, _kept(x.shape, axes)))
    g = expand_reduced(grad_output, x, axes, keepdims)
    cx = x
    if _is_complex(x):  # |z| is not holomorphic: z̄/|z| where a real x has sign(x) (0 at 0), recorded
        cx = conj(x)
        zero = xp.asarray(x) == 0
        sign = divide(conj(where(zero, 0, x)), where(zero, 1, _abs(x)))
    else:
        sign = _const(xp.sign(x).astype(x.dtype))
    if not matrix:
        if ord in (None, 2):
            safe = add(n, _const((xp.asarray(n) == 0).astype(n.dtype)))  # 0/0 → 0 at the origin
            return multiply(g, divide(cx, safe)), None, None, None
        if ord == 1:
            return multiply(g, sign), None, None, None
        if ord in (math.inf, -math.inf):
            ax = xp.abs(x)
            top = xp.max(ax, axis=axes, keepdims=True) if ord > 0 else xp.min(ax, axis=axes, keepdims=True)
            return multiply(g, multiply(sign, _mask_share(ax == top, axes, n.dtype))), None, None, None
        if ord == 0:
            return multiply(g, _const(xp.zeros_like(x))), None, None, None
        absx = _abs(x) if _is_complex(x) else multiply(x, sign)  # |x|, differentiable
        p = float(ord)
        ratio = divide(power(absx, p - 1), power(add(n, _const((xp.asarray(n) == 0).astype(n.dtype))), p - 1))
        return multiply(g, multiply(sign, ratio)), None, None, None
    r, c = axes
    if ord in (None, "fro"):
        safe = add(n, _const((xp.asarray(n) == 0).astype(n.dtype)))
        return multiply(g, divide(cx, safe)), None, None, None
    if ord in (1, -1, math.inf, -math.inf):
        over = r if ord in (1, -1) else c  # 1: column sums (over rows); ∞: row sums (over columns)
        sums = xp.sum(xp.abs(x), axis=over, keepdims=True)
        pick = xp.max if ord > 0 else xp.min
        mask = xp.broadcast_to(sums == pick(sums, axis=(r, c), keepdims=True), x.shape)
        lines = x.shape[over]  # the mask repeats each chosen line along the summed axis
        share = _mask_share(mask, (r, c), n.dtype)
        return multiply(g, multiply(sign, multiply(share, float(lines)))), None, None, None
    # spectral and nuclear norms: through the SVD of the (r, c) matrices
    xm = moveaxis(x, (r, c), (-2, -1))
    U, S, Vh = svd(xm, full_matrices=False)
    if ord == "nuc":
        d = matmul(U, Vh)
    else:
        i = 0 if ord == 2 else -1
        u = getitem(U, (Ellipsis, slice(None), slice(i, i + 1) if i == 0 else slice(-1, None)))
        v = getitem(Vh, (Ellipsis, slice(i, i + 1) if i == 0 else slice(-1, None), slice(None)))
        d = matmul(u, v)
    d = conj(d) if _is_complex(d) else d
    return multiply(g, moveaxis(d, (-2, -1), (r, c))), None, None, None


def _kept(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


@primitive(norm_backward, name="linalg.norm",
           formula="2: x/‖x‖; 1: sign x; ∞: sign x at the max; p: sign x |x|ᵖ⁻¹/‖x‖ᵖ⁻¹; nuc: U Vᵀ; 2 (matrix): u₁v₁ᵀ")
def norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Any:
    """``np.linalg.norm``: vector norms (2, 1, ∞, −∞, 0, p) and matrix norms (fro, nuc, 1, −1, 2, −2, ∞, −∞)."""
    xp = namespace(x)
    return xp.asarray(xp.linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims))


# -- general eigendecomposition (real spectra) -----------------------------------------------------------------


class EigResult(NamedTuple):
    eigenvalues: Any
    eigenvectors: Any


def _eig_backward(gs: list, outs: Any, a: Any) -> tuple:
    """PyTorch's rule for unit-norm eigenvectors, real case:
    Ā = V⁻ᵀ (diag(w̄) + F∘(VᵀV̄ − VᵀV diag(VᵀV̄))) Vᵀ, F_ij = 1/(w_j − w_i).

    Complex: the same on PyTorch's gradients (the conjugates of new_grad's) with ᴴ for ᵀ, the real part of
    diag(VᴴV̄) and F_ij = 1/conj(w_j − w_i), conjugated back; a real ``a`` keeps the real part."""
    w, V = eig(a) if outs is None else outs
    gw, gV = gs
    cplx = _is_complex(V)
    if cplx:
        gw, gV = conj(gw), conj(gV)
    Vt = _mH(V)
    VtgV = matmul(Vt, gV)
    d = _diagonal(VtgV)
    if cplx:
        d = real(d)
    M = subtract(VtgV, matmul(Vt, multiply(V, expand_dims(d, -2))))  # the unit-norm constraint on each column
    F = _offdiag_inverse(conj(w) if cplx else w)
    core = add(multiply(M, F), multiply(expand_dims(gw, -1), _eye(w.shape[-1], w)))
    G = solve(Vt, matmul(core, Vt))
    return (conj(G) if cplx else G,)


def _diagonal(x: Any) -> Any:
    from .shape import diagonal

    return diagonal(x, 0, -2, -1)


def eig(a: Any) -> EigResult:
    """Eigenvalues and unit-norm eigenvectors of a square matrix (batched).

    Differentiable where the eigenvalues are distinct. Real ones give real arrays (as NumPy); a matrix
    with complex eigenvalues gives complex results, differentiable too (a real ``a`` gets the real part of the
    gradient). NumPy's complex eigenvectors have an arbitrary phase each: the gradient is that of a phase-free
    loss (JAX's choice; the phase direction is projected out).
    """
    w, V = namespace(a).linalg.eig(a)
    return EigResult(*_pack("linalg.eig", lambda gs, outs, x: _eig_backward(gs, outs, x), (a,), (w, V), a.ndim - 2))


register("linalg.eig", None, eig, formula="Ā = V⁻ᵀ(diag(w̄) + F∘(VᵀV̄ − VᵀV diag(VᵀV̄)))Vᵀ, F_ij = 1/(w_j − w_i)")


def eigvals(a: Any) -> Any:
    """The eigenvalues of :func:`eig` (real, distinct ones are differentiable)."""
    return eig(a)[0]


def eigvalsh(a: Any, UPLO: str = "L") -> Any:
    """The eigenvalues of :func:`eigh` (ascending; only the ``UPLO`` triangle is read)."""
    return eigh(a, UPLO)[0]


register("linalg.eigvals", None, eigvals, formula="as linalg.eig with V̄ = 0: Ā = V⁻ᵀ diag(w̄) Vᵀ")
register("linalg.eigvalsh", None, eigvalsh, formula="as linalg.eigh with V̄ = 0: Ā = V diag(w̄) Vᵀ, on the triangle read")


# -- more products -----------------------------------------------------------------------------------------------


def matrix_power(a: Any, n: int) -> Any:
    """Aⁿ by repeated squaring (n < 0: of the inverse), like ``np.linalg.matrix_power``."""
    if int(n) != n:
        raise ShapeError(f"linalg.matrix_power: the exponent must be an integer, got {n!r}")
    n = int(n)
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ShapeError(f"linalg.matrix_power({shape_str(a)}): needs square matrices in the last two axes")
    if n == 0:
        return _const(namespace(a).broadcast_to(namespace(a).eye(a.shape[-1], dtype=a.dtype), a.shape).copy())
    base = inv(a) if n < 0 else a
    n = builtins.abs(n)
    result = None
    while n:
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return result if result is not a else multiply(a, 1.0)


def multi_dot(arrays: Any) -> Any:
    """The product of a chain of matrices (first may be 1-d, last may be 1-d), like ``np.linalg.multi_dot``."""
    arrays = list(arrays)
    if len(arrays) < 2:
        raise ShapeError(f"linalg.multi_dot: needs at least 2 arrays, got {len(arrays)}")
    out = arrays[0]
    for x in arrays[1:]:
        out = dot(out, x)
    return out


register("linalg.matrix_power", None, matrix_power, formula="products of recorded matmuls (and inv for n < 0)")
register("linalg.multi_dot", None, multi_dot, formula="a chain of recorded dots")


def cross(a: Any, b: Any, axisa: int = -1, axisb: int = -1, axisc: int = -1, axis: Any = None) -> Any:
    """The cross product of 3-vectors (a 2-vector has a zero third component; two 2-vectors give the z
    component), like ``np.cross``."""
    if axis is not None:
        axisa = axisb = axisc = axis
    a = moveaxis(a if is_array(a) else np.asarray(a), axisa, -1)
    b = moveaxis(b if is_array(b) else np.asarray(b), axisb, -1)
    na, nb = a.shape[-1], b.shape[-1]
    if na not in (2, 3) or nb not in (2, 3):
        raise ShapeError(f"cross({shape_str(a)}, {shape_str(b)}): vectors must have 2 or 3 components")

    def c(x: Any, i: int) -> Any:
        return getitem(x, (Ellipsis, i))

    a0, a1, b0, b1 = c(a, 0), c(a, 1), c(b, 0), c(b, 1)
    z = subtract(multiply(a0, b1), multiply(a1, b0))
    if na == 2 and nb == 2:
        return z
    if na == 3 and nb == 3:
        a2, b2 = c(a, 2), c(b, 2)
        x = subtract(multiply(a1, b2), multiply(a2, b1))
        y = subtract(multiply(a2, b0), multiply(a0, b2))
    elif na == 2:  # a₂ = 0
        b2 = c(b, 2)
        x, y = multiply(a1, b2), negative(multiply(a0, b2))
    else:  # b₂ = 0
        a2 = c(a, 2)
        x, y = negative(multiply(a2, b1)), multiply(a2, b0)
    shape = np.broadcast_shapes(x.shape, y.shape, z.shape)
    from .shape import broadcast_to, stack

    out = stack([broadcast_to(x, shape), broadcast_to(y, shape), broadcast_to(z, shape)], -1)
    return moveaxis(out, -1, axisc)


def kron(a: Any, b: Any) -> Any:
    """The Kronecker product (``np.kron``): blocks a_ij·b."""
    a = a if is_array(a) else np.asarray(a)
    b = b if is_array(b) else np.asarray(b)
    nd = builtins.max(a.ndim, b.ndim)
    sa = (1,) * (nd - a.ndim) + tuple(a.shape)
    sb = (1,) * (nd - b.ndim) + tuple(b.shape)
    ae = reshape(a, tuple(v for s in sa for v in (s, 1)))
    be = reshape(b, tuple(v for s in sb for v in (1, s)))
    return reshape(multiply(ae, be), tuple(x * y for x, y in zip(sa, sb)))


register("cross", None, cross, formula="components of recorded products: ∂/∂a = b × G, ∂/∂b = G × a")
register("kron", None, kron, formula="an outer product reshaped: G reshaped and contracted with the other")


# -- NumPy 2's vector products, and more of numpy.linalg ------------------------------------------------------------


def vecdot(x1: Any, x2: Any, axis: int = -1) -> Any:
    """Dot products of vectors along ``axis`` (broadcast over the rest), like ``np.vecdot`` (x1 conjugated)."""
    return _sum(multiply(conj(x1) if _is_complex(x1) else x1, x2), axis=axis)


def matvec(x1: Any, x2: Any) -> Any:
    """Matrix-vector products over the last axes (``np.matvec``)."""
    x1, x2 = as_array(x1), as_array(x2)
    return getitem(matmul(x1, expand_dims(x2, -1)), (Ellipsis, 0))


def vecmat(x1: Any, x2: Any) -> Any:
    """Vector-matrix products over the last axes (``np.vecmat``: the vector conjugated)."""
    x1 = conj(x1) if _is_complex(x1) else x1
    return getitem(matmul(expand_dims(x1, -2), x2), (Ellipsis, 0, slice(None)))


register("vecdot", None, vecdot, formula="Σ x1·x2 along the axis: ∂/∂x1 = G x2, ∂/∂x2 = G x1")
register("matvec", None, matvec, formula="as matmul with a column vector")
register("vecmat", None, vecmat, formula="as matmul with a row vector")


def tensorinv(a: Any, ind: int = 2) -> Any:
    """The inverse of ``a`` seen as a linear map from its first ``ind`` axes (``np.linalg.tensorinv``)."""
    out_shape = a.shape[ind:] + a.shape[:ind]
    n = math.prod(a.shape[:ind])
    if n != math.prod(a.shape[ind:]):
        raise ShapeError(f"linalg.tensorinv({shape_str(a)}, ind={ind}): the map must be square")
    return reshape(inv(reshape(a, (n, -1))), out_shape)


def tensorsolve(a: Any, b: Any) -> Any:
    """x with tensordot(a, x, x.ndim) = b (``np.linalg.tensorsolve`` without ``axes``)."""
    bshape = np.shape(b)
    x_shape = a.shape[len(bshape):]
    n = math.prod(bshape)
    if n != math.prod(x_shape):
        raise ShapeError(f"linalg.tensorsolve({shape_str(a)}, {shape_str(b)}): the map must be square")
    return reshape(solve(reshape(a, (n, n)), reshape(b, (n,))), x_shape)


def cond(x: Any, p: Any = None) -> Any:
    """The condition number (``np.linalg.cond``): σ_max/σ_min for p in (None, 2, −2), else ‖x‖·‖x⁻¹‖."""
    if p is None or p == 2 or p == -2:
        s = svdvals(x)
        big, small = getitem(s, (Ellipsis, 0)), getitem(s, (Ellipsis, -1))
        return divide(small, big) if p == -2 else divide(big, small)
    return multiply(norm(x, p, (-2, -1)), norm(inv(x), p, (-2, -1)))


register("linalg.tensorinv", None, tensorinv, formula="inv of the reshaped map, reshaped back")
register("linalg.tensorsolve", None, tensorsolve, formula="solve of the reshaped system, reshaped back")
register("linalg.cond", None, cond, formula="σ_max/σ_min (recorded svdvals), or ‖x‖·‖x⁻¹‖")


# -- 1-d convolution and correlation, as one recorded gather and an einsum -----------------------------------------


def _conv_full(a: Any, v: Any) -> Any:
    from .shape import pad, take

    n, m = a.shape[0], v.shape[0]
    k = np.arange(n + m - 1)[:, None] - np.arange(n)[None, :]  # v's index for out[k], a[i]
    k = np.where((k >= 0) & (k < m), k, m)  # out of range: the appended zero
    vz = pad(v, (0, 1))
    return einsum("i,ki->k", a, take(vz, namespace(vz).asarray(k)))


def _conv_mode(full: Any, n: int, m: int, mode: str, name: str) -> Any:
    if mode == "full":
        return full
    lo, hi = builtins.min(n, m), builtins.max(n, m)
    if mode == "same":
        start = (lo - 1) // 2
        return getitem(full, slice(start, start + hi))
    if mode == "valid":
        return getitem(full, slice(lo - 1, hi))
    raise ShapeError(f"{name}: mode must be 'full', 'same' or 'valid', got {mode!r}")


def convolve(a: Any, v: Any, mode: str = "full") -> Any:
    """The discrete linear convolution of two 1-d arrays (``np.convolve``)."""
    a = a if is_array(a) else np.asarray(a, dtype=float)
    v = v if is_array(v) else np.asarray(v, dtype=float)
    if a.ndim != 1 or v.ndim != 1 or not a.size or not v.size:
        raise ShapeError(f"convolve({shape_str(a)}, {shape_str(v)}): needs two non-empty 1-d arrays")
    return _conv_mode(_conv_full(a, v), a.shape[0], v.shape[0], mode, "convolve")


def correlate(a: Any, v: Any, mode: str = "valid") -> Any:
    """The cross-correlation of two 1-d arrays (``np.correlate``): c_k = Σ_n a_(n+k) v̄_n."""
    from .shape import flip

    a = a if is_array(a) else np.asarray(a, dtype=float)
    v = v if is_array(v) else np.asarray(v, dtype=float)
    if a.ndim != 1 or v.ndim != 1 or not a.size or not v.size:
        raise ShapeError(f"correlate({shape_str(a)}, {shape_str(v)}): needs two non-empty 1-d arrays")
    v = conj(v) if _is_complex(v) else v
    n, m = a.shape[0], v.shape[0]
    if m > n:  # NumPy swaps the operands and reverses the result
        return flip(_conv_mode(_conv_full(v, flip(a, 0)), m, n, mode, "correlate"), 0)
    return _conv_mode(_conv_full(a, flip(v, 0)), n, m, mode, "correlate")


register("convolve", None, convolve, formula="an einsum with a recorded gather of v: ∂/∂a, ∂/∂v are correlations with G")
register("correlate", None, correlate, formula="convolution with v reversed")


# -- covariance and correlation coefficients ---------------------------------------------------------------------------


def cov(m: Any, y: Any = None, rowvar: bool = True, bias: bool = False, ddof: Any = None) -> Any:
    """The covariance matrix of the variables in ``m`` (and ``y``), like ``np.cov`` without weights."""
    from .reductions import mean
    from .shape import atleast_2d

    X = atleast_2d(m)
    if not rowvar and X.shape[0] != 1:
        X = _mT(X)
    if y is not None:
        Y = atleast_2d(y)
        if not rowvar and Y.shape[0] != 1:
            Y = _mT(Y)
        X = concatenate([X, Y], axis=0)
    if ddof is None:
        ddof = 0 if bias else 1
    n = X.shape[1] - ddof
    Xc = subtract(X, mean(X, 1, True))
    c = divide(matmul(Xc, _mT(conj(Xc) if _is_complex(Xc) else Xc)), n)  # Xc Xcᴴ
    return reshape(c, ()) if c.shape == (1, 1) else c


def corrcoef(x: Any, y: Any = None, rowvar: bool = True) -> Any:
    """Pearson correlation coefficients (``np.corrcoef``)."""
    from .elementwise import real, sqrt
    from .shape import diagonal

    c = cov(x, y, rowvar)
    if c.ndim == 0:
        return divide(c, c)
    d = diagonal(c)
    s = sqrt(real(d) if _is_complex(d) else d)
    return divide(divide(c, expand_dims(s, -1)), expand_dims(s, 0))


register("cov", None, cov, formula="Xc Xcᵀ/(N − ddof) with Xc = X − mean: recorded ops")
register("corrcoef", None, corrcoef, formula="cov / (σᵢ σⱼ): recorded ops")


class LstsqResult(NamedTuple):
    x: Any
    residuals: Any
    rank: Any
    singular_values: Any


def lstsq(a: Any, b: Any, rcond: Any = None) -> LstsqResult:
    """``np.linalg.lstsq``: x = A⁺b (recorded), the residual sums of squares when A has full column rank and
    more rows than columns, the rank (an int) and A's singular values (recorded)."""
    a, b = as_array(a), as_array(b)
    xp = namespace(a)
    m, n = a.shape[-2], a.shape[-1]
    s = svdvals(a)
    sv = xp.asarray(s)
    cut = (builtins.max(m, n) * np.finfo(a.dtype).eps if rcond is None else rcond) * (sv.max() if sv.size else 0)
    rank = int(xp.sum(sv > cut))
    x = matmul(pinv(a, cut / sv.max() if sv.size and sv.max() else None), b)
    if rank == n and m > n:
        r = subtract(b, matmul(a, x))
        res = _sum(real(multiply(r, conj(r))) if _is_complex(r) else multiply(r, r), axis=0)  # Σ|r|²
        if b.ndim == 1:
            res = reshape(res, (1,))
    else:
        res = xp.zeros((0,), dtype=a.dtype)
    return LstsqResult(x, res, rank, s)


register("linalg.lstsq", None, lstsq, formula="x = A⁺b, residuals Σ(b − Ax)², singular values: recorded ops")


# -- polynomials (coefficients highest power first, as NumPy's poly* functions) -------------------------------------


def _poly_pad(p: Any, n: int) -> Any:
    from .shape import pad

    p = p if is_array(p) else np.asarray(p, dtype=float)
    return p if p.shape[0] == n else pad(p, (n - p.shape[0], 0))


def polyadd(a1: Any, a2: Any) -> Any:
    """The sum of two polynomials."""
    n = builtins.max(np.shape(a1)[0], np.shape(a2)[0])
    return add(_poly_pad(a1, n), _poly_pad(a2, n))


def polysub(a1: Any, a2: Any) -> Any:
    """The difference of two polynomials."""
    n = builtins.max(np.shape(a1)[0], np.shape(a2)[0])
    return subtract(_poly_pad(a1, n), _poly_pad(a2, n))


def polymul(a1: Any, a2: Any) -> Any:
    """The product of two polynomials (a convolution of their coefficients). Leading zero coefficients are
    dropped first, as NumPy's ``polymul`` does (it makes ``poly1d``s of its arguments)."""
    return convolve(_trim_leading_zeros(a1), _trim_leading_zeros(a2))


def _trim_leading_zeros(p: Any) -> Any:
    """``p`` without its leading zeros (one coefficient kept), as ``np.poly1d`` keeps it: a recorded slice."""
    p = as_array(p)
    if p.ndim != 1:
        return p
    nonzero = np.flatnonzero(to_numpy(p) != 0)
    first = int(nonzero[0]) if nonzero.size else builtins.max(p.shape[0] - 1, 0)
    return getitem(p, slice(first, None)) if first else p


def polyder(p: Any, m: int = 1) -> Any:
    """The ``m``-th derivative of a polynomial."""
    p = p if is_array(p) else np.asarray(p, dtype=float)
    for _ in range(m):
        n = p.shape[0] - 1
        if n <= 0:  # the derivative of a constant: no coefficients, as NumPy's
            return getitem(p, slice(0, 0))
        p = multiply(getitem(p, slice(0, n)), namespace(p).arange(n, 0, -1, dtype=p.dtype))
    return p


def polyint(p: Any, m: int = 1, k: Any = None) -> Any:
    """The ``m``-th antiderivative of a polynomial, integration constants ``k`` (default 0)."""
    p = p if is_array(p) else np.asarray(p, dtype=float)
    ks = [0.0] * m if k is None else list(np.atleast_1d(k)) if not is_array(k) else [getitem(k, i) for i in range(m)]
    if len(ks) == 1 and m > 1:
        ks = ks * m
    for i in range(m):
        n = p.shape[0]
        q = divide(p, namespace(p).arange(n, 0, -1, dtype=p.dtype))
        c = ks[i]
        c = reshape(c, (1,)) if is_array(c) else namespace(p).asarray([c], dtype=p.dtype)
        p = concatenate([q, c])
    return p


def polyfit(x: Any, y: Any, deg: int) -> Any:
    """Least-squares polynomial coefficients (highest power first), differentiable in ``x`` and ``y``."""
    from .shape import vander

    return matmul(pinv(vander(x, deg + 1)), y)  # lstsq's solution, without its residuals


register("polyadd", None, polyadd, formula="coefficients added (shorter padded at the front)")
register("polysub", None, polysub, formula="coefficients subtracted (shorter padded at the front)")
register("polymul", None, polymul, formula="a convolution of the coefficients")
register("polyder", None, polyder, formula="coefficients times their powers: a recorded product")
register("polyint", None, polyint, formula="coefficients over their powers, then the constant: recorded ops")
register("polyfit", None, polyfit, formula="pinv(vander(x, deg + 1)) y: recorded ops")


def poly(seq_of_zeros: Any) -> Any:
    """The monic polynomial with the given (real) roots, highest power first: a chain of convolutions."""
    r = seq_of_zeros if is_array(seq_of_zeros) else np.asarray(seq_of_zeros, dtype=float)
    if r.ndim != 1:
        raise ShapeError(f"poly({shape_str(r)}): give a 1-d array of roots (the characteristic polynomial of a "
                         "matrix has complex roots in general)")
    xp = namespace(r)
    p = xp.ones(1, dtype=r.dtype)
    for i in range(r.shape[0]):
        factor = concatenate([xp.ones(1, dtype=r.dtype), negative(reshape(getitem(r, i), (1,)))])
        p = convolve(p, factor)
    return p


register("poly", None, poly, formula="Π (x − rᵢ) by recorded convolutions")
