"""The tape as text: a table for the terminal and a Graphviz DOT graph (the teaching window)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import shape_str

if TYPE_CHECKING:
    from .autograd_engine import Autograd


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


def tape_rows(engine: Autograd) -> list[tuple[str, ...]]:
    """One row per operation: index, op, input shapes, output shape, dtype, bytes held."""
    rows = []
    for i, op in enumerate(engine.operation_list):
        arrays = [x for x in op.inputs if hasattr(x, "nbytes")] + [op.output]
        held = sum(_nbytes(x) for x in {id(a): a for a in arrays}.values())
        ins = ", ".join(_shape(x) for x in op.inputs)
        dtype = str(getattr(op.output, "dtype", ""))
        rows.append((str(i), op.name, ins, _shape(op.output), dtype, human_bytes(held)))
    return rows


def format_tape(engine: Autograd) -> str:
    """A plain-text table of the operation list with totals."""
    head = ("#", "op", "inputs", "output", "dtype", "held")
    rows = tape_rows(engine)
    if not rows:
        state = "consumed by backward" if engine._consumed else "empty"
        return f"Autograd tape: {state} ({len(engine.memory_buffer.memory)} gradient slots)"
    widths = [max(len(r[c]) for r in [head, *rows]) for c in range(len(head))]
    widths[2] = min(widths[2], 48)

    def fmt(r: tuple[str, ...]) -> str:
        cells = [r[c] if len(r[c]) <= widths[c] else r[c][: widths[c] - 1] + "…" for c in range(len(r))]
        return "  ".join(
            cell.rjust(w) if c in (0, 5) else cell.ljust(w) for c, (cell, w) in enumerate(zip(cells, widths))
        ).rstrip()

    total = sum(_nbytes(a) for a in _tape_arrays(engine))
    grads = sum(_nbytes(g) for g in engine.memory_buffer.memory.values() if g is not None)
    lines = [fmt(head), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in rows]
    lines.append(
        f"{len(rows)} ops; arrays held by the tape: {human_bytes(total)}; gradient slots: "
        f"{len(engine.memory_buffer.memory)} ({human_bytes(grads)} allocated)"
    )
    return "\n".join(lines)


def _tape_arrays(engine: Autograd) -> list[Any]:
    seen: dict[int, Any] = {}
    for op in engine.operation_list:
        for x in (*op.inputs, op.output):
            if hasattr(x, "nbytes"):
                seen[id(x)] = x
    return list(seen.values())


def tape_to_dot(engine: Autograd) -> str:
    """Graphviz DOT: arrays are boxes (labelled by shape), ops are ellipses, in tape order."""
    lines = [
        "digraph tape {",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=10];',
    ]
    names: dict[int, str] = {}

    def node(x: Any) -> str:
        k = id(x)
        if k not in names:
            names[k] = f"a{len(names)}"
            lines.append(f'  {names[k]} [shape=box, label="{shape_str(x)}"];')
        return names[k]

    for i, op in enumerate(engine.operation_list):
        lines.append(f'  op{i} [shape=ellipse, style=filled, fillcolor="#dde8ff", label="#{i} {op.name}"];')
        for j, x in enumerate(op.inputs):
            if hasattr(x, "shape"):
                lines.append(f'  {node(x)} -> op{i} [label="{j}"];')
        lines.append(f"  op{i} -> {node(op.output)};")
    lines.append("}")
    return "\n".join(lines) + "\n"
