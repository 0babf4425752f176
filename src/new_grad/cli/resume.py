"""Checks on everything ``new-grad train --resume`` reads from a checkpoint, before any of it is used.

A checkpoint is a file: it may have been edited, damaged or written by another
version. Each value is checked for its type and range here, so that a bad one
ends in one line naming the file and the value — never in a traceback, a hang,
a gigantic allocation or a silently different run. Two stages:

* :func:`check_checkpoint` needs only the file (configuration, parameters,
  loop state) and runs before anything is built from it;
* :func:`check_fits` compares the optimiser's and scheduler's saved state with
  the live objects built from the configuration, just before they are restored.
"""

from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CheckpointError

EPOCH_KEYS = {"epoch", "train_loss", "train_error", "val_loss", "val_error", "lr", "seconds"}
ACC_KEYS = {"loss_sum", "wrong", "seen", "seconds"}


class _Bad(Exception):
    """One invalid value: ``where`` it is and what was expected."""


# -- small predicates -------------------------------------------------------------------------------


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _show(v: Any) -> str:
    text = repr(v) if not isinstance(v, np.ndarray) else f"an array {v.shape} {v.dtype}"
    return text if len(text) <= 60 else text[:57] + "..."


def _int(v: Any, where: str, lo: int = 0, hi: int | None = None) -> int:
    if not _is_int(v) or v < lo or (hi is not None and v > hi):
        rng = f"from {lo} to {hi}" if hi is not None else f"≥ {lo}"
        raise _Bad(f"{where} is {_show(v)}; expected a whole number {rng}")
    return int(v)


def _real(v: Any, where: str, lo: float = 0.0, *, above: bool = False, below: float | None = None) -> float:
    ok = _is_real(v) and math.isfinite(v) and (v > lo if above else v >= lo) and (below is None or v < below)
    if not ok:
        rng = f"> {lo}" if above else f"≥ {lo}"
        rng += f" and < {below}" if below is not None else ""
        raise _Bad(f"{where} is {_show(v)}; expected a finite number {rng}")
    return float(v)


def _choice(v: Any, where: str, options: Any) -> str:
    if not isinstance(v, str) or v not in options:
        raise _Bad(f"{where} is {_show(v)}; expected one of {', '.join(options)}")
    return v


def _dict(v: Any, where: str, keys: set[str] | None = None) -> dict:
    if not isinstance(v, dict):
        raise _Bad(f"{where} is {_show(v)}; expected a dict")
    if keys is not None and set(v) != keys:
        raise _Bad(f"{where} has keys {sorted(map(str, v))}; expected {sorted(keys)}")
    return v


def _real_array(a: Any, where: str, dtype: np.dtype | None = None) -> None:
    if not isinstance(a, np.ndarray):
        raise _Bad(f"{where} is {_show(a)}; expected an array")
    if a.dtype.kind == "c":
        raise _Bad(f"{where} is complex ({a.dtype}); parameters and optimiser state are real")
    if a.dtype.kind != "f" or (dtype is not None and a.dtype != dtype):
        raise _Bad(f"{where} has dtype {a.dtype}; expected {dtype or 'a float dtype'} (the run's --dtype)")
    if a.size and not (np.isfinite(a.min()) and np.isfinite(a.max())):
        raise _Bad(f"{where} holds NaN or infinite values; expected finite numbers")


# -- the configuration ---------------------------------------------------------------------------------


def _check_config(cfg: Any, model_state: Any) -> dict[str, Any]:
    from ..models import MODELS
    from .train import DEFAULTS, OPTIMIZERS, SCHEDULERS

    cfg = _dict(cfg, "config")
    unknown = [k for k in cfg if k not in DEFAULTS]
    if unknown:
        raise _Bad(f"config has unknown option {unknown[0]!r}; the checkpoint is from another version of new_grad")
    c = {**DEFAULTS, **cfg}
    _choice(c["model"], "config 'model'", MODELS)
    _choice(c["optimizer"], "config 'optimizer'", OPTIMIZERS)
    _choice(c["scheduler"], "config 'scheduler'", SCHEDULERS)
    _choice(c["dtype"], "config 'dtype'", ("float32", "float64"))
    _choice(c["device"], "config 'device'", ("cpu", "gpu"))
    kind, sep, where = c["dataset"].partition(":") if isinstance(c["dataset"], str) else ("", "", "")
    if not (kind == "digits" and not sep) and not (kind in ("mnist-npy", "mnist-idx") and where):
        raise _Bad(f"config 'dataset' is {_show(c['dataset'])}; expected digits, mnist-npy:DIR or mnist-idx:DIR")
    _int(c["epochs"], "config 'epochs'", 1)
    _int(c["batch_size"], "config 'batch_size'", 1)
    _int(c["seed"], "config 'seed'", 0, 2**32 - 1)
    _real(c["weight_decay"], "config 'weight_decay'")
    _real(c["val_fraction"], "config 'val_fraction'", below=1.0)
    if c["lr"] is not None:
        _real(c["lr"], "config 'lr'", above=True)
    if c["momentum"] is not None:
        _real(c["momentum"], "config 'momentum'")
    if c["hidden"] is not None:
        _int(c["hidden"], "config 'hidden'", 1)
        # the width decides how much memory the model takes: it must be the width of the saved parameters
        dims = {d for a in (model_state or {}).values() if isinstance(a, np.ndarray) for d in a.shape}
        if c["hidden"] not in dims:
            raise _Bad(
                f"config 'hidden' is {c['hidden']}, but no saved parameter has that size; the configuration "
                "does not belong to these parameters"
            )
    return c


# -- parameters, optimiser and loop state ---------------------------------------------------------------


def _check_model(state: Any, dtype: np.dtype) -> None:
    state = _dict(state, "model")
    if not state:
        raise _Bad("model holds no parameters")
    for name, a in state.items():
        if not isinstance(name, str):
            raise _Bad(f"model has a parameter named {_show(name)}; expected names such as 'fc1.W'")
        _real_array(a, f"parameter {name!r}", dtype)


def _check_number_tree(v: Any, where: str, allow_inf: bool = False) -> None:
    """Hyper-parameters and scheduler values: numbers (no NaN), booleans, strings, None, and lists/dicts of them."""
    if v is None or isinstance(v, (bool, np.bool_, str)):
        return
    if _is_real(v):
        if math.isnan(v) or (math.isinf(v) and not allow_inf):
            raise _Bad(f"{where} is {v!r}; expected a finite number")
        return
    if isinstance(v, (list, tuple)):
        for i, x in enumerate(v):
            _check_number_tree(x, f"{where}[{i}]", allow_inf)
        return
    if isinstance(v, dict):
        for k, x in v.items():
            _check_number_tree(x, f"{where}[{k!r}]", allow_inf)
        return
    raise _Bad(f"{where} is {_show(v)}; expected a number")


def _check_optimizer(state: Any) -> None:
    state = _dict(state, "optimizer")
    if set(state) != {"state", "param_groups"}:
        raise _Bad(f"optimizer has keys {sorted(map(str, state))}; expected ['param_groups', 'state']")
    groups = state["param_groups"]
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise _Bad(f"optimizer 'param_groups' is {_show(groups)}; expected a list of dicts")
    for i, g in enumerate(groups):
        for k, v in g.items():
            if k == "params":
                if not isinstance(v, list) or not all(_is_int(p) and p >= 0 for p in v):
                    raise _Bad(f"optimizer group {i} 'params' is {_show(v)}; expected parameter numbers")
            else:
                _check_number_tree(v, f"optimizer group {i} {k!r}")
    buffers = _dict(state["state"], "optimizer 'state'")
    for p, bufs in buffers.items():
        if not _is_int(p) or p < 0:
            raise _Bad(f"optimizer 'state' has key {_show(p)}; expected parameter numbers")
        for name, v in _dict(bufs, f"optimizer state of parameter {p}").items():
            where = f"optimizer buffer {name!r} of parameter {p}"
            if isinstance(v, np.ndarray):
                _real_array(v, where)
            else:
                _check_number_tree(v, where)


def _check_loop(loop: Any) -> None:
    loop = _dict(loop, "loop", {"epoch", "step", "acc", "loader", "epoch_lr", "np_random", "history", "best"})
    epoch = _int(loop["epoch"], "loop 'epoch'")
    _int(loop["step"], "loop 'step'")
    acc = _dict(loop["acc"], "loop 'acc'", ACC_KEYS)
    _real(acc["loss_sum"], "loop 'acc' 'loss_sum'")
    _real(acc["seconds"], "loop 'acc' 'seconds'")
    seen = _int(acc["seen"], "loop 'acc' 'seen'")
    _int(acc["wrong"], "loop 'acc' 'wrong'", 0, seen)
    _real(loop["epoch_lr"], "loop 'epoch_lr'")
    history = loop["history"]
    if not isinstance(history, list):
        raise _Bad(f"loop 'history' is {_show(history)}; expected a list with one record per finished epoch")
    if len(history) != epoch:
        raise _Bad(f"loop 'history' has {len(history)} records for {epoch} finished epochs")
    for i, rec in enumerate(history):
        rec = _dict(rec, f"loop 'history' record {i}", EPOCH_KEYS)
        _int(rec["epoch"], f"history record {i} 'epoch'", i + 1, i + 1)
        for k in EPOCH_KEYS - {"epoch"}:
            if rec[k] is not None or k in ("train_loss", "train_error", "lr", "seconds"):
                _real(rec[k], f"history record {i} {k!r}")
    best = _dict(loop["best"], "loop 'best'", {"loss", "epoch"})
    if (best["loss"] is None) != (best["epoch"] is None):
        raise _Bad(f"loop 'best' is {_show(best)}; expected a loss and its epoch, or neither")
    if best["loss"] is not None:
        _real(best["loss"], "loop 'best' 'loss'")
        _int(best["epoch"], "loop 'best' 'epoch'", 1, max(1, epoch))
    # generator states: let NumPy itself judge them, on throwaway generators
    try:
        np.random.RandomState().set_state(tuple(loop["np_random"]))
    except (TypeError, ValueError, KeyError, IndexError) as e:
        raise _Bad(f"loop 'np_random' is not a NumPy generator state ({e})") from None
    loader = _dict(loop["loader"], "loop 'loader'", {"generator"})
    try:
        np.random.default_rng().bit_generator.state = loader["generator"]
    except (TypeError, ValueError, KeyError, IndexError) as e:
        raise _Bad(f"loop 'loader' is not a shuffling generator state ({e})") from None


def check_checkpoint(ckpt: dict[str, Any], path: str | Path) -> None:
    """Raise a one-line :class:`CheckpointError` naming ``path`` unless every value a resume reads is valid."""
    try:
        expected = {"run", "config", "model", "optimizer", "scheduler", "loop"}
        if set(ckpt) != expected:
            raise _Bad(f"it has entries {sorted(map(str, ckpt))}; expected {sorted(expected)}")
        cfg = _check_config(ckpt["config"], _dict(ckpt["model"], "model"))
        _check_model(ckpt["model"], np.dtype(cfg["dtype"]))
        _check_optimizer(ckpt["optimizer"])
        if ckpt["scheduler"] is not None:
            sched = _dict(ckpt["scheduler"], "scheduler")
            if not all(isinstance(k, str) for k in sched) or "optimizer" in sched:
                raise _Bad(f"scheduler has keys {sorted(map(str, sched))}; expected the scheduler's own settings")
            _check_number_tree(sched, "scheduler", allow_inf=True)
        _check_loop(ckpt["loop"])
    except _Bad as e:
        raise CheckpointError(f"--resume: {path}: {e}; the file was edited or damaged (or is from another version)") from None


# -- against the live optimiser and scheduler ------------------------------------------------------------


def _same_kind(saved: Any, live: Any, where: str) -> None:
    if isinstance(live, dict):
        _dict(saved, where)
        if set(saved) != set(live):
            raise _Bad(f"{where} has keys {sorted(map(str, saved))}; expected {sorted(map(str, live))}")
        for k in live:
            _same_kind(saved[k], live[k], f"{where} {k!r}")
    elif isinstance(live, (list, tuple)):
        if not isinstance(saved, (list, tuple)) or len(saved) != len(live):
            raise _Bad(f"{where} is {_show(saved)}; expected a list of {len(live)}")
        for i, (s, v) in enumerate(zip(saved, live)):
            _same_kind(s, v, f"{where}[{i}]")
    elif isinstance(live, (bool, np.bool_)):
        if not isinstance(saved, (bool, np.bool_)):
            raise _Bad(f"{where} is {_show(saved)}; expected True or False")
    elif _is_real(live):
        if not _is_real(saved):
            raise _Bad(f"{where} is {_show(saved)}; expected a number")
    elif isinstance(live, str) and saved != live:
        raise _Bad(f"{where} is {_show(saved)}; this configuration has {live!r}")


def check_fits(ckpt: dict[str, Any], optimizer: Any, scheduler: Any, batches_per_epoch: int) -> None:
    """The saved optimiser and scheduler state has the live objects' keys and kinds; the step is in the epoch.

    Raises :class:`CheckpointError` (one line) otherwise.
    """
    try:
        live = optimizer.state_dict()["param_groups"]
        saved = ckpt["optimizer"]["param_groups"]
        if len(saved) != len(live):
            raise _Bad(f"optimizer has {len(saved)} parameter groups; expected {len(live)}")
        for i, (s, v) in enumerate(zip(saved, live)):
            _same_kind({k: x for k, x in s.items() if k != "params"}, {k: x for k, x in v.items() if k != "params"},
                       f"optimizer group {i}")
        if (scheduler is None) != (ckpt["scheduler"] is None):
            has = "no scheduler state" if ckpt["scheduler"] is None else "a scheduler state"
            raise _Bad(f"it holds {has}, but the run's --scheduler is {ckpt['config'].get('scheduler', 'cosine')}")
        if scheduler is not None:
            _same_kind(ckpt["scheduler"], scheduler.state_dict(), "scheduler")
        step = ckpt["loop"]["step"]
        if step > batches_per_epoch:
            raise _Bad(f"loop 'step' is {step}, but an epoch has {batches_per_epoch} batches")
    except _Bad as e:
        raise CheckpointError(f"--resume: {e}; the file was edited or damaged (or is from another version)") from None
