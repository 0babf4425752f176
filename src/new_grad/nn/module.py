"""``Module``: parameters registered by assignment, each paired with its gradient array.

A parameter is a plain array; its gradient is another array of the same shape
that backward updates in place (the course's ``W``/``dW``). Modules record their
ops on the engine they were given, or on the active one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

from ..autograd_engine import STATE, Autograd, bind_gradient, bound_gradient, constant
from ..backends import is_array, namespace, to_device
from ..errors import ArgumentTypeError, DtypeError, OptimizerError, ShapeError, UnsupportedError, shape_str


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict`` returns, as PyTorch's: ``missing, unexpected = ...`` or ``.missing_keys``."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class NamedPair(tuple):
    """``(param, grad)`` that also carries the parameter's name (``Linear.W``): what ``parameters()`` yields.

    It unpacks like the plain pair optimisers have always taken; the name lets an
    optimiser say *which* parameter got no gradient.
    """

    name: str

    def __new__(cls, pair: Any, name: str = "") -> NamedPair:
        self = super().__new__(cls, pair)
        self.name = name
        return self


def _check_float_param(who: str, name: str, value: Any) -> None:
    if value.dtype.kind not in "fc":
        raise DtypeError(
            f"{who}: parameter {name} {shape_str(value)} has an integer/boolean dtype, which carries no "
            f"gradient; make it a float array (value.astype(numpy.float64), or float32)"
        )


def param_grads(params: Any, who: str, arrays: bool = False) -> list[tuple[str, Any, Any]]:
    """``(name, param, grad)`` for each parameter ``params`` names: the one place pairs are read.

    ``params`` is a Module (anything with ``parameters()``), a course-style model
    with a ``layers`` list whose layers hold ``W``/``dW`` and ``b``/``db``, or an
    iterable of ``(param, grad)`` pairs (``Module.parameters()`` names its pairs;
    others are named by position). With ``arrays=True`` (gradient clipping) bare
    gradient arrays are accepted too, as ``(name, None, grad)``. Optimisers,
    gradient clipping and distributed averaging all read parameters through here.
    """
    if hasattr(params, "parameters") and callable(params.parameters):
        items: list[Any] = list(params.parameters())
    elif hasattr(params, "layers"):  # the course's models: a list of layers with W/dW, b/db
        items = []
        for i, layer in enumerate(params.layers):
            for p, g in (("W", "dW"), ("b", "db")):
                if getattr(layer, p, None) is not None and getattr(layer, g, None) is not None:
                    items.append(NamedPair((getattr(layer, p), getattr(layer, g)), f"layers[{i}].{p} ({type(layer).__name__})"))
    elif hasattr(params, "shape"):
        if not arrays:
            raise OptimizerError(
                f"{who}: got a single array {shape_str(params)}; optimisers need (param, grad) pairs, "
                "e.g. model.parameters() or [(W, dW), (b, db)]"
            )
        items = [params]
    else:
        items = list(params)
    out = []
    for i, item in enumerate(items):
        if isinstance(item, tuple) and len(item) == 2:
            p, g = item
            name = getattr(item, "name", "") or f"parameter {i} {shape_str(p)}"
        elif arrays and hasattr(item, "shape"):
            out.append((f"gradient {i} {shape_str(item)}", None, item))
            continue
        else:
            raise OptimizerError(
                f"{who}: parameter {i} is a {type(item).__name__}; expected (param, grad) pairs such as "
                "model.parameters() or [(W, dW), (b, db)]" + (", or gradient arrays" if arrays else "")
            )
        if getattr(p, "shape", None) is None or getattr(g, "shape", None) != p.shape:
            raise OptimizerError(
                f"{who}: {name} is {shape_str(p)} but its gradient is {shape_str(g)}; "
                "each gradient array must have its parameter's shape"
            )
        _check_float_param(who, name, p)
        out.append((name, p, g))
    return out


def _engine_scope(forward: Any) -> Any:
    """Wrap a subclass's ``forward`` so its ops record on the module's engine when no other is active."""

    def scoped(self: Module, *args: Any, **kwargs: Any) -> Any:
        eng = self.__dict__.get("autograd_engine")
        if eng is None or STATE.engine is not None:  # the active engine wins over the module's own
            return forward(self, *args, **kwargs)
        with eng:
            return forward(self, *args, **kwargs)

    scoped.__wrapped__ = forward  # type: ignore[attr-defined]
    scoped.__doc__ = forward.__doc__
    scoped.__name__ = forward.__name__
    return scoped


_SHARED: dict[tuple, Any] = {}


def shared_constant(xp: Any, shape: tuple[int, ...], dtype: Any, fill: Any) -> Any:
    """A read-only constant filled with ``fill`` (``"causal"``: True above the diagonal), one per array library,
    shape, dtype and fill. Layers use it for what they would otherwise make afresh on each call (an omitted
    initial state, attention's padding): the same array every time, so a compiled step replays it by reference."""
    key = (id(xp), tuple(shape), np.dtype(dtype).str, fill)
    a = _SHARED.get(key)
    if a is None:
        a = xp.triu(xp.ones(shape, dtype=bool), 1) if fill == "causal" else xp.full(shape, fill, dtype=dtype)
        if isinstance(a, np.ndarray):
            a.setflags(write=False)
        a = _SHARED.setdefault(key, a)
    return constant(a)


def _check_loadable_dtype(owner: str, key: str, new: Any, cur: Any) -> None:
    """Refuse a value whose cast into ``cur`` would lose what it holds (float precision may change, as in PyTorch).

    A complex value into a real array drops its imaginary part, a float into an integer
    buffer truncates, a string or object does not convert at all: each is a checkpoint
    of another model or a corrupted one, so nothing is loaded.
    """
    got = getattr(new, "dtype", None)
    if got is None:  # a list or a number
        got = np.asarray(new).dtype
    target = cur.dtype.kind
    if got.kind not in {"f": "biuf", "c": "biufc", "i": "biu", "u": "bu", "b": "b"}.get(target, target):
        raise DtypeError(
            f"load_state_dict({owner}): {key} is {got} in the state dict but {cur.dtype} in the model, and the "
            "cast would lose values (an imaginary part, a fraction, or not a number at all); check that the state "
            "dict comes from the same model; nothing was loaded"
        )


class Module:
    """Base class of layers and models (PyTorch's ``nn.Module``, on plain arrays)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "forward" in cls.__dict__:
            cls.forward = _engine_scope(cls.__dict__["forward"])  # type: ignore[method-assign]

    def __init__(self, autograd_engine: Autograd | None = None) -> None:
        if autograd_engine is not None and not isinstance(autograd_engine, Autograd):
            raise ArgumentTypeError(
                f"{type(self).__name__}: autograd_engine is a {type(autograd_engine).__name__} ({autograd_engine!r:.40}), "
                "not a new_grad.Autograd; a PyTorch-style positional argument may have landed there: pass the "
                "layer's options by keyword, or leave autograd_engine out (the active engine records)"
            )
        d = self.__dict__
        d["_parameters"] = {}  # name -> gradient attribute name
        d["_buffers"] = {}  # name -> None (non-trainable state, e.g. running means)
        d["_modules"] = {}
        d["training"] = True
        d["autograd_engine"] = autograd_engine

    # -- registration ------------------------------------------------------------------------------
    def register_parameter(self, name: str, value: Any, grad_name: str | None = None) -> None:
        """Make ``value`` a parameter; its gradient array (zeros) is ``self.<grad_name>`` (``d<name>``)."""
        if value is None:
            self.__dict__[name] = None
            return
        grad_name = grad_name or "d" + name
        if is_array(value):
            _check_float_param(f"{type(self).__name__}.register_parameter", f"{type(self).__name__}.{name}", value)
        self.__dict__["_parameters"][name] = grad_name
        self.__dict__[name] = value
        grad = namespace(value).zeros_like(value)
        self.__dict__[grad_name] = grad
        bind_gradient(value, grad)

    def register_buffer(self, name: str, value: Any) -> None:
        """Non-trainable state saved in ``state_dict`` (running statistics): never gets a gradient."""
        self.__dict__["_buffers"][name] = None
        self.__dict__[name] = value

    def add_module(self, name: str, module: Module | None) -> None:
        """Register ``module`` under ``name`` (what assignment does, for names that aren't identifiers)."""
        if module is not None and not isinstance(module, Module):
            raise ArgumentTypeError(f"add_module({name!r}): {type(module).__name__} is not a Module; register Module instances only")
        if module is None:
            self.__dict__["_modules"].pop(name, None)
            self.__dict__[name] = None
            return
        self.__dict__["_modules"][name] = module
        self.__dict__[name] = module

    register_module = add_module

    def __setstate__(self, state: dict[str, Any]) -> None:
        """After ``copy.deepcopy`` or unpickling: bind each copied parameter to its copied gradient array.

        The binding lives beside the arrays (keyed by the parameter), so a copy would otherwise
        leave its ``dW`` at zero whatever backward computed.
        """
        self.__dict__.update(state)
        for pname, gname in self._parameters.items():
            p = state.get(pname)
            if p is not None:
                bind_gradient(p, state[gname])

    def __delattr__(self, name: str) -> None:
        d = self.__dict__
        for reg in ("_parameters", "_buffers", "_modules"):
            d[reg].pop(name, None)
        object.__delattr__(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        params = d.get("_parameters")
        if params is None:
            raise AttributeError("call Module.__init__() before assigning attributes")
        alias = getattr(type(self), name, None)
        if isinstance(alias, property):  # Linear.weight names W: assigning it must reach W, not shadow it
            if alias.fset is None:
                raise AttributeError(f"{type(self).__name__}.{name} is read-only")
            alias.fset(self, value)
            return
        if name in params:  # a new array for a parameter: keep its gradient bound to it
            if value is not None and not is_array(value):
                raise ArgumentTypeError(
                    f"{type(self).__name__}.{name} is a parameter; cannot assign a {type(value).__name__} to it. "
                    "Assign a float array (numpy.asarray(value, dtype=float)) or None"
                )
            if is_array(value):
                _check_float_param(type(self).__name__, f"{type(self).__name__}.{name}", value)
            grad = d[params[name]]
            shared = bound_gradient(value) if value is not None else None
            if shared is not None and shared.shape == value.shape:  # tied: one parameter, one gradient
                d[params[name]] = shared
                d[name] = value
                return
            if value is not None and getattr(value, "shape", None) != grad.shape:
                grad = namespace(value).zeros_like(value)
                d[params[name]] = grad
            d[name] = value
            if value is not None:
                bind_gradient(value, grad)
            return
        grad_of = {g: p for p, g in params.items()}
        if name in grad_of:  # a new gradient array for a parameter
            d[name] = value
            bind_gradient(d[grad_of[name]], value)
            return
        if isinstance(value, Module):
            d["_modules"][name] = value
        elif name in d["_modules"]:  # replacing a submodule: None removes it; anything else is a mistake
            if value is not None:
                raise ArgumentTypeError(
                    f"{type(self).__name__}.{name} is a submodule; cannot assign a {type(value).__name__} to it. "
                    f"Assign a Module, or None to remove it (or `del` it first to reuse the name)"
                )
            del d["_modules"][name]
        d[name] = value

    # -- calling -------------------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise UnsupportedError(f"{type(self).__name__} has no forward(); define forward(self, ...) in the Module subclass")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # -- traversal -----------------------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, m in self._modules.items():
            yield from m.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def children(self) -> Iterator[Module]:
        yield from self._modules.values()

    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield from self._modules.items()

    def apply(self, fn: Any) -> Module:
        """Call ``fn`` on every submodule, then on this one (e.g. a custom initialisation)."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, tuple[Any, Any]]]:
        """``(name, (param, grad))`` for every parameter, submodules included, each once."""
        seen: set[int] = set()
        for mname, m in self.named_modules(prefix):
            for pname, gname in m._parameters.items():
                p = m.__dict__[pname]
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mname}.{pname}" if mname else pname), (p, m.__dict__[gname])

    def parameters(self) -> Iterator[tuple[Any, Any]]:
        """Each parameter array with its gradient array (a :class:`NamedPair`): what optimisers take."""
        root = type(self).__name__
        for name, pair in self.named_parameters():
            mname, _, pname = name.rpartition(".")
            owner = self.get_submodule(mname) if mname else self
            label = f"{root}.{name}" if not mname else f"{name} ({type(owner).__name__})"
            yield NamedPair(pair, label)

    def get_submodule(self, target: str) -> Module:
        """The submodule at dotted path ``target`` (``""`` is this module)."""
        m = self
        for part in target.split(".") if target else ():
            m = m._modules[part]
        return m

    def named_buffers(self) -> Iterator[tuple[str, Any]]:
        for mname, m in self.named_modules():
            for b in m._buffers:
                if m.__dict__[b] is not None:
                    yield (f"{mname}.{b}" if mname else b), m.__dict__[b]

    def buffers(self) -> Iterator[Any]:
        for _, b in self.named_buffers():
            yield b

    # -- modes -----------------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        changed = False
        for m in self.modules():
            changed |= m.__dict__.get("training") != mode
            m.__dict__["training"] = mode
        if changed:  # a compiled step recorded in the other mode must not replay it
            from ..replay import note_mode_change

            note_mode_change()
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        """Zero every parameter's gradient array in place."""
        for _, g in self.parameters():
            g[...] = 0

    def to(self, device: str) -> Module:
        """Move parameters, their gradients and buffers to ``device`` ('cpu', 'gpu', ...), in place; returns self.

        Arrays shared by several modules (tied weights) stay shared. Create the optimiser after
        the move: it holds the arrays it was given.
        """
        moved: dict[int, Any] = {}

        def move(x: Any) -> Any:
            if id(x) not in moved:
                moved[id(x)] = (x, to_device(x, device))  # keep x alive so its id is not reused
            return moved[id(x)][1]

        for m in self.modules():
            d = m.__dict__
            for pname, gname in m._parameters.items():
                if d[pname] is None:
                    continue
                p, g = move(d[pname]), move(d[gname])
                d[pname], d[gname] = p, g
                bind_gradient(p, g)
            for bname in m._buffers:
                if is_array(d[bname]):
                    d[bname] = move(d[bname])
        return self

    def set_engine(self, autograd_engine: Autograd | None) -> Module:
        """Record this module and its submodules on ``autograd_engine``."""
        for m in self.modules():
            m.__dict__["autograd_engine"] = autograd_engine
        return self

    # -- state -----------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Parameters and buffers by dotted name (copies, so later steps don't change them)."""
        out: dict[str, Any] = {}
        for mname, m in self.named_modules():
            for name in [*m._parameters, *m._buffers]:
                v = m.__dict__[name]
                if v is not None:
                    out[f"{mname}.{name}" if mname else name] = v.copy()
        return out

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy ``state`` into the parameters and buffers in place; strict: keys must match exactly."""
        own: dict[str, tuple[Module, str]] = {}
        for mname, m in self.named_modules():
            for name in [*m._parameters, *m._buffers]:
                if m.__dict__[name] is not None:
                    own[f"{mname}.{name}" if mname else name] = (m, name)
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys {missing} (in the model, not in the state dict)")
            if unexpected:
                parts.append(f"unexpected keys {unexpected} (in the state dict, not in the model)")
            raise ShapeError(
                f"load_state_dict({type(self).__name__}): {'; '.join(parts)}. Check that the state dict "
                "comes from the same architecture, or pass strict=False to load the keys that match"
            )
        todo = [(k, m, name) for k, (m, name) in own.items() if k in state]
        for k, m, name in todo:  # check every shape and dtype before changing anything
            cur, new = m.__dict__[name], state[k]
            if tuple(np.shape(new)) != tuple(cur.shape):
                raise ShapeError(
                    f"load_state_dict({type(self).__name__}): {k} has shape {tuple(np.shape(new))} in the "
                    f"state dict but {tuple(cur.shape)} in the model; nothing was loaded"
                )
            _check_loadable_dtype(type(self).__name__, k, new, cur)
        for k, m, name in todo:
            cur = m.__dict__[name]
            cur[...] = namespace(cur).asarray(state[k], dtype=cur.dtype)  # in place: optimisers keep their arrays
        return IncompatibleKeys(missing, unexpected)

    # -- printing --------------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def num_parameters(self) -> int:
        return int(sum(p.size for p, _ in self.parameters()))

    def __repr__(self) -> str:
        head = f"{type(self).__name__}({self.extra_repr()})"
        if not self._modules:
            return head
        lines = [f"{type(self).__name__}("]
        for name, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            n = m.num_parameters()
            if not m._modules and n:
                sub += f"  [{n:,} parameters]"
            lines.append(f"  ({name}): {sub}")
        lines.append(f") [{self.num_parameters():,} parameters]")
        return "\n".join(lines)
