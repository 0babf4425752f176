"""The tape as text: a table for the terminal and a Graphviz DOT graph (the teaching window).

Each row is one :class:`Operation`: its index, the op, its inputs, its output's
shape and dtype, and the bytes the tape keeps alive for it. An input that an
earlier op produced is written ``#i (shape)``, so the table shows the graph:
follow the ``#`` references backwards and you are doing backpropagation.
Arguments that are not arrays (an axis, a flag) appear as ``name=value`` when
they differ from the op's default. Part of the engine layer: it imports nothing
of new_grad but the engine's own modules.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .autograd_engine import is_constant
from .errors import shape_str

if TYPE_CHECKING:
    from .autograd_engine import Autograd, Operation

_EMPTY = inspect.Parameter.empty


def _shape(x: Any) -> str:
    shape = getattr(x, "shape", None)
    if shape is None:
        return repr(x) if isinstance(x, (int, float, bool, type(None))) else type(x).__name__
    return "(" + ",".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _nbytes(x: Any) -> int:
    return int(getattr(x, "nbytes", 0))


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _short(value: Any, limit: int = 12) -> str:
    text = repr(value) if isinstance(value, (str, int, float, bool, type(None), tuple)) else type(value).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _arg_names(op: Operation) -> list[tuple[str, Any]]:
    """(name, default) of each input, from the backward's signature (it mirrors the forward's)."""
    try:
        params = list(inspect.signature(op.backward_operation).parameters.values())[1:]
    except (TypeError, ValueError):
        return []
    return [(p.name, p.default) for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) and type(a) is type(b) or (a is None and b is None)
    except Exception:
        return False


def _input_cells(op: Operation, producers: Mapping[int, int], names: Mapping[int, str] | None) -> str:
    """``#0 (8,32)``, ``fc1.W (32,64)``, ``(8,) int64``, ``reduction='sum'``: one op's inputs, in order."""
    sig = _arg_names(op)
    out_dtype = getattr(op.output, "dtype", None)
    cells = []
    for i, x in enumerate(op.inputs):
        if hasattr(x, "shape") and hasattr(x, "dtype"):
            label = f"#{producers[id(x)]}" if id(x) in producers else (names or {}).get(id(x), "")
            if not label and is_constant(x):
                label = "const"
            cell = f"{label} {_shape(x)}".strip()
            if out_dtype is not None and x.dtype != out_dtype:
                cell += f" {x.dtype}"
            cells.append(cell)
            continue
        name, default = sig[i] if i < len(sig) else (None, _EMPTY)
        if default is not _EMPTY and _same(x, default):
            continue  # an argument left at its default says nothing
        cells.append(f"{name}={_short(x)}" if name else _short(x))
    return ", ".join(cells)


def _producers(engine: Autograd) -> dict[int, int]:
    """id(array) → index of the op that produced it (outputs of earlier ops)."""
    return {id(op.output): i for i, op in enumerate(engine.operation_list)}


def tape_rows(engine: Autograd, names: Mapping[int, str] | None = None) -> list[tuple[str, ...]]:
    """One row per operation: index, op, inputs, output shape, dtype, bytes held."""
    producers = _producers(engine)
    rows = []
    for i, op in enumerate(engine.operation_list):
        arrays = [x for x in op.inputs if hasattr(x, "nbytes")] + [op.output]
        held = sum(_nbytes(x) for x in {id(a): a for a in arrays}.values())
        local = {k: v for k, v in producers.items() if v < i}
        ins = _input_cells(op, local, names)
        dtype = str(getattr(op.output, "dtype", ""))
        rows.append((str(i), op.name, ins, _shape(op.output), dtype, human_bytes(held)))
    return rows


_STYLE = {"head": "1", "rule": "2", "index": "2", "op": "1;36", "total": "1", "ref": "33"}
_REF = re.compile(r"#\d+")


def _paint(text: str, style: str, color: bool) -> str:
    return f"\033[{_STYLE[style]}m{text}\033[0m" if color and text else text


def format_tape(
    engine: Autograd, names: Mapping[int, str] | None = None, color: bool = False, max_inputs_width: int = 60
) -> str:
    """A plain-text table of the operation list with totals.

    ``names`` maps ``id(array)`` to a label (``fc1.W``, ``x``) shown beside its shape;
    ``color`` adds ANSI styles for a terminal.
    """
    head = ("#", "op", "inputs", "output", "dtype", "held")
    rows = tape_rows(engine, names)
    if not rows:
        state = "consumed by backward" if engine.consumed else "empty"
        return f"Autograd tape: {state} ({len(engine.memory_buffer.memory)} gradient slots)"
    widths = [max(len(r[c]) for r in [head, *rows]) for c in range(len(head))]
    widths[2] = min(widths[2], max_inputs_width)
    right = (0, 5)

    def fmt_line(cells: list[str], styles: tuple[str | None, ...]) -> str:
        out = []
        for c, (cell, w) in enumerate(zip(cells, widths)):
            cell = cell if len(cell) <= w else cell[: w - 1] + "…"
            text = cell.rjust(w) if c in right else cell.ljust(w)
            if color and c == 2:  # the graph's edges: references to earlier ops stand out
                text = _REF.sub(lambda m: _paint(m.group(0), "ref", True), text)
            out.append(_paint(text, styles[c], color) if styles[c] else text)
        return "  ".join(out).rstrip()

    def fmt(r: tuple[str, ...], styles: tuple[str | None, ...] = (None,) * 6) -> str:
        """One row; a long inputs cell wraps at its commas onto continuation lines."""
        parts = _wrap(r[2], widths[2])
        lines = [fmt_line([r[0], r[1], parts[0], *r[3:]], styles)]
        lines += [fmt_line(["", "", more, "", "", ""], styles) for more in parts[1:]]
        return "\n".join(lines)

    total = sum(_nbytes(a) for a in _tape_arrays(engine))
    grads = sum(_nbytes(g) for g in engine.memory_buffer.memory.values() if g is not None)
    lines = [fmt(head, ("head",) * 6), _paint("  ".join("-" * w for w in widths), "rule", color)]
    lines += [fmt(r, ("index", "op", None, None, None, None)) for r in rows]
    lines.append(
        _paint(
            f"{len(rows)} ops; arrays held by the tape: {human_bytes(total)}; gradient slots: "
            f"{len(engine.memory_buffer.memory)} ({human_bytes(grads)} allocated)",
            "total",
            color,
        )
    )
    return "\n".join(lines)


def _wrap(text: str, width: int) -> list[str]:
    """Split ``a, b, c`` at its commas into lines of at most ``width`` characters (when possible)."""
    lines: list[str] = []
    for item in text.split(", "):
        if lines and len(lines[-1]) + 2 + len(item) <= width:
            lines[-1] += ", " + item
        else:
            if lines:
                lines[-1] += ","
            lines.append(item)
    return lines or [""]


def _tape_arrays(engine: Autograd) -> list[Any]:
    seen: dict[int, Any] = {}
    for op in engine.operation_list:
        for x in (*op.inputs, op.output):
            if hasattr(x, "nbytes"):
                seen[id(x)] = x
    return list(seen.values())


def _dot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def tape_to_dot(engine: Autograd, names: Mapping[int, str] | None = None) -> str:
    """Graphviz DOT: arrays are boxes (labelled by name and shape), ops are ellipses, in tape order.

    Leaves (parameters, data) are shaded apart from intermediates; the last output is outlined.
    """
    lines = [
        "digraph tape {",
        "  rankdir=LR;",
        '  graph [fontname="Helvetica", nodesep=0.25, ranksep=0.35];',
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=8, color="#555555"];',
    ]
    names = names or {}
    produced = _producers(engine)
    last = id(engine.operation_list[-1].output) if engine.operation_list else None
    ids: dict[int, str] = {}

    def node(x: Any) -> str:
        k = id(x)
        if k not in ids:
            ids[k] = f"a{len(ids)}"
            label = (_dot_escape(names[k]) + "\\n" if k in names else "") + _dot_escape(shape_str(x))
            if k in produced:
                style = 'style="rounded,bold", color="#c0392b"' if k == last else 'style=rounded'
            else:
                style = 'style="filled", fillcolor="#f3f3f3"'
            lines.append(f'  {ids[k]} [shape=box, {style}, label="{label}"];')
        return ids[k]

    for i, op in enumerate(engine.operation_list):
        lines.append(f'  op{i} [shape=ellipse, style=filled, fillcolor="#dde8ff", label="#{i} {_dot_escape(op.name)}"];')
        for j, x in enumerate(op.inputs):
            if hasattr(x, "shape"):
                lines.append(f'  {node(x)} -> op{i} [label="{j}"];')
        lines.append(f"  op{i} -> {node(op.output)};")
    lines.append("}")
    return "\n".join(lines) + "\n"
