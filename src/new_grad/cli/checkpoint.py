"""Training checkpoints for the command: model, optimiser, scheduler and loop state in one file.

Everything is flattened to ``{name: array}`` — arrays under their dotted path, all the
rest (hyper-parameters, counters, RNG states, the metrics so far) as one JSON document
stored as bytes — and written with :func:`new_grad.save`, so a checkpoint is a plain
``.npz`` any NumPy can open, with no pickle.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..backend import is_array, to_numpy
from ..errors import CheckpointError

FORMAT = "new_grad.train/1"
META = "__meta__"


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _flatten(obj: Any, path: str, arrays: dict[str, np.ndarray]) -> Any:
    """A JSON-able tree of ``obj`` with every array moved into ``arrays`` (leaving ``{"__array__": key}``)."""
    if is_array(obj):
        arrays[path] = to_numpy(obj)
        return {"__array__": path}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: _flatten(v, _join(path, k), arrays) for k, v in obj.items()}
        return {"__items__": [[_flatten(k, path, arrays), _flatten(v, _join(path, k), arrays)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [_flatten(v, _join(path, i), arrays) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise CheckpointError(f"checkpoint: cannot store a {type(obj).__name__} at {path}")


def _unflatten(tree: Any, arrays: Any) -> Any:
    if isinstance(tree, dict):
        if set(tree) == {"__array__"}:
            return np.array(arrays[tree["__array__"]])
        if set(tree) == {"__items__"}:
            return {_unflatten(k, arrays): _unflatten(v, arrays) for k, v in tree["__items__"]}
        return {k: _unflatten(v, arrays) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_unflatten(v, arrays) for v in tree]
    return tree


def _save_npz(flat: dict[str, np.ndarray], path: Path) -> None:
    """Fallback writer: temporary file in the same folder, then an atomic rename."""
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **flat)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> Path:
    """Write ``payload`` (nested dicts of arrays and plain values) to ``path`` atomically."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    tree = _flatten(payload, "", arrays)
    flat = dict(arrays)
    doc = {"format": FORMAT, "tree": tree}
    flat[META] = np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8)
    _save_npz(flat, path)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; any other file is a ``CheckpointError``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; give the last.npz or best.npz of a run")
    try:
        with np.load(path, allow_pickle=False) as z:
            flat = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise CheckpointError(f"checkpoint {path} is corrupted or not a .npz file ({e})") from None
    if META not in flat:
        raise CheckpointError(f"checkpoint {path} was not written by `new-grad train` (no training state in it)")
    try:
        doc = json.loads(flat.pop(META).tobytes().decode())
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"checkpoint {path} has a corrupted training state ({e})") from None
    if doc.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} has format {doc.get('format')!r}; this new_grad reads {FORMAT!r}")
    try:
        return _unflatten(doc["tree"], flat)
    except KeyError as e:
        raise CheckpointError(f"checkpoint {path} is missing the array {e}; the file is incomplete") from None
