"""Function transforms: ``grad``, ``value_and_grad``, ``vjp``, ``jvp``, ``jacobian``, ``hessian``, ``hvp``.

Each call runs the function on an engine of its own and reads the gradients out
of that engine's memory buffer, so the user's tapes are left alone::

    df = new_grad.grad(lambda x: new_grad.sum(new_grad.tanh(x)))
    df(x)                      # a plain array: 1 - tanh(x)**2

**Higher order.** When a transform runs while another engine is active (inside
``with engine:``, or inside an outer transform), the function's forward pass is
recorded on that *outer* engine, and the inner engine is a view of the part of
the outer tape the function just recorded. The inner backward then runs with
``create_graph=True``: every backward function is written with new_grad's own
ops, so the gradient computation itself lands on the outer tape, and the
outer engine can differentiate it again. ``grad(grad(f))``, ``hessian(f)`` and
``hvp(f, x, v)`` are all built this way; so is a gradient penalty inside a
training step (``with engine: loss = f(x) + sum(grad(g)(x) ** 2)``).

Inside a transform, build modules without a fixed engine (``Linear(3, 4)``) so
they record on the active one.

**Plain NumPy works here.** The function receives :class:`new_grad.traced.Traced`
values, whose operators, methods and NumPy functions are recorded as new_grad ops;
what cannot be differentiated raises. An output that does not depend on a
differentiated argument raises too, unless ``allow_unused=True``.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import traced as _tr
from .autograd_engine import STATE, Autograd, Operation, constant, is_constant
from .backends import is_array, namespace
from .errors import DtypeError, GradientError, ShapeError, UntrackedViewWarning, shape_str
from .traced import Traced

Argnums = int | Sequence[int]

__all__ = ["grad", "value_and_grad", "vjp", "jvp", "jacobian", "jacrev", "hessian", "hvp"]


# -- running a function on an engine of its own --------------------------------------------------


class _enable_grad:
    """Transforms work under ``no_grad()`` too (like ``torch.func``); their result is not recorded."""

    __slots__ = ("saved",)

    def __enter__(self) -> None:
        self.saved = STATE.no_grad_depth
        STATE.no_grad_depth = 0

    def __exit__(self, *exc: object) -> None:
        STATE.no_grad_depth = self.saved


def _as_tuple(argnums: Argnums) -> tuple[int, ...]:
    return (argnums,) if isinstance(argnums, int) else tuple(argnums)


def _prepare_input(who: str, i: int, x: Any, nested: bool) -> Any:
    """A fresh leaf for argument ``i`` (so repeated or constant arguments still get their own gradient)."""
    x = _tr.unwrap(x)  # a traced value of an outer transform: its array is on the outer tape
    if isinstance(x, bool) or (isinstance(x, (int, np.integer)) and not is_array(x)):
        raise DtypeError(
            f"{who}: argument {i} is the integer {x!r}; gradients need floating point inputs. "
            f"Pass {float(x)!r} (or an array of dtype float64/float32)."
        )
    if isinstance(x, (float, np.floating)) and not is_array(x):
        x = np.asarray(x, dtype=np.result_type(x, np.float32) if isinstance(x, np.floating) else np.float64)
        return x
    if not is_array(x):
        raise DtypeError(
            f"{who}: argument {i} is a {type(x).__name__}; only arrays (and Python floats) can be "
            "differentiated. Convert it with numpy.asarray(..., dtype=float)."
        )
    if x.dtype.kind not in "fc":
        raise DtypeError(
            f"{who}: argument {i} {shape_str(x)} has no gradient (dtype {x.dtype}); convert it with "
            "x.astype(numpy.float64) (or float32) to differentiate with respect to it"
        )
    if nested and not is_constant(x):
        from .ops.shape import identity

        return identity(x)  # recorded on the outer engine: the outer derivative flows through
    return x.copy() if nested else x.view()


def _prepare_tree(who: str, i: int, x: Any, nested: bool, leaves: list, deps: list) -> tuple[Any, Any]:
    """Prepare every array in ``x`` (an array, or lists/tuples/dicts of them); return it and its structure.

    The structure is ``x`` with each array replaced by its index in ``leaves``.
    """
    if isinstance(x, dict):
        pairs = {k: _prepare_tree(who, i, v, nested, leaves, deps) for k, v in x.items()}
        return {k: p[0] for k, p in pairs.items()}, {k: p[1] for k, p in pairs.items()}
    if isinstance(x, (list, tuple)) and type(x) is not Traced:
        pairs_l = [_prepare_tree(who, i, v, nested, leaves, deps) for v in x]
        return _rebuild(x, [p[0] for p in pairs_l]), _rebuild(x, [p[1] for p in pairs_l])
    leaves.append(_prepare_input(who, i, x, nested))
    deps.append(_tr.deps_of(x) | {id(leaves[-1])})  # a leaf depends on itself and on what its argument did
    return leaves[-1], len(leaves) - 1


def _rebuild(like: Any, items: list) -> Any:
    if isinstance(like, list):
        return items
    return type(like)(*items) if hasattr(like, "_fields") else type(like)(items)  # namedtuples too


def _flat(tree: Any) -> list:
    """The leaves of ``tree`` (lists, tuples, dicts), in :func:`_prepare_tree`'s order."""
    if isinstance(tree, dict):
        return [leaf for v in tree.values() for leaf in _flat(v)]
    if isinstance(tree, (list, tuple)):
        return [leaf for v in tree for leaf in _flat(v)]
    return [tree]


def _unflatten(struct: Any, flat: Sequence[Any]) -> Any:
    """``struct`` (from :func:`_prepare_tree`) with each leaf index replaced by ``flat[index]``."""
    if isinstance(struct, dict):
        return {k: _unflatten(v, flat) for k, v in struct.items()}
    if isinstance(struct, (list, tuple)):
        return _rebuild(struct, [_unflatten(v, flat) for v in struct])
    return flat[struct]


class _Trace:
    """``f`` run on a private engine: the output, the aux value, the engine, the leaves and their structure."""

    __slots__ = (
        "engine", "outer", "out", "aux", "leaves", "structs", "argnums", "outer_scope", "who", "out_deps", "deps",
        "_reached",
    )

    def __init__(
        self, engine: Autograd, outer: Autograd | None, out: Any, aux: Any, leaves: tuple, structs: tuple
    ) -> None:
        self.engine, self.outer, self.out, self.aux, self.leaves = engine, outer, out, aux, leaves
        self.structs = structs
        self.argnums: tuple[int, ...] = tuple(range(len(structs)))  # the argument each struct came from
        self.outer_scope = _tr.current_scope()  # results are traced values of the transform around this one
        self.who = ""
        self.out_deps: frozenset[int] = frozenset()  # the leaves the output was computed from
        self.deps: frozenset[int] = frozenset()  # what the transform's results depend on (for an outer one)
        self._reached: set[int] | None = None

    def per_argnum(self, flat: Sequence[Any]) -> tuple:
        """One result per differentiated argument, in that argument's shape (array or container)."""
        return tuple(_unflatten(s, flat) for s in self.structs)

    def unused(self) -> list[int]:
        """The leaves the output was not computed from (followed through every traced operation)."""
        return [j for j, x in enumerate(self.leaves) if id(x) not in self.out_deps]

    def result(self, x: Any, *more: Any) -> Any:
        """A result as the caller sees it: traced values when an outer transform is running."""
        return _tr.wrap(x, self.outer_scope, self.deps | _tr.deps_of(*more))


def _trace(who: str, f: Callable, args: tuple, kwargs: dict, argnums: tuple[int, ...], has_aux: bool) -> _Trace:
    """Run ``f(*args)`` so the ops it records can be backpropagated from its output.

    At top level ``f`` records on a fresh engine. Nested (another engine active),
    it records on the outer engine and the fresh engine gets a copy of that
    stretch of tape (see the module docstring). ``f`` receives traced values
    (:mod:`new_grad.traced`), so plain NumPy on them is recorded too.
    """
    for i in argnums:
        if not -len(args) <= i < len(args):
            raise ShapeError(f"{who}: argnums {argnums} out of range for {len(args)} positional arguments")
    positions = tuple(i % len(args) for i in argnums)
    for k, i in enumerate(positions):
        if i in positions[:k]:  # two leaves for one argument: the first would look unused
            raise ShapeError(f"{who}: argnums {argnums} name argument {i} twice; name each argument once")
    outer = STATE.engine
    nested = outer is not None
    inner = Autograd()
    host = outer if nested else inner
    args = list(args)
    leaves: list = []
    deps: list = []
    structs = []
    with host, _tr.scope(who) as sc:
        for i in argnums:
            _, struct = _prepare_tree(who, i, args[i], nested, leaves, deps)
            structs.append(struct)
        traced = [Traced(x, sc, d) for x, d in zip(leaves, deps)]
        for i, struct in zip(argnums, structs):
            args[i] = _unflatten(struct, traced)
        start = len(host.operation_list)  # the leaves' identity ops stay outside: their slots must survive
        if nested:
            res = f(*args, **kwargs)
        else:
            # On a private tape only the leaves' gradients are read; a plain view of an array the
            # function closed over (A.T for a constant A) loses nothing, so it is not worth a warning.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UntrackedViewWarning)
                res = f(*args, **kwargs)
        aux = None
        if has_aux:
            if not isinstance(res, (tuple, list)) or len(res) != 2:
                raise ShapeError(f"{who}: with has_aux=True the function must return a pair (output, aux)")
            res, aux = res
            aux = _tr.unwrap_tree(aux)
        out_deps = _tr.deps_of(res)
        out = _tr.unwrap(res) if type(res) is Traced else res
        if not is_array(out) and isinstance(out, (int, float, np.generic)):
            out = np.asarray(out)
        ops = host.operation_list
        tracked = is_array(out) and (host.memory_buffer.tracks(out) or any(out is x for x in leaves))
        if tracked and (len(ops) == start or ops[-1].output is not out):
            from .ops.shape import identity

            out = identity(out)  # backward starts at the last op: make the output that op
    if nested:
        tape = outer.operation_list[start:]
        mem = outer.memory_buffer.memory
        for op in tape:
            inner.operation_list.append(
                Operation(op.inputs, op.output, (None,) * len(op.inputs), op.backward_operation, op.name, op.needs)
            )
            for x in op.inputs:
                if is_array(x) and id(x) in mem:
                    inner.memory_buffer.add_spot(x)
            inner.memory_buffer.track(op.output)
    else:
        for op in inner.operation_list:  # gradients go to the buffer, never into a module's dW
            if any(u is not None for u in op.gradients_to_update):
                op.gradients_to_update = (None,) * len(op.inputs)
    t = _Trace(inner, outer, out, aux, tuple(leaves), tuple(structs))
    t.who = who
    t.argnums = positions
    t.out_deps = out_deps
    t.deps = out_deps.union(*deps)
    return t


def _connected(t: _Trace) -> bool:
    ops = t.engine.operation_list
    return bool(ops) and ops[-1].output is t.out


def _check_used(t: _Trace, allow_unused: bool) -> list[int]:
    """Raise unless every differentiated input reaches the output (or ``allow_unused``); the unused leaves."""
    unused = t.unused()
    if unused and not allow_unused:
        names = _leaf_names(t, unused)
        if len(unused) == len(t.leaves):
            why = (
                f"its output {shape_str(t.out)} was not computed from the inputs (a constant, arrays the "
                "function closed over, a value taken with x.detach() or computed under no_grad(), or one that went "
                "through a comparison or an integer cast)"
            )
        else:
            why = f"its output was not computed from {names}"
        raise GradientError(
            f"{t.who}: {why}, so the derivative would be zeros that say nothing. If that is expected (a "
            "function that ignores an argument), pass allow_unused=True to get zeros; otherwise look for a "
            "value that left new_grad (x.detach(), an integer cast, a comparison) on the way to the output."
        )
    return unused


def _leaf_names(t: _Trace, idx: list[int]) -> str:
    where = []
    for argnum, struct in zip(t.argnums, t.structs):
        flat = _flat(struct)
        hits = [j for j in flat if j in idx]
        if hits:
            where.append(f"argument {argnum}" + (f" ({len(hits)} of its {len(flat)} arrays)" if len(flat) > 1 else ""))
    return ", ".join(where) or "the inputs"


def _recording_engine(t: _Trace) -> Autograd | None:
    """The engine a backward through ``t`` is recorded on (for higher derivatives), or ``None``."""
    cur = STATE.engine
    return cur if cur is not None and cur is not t.engine else None


def _backward(t: _Trace, seed: Any, retain: bool, allow_unused: bool = False) -> tuple:
    """Backpropagate ``seed`` from the output; the gradient of every leaf (zeros only where allowed).

    An output computed from the inputs that is not on the tape (or a leaf the tape does
    not reach) is a derivative that came out constant — the gradient of a linear function
    differentiated again — and gets zeros.
    """
    eng = t.engine
    mem = eng.memory_buffer.memory
    _check_used(t, allow_unused)
    graph = _recording_engine(t)
    connected = _connected(t)
    if connected:
        if retain:  # a fresh pass: the engine resets intermediate slots, we reset the leaves
            for k in mem:
                mem[k] = None
        if graph is not None and graph is not t.outer:
            # A pullback called inside another transform: the forward is a constant there (its
            # primals were fixed when vjp ran); only the cotangent is a variable.
            with warnings.catch_warnings(), _tr.untraced():
                warnings.filterwarnings("ignore", message=r"backward\(create_graph=True\): the forward pass")
                eng.backward(seed, retain_graph=retain, create_graph=True)
        else:
            with _tr.untraced():  # backward functions that use transforms themselves get plain arrays
                eng.backward(seed, retain_graph=retain, create_graph=graph is not None)
    grads = []
    for x in t.leaves:
        g = mem.get(id(x)) if connected else None
        if g is None:
            g = namespace(x).zeros(x.shape, dtype=x.dtype)
        elif graph is None and not getattr(getattr(g, "flags", None), "writeable", True):
            g = g.copy()  # e.g. a read-only broadcast view: give the user an array they own
        grads.append(g)
    return tuple(grads)


def _scalar_output(who: str, out: Any) -> None:
    size = getattr(out, "size", None)
    if size != 1:
        raise ShapeError(
            f"{who}: the function must return a scalar (one element), got {shape_str(out)}; "
            "reduce it first (new_grad.sum / mean), or use new_grad.jacobian for vector outputs"
        )


def _check_float_out(who: str, out: Any) -> None:
    if not is_array(out) or out.dtype.kind not in "fc":
        raise DtypeError(f"{who}: the function returned {shape_str(out)}; it must return a float array")


# -- the transforms ---------------------------------------------------------------------------------


def value_and_grad(f: Callable, argnums: Argnums = 0, has_aux: bool = False, *, allow_unused: bool = False) -> Callable:
    """``f`` → a function returning ``(f(*args), ∂f/∂args[argnums])`` (``((value, aux), grad)`` with aux).

    ``f`` must return a scalar (one element). ``argnums`` is an int (one gradient)
    or a tuple (a tuple of gradients), as in JAX. An output that does not depend
    on a differentiated argument raises, unless ``allow_unused=True`` (then its
    gradient is zeros), as PyTorch's ``allow_unused``.
    """
    return _value_and_grad(f, argnums, has_aux, allow_unused, "value_and_grad")


def _value_and_grad(f: Callable, argnums: Argnums, has_aux: bool, allow_unused: bool, who: str) -> Callable:
    nums = _as_tuple(argnums)

    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with _enable_grad():
            t = _trace(who, f, args, kwargs, nums, has_aux)
            _check_float_out(who, t.out)
            _scalar_output(who, t.out)
            if t.out.dtype.kind == "c":
                raise DtypeError(
                    f"{who}: the function returned a complex scalar; a gradient is defined for a real output. "
                    "Return a real loss (new_grad.real, new_grad.abs of it), or use new_grad.vjp with a complex "
                    "cotangent"
                )
            seed = constant(namespace(t.out).ones(t.out.shape, dtype=t.out.dtype))
            grads = t.per_argnum(_backward(t, seed, retain=False, allow_unused=allow_unused))
        g = grads[0] if isinstance(argnums, int) else grads
        out = t.result(t.out)
        return ((out, t.result(t.aux)) if has_aux else out), t.result(g)

    return wrapped


def grad(f: Callable, argnums: Argnums = 0, has_aux: bool = False, *, allow_unused: bool = False) -> Callable:
    """``f`` → ``∂f/∂args[argnums]`` (JAX's ``grad``); nest it for higher derivatives: ``grad(grad(f))``."""
    vg = _value_and_grad(f, argnums, has_aux, allow_unused, "grad")

    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        value, g = vg(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return wrapped


def vjp(f: Callable, *primals: Any, allow_unused: bool = False) -> tuple[Any, Callable]:
    """``(f(*primals), vjp_fn)`` where ``vjp_fn(v)`` is ``vᵀ ∂f/∂primals`` (a tuple, one per primal).

    ``vjp_fn`` is differentiable wherever it is called: inside another transform
    (or ``with engine:``) its backward pass is recorded, so derivatives with respect
    to ``v`` (and, when ``vjp`` itself ran inside a transform, to the primals) flow.
    """
    nums = tuple(range(len(primals)))
    with _enable_grad():
        t = _trace("vjp", f, primals, {}, nums, False)
    _check_float_out("vjp", t.out)
    _check_used(t, allow_unused)

    def vjp_fn(v: Any) -> tuple:
        v_deps = _tr.deps_of(v)
        v = _tr.unwrap(v)
        seed = namespace(t.out).asarray(v, dtype=t.out.dtype)
        if _recording_engine(t) is None:
            seed = constant(seed.view())  # nothing records it: a constant
        if seed.shape != t.out.shape:
            raise ShapeError(f"vjp: cotangent {shape_str(seed)} must have the output's shape {shape_str(t.out)}")
        with _enable_grad():
            grads = t.per_argnum(_backward(t, seed, retain=True, allow_unused=True))
        return _tr.wrap(grads, _tr.current_scope(), t.deps | v_deps)

    return t.result(t.out), vjp_fn


def jvp(f: Callable, primals: Sequence[Any], tangents: Sequence[Any], *, allow_unused: bool = False) -> tuple[Any, Any]:
    """``(f(*primals), J·tangents)``: a Jacobian-vector (forward-mode) product, by the double-VJP trick.

    ``u ↦ vjp(u) = uᵀJ`` is linear in ``u``, so the gradient of ``⟨uᵀJ, t⟩`` with
    respect to ``u`` is ``J t``: two recorded backward passes, no forward mode needed.
    Both results are differentiable (with respect to the primals and the tangents)
    when ``jvp`` runs inside another transform, to any order.
    """
    from .ops.elementwise import add

    primals = tuple(primals)
    flat_p, flat_t = _flat(primals), _flat(tuple(tangents))
    if len(flat_p) != len(flat_t):
        raise ShapeError(f"jvp: {len(flat_p)} primal arrays but {len(flat_t)} tangents; give one tangent per primal")
    for i, (p, t) in enumerate(zip(flat_p, flat_t)):
        if np.shape(_tr.unwrap(t)) != np.shape(_tr.unwrap(p)):
            raise ShapeError(f"jvp: tangent {i} {shape_str(t)} must have the shape of primal {i} {shape_str(p)}")
    for i, (p, t) in enumerate(zip(flat_p, flat_t)):
        _check_real_direction("jvp", f"tangent {i}", p, t)
    out, pullback = vjp(f, *primals, allow_unused=allow_unused)
    plain_out = _tr.unwrap(out)

    def pairing(u: Any) -> Any:
        total = None
        for g, t in zip(_flat(pullback(u)), flat_t):
            term = _real_pairing(g, t)
            total = term if total is None else add(total, term)
        return total

    zeros = namespace(plain_out).zeros(plain_out.shape, dtype=plain_out.dtype)
    return out, grad(pairing, allow_unused=True)(zeros)


def jacobian(f: Callable, argnums: Argnums = 0, has_aux: bool = False, *, allow_unused: bool = False) -> Callable:
    """``f`` → its Jacobian, of shape ``out.shape + x.shape`` (JAX's ``jacrev``): one backward per output entry."""
    nums = _as_tuple(argnums)

    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with _enable_grad():
            t = _trace("jacobian", f, args, kwargs, nums, has_aux)
            _check_float_out("jacobian", t.out)
            _check_used(t, allow_unused)
            out = t.out
            xp = namespace(out)
            m = out.size
            rows: list[tuple] = []
            real_leaves = [x.dtype.kind != "c" for x in t.leaves]
            for j in range(m):
                seed = xp.zeros(m, dtype=out.dtype)
                seed[j] = 1
                row = _backward(t, constant(seed.reshape(out.shape)), retain=True, allow_unused=True)
                if out.dtype.kind == "c" and any(real_leaves):
                    # a real leaf gets ∂Re f_j from the seed 1 only; the seed i gives −∂Im f_j
                    seed[j] = 1j
                    im = _backward(t, constant(seed.reshape(out.shape)), retain=True, allow_unused=True)
                    row = tuple(_complex_row(r, i) if real else r for r, i, real in zip(row, im, real_leaves))
                rows.append(row)
            jac = t.per_argnum([_assemble([r[i] for r in rows], out, x) for i, x in enumerate(t.leaves)])
        res = t.result(jac[0] if isinstance(argnums, int) else jac)
        return (res, t.result(t.aux)) if has_aux else res

    return wrapped


jacrev = jacobian


def _complex_row(re_part: Any, minus_im_part: Any) -> Any:
    """∂f_j/∂x = ∂Re f_j/∂x + i·∂Im f_j/∂x for a real x (recorded when nested)."""
    from .ops.elementwise import multiply, subtract

    return subtract(re_part, multiply(minus_im_part, 1j))


def _assemble(rows: list, out: Any, x: Any) -> Any:
    """Stack the per-output-entry gradients into ``out.shape + x.shape`` (recorded when nested)."""
    shape = tuple(out.shape) + tuple(x.shape)
    xp = namespace(x)
    if STATE.engine is None or not rows:
        if not rows:
            return xp.zeros(shape, dtype=x.dtype)
        return xp.stack(rows).reshape(shape)
    from .ops.shape import reshape, stack

    return reshape(stack(rows), shape)  # recorded: an outer engine can differentiate the Jacobian


def hessian(f: Callable, argnums: int = 0, *, allow_unused: bool = False) -> Callable:
    """``f`` (scalar) → its Hessian, of shape ``x.shape + x.shape``: ``jacobian(grad(f))``.

    An affine ``f`` has a constant gradient and gets a zero Hessian; an ``f`` that
    ignores ``x`` raises unless ``allow_unused=True``.
    """
    if not isinstance(argnums, int):
        raise ShapeError("hessian: argnums must be one int (differentiate with respect to one argument)")
    hess = jacobian(grad(f, argnums, allow_unused=allow_unused), argnums, allow_unused=allow_unused)

    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        x = _tr.unwrap(args[argnums]) if -len(args) <= argnums < len(args) else None
        if is_array(x) and x.dtype.kind == "c":
            # the second derivatives of a real function of z = x + iy form a real 2n×2n matrix (x and y
            # mixed), which no complex n×n one holds: the Jacobian of the gradient keeps only ∂/∂x of it
            raise DtypeError(
                f"hessian: argument {argnums} {shape_str(x)} is complex; its Hessian is not a complex matrix. "
                "Use new_grad.hvp(f, z, v) for the second derivative along a complex direction v"
            )
        return hess(*args, **kwargs)

    return wrapped


def hvp(f: Callable, x: Any, v: Any, *args: Any, allow_unused: bool = False) -> Any:
    """The Hessian-vector product ``∇²f(x) · v`` without forming the Hessian (two backward passes).

    ``f(x, *args)`` must return a scalar; ``v`` has ``x``'s shape.
    """
    if getattr(v, "shape", np.shape(v)) != getattr(x, "shape", np.shape(x)):
        raise ShapeError(f"hvp: v {shape_str(v)} must have the shape of x {shape_str(x)}")
    _check_real_direction("hvp", "v", x, v)
    gf = grad(f, allow_unused=allow_unused)
    if is_array(v):
        v = constant(v.view())  # the direction is data, not a variable (a traced v stays a variable)

    def directional(x_: Any) -> Any:
        return _real_pairing(gf(x_, *args), v)

    return grad(directional, allow_unused=allow_unused)(x)


def _check_real_direction(who: str, what: str, x: Any, v: Any) -> None:
    """A real input moves along real directions only: a complex one would lose its imaginary part."""
    if np.iscomplexobj(_tr.unwrap(v)) and not np.iscomplexobj(_tr.unwrap(x)):
        raise DtypeError(
            f"{who}: {what} {shape_str(v)} is complex but its input {shape_str(x)} is real; "
            "give a real direction, or make the input complex"
        )


def _real_pairing(g: Any, v: Any) -> Any:
    """``Re Σ g·v``: the derivative along ``v`` of the real function whose gradient is ``g``.

    With the convention of the complex gradient, ``g = ∂L/∂x − i·∂L/∂y``, the change
    of L along ``v`` is ``Re(g·v)`` (no conjugate); for real arrays it is ``Σ g·v``.
    """
    from .ops.elementwise import multiply, real
    from .ops.reductions import sum as _sum

    total = _sum(multiply(g, v))
    return real(total) if np.iscomplexobj(_tr.unwrap(total)) else total
