"""The memory buffer: where gradients live, beside the arrays (the course's ``MemoryBuffer``).

``memory`` maps a key per array object (its ``id``) to that array's gradient.
A slot may hold ``None``: a *lazy zero*, allocated only when a gradient arrives
(or when somebody asks to read it). The buffer also keeps a reference to every
keyed array, so an ``id`` can never be reused by a new array while its slot
exists; two views of one buffer are two objects, hence two slots.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import DtypeError, ShapeError, UnknownArrayError, shape_str

_FLOAT64 = np.dtype(np.float64)


class MemoryBuffer:
    """Gradient slots keyed per array object (the course's original API).

    ``memory`` (key -> gradient or ``None``) is the course's field. ``tracked`` (key ->
    array) holds every array with a slot and every recorded output, so their ids stay
    unique; :meth:`track`, :meth:`tracks` and :meth:`arrays` are how code outside the
    engine reads it.
    """

    __slots__ = ("memory", "tracked")

    def __init__(self) -> None:
        self.memory: dict[int, Any] = {}
        self.tracked: dict[int, Any] = {}  # key -> array: keeps ids unique while slotted or recorded

    def track(self, np_array: Any) -> None:
        """Remember ``np_array`` (a recorded output) without giving it a slot."""
        self.tracked[id(np_array)] = np_array

    def tracks(self, np_array: Any) -> bool:
        """Is ``np_array`` an input with a slot or a recorded output of this buffer's tape?"""
        return self.tracked.get(id(np_array)) is np_array

    def arrays(self) -> list[Any]:
        """Every array this buffer keeps (slotted inputs and recorded outputs)."""
        return list(self.tracked.values())

    @staticmethod
    def get_memory_loc(np_array: Any) -> int:
        """The slot key of an array: its identity, not its data address (views differ)."""
        return id(np_array)

    def is_in_memory(self, np_array: Any) -> bool:
        return id(np_array) in self.memory

    def add_spot(self, np_array: Any) -> None:
        """Give ``np_array`` a (lazy zero) slot unless it has one."""
        k = id(np_array)
        if k not in self.memory:
            self.memory[k] = None
            self.tracked[k] = np_array

    def update_param(self, np_array: Any, gradient: Any) -> None:
        """Accumulate ``gradient`` into the slot of ``np_array``; ``None`` is a no-op."""
        if gradient is None:
            return
        k = id(np_array)
        if k not in self.memory:
            self.add_spot(np_array)
        if getattr(gradient, "shape", None) != np_array.shape:
            raise ShapeError(
                f"update_param: gradient {shape_str(gradient)} does not match its array "
                f"{shape_str(np_array)}; undo broadcasting before accumulating"
            )
        cur = self.memory[k]
        self.memory[k] = gradient if cur is None else cur + gradient

    def get_param(self, np_array: Any) -> Any:
        """The gradient of ``np_array`` (zeros if its slot is still lazy)."""
        k = id(np_array)
        try:
            g = self.memory[k]
        except KeyError:
            if getattr(getattr(np_array, "dtype", None), "kind", "f") not in "fc":
                raise DtypeError(
                    f"get_param: array {shape_str(np_array)} has an integer/boolean dtype, so it never gets a "
                    "gradient (ops treat it as a constant); make it a float array (astype(numpy.float64)) "
                    "before the forward pass to differentiate with respect to it"
                ) from None
            raise UnknownArrayError(
                f"get_param: array {shape_str(np_array)} has no slot in the memory buffer; it was "
                "never an input of a recorded op (or its slot was freed by backward: pass "
                "retain_graph=True to keep intermediate gradients)"
            ) from None
        if g is None:
            from .backends import namespace

            g = namespace(np_array).zeros(np_array.shape, dtype=slot_dtype(np_array))
            self.memory[k] = g
        return g

    def set_param(self, np_array: Any, gradient: Any) -> None:
        """Overwrite the slot of ``np_array`` with ``gradient``."""
        k = id(np_array)
        self.memory[k] = gradient
        self.tracked[k] = np_array

    def clear(self) -> None:
        self.memory = {}
        self.tracked = {}

    def __len__(self) -> int:
        return len(self.memory)


def slot_dtype(np_array: Any) -> Any:
    """The dtype of an array's gradient: its own if float or complex, else float64.

    An integer or boolean array slotted by the raw door (``add_operation``) gets a float
    gradient, as in the course's buffer: cast to the array's dtype it would be truncated.
    """
    dtype = np_array.dtype
    return dtype if dtype.kind in "fc" else _FLOAT64


GradientBuffer = MemoryBuffer  # the name later versions of the course's handouts use
