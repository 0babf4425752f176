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
(``os.replace``). A crash mid-save leaves the previous checkpoint intact. The
temporary file is locked (``flock``) while it is written, so the next save of the
same target can tell one left by a killed process (unlocked) from one being
written right now, and deletes only the former.

Loading is bounded by the file: only regular files are opened (never a FIFO or a
device), every member's declared shape must match the bytes it holds before
anything is allocated, compressed members are refused (``save`` never
compresses), and structures nested deeper than ``MAX_DEPTH`` are refused.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import stat
import tempfile
import time
import zipfile
import zlib
from typing import IO, Any

import numpy as np

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from .backends import is_array, to_numpy
from .errors import CheckpointError

__all__ = ["save", "load"]

FORMAT = "new_grad.checkpoint"
VERSION = 1
STRUCTURE = "__new_grad__"  # the archive member holding the JSON description of the nesting

PathLike = str | os.PathLike
MAX_DEPTH = 100  # containers inside containers; state dicts nest a handful of levels


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

    def encode(self, obj: Any, where: str, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise CheckpointError(
                f"save: the structure is nested more than {MAX_DEPTH} levels deep at {where[:120]}…; checkpoints "
                "hold state dicts, which nest a few levels"
            )
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
                "dict": [[self.encode(k, f"{where}.<key>", depth + 1), self.encode(v, _join(where, k), depth + 1)] for k, v in obj.items()]
            }
        if isinstance(obj, tuple):
            return {"tuple": [self.encode(v, _join(where, i), depth + 1) for i, v in enumerate(obj)]}
        if isinstance(obj, list):
            return {"list": [self.encode(v, _join(where, i), depth + 1) for i, v in enumerate(obj)]}
        hint = " (save its .state_dict(), not the object itself)" if hasattr(obj, "state_dict") else ""
        raise CheckpointError(
            f"save: cannot store a {type(obj).__name__} at {where or 'the top level'}{hint}; checkpoints hold "
            "dicts, lists, tuples, arrays, numbers, strings, booleans and None — nothing is pickled"
        )


def _join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def _decode(node: Any, arrays: dict[str, np.ndarray], depth: int = 0) -> Any:
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if depth > MAX_DEPTH:
        raise _TooDeep
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
            return {_decode(k, arrays, depth + 1): _decode(v, arrays, depth + 1) for k, v in value}
        if tag == "tuple":
            return tuple(_decode(v, arrays, depth + 1) for v in value)
        if tag == "list":
            return [_decode(v, arrays, depth + 1) for v in value]
    raise ValueError(f"unknown node {str(node)[:80]}")


class _TooDeep(Exception):
    """The structure is nested deeper than save writes."""


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
    untouched. A symbolic link at ``path`` is kept: the file it points to is replaced. CuPy arrays are copied to the host. ``path`` may also be an open
    binary file (then there is no atomicity to offer).
    """
    enc = _Encoder()
    tree = enc.encode(obj, "")
    structure = json.dumps({"format": FORMAT, "version": VERSION, "tree": tree}, allow_nan=False).encode()
    if hasattr(path, "write"):
        _write_archive(path, enc.arrays, structure)  # type: ignore[arg-type]
        return
    # through a symbolic link, as open() writes: the link stays and the file it names is replaced
    target = os.path.realpath(os.fspath(path))
    folder, base = os.path.split(target)
    if os.path.isdir(target):
        raise CheckpointError(f"save: {path} is a directory; give a file path such as {os.path.join(path, 'ckpt.npz')}")
    _remove_stale_temps(folder, base)
    fd, tmp = -1, None
    try:
        fd, tmp = _new_temp(folder, base, path)
        with os.fdopen(fd, "wb") as f:
            fd = -1  # the file object owns (and closes) it now; closing also releases the lock
            _write_archive(f, enc.arrays, structure)
            f.flush()
            os.fsync(f.fileno())
            if fcntl is not None:  # rename while still locked: no other save can take it for a stale one
                _rename_into_place(tmp, target)
                tmp = None
        if tmp is not None:  # pragma: no cover - Windows renames only closed files
            _rename_into_place(tmp, target)
            tmp = None
    except BaseException as e:
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        _remove_stale_temps(folder, base)  # one created just before an interruption, whose name never came back
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


def _rename_into_place(tmp: str, target: str) -> None:
    try:
        mode = os.stat(target).st_mode & 0o777  # keep an existing checkpoint's permissions
    except FileNotFoundError:
        mode = _umask_mode()
    os.chmod(tmp, mode)
    os.replace(tmp, target)


# -- temporary files: one per save, locked while in use, swept when their writer is gone ------------------
def _temp_pattern(base: str) -> re.Pattern[str]:
    """The names ``tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp")`` makes: those of this target only."""
    return re.compile(rf"\.{re.escape(base)}\.[a-z0-9_]{{8}}\.tmp")


def _lock(fd: int, blocking: bool) -> bool:
    """An exclusive ``flock`` on ``fd``: held by the writing save, released by the OS if it is killed."""
    if fcntl is None:  # pragma: no cover - Windows: no advisory locks; age decides (see _is_stale)
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def _new_temp(folder: str, base: str, path: Any) -> tuple[int, str]:
    """Create and lock a fresh temporary file next to the target."""
    while True:
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=folder)
        except OSError as e:
            raise CheckpointError(
                f"save: cannot write a checkpoint in {folder} for {path} ({e.strerror or e}); "
                "check that the folder exists and is writable"
            ) from e
        try:
            _lock(fd, blocking=True)
            # another save may have swept it as stale between its creation and the lock: then start again
            if os.path.samestat(os.fstat(fd), os.stat(tmp)):
                return fd, tmp
        except FileNotFoundError:
            pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


_WINDOWS_STALE_SECONDS = 3600.0


def _remove_stale_temps(folder: str, base: str) -> None:
    """Delete temporaries of this target left by saves that were killed (nobody holds their lock)."""
    pattern = _temp_pattern(base)
    try:
        names = [n for n in os.listdir(folder) if pattern.fullmatch(n)]
    except OSError:
        return
    for name in names:
        full = os.path.join(folder, name)
        with contextlib.suppress(OSError):
            if fcntl is None:  # pragma: no cover - Windows
                if time.time() - os.stat(full).st_mtime > _WINDOWS_STALE_SECONDS:
                    os.unlink(full)
                continue
            fd = os.open(full, os.O_RDONLY)
            try:
                if _lock(fd, blocking=False):
                    os.unlink(full)  # its writer is gone: a live save holds the lock until its rename
            finally:
                os.close(fd)


# -- reading ---------------------------------------------------------------------------------------------
def _open_regular(name: str) -> IO[bytes]:
    """Open ``name`` for reading only if it is a regular file: a FIFO or a device would block or never end.

    The check is made on the opened descriptor (``O_NONBLOCK`` keeps ``open`` itself from waiting for a
    FIFO's writer), so the path cannot be swapped between the check and the read.
    """
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise CheckpointError(f"load: no checkpoint at {name}; check the path (new_grad.save writes it as given)") from None
    except IsADirectoryError:
        raise CheckpointError(f"load: {name} is a directory, not a checkpoint file") from None
    except OSError as e:
        raise CheckpointError(f"load: cannot open {name} ({e.strerror or e})") from e
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise CheckpointError(f"load: {name} is a directory, not a checkpoint file")
        if not stat.S_ISREG(st.st_mode):
            kind = "a named pipe (FIFO)" if stat.S_ISFIFO(st.st_mode) else "a device, socket or other special file"
            raise CheckpointError(f"load: {name} is {kind}, not a regular file; give the path of a checkpoint file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _stream_size(f: IO[bytes]) -> int:
    here = f.tell()
    end = f.seek(0, os.SEEK_END)
    f.seek(here)
    return end


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> np.ndarray:
    """One ``.npy`` member, its header checked against the bytes it holds before anything is allocated.

    ``limit`` is the archive's size: no honest member declares more data than the file holds.
    """
    if info.compress_type != zipfile.ZIP_STORED:
        raise ValueError(
            f"member {info.filename!r} is compressed (method {info.compress_type}); new_grad.save writes "
            "uncompressed archives, so it refuses to inflate one (re-save the data with new_grad.save)"
        )
    if info.file_size != info.compress_size or info.file_size > limit:
        raise ValueError(f"member {info.filename!r} declares {info.file_size} bytes in a {limit}-byte file")
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:  # pragma: no cover - read_magic accepts only the versions above
            raise ValueError(f"member {info.filename!r} has .npy version {version}")
        if dtype.hasobject:
            raise ValueError(f"member {info.filename!r} holds dtype {dtype}, which would need pickle")
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        held = info.file_size - f.tell()
        if nbytes != held:
            raise ValueError(
                f"member {info.filename!r} declares shape {tuple(shape)} {dtype} ({nbytes} bytes) but holds {held} bytes"
            )
        buf = bytearray(nbytes)
        if f.readinto(buf) != nbytes:
            raise EOFError(f"member {info.filename!r} ends early")
    arr = np.frombuffer(buf, dtype=dtype, count=count) if nbytes else np.empty(count, dtype=dtype)
    return arr.reshape(shape, order="F" if fortran else "C")


def load(path: PathLike | IO[bytes]) -> Any:
    """Read a checkpoint written by :func:`save`; arrays come back as NumPy arrays.

    A missing, truncated, corrupted or foreign file raises
    :class:`~new_grad.errors.CheckpointError` naming the path; so do files that
    could exhaust time or memory (a FIFO or device, members declaring more data
    than the file holds, compressed members, structures nested deeper than
    ``save`` writes). Memory use is bounded by the file's size.
    """
    is_stream = hasattr(path, "read")
    name = str(getattr(path, "name", "<stream>")) if is_stream else os.fspath(path)
    try:
        with contextlib.ExitStack() as stack:
            f = path if is_stream else stack.enter_context(_open_regular(name))
            start = f.tell()  # type: ignore[union-attr]
            magic = f.read(6)  # type: ignore[union-attr]
            f.seek(start)  # type: ignore[union-attr]
            if magic == b"\x93NUMPY":
                raise CheckpointError(
                    f"load: {name} holds a single .npy array, not a new_grad checkpoint; use numpy.load"
                )
            if magic and not magic.startswith(b"PK"):  # text, say: name what it is, not what NumPy would guess
                raise CheckpointError(
                    f"load: {name} is not a NumPy file (it begins {magic!r}); a checkpoint is the .npz archive "
                    "that new_grad.save writes"
                )
            limit = _stream_size(f)  # type: ignore[arg-type]
            zf = stack.enter_context(zipfile.ZipFile(f, mode="r"))  # type: ignore[arg-type]
            members = {i.filename[:-4]: i for i in zf.infolist() if i.filename.endswith(".npy")}
            if STRUCTURE not in members:
                shown = ", ".join(list(members)[:5]) + (", …" if len(members) > 5 else "")
                raise CheckpointError(
                    f"load: {name} is an .npz archive but not a new_grad checkpoint (no {STRUCTURE} entry; it holds "
                    f"{shown or 'nothing'}); open it with numpy.load"
                )
            raw = _read_member(zf, members[STRUCTURE], limit)
            if raw.dtype != np.uint8 or raw.ndim != 1:
                raise ValueError(f"its {STRUCTURE} entry is not the byte array new_grad.save writes")
            try:
                doc = json.loads(raw.tobytes().decode("utf-8"))
            except RecursionError:
                raise CheckpointError(
                    f"load: {name} has a structure nested more than {MAX_DEPTH} levels deep; new_grad.save "
                    "writes at most that"
                ) from None
            arrays = {k: _read_member(zf, i, limit) for k, i in members.items() if k != STRUCTURE}
    except CheckpointError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, UnicodeDecodeError,
            NotImplementedError, OverflowError) as e:
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
    except _TooDeep:
        raise CheckpointError(
            f"load: {name} has a structure nested more than {MAX_DEPTH} levels deep; new_grad.save writes at most that"
        ) from None
    except (KeyError, ValueError, TypeError) as e:
        raise CheckpointError(f"load: {name} has a malformed or incomplete structure ({type(e).__name__}: {e})") from e
