"""Containers: ``Sequential`` (a chain) and ``ModuleList`` (a registered list), as in PyTorch."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import numpy as np

from ..autograd_engine import Autograd
from ..errors import DtypeError, UnsupportedError
from .module import Module

_Seq = TypeVar("_Seq", bound="_ModuleSequence")


class _ModuleSequence(Module):
    """What Sequential and ModuleList share: numbered appends, length, iteration over the modules."""

    def append(self: _Seq, module: Module) -> _Seq:
        self.add_module(str(len(self._modules)), module)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())


class Sequential(_ModuleSequence):
    """Modules applied in order; each output is the next input.

    ``Sequential(a, b, c)`` names them ``0``, ``1``, ``2`` (the keys of ``state_dict``);
    ``Sequential(OrderedDict(conv=..., relu=...))`` uses the given names.
    """

    def __init__(self, *modules: Any, autograd_engine: Autograd | None = None, dtype: Any = None) -> None:
        super().__init__(autograd_engine)
        if len(modules) == 1 and isinstance(modules[0], (OrderedDict, dict)):
            for name, m in modules[0].items():
                self.add_module(str(name), m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)
        if dtype is not None:
            self._cast(np.dtype(dtype))

    def _cast(self, dtype: np.dtype) -> None:
        """Give every float parameter (with a new gradient array) and float buffer ``dtype``."""
        if dtype.kind != "f":
            raise DtypeError(f"Sequential(dtype={dtype}): parameters must be floating point; use float32 or float64")
        cast: dict[int, tuple[Any, Any, Any]] = {}  # id(old) -> (old, new, its gradient): tied stay tied
        for m in self.modules():
            for pname, gname in list(m._parameters.items()):
                p = m.__dict__[pname]
                if p is None or p.dtype.kind != "f" or p.dtype == dtype:
                    continue
                if id(p) in cast:  # a parameter tied to one cast already: share its new array and gradient
                    _, m.__dict__[pname], m.__dict__[gname] = cast[id(p)]
                    continue
                m.register_parameter(pname, p.astype(dtype), gname)
                cast[id(p)] = (p, m.__dict__[pname], m.__dict__[gname])  # p kept alive: its id stays unique
            for bname in m._buffers:
                b = m.__dict__[bname]
                if b is not None and getattr(b, "dtype", None) is not None and b.dtype.kind == "f":
                    m.__dict__[bname] = b.astype(dtype)

    def forward(self, x: Any) -> Any:
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, idx: int | slice) -> Any:
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            return Sequential(OrderedDict(list(self._modules.items())[idx]), autograd_engine=self.autograd_engine)
        return mods[idx]


class ModuleList(_ModuleSequence):
    """A list of modules whose parameters are registered (a plain list's would be invisible)."""

    def __init__(
        self, modules: Iterable[Module] | None = None, autograd_engine: Autograd | None = None, dtype: Any = None
    ) -> None:
        super().__init__(autograd_engine)
        if modules is not None:
            self.extend(modules)

    def _renumber(self, mods: list[Module]) -> None:
        for k in list(self._modules):
            del self.__dict__[k]
        self._modules.clear()
        for i, m in enumerate(mods):
            self.add_module(str(i), m)

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        mods = list(self._modules.values())
        mods.insert(index, module)
        self._renumber(mods)

    def __getitem__(self, idx: int | slice) -> Any:
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            return ModuleList(mods[idx], autograd_engine=self.autograd_engine)
        return mods[idx]

    def __setitem__(self, idx: int, module: Module) -> None:
        mods = list(self._modules.values())
        mods[idx] = module
        self._renumber(mods)

    def __delitem__(self, idx: int | slice) -> None:
        mods = list(self._modules.values())
        del mods[idx]
        self._renumber(mods)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise UnsupportedError("ModuleList has no forward(); iterate over it in your module's forward")
