"""The package's layers depend only downwards, and only the command line prints."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "new_grad"
ENGINE = {"autograd_engine", "utils", "errors", "backend", "backends", "tape_view", "tape_html"}


def _imports(path: Path) -> set[str]:
    """The new_grad modules a file imports (relative imports resolved to top-level names)."""
    rel = path.relative_to(PKG).with_suffix("").parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(rel[: len(rel) - node.level])
            target = base + (node.module.split(".") if node.module else [])
            if target:
                found.add(target[0])
            else:  # `from . import x` at the package root
                found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("new_grad"):
            found.add((node.module.split(".") + [""])[1])
    return found


def _files(*parts: str) -> list[Path]:
    return sorted(p for part in parts for p in ([PKG / f"{part}.py"] if (PKG / f"{part}.py").exists() else (PKG / part).rglob("*.py")))


@pytest.mark.parametrize("path", _files(*ENGINE), ids=lambda p: p.name)
def test_engine_imports_nothing_above_it(path):
    assert _imports(path) <= ENGINE, f"{path.name} imports {_imports(path) - ENGINE}"


# One known upward edge: the fused recurrent ops differentiate their unrolled form with
# new_grad.vjp when a backward is itself recorded (create_graph); first order never takes it.
UPWARD = {"recurrent.py": {"transforms"}}


@pytest.mark.parametrize("path", _files("ops"), ids=lambda p: p.name)
def test_ops_import_only_the_engine(path):
    allowed = ENGINE | {"ops"} | UPWARD.get(path.name, set())
    assert _imports(path) <= allowed, f"ops/{path.name} imports {_imports(path) - allowed}"


@pytest.mark.parametrize("path", _files("nn"), ids=lambda p: p.name)
def test_nn_imports_no_cli_data_or_optim(path):
    assert not _imports(path) & {"cli", "data", "optim", "distributed"}


@pytest.mark.parametrize("path", _files("optim", "data"), ids=lambda p: str(p.relative_to(PKG)))
def test_optim_and_data_do_not_import_cli_or_each_other(path):
    layer = path.relative_to(PKG).parts[0]
    other = {"optim": "data", "data": "optim"}[layer]
    assert not _imports(path) & {"cli", other}


def test_only_the_command_line_prints():
    offenders = []
    for path in PKG.rglob("*.py"):
        if path.relative_to(PKG).parts[0] in ("cli", "__main__.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                offenders.append(f"{path.relative_to(PKG)}:{node.lineno}")
    assert not offenders, offenders
