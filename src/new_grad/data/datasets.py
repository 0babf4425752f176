"""Real data with no download: scikit-learn's bundled digits, and MNIST from files you have.

Every loader returns :class:`Splits` — ``train``, ``val`` (or ``None``) and ``test``
as :class:`ArrayDataset`\\ s of ``(images, labels)``, images as ``(N, C, H, W)``
floats in [0, 1] and labels as ``int64`` class indices. Anything wrong with a file
(missing, wrong magic number, wrong shape, labels not matching the data) is a
:class:`new_grad.errors.DataError` that names the file and what to do.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .dataset import ArrayDataset, random_split


@dataclass
class Splits:
    """A dataset's parts and what a model needs to know about them."""

    name: str
    train: Any
    val: Any
    test: Any
    num_classes: int
    sample_shape: tuple[int, ...]

    def __repr__(self) -> str:
        named = (("train", self.train), ("val", self.val), ("test", self.test))
        parts = ", ".join(f"{k}={len(v)}" for k, v in named if v is not None)
        return f"Splits({self.name}: {parts}; samples {self.sample_shape}, {self.num_classes} classes)"


def _as_images(x: np.ndarray, dtype: Any, what: str) -> np.ndarray:
    """(N, D) with D a square, (N, H, W) or (N, C, H, W) → (N, C, H, W) floats in [0, 1]."""
    if x.dtype.kind not in "uif":
        raise DataError(f"{what}: images have dtype {x.dtype}; expected integers (0-255) or floats")
    _check_finite(x, what)
    if x.ndim == 2:
        side = math.isqrt(x.shape[1])
        if side * side != x.shape[1]:
            raise DataError(f"{what}: rows of {x.shape[1]} values are not square images; expected e.g. (N, 784)")
        x = x.reshape(len(x), 1, side, side)
    elif x.ndim == 3:
        x = x[:, None]
    elif x.ndim != 4:
        raise DataError(f"{what}: images have shape {x.shape}; expected (N, 784), (N, 28, 28) or (N, 1, 28, 28)")
    scale = 255.0 if x.dtype.kind in "ui" or (x.size and float(x.max()) > 1.0) else 1.0
    out = x.astype(dtype)  # one copy, in the target dtype (MNIST in float64 would be 376 MB)
    if scale != 1.0:
        out /= np.asarray(scale, dtype=out.dtype)
    return out


def _check_finite(x: np.ndarray, what: str) -> None:
    """One NaN would make ``max()`` NaN and silently skip normalisation; an inf poisons every batch it is in."""
    if x.dtype.kind != "f" or not x.size:
        return
    if np.isfinite(x.min()) and np.isfinite(x.max()):  # two passes, no temporary as large as the data
        return
    bad = ~np.isfinite(x)
    count = int(bad.sum())
    first = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), x.shape))
    raise DataError(
        f"{what}: {count} value{'s are' if count > 1 else ' is'} not finite (the first is {x[first]}, at {first}); "
        "a NaN or infinite pixel would spoil normalisation and training: fix or drop those samples"
    )


def _as_labels(y: np.ndarray, n: int, num_classes: int | None, what: str) -> np.ndarray:
    """Class indices (N,) as int64; one-hot rows (N, K) are turned into indices."""
    if y.ndim == 2 and y.shape[0] == n and y.shape[1] > 1:  # one-hot
        y = _one_hot_to_indices(y, what)
    if y.ndim != 1:
        raise DataError(f"{what}: labels have shape {y.shape}; expected ({n},) class indices or ({n}, K) one-hot")
    if len(y) != n:
        raise DataError(f"{what}: {len(y)} labels for {n} images; the label file does not match the data file")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise DataError(f"{what}: labels are not whole numbers; expected class indices 0..K-1")
    elif y.dtype.kind not in "ui":
        raise DataError(f"{what}: labels have dtype {y.dtype}; expected integer class indices")
    y = y.astype(np.int64)
    if len(y) and (y.min() < 0 or (num_classes is not None and y.max() >= num_classes)):
        hi = num_classes - 1 if num_classes is not None else "K-1"
        raise DataError(f"{what}: labels range over {y.min()}..{y.max()}; expected class indices 0..{hi}")
    return y


def _one_hot_to_indices(y: np.ndarray, what: str) -> np.ndarray:
    """Rows with a single 1 and zeros elsewhere → indices; anything else (NaN, soft labels, empty rows) is refused."""
    if y.dtype.kind not in "buif":
        raise DataError(f"{what}: one-hot labels have dtype {y.dtype}; expected numbers")
    if y.dtype.kind == "f":
        finite = np.isfinite(y).all(axis=1)
        if not finite.all():
            r = int(np.argmin(finite))
            raise DataError(f"{what}: label row {r} is not finite ({y[r]}); every one-hot row needs a single 1")
    ok = ((y == 0) | (y == 1)).all(axis=1) & (y.sum(axis=1) == 1)
    if not ok.all():
        r = int(np.argmin(ok))
        raise DataError(
            f"{what}: label row {r} is not one-hot ({y[r]}): expected a single 1 and zeros elsewhere, "
            "or give class indices (N,) instead"
        )
    return y.argmax(axis=1)


def _with_val(
    name: str,
    train: ArrayDataset,
    test: ArrayDataset,
    val_fraction: float,
    seed: int | None,
    num_classes: int,
    sample_shape: tuple[int, ...],
) -> Splits:
    """Hold out ``val_fraction`` of ``train`` (drawn with ``seed``) for validation."""
    if not 0 <= val_fraction < 1:
        raise DataError(f"{name}: val_fraction={val_fraction} must be in [0, 1)")
    val = None
    if val_fraction > 0:
        n_val = max(1, int(round(len(train) * val_fraction)))
        tr, va = random_split(train, [len(train) - n_val, n_val], generator=np.random.default_rng(seed))
        train, val = tr, va
    return Splits(name, train, val, test, num_classes, sample_shape)


# -- scikit-learn's digits -------------------------------------------------------------------------


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(1797, 64) pixel values 0..16 and labels, read from scikit-learn's bundled CSV.

    Reading the file directly skips importing scikit-learn (seconds, with SciPy);
    ``sklearn.datasets.load_digits`` is the fallback if the file has moved.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None:
        raise DataError(
            "digits: scikit-learn is not installed; install the training extras with "
            "`pip install 'new_grad[train]'` (or `pip install scikit-learn`)"
        )
    for folder in spec.submodule_search_locations or []:
        csv = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if csv.is_file():
            table = np.loadtxt(csv, delimiter=",", dtype=np.float64)
            return table[:, :-1], table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits as sk_load_digits  # pragma: no cover - other layouts

    raw = sk_load_digits()  # pragma: no cover
    return np.asarray(raw.data, dtype=np.float64), np.asarray(raw.target, dtype=np.int64)  # pragma: no cover


def load_digits(
    val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int | None = 0, dtype: Any = np.float32
) -> Splits:
    """The 1,797 8×8 handwritten digits bundled with scikit-learn (no download).

    The test set is a fixed random 20 % (drawn with seed 0, whatever
    ``seed`` is, so test numbers stay comparable); ``val_fraction`` of the rest,
    drawn with ``seed``, is held out for validation. Images are (N, 1, 8, 8) in [0, 1].
    """
    pixels, labels = _digits_arrays()
    images = (pixels.reshape(-1, 1, 8, 8) / 16.0).astype(dtype)
    if not 0 < test_fraction < 1:
        raise DataError(f"digits: test_fraction={test_fraction} must be in (0, 1)")
    perm = np.random.default_rng(0).permutation(len(labels))
    n_test = int(round(len(labels) * test_fraction))
    test_idx, train_idx = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    train = ArrayDataset(images[train_idx], labels[train_idx])
    test = ArrayDataset(images[test_idx], labels[test_idx])
    return _with_val("digits", train, test, val_fraction, seed, 10, images.shape[1:])


# -- MNIST, the course's .npy layout ---------------------------------------------------------------

NPY_FILES = {
    "train": ("train_data.npy", "train_labels.npy"),
    "val": ("val_data.npy", "val_labels.npy"),
    "test": ("test_data.npy", "test_labels.npy"),
}


def _load_npy(path: Path) -> np.ndarray:
    """``numpy.load`` once the header's shape has been checked against the file's size (nothing allocated before)."""
    if not path.is_file():
        raise DataError(f"mnist-npy: missing file {path}; the directory needs {', '.join(sum(NPY_FILES.values(), ()))}")
    with open(path, "rb") as f:
        head = f.read(6)
    if head != b"\x93NUMPY":  # NumPy would guess a pickle and advise allow_pickle, which does not apply
        raise DataError(f"mnist-npy: {path} is not a readable .npy array: not a NumPy file at all (it begins {head!r}); "
                        "save the array with numpy.save")
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(f)
            if dtype.hasobject:
                raise DataError(f"mnist-npy: {path} holds dtype {dtype} (Python objects); save numbers with numpy.save")
            declared = math.prod(shape) * dtype.itemsize
            held = os.fstat(f.fileno()).st_size - f.tell()
            if declared != held:
                raise DataError(
                    f"mnist-npy: {path} declares shape {tuple(shape)} {dtype} ({declared} bytes of data) but holds "
                    f"{held} bytes; the file is truncated or its header is corrupted: re-save it with numpy.save"
                )
            f.seek(0)
            return np.load(f, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"mnist-npy: {path} is not a readable .npy array ({e}); re-save it with numpy.save") from None


def load_mnist_npy(
    root: str | Path, val_fraction: float = 0.0, seed: int | None = 0, dtype: Any = np.float32, num_classes: int = 10
) -> Splits:
    """MNIST as the course ships it: ``train_data.npy``, ``train_labels.npy``, ``val_*``, ``test_*`` in ``root``.

    Data may be (N, 784), (N, 28, 28) or (N, 1, 28, 28), bytes or floats; labels class
    indices or one-hot. The ``val_*`` pair is optional: without it ``val_fraction`` of
    the training set is held out instead.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"mnist-npy: {root} is not a directory; give the folder holding train_data.npy and friends")
    parts: dict[str, ArrayDataset | None] = {}
    for split, (dname, lname) in NPY_FILES.items():
        if split == "val" and not (root / dname).exists() and not (root / lname).exists():
            parts[split] = None
            continue
        what = f"mnist-npy {split}"
        x = _as_images(_load_npy(root / dname), dtype, f"{what} ({root / dname})")
        y = _as_labels(_load_npy(root / lname), len(x), num_classes, f"{what} ({root / lname})")
        parts[split] = ArrayDataset(x, y)
    shape = parts["train"].arrays[0].shape[1:]  # type: ignore[union-attr]
    for split in ("val", "test"):
        p = parts[split]
        if p is not None and p.arrays[0].shape[1:] != shape:
            raise DataError(f"mnist-npy: {split} images are {p.arrays[0].shape[1:]} but train images are {shape}")
    if parts["val"] is not None:
        return Splits("mnist-npy", parts["train"], parts["val"], parts["test"], num_classes, shape)
    return _with_val("mnist-npy", parts["train"], parts["test"], val_fraction, seed, num_classes, shape)  # type: ignore[arg-type]


# -- MNIST, the original IDX files -----------------------------------------------------------------

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


_MAX_INFLATE = 1032  # deflate cannot expand data more than this


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (LeCun's MNIST format), gzip-compressed or not, into an array.

    The header's shape is checked before the data is read, and a gzip file is never
    inflated past what its header declares, so memory stays bounded by the file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"idx: missing file {path}")
    try:
        packed = path.read_bytes()
        gz = packed[:2] == b"\x1f\x8b"
        stream: Any = gzip.GzipFile(fileobj=io.BytesIO(packed)) if gz else io.BytesIO(packed)
        with stream:
            head = stream.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_DTYPES:
                raise DataError(
                    f"idx: {path} has magic number {head.hex() or '(empty file)'}; an IDX file starts with 0000 then "
                    "a type byte (08 for bytes) and the number of dimensions (e.g. 00000803 for images)"
                )
            ndim = head[3]
            dim_bytes = stream.read(4 * ndim)
            if len(dim_bytes) < 4 * ndim:
                raise DataError(f"idx: {path} is truncated inside its header")
            dims = tuple(int(d) for d in np.frombuffer(dim_bytes, dtype=">u4"))
            dtype = np.dtype(_IDX_DTYPES[head[2]])
            expected = math.prod(dims) * dtype.itemsize
            if gz and expected > _MAX_INFLATE * len(packed):
                raise DataError(
                    f"idx: {path} declares shape {dims} ({expected} bytes of data), more than {len(packed)} gzip "
                    "bytes can inflate to; the file is corrupted"
                )
            if gz:
                body: Any = stream.read(expected + 1)
            else:
                body = memoryview(packed)[4 + 4 * ndim :]
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"idx: cannot read {path} ({e}); is the download complete?") from None
    if len(body) > expected and gz:
        raise DataError(
            f"idx: {path} declares shape {dims} ({expected} bytes of data) but holds more data than that; "
            "the file is corrupted"
        )
    if len(body) != expected:
        raise DataError(
            f"idx: {path} declares shape {dims} ({expected} bytes of data) but holds {len(body)} bytes; "
            "the file is truncated or corrupted"
        )
    return np.frombuffer(body, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


_IDX_PATTERNS = {
    "train_images": ("train-images*idx3*", "train-images*"),
    "train_labels": ("train-labels*idx1*", "train-labels*"),
    "test_images": ("t10k-images*idx3*", "t10k-images*", "test-images*"),
    "test_labels": ("t10k-labels*idx1*", "t10k-labels*", "test-labels*"),
}


def _find_idx(root: Path, key: str) -> Path:
    for pattern in _IDX_PATTERNS[key]:
        hits = sorted(p for p in root.glob(pattern) if p.is_file())
        if hits:
            plain = [p for p in hits if p.suffix != ".gz"]
            return (plain or hits)[0]
    raise DataError(
        f"mnist-idx: no {key.replace('_', ' ')} file in {root}; expected {_IDX_PATTERNS[key][0]} "
        "(train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte)"
    )


def load_mnist_idx(
    root: str | Path | None = None,
    *,
    train_images: str | Path | None = None,
    train_labels: str | Path | None = None,
    test_images: str | Path | None = None,
    test_labels: str | Path | None = None,
    val_fraction: float = 0.1,
    seed: int | None = 0,
    dtype: Any = np.float32,
    num_classes: int = 10,
) -> Splits:
    """MNIST from the original IDX files, found by name in ``root`` or given one by one (gzip or not).

    ``val_fraction`` of the training set (drawn with ``seed``) is held out for validation.
    """
    given = {"train_images": train_images, "train_labels": train_labels, "test_images": test_images, "test_labels": test_labels}
    if root is not None:
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"mnist-idx: {root} is not a directory; give the folder holding the four IDX files")
        paths = {k: Path(v) if v is not None else _find_idx(root, k) for k, v in given.items()}
    else:
        missing = [k for k, v in given.items() if v is None]
        if missing:
            raise DataError(f"mnist-idx: give a directory or all four paths; missing {', '.join(missing)}")
        paths = {k: Path(v) for k, v in given.items()}  # type: ignore[arg-type]
    parts = {}
    for split in ("train", "test"):
        xi, yi = read_idx(paths[f"{split}_images"]), read_idx(paths[f"{split}_labels"])
        if xi.ndim != 3:
            raise DataError(f"mnist-idx: {paths[f'{split}_images']} has shape {xi.shape}; image files are (N, rows, cols)")
        x = _as_images(xi, dtype, f"mnist-idx {split} ({paths[f'{split}_images']})")
        y = _as_labels(yi, len(x), num_classes, f"mnist-idx {split} ({paths[f'{split}_labels']})")
        parts[split] = ArrayDataset(x, y)
    shape = parts["train"].arrays[0].shape[1:]
    if parts["test"].arrays[0].shape[1:] != shape:
        raise DataError(f"mnist-idx: test images are {parts['test'].arrays[0].shape[1:]} but train images are {shape}")
    return _with_val("mnist-idx", parts["train"], parts["test"], val_fraction, seed, num_classes, shape)
