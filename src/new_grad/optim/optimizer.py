"""``Optimizer``: parameter groups of (param, grad) pairs, updated in place.

Takes what PyTorch's take — ``model.parameters()``, a list of groups
(``[{"params": ..., "lr": ...}]``) — plus a course-style model with a
``layers`` list whose layers hold ``W``/``dW`` and ``b``/``db``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from ..errors import NewGradError

Pair = tuple[Any, Any]


def _pairs(params: Any) -> list[Pair]:
    if hasattr(params, "parameters") and callable(params.parameters):
        return list(params.parameters())
    if hasattr(params, "layers"):  # the course's models: a list of layers with W/dW, b/db
        out = []
        for layer in params.layers:
            for p, g in (("W", "dW"), ("b", "db")):
                if getattr(layer, p, None) is not None and getattr(layer, g, None) is not None:
                    out.append((getattr(layer, p), getattr(layer, g)))
        return out
    pairs = list(params)
    for item in pairs:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise NewGradError(
                f"optimizer: expected (param, grad) pairs such as model.parameters(), got {type(item).__name__}"
            )
    return pairs


class Optimizer:
    """Base class: ``param_groups``, per-parameter ``state``, ``zero_grad``, ``step``, state dicts."""

    def __init__(self, params: Any, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        groups: Iterable[Any]
        if isinstance(params, (list, tuple)) and params and isinstance(params[0], dict):
            groups = params
        else:
            groups = [{"params": params}]
        self.param_groups: list[dict[str, Any]] = []
        for g in groups:
            group = {**defaults, **{k: v for k, v in g.items() if k != "params"}}
            group["params"] = _pairs(g["params"])
            self.param_groups.append(group)
        if not any(g["params"] for g in self.param_groups):
            raise NewGradError(f"{type(self).__name__}: got an empty parameter list")
        for g in self.param_groups:
            g.setdefault("initial_lr", g["lr"])
        self.state: dict[int, dict[str, Any]] = {}  # id(param) -> its buffers

    def zero_grad(self) -> None:
        """Zero every gradient array in place (the arrays stay bound to their parameters)."""
        for group in self.param_groups:
            for _, grad in group["params"]:
                grad[...] = 0

    def step(self) -> None:
        raise NotImplementedError

    def _index(self) -> list[Pair]:
        return [pair for g in self.param_groups for pair in g["params"]]

    def state_dict(self) -> dict[str, Any]:
        """Hyper-parameters per group and the buffers per parameter, by position (like PyTorch)."""
        index = {id(p): i for i, (p, _) in enumerate(self._index())}
        groups = []
        for g in self.param_groups:
            groups.append({**{k: v for k, v in g.items() if k != "params"}, "params": [index[id(p)] for p, _ in g["params"]]})
        state = {index[k]: {n: (v.copy() if hasattr(v, "copy") else v) for n, v in s.items()} for k, s in self.state.items() if k in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        pairs = self._index()
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
            len(a["params"]) != len(b["params"]) for a, b in zip(groups, self.param_groups)
        ):
            raise NewGradError(
                f"{type(self).__name__}.load_state_dict: the saved optimiser has "
                f"{[len(g['params']) for g in groups]} parameters per group, this one "
                f"{[len(g['params']) for g in self.param_groups]}"
            )
        for saved, group in zip(groups, self.param_groups):
            for k, v in saved.items():
                if k != "params":
                    group[k] = v
        self.state = {}
        for i, s in state_dict["state"].items():
            p = pairs[int(i)][0]
            self.state[id(p)] = {n: copy.deepcopy(v) for n, v in s.items()}
