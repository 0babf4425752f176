"""``Optimizer``: parameter groups of (param, grad) pairs, updated in place.

Takes what PyTorch's take — ``model.parameters()``, a list of groups
(``[{"params": ..., "lr": ...}]``) — plus a course-style model with a
``layers`` list whose layers hold ``W``/``dW`` and ``b``/``db``.

There is no ``.grad`` attribute on a NumPy array, so each parameter travels
with its gradient array: backward fills the gradient in place, ``step()``
reads it and updates the parameter in place. Per-parameter buffers live in
``self.state`` keyed by ``id(param)`` (the groups keep every parameter alive,
so an id is never reused while the optimiser exists).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ..autograd_engine import is_constant, mark_modified
from ..backends import namespace, to_numpy
from ..errors import NoGradientError, NoGradientWarning, OptimizerError, UnsupportedError, shape_str, user_stacklevel
from ..nn.module import NamedPair, param_grads

Pair = tuple[Any, Any]


def _pairs(params: Any, who: str) -> list[Pair]:
    """(param, grad) pairs, each carrying its name, read by ``nn.param_grads`` (Modules, course models, pairs)."""
    return [NamedPair((p, g), name) for name, p, g in param_grads(params, who)]


_BLOCK = 1 << 14  # the largest step of the all-zero scan


def _all_zero(g: np.ndarray) -> bool:
    if g.size == 0 or g.item(0) or g.item(-1):
        return False
    if not g.flags.c_contiguous:
        return not g.any()
    flat = g.reshape(-1)
    i, step, n = 0, 256, flat.size
    while i < n:  # blocks growing 4× up to _BLOCK: a nonzero near the start is found by a small read
        if flat[i : i + step].any():
            return False
        i += step
        step = min(4 * step, _BLOCK)
    return True


def _no_gradient(grads: list[Any]) -> list[bool]:
    """For each gradient array: is it all zeros (nothing reached its parameter)?

    NumPy: the first and last entries settle most arrays in O(1); the others are scanned
    a block at a time up to the first nonzero block (a ReLU layer's weight gradient has
    zero rows for the units a small batch left inactive, often its first and last).
    Other libraries: one transfer for all.
    """
    if all(type(g) is np.ndarray for g in grads):
        return [_all_zero(g) for g in grads]
    xp = namespace(grads[0])
    anys = to_numpy(xp.stack([xp.any(g) for g in grads]))
    return [g.size > 0 and not bool(a) for g, a in zip(grads, anys)]


class Optimizer:
    """Base class: ``param_groups``, per-parameter ``state``, ``zero_grad``, ``step``, state dicts.

    Subclasses set their hyper-parameter defaults and implement ``_step_group(group)``,
    the update of one parameter group.
    """

    #: what ``step()`` does when parameters got no gradient since the last step: "warn", "error" or None
    check_gradients: str | None = "warn"

    def __init__(self, params: Any, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self.state: dict[int, dict[str, Any]] = {}  # id(param) -> its buffers
        self.param_groups: list[dict[str, Any]] = []
        if hasattr(params, "parameters") or hasattr(params, "layers"):
            groups: list[Any] = [{"params": params}]
        else:
            items = list(params)
            if items and all(isinstance(g, dict) for g in items):
                groups = items
            else:
                groups = [{"params": items}]
        for g in groups:
            self.add_param_group(g)
        if not any(g["params"] for g in self.param_groups):
            raise OptimizerError(f"{type(self).__name__}: got an empty parameter list")

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (``{"params": ..., "lr": ...}``); unset hyper-parameters take the defaults."""
        who = type(self).__name__
        if "params" not in param_group:
            raise OptimizerError(f"{who}.add_param_group: the group has no 'params' entry")
        group = {**self.defaults, **{k: v for k, v in param_group.items() if k != "params"}}
        pairs = _pairs(param_group["params"], who)
        seen: set[int] = set()
        unique = []
        for pair in pairs:  # a parameter listed twice in one group would be updated twice
            if id(pair[0]) not in seen:
                seen.add(id(pair[0]))
                unique.append(pair)
        existing = {id(p) for g in self.param_groups for p, _ in g["params"]}
        if seen & existing:
            raise OptimizerError(f"{who}.add_param_group: some parameters appear in more than one parameter group")
        group["params"] = unique
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = False) -> None:
        """Zero every gradient array in place.

        The arrays stay bound to their parameters (backward writes into them), so
        ``set_to_none`` is accepted for PyTorch compatibility and also zeroes.
        """
        for group in self.param_groups:
            for _, grad in group["params"]:
                grad[...] = 0

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter from its gradient array; returns ``closure()`` if given."""
        loss = closure() if closure is not None else None
        if self.check_gradients:
            self._check_gradients()
        for group in self.param_groups:
            self._step_group(group)
            for p, _ in group["params"]:
                mark_modified(p)  # a tape recorded before this step can no longer backpropagate into p
        self._opt_called = True  # lets a scheduler warn when it is stepped first (as PyTorch does)
        return loss

    def _check_gradients(self) -> None:
        """Warn (or raise) naming the parameters whose gradient array is all zeros: nothing reached them.

        A frozen parameter is left out of the optimiser (or marked ``new_grad.constant``)
        and is not checked. The classic cause is plain NumPy between recorded ops
        (``out = lin(x) * 2.0``): the gradient stops there.
        """
        pairs = [pair for g in self.param_groups for pair in g["params"] if not is_constant(pair[0])]
        if not pairs:
            return
        missing = [pair for pair, none in zip(pairs, _no_gradient([g for _, g in pairs])) if none]
        if not missing:
            return
        names = ", ".join(getattr(pair, "name", "") or shape_str(pair[0]) for pair in missing)
        who = f"{type(self).__name__}.step()"
        if len(missing) == len(pairs):
            msg = f"{who}: none of the {len(pairs)} parameters got a gradient in this step"
        else:
            msg = f"{who}: {len(missing)} of the {len(pairs)} parameters got no gradient in this step"
        msg += (
            f" (all-zero gradient: {names}). If the loss should depend on them, its gradient stopped on the way: "
            "was something computed with plain NumPy between recorded ops (x * 2.0, x.T, x + b on arrays), or "
            "outside `with engine:`? Use new_grad's ops (new_grad.multiply, transpose, add) so every step is "
            "recorded. A parameter you mean to freeze: leave it out of the optimiser."
        )
        if self.check_gradients == "error":
            raise NoGradientError(msg)
        warnings.warn(msg, NoGradientWarning, stacklevel=user_stacklevel())

    def _step_group(self, group: dict[str, Any]) -> None:
        raise UnsupportedError(
            f"{type(self).__name__} does not implement _step_group; an Optimizer subclass must define "
            "_step_group(group), the update of one parameter group"
        )

    def _index(self) -> list[Pair]:
        return [pair for g in self.param_groups for pair in g["params"]]

    # -- state dicts -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``{"state": {i: buffers}, "param_groups": [hyper-parameters + "params": [i, ...]]}``, like PyTorch.

        Parameters are numbered by position across the groups; arrays are copies.
        """
        index = {id(p): i for i, (p, _) in enumerate(self._index())}
        groups = [
            {
                **{k: copy.deepcopy(v) for k, v in g.items() if k != "params"},
                "params": [index[id(p)] for p, _ in g["params"]],
            }
            for g in self.param_groups
        ]
        state = {
            index[k]: {n: (v.copy() if hasattr(v, "copy") else v) for n, v in s.items()}
            for k, s in self.state.items()
            if k in index
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyper-parameters and buffers saved by ``state_dict()`` (parameters matched by position).

        Buffers are copied onto each parameter's array library and dtype, as PyTorch
        casts them to the parameter's device and dtype.
        """
        who = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise OptimizerError(f"{who}: expected a dict with 'state' and 'param_groups', as state_dict() returns")
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
            len(a["params"]) != len(b["params"]) for a, b in zip(groups, self.param_groups)
        ):
            raise OptimizerError(
                f"{who}: the saved optimiser has {[len(g['params']) for g in groups]} parameters per group, "
                f"this one {[len(g['params']) for g in self.param_groups]}; build it over the same parameters"
            )
        pairs = self._index()
        saved_order = [int(i) for g in groups for i in g["params"]]
        by_saved = dict(zip(saved_order, pairs))  # saved index -> this optimiser's pair at that position
        new_state: dict[int, dict[str, Any]] = {}
        for i, buffers in state_dict["state"].items():
            if int(i) not in by_saved:
                raise OptimizerError(f"{who}: state for parameter {i}, which no saved group lists")
            p = by_saved[int(i)][0]
            restored = {}
            for name, v in buffers.items():
                if name == "step":  # a count, kept as a Python float like PyTorch's step.item()
                    v = float(v)
                elif hasattr(v, "shape"):
                    if tuple(v.shape) != tuple(p.shape):
                        raise OptimizerError(
                            f"{who}: buffer {name!r} of parameter {i} is {shape_str(v)} but the parameter is "
                            f"{shape_str(p)}"
                        )
                    v = namespace(p).asarray(v, dtype=p.dtype).copy()
                else:
                    v = copy.deepcopy(v)
                restored[name] = v
            new_state[id(p)] = restored
        for saved, group in zip(groups, self.param_groups):
            for k, v in saved.items():
                if k != "params":
                    group[k] = copy.deepcopy(v)
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        lines.append(")")
        return "\n".join(lines)


def _lerp(start: Any, end: Any, weight: float) -> Any:
    """``start + weight·(end − start)``, in place on ``start``, in PyTorch's two-branch form."""
    if abs(weight) < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1 - weight)
    return start


def _check(who: str, defaults: dict[str, Any], *names: str) -> None:
    """Reject negative hyper-parameters with PyTorch's rule (each of ``names`` in ``defaults`` must be ≥ 0)."""
    for name in names:
        v = defaults[name]
        if not v >= 0.0:
            raise OptimizerError(f"{who}: invalid {name} {v!r}; it must be ≥ 0")


def _direction(p: Any, grad: Any, maximize: bool, weight_decay: float) -> Any:
    """The gradient an update rule starts from: negated to maximise, plus L2 weight decay ``wd·p``."""
    g = -grad if maximize else grad
    return g + weight_decay * p if weight_decay != 0 else g
