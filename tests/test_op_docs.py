"""The generated op reference is complete, and the ops guide's examples run."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

import new_grad as ng
from new_grad.docs import render
from new_grad.ops._core import builtin_ops

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _listed(text: str) -> set[str]:
    return {m.removeprefix("new_grad.") for m in re.findall(r"`(new_grad\.[\w.]+|linalg\.[\w.]+)`", text)}


def test_generator_lists_every_op_with_a_formula():
    text = render()
    assert _listed(text) >= set(builtin_ops())
    for line in text.splitlines():
        if line.startswith("| `"):
            assert not line.rstrip().endswith("|  |"), f"no derivative formula: {line}"


def test_committed_reference_is_up_to_date():
    missing = sorted(set(builtin_ops()) - _listed((DOCS / "ops.md").read_text(encoding="utf-8")))
    assert not missing, f"docs/ops.md misses {missing}: regenerate it with `python -m new_grad.docs`"


def test_ops_guide_examples_run():
    code = re.findall(r"```python\n(.*?)```", (DOCS / "ops-guide.md").read_text(encoding="utf-8"), re.S)
    assert code
    scope: dict = {}
    np.random.seed(0)
    exec("\n".join(code), scope)  # the blocks build on each other, like a session
    np.testing.assert_allclose(scope["d3"], -np.cos(0.5), rtol=1e-12)
    assert scope["H"].shape == (4, 3, 4, 3)
    assert ng.gradcheck(lambda x: scope["softclip"](x, 2.0), scope["x"])


def test_higher_order_doc_example_runs():
    code = re.findall(r"```python\n(.*?)```", (DOCS / "higher-order.md").read_text(encoding="utf-8"), re.S)
    scope: dict = {}
    exec("\n".join(code), scope)
    x = scope["x"]
    np.testing.assert_allclose(scope["engine"].memory_buffer.get_param(x), -2 * np.tanh(x) * (1 - np.tanh(x) ** 2))
