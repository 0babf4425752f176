"""``new_grad.save(obj, path)`` / ``new_grad.load(path)``: checkpoints as plain ``.npz`` files, no pickle.

What can be saved: state dicts — nested dicts, lists and tuples of arrays,
numbers, strings, booleans and ``None`` (a model's ``state_dict()``, an
optimiser's, a scheduler's, and a dict holding them with metadata such as the
epoch). Every array becomes one ``.npy`` member of the archive, named by its
path (``model.fc1.W``); the nesting — dict keys of any of those types, tuples
versus lists, ints versus floats, NaN and infinities — is one JSON document
stored as bytes under ``__new_grad__``. Loading never unpickles anything
(``allow_pickle=False``), so opening a checkpoint cannot run code, and any
NumPy can read the arrays without new_grad.

Saving is atomic: the archive is written to a temporary file in the target's
folder, flushed to disk (``fsync``), then renamed over the target
(``os.replace``). A crash mid-save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
import zipfile
import zlib
from typing import IO, Any

import numpy as np

from .backend import is_array, to_numpy
from .errors import CheckpointError

__all__ = ["save", "load"]

FORMAT = "new_grad.checkpoint"
VERSION = 1
STRUCTURE = "__new_grad__"  # the archive member holding the JSON description of the nesting

PathLike = str | os.PathLike


# -- encoding: Python objects <-> a JSON tree plus named arrays ------------------------------------------
class _Encoder:
    """Walk ``obj``; arrays go to ``self.arrays`` under readable, unique names; the rest to JSON."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def _name(self, where: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_.\-]", "_", where) or "array"
        name, n = base, 1
        while name in self.arrays or name == STRUCTURE:
            n += 1
            name = f"{base}~{n}"
        return name

    def encode(self, obj: Any, where: str) -> Any:
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, int):
            return int(obj)
        if isinstance(obj, float):
            return float(obj) if math.isfinite(obj) else {"float": repr(float(obj))}
        if is_array(obj) or isinstance(obj, np.generic):
            arr = to_numpy(obj)
            if arr.dtype.hasobject:
                raise CheckpointError(
                    f"save: the array at {where or 'the top level'} has dtype {arr.dtype}; only numeric, bool and "
                    "string arrays can be saved (object arrays would need pickle)"
                )
            name = self._name(where)
            self.arrays[name] = arr
            return {"scalar" if isinstance(obj, np.generic) else "array": name}
        if isinstance(obj, dict):
            return {
                "dict": [[self.encode(k, f"{where}.<key>"), self.encode(v, _join(where, k))] for k, v in obj.items()]
            }
        if isinstance(obj, tuple):
            return {"tuple": [self.encode(v, _join(where, i)) for i, v in enumerate(obj)]}
        if isinstance(obj, list):
            return {"list": [self.encode(v, _join(where, i)) for i, v in enumerate(obj)]}
        hint = " (save its .state_dict(), not the object itself)" if hasattr(obj, "state_dict") else ""
        raise CheckpointError(
            f"save: cannot store a {type(obj).__name__} at {where or 'the top level'}{hint}; checkpoints hold "
            "dicts, lists, tuples, arrays, numbers, strings, booleans and None — nothing is pickled"
        )


def _join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def _decode(node: Any, arrays: dict[str, np.ndarray]) -> Any:
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, dict) and len(node) == 1:
        ((tag, value),) = node.items()
        if tag in ("array", "scalar"):
            arr = arrays[value]
            if not isinstance(arr, np.ndarray):
                raise ValueError(f"member {value!r} is not an .npy array")
            return arr if tag == "array" else arr[()]
        if tag == "float":
            return float(value)
        if tag == "dict":
            return {_decode(k, arrays): _decode(v, arrays) for k, v in value}
        if tag == "tuple":
            return tuple(_decode(v, arrays) for v in value)
        if tag == "list":
            return [_decode(v, arrays) for v in value]
    raise ValueError(f"unknown node {str(node)[:80]}")


# -- writing ---------------------------------------------------------------------------------------------
def _write_archive(f: IO[bytes], arrays: dict[str, np.ndarray], structure: bytes) -> None:
    """An ``.npz``: one ``<name>.npy`` member per array (what ``np.savez`` writes, without its kwargs pitfalls)."""
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as out:
                np.lib.format.write_array(out, np.asanyarray(arr), allow_pickle=False)
        with zf.open(STRUCTURE + ".npy", "w") as out:
            np.lib.format.write_array(out, np.frombuffer(structure, dtype=np.uint8), allow_pickle=False)


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def save(obj: Any, path: PathLike | IO[bytes]) -> None:
    """Write ``obj`` (a state dict: nested dicts/lists/tuples of arrays and plain values) to ``path``.

    The file is an ``.npz`` archive written exactly at ``path`` (no suffix is
    added), atomically: until the final rename, any previous file at ``path`` is
    untouched. CuPy arrays are copied to the host. ``path`` may also be an open
    binary file (then there is no atomicity to offer).
    """
    enc = _Encoder()
    tree = enc.encode(obj, "")
    structure = json.dumps({"format": FORMAT, "version": VERSION, "tree": tree}, allow_nan=False).encode()
    if hasattr(path, "write"):
        _write_archive(path, enc.arrays, structure)  # type: ignore[arg-type]
        return
    target = os.path.abspath(os.fspath(path))
    folder, base = os.path.split(target)
    if os.path.isdir(target):
        raise CheckpointError(f"save: {path} is a directory; give a file path such as {os.path.join(path, 'ckpt.npz')}")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise CheckpointError(
            f"save: cannot write a checkpoint in {folder} for {path} ({e.strerror or e}); "
            "check that the folder exists and is writable"
        ) from e
    try:
        with os.fdopen(fd, "wb") as f:
            _write_archive(f, enc.arrays, structure)
            f.flush()
            os.fsync(f.fileno())
        try:
            mode = os.stat(target).st_mode & 0o777  # keep an existing checkpoint's permissions
        except FileNotFoundError:
            mode = _umask_mode()
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError) and not isinstance(e, CheckpointError):
            raise CheckpointError(
                f"save: writing {path} failed ({e.strerror or e}); the previous file is intact"
            ) from e
        raise
    with contextlib.suppress(OSError, AttributeError):  # make the rename itself durable (POSIX)
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


# -- reading ---------------------------------------------------------------------------------------------
def load(path: PathLike | IO[bytes]) -> Any:
    """Read a checkpoint written by :func:`save`; arrays come back as NumPy arrays.

    A missing, truncated, corrupted or foreign file raises
    :class:`~new_grad.errors.CheckpointError` naming the path.
    """
    name = getattr(path, "name", None) if hasattr(path, "read") else os.fspath(path)
    if not hasattr(path, "read"):
        if not os.path.exists(name):
            raise CheckpointError(f"load: no checkpoint at {name}; check the path (new_grad.save writes it as given)")
        if os.path.isdir(name):
            raise CheckpointError(f"load: {name} is a directory, not a checkpoint file")
    try:
        with contextlib.ExitStack() as stack:
            z = np.load(path, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise CheckpointError(
                    f"load: {name} holds a single .npy array, not a new_grad checkpoint; use numpy.load"
                )
            stack.callback(z.close)
            if STRUCTURE not in z.files:
                shown = ", ".join(z.files[:5]) + (", …" if len(z.files) > 5 else "")
                raise CheckpointError(
                    f"load: {name} is an .npz archive but not a new_grad checkpoint (no {STRUCTURE} entry; it holds "
                    f"{shown or 'nothing'}); open it with numpy.load"
                )
            raw = z[STRUCTURE]
            if not isinstance(raw, np.ndarray) or raw.dtype != np.uint8:
                raise ValueError(f"its {STRUCTURE} entry is not the byte array new_grad.save writes")
            doc = json.loads(raw.tobytes().decode("utf-8"))
            arrays = {k: z[k] for k in z.files if k != STRUCTURE}
    except CheckpointError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, UnicodeDecodeError) as e:
        raise CheckpointError(
            f"load: {name} is truncated, corrupted or not a new_grad checkpoint ({type(e).__name__}: {e})"
        ) from e
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else None
        raise CheckpointError(f"load: {name} is an .npz archive but not a new_grad checkpoint (format {found!r})")
    if not isinstance(doc.get("version"), int) or doc["version"] > VERSION:
        raise CheckpointError(
            f"load: {name} has checkpoint version {doc.get('version')!r}; this new_grad reads up to {VERSION} "
            "(upgrade new_grad)"
        )
    try:
        return _decode(doc["tree"], arrays)
    except (KeyError, ValueError, TypeError) as e:
        raise CheckpointError(f"load: {name} has a malformed or incomplete structure ({type(e).__name__}: {e})") from e
