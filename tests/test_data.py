"""Datasets, the loader, random_split, and the digits / MNIST (.npy and IDX) loaders on small fake files."""

from __future__ import annotations

import gzip
from collections import namedtuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import new_grad as ng
from new_grad.data import (
    ArrayDataset,
    DataLoader,
    Dataset,
    Subset,
    load_digits,
    load_mnist_idx,
    load_mnist_npy,
    random_split,
    read_idx,
)
from new_grad.errors import DataError

# -- datasets and the loader ---------------------------------------------------------------------


def test_array_dataset_rows_and_length_check():
    x, y = np.arange(12.0).reshape(6, 2), np.arange(6)
    ds = ArrayDataset(x, y)
    assert len(ds) == 6
    xi, yi = ds[2]
    assert np.array_equal(xi, x[2]) and yi == 2
    with pytest.raises(DataError, match="different numbers of samples"):
        ArrayDataset(x, y[:5])
    with pytest.raises(DataError):
        ArrayDataset()


def test_loader_covers_every_sample_once_and_is_seeded():
    ds = ArrayDataset(np.arange(10.0)[:, None], np.arange(10))
    a = [y.tolist() for _, y in DataLoader(ds, batch_size=3, shuffle=True, seed=7)]
    b = [y.tolist() for _, y in DataLoader(ds, batch_size=3, shuffle=True, seed=7)]
    assert a == b  # same seed, same batches
    assert [len(y) for y in a] == [3, 3, 3, 1]
    assert sorted(sum(a, [])) == list(range(10))
    loader = DataLoader(ds, batch_size=3, shuffle=True, seed=7)
    first, second = ([y.tolist() for _, y in loader] for _ in range(2))
    assert first != second  # a new permutation every epoch
    plain = [y.tolist() for _, y in DataLoader(ds, batch_size=4)]
    assert plain == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_loader_drop_last_len_and_bad_batch_size():
    ds = ArrayDataset(np.zeros((10, 2)), np.zeros(10, dtype=np.int64))
    loader = DataLoader(ds, batch_size=4, drop_last=True)
    assert len(loader) == 2 and [len(x) for x, _ in loader] == [4, 4]
    assert len(DataLoader(ds, batch_size=4)) == 3
    with pytest.raises(DataError, match="batch_size"):
        DataLoader(ds, batch_size=0)


def test_loader_state_dict_replays_an_epoch():
    ds = ArrayDataset(np.arange(20.0), np.arange(20))
    loader = DataLoader(ds, batch_size=5, shuffle=True, seed=3)
    next(iter(loader))
    state = loader.state_dict()
    epoch = [y.tolist() for _, y in loader]
    loader.load_state_dict(state)
    assert [y.tolist() for _, y in loader] == epoch


def test_batches_are_constants_and_record_nothing():
    x = np.random.randn(8, 3)
    ds = ArrayDataset(x, np.arange(8))
    xb, yb = next(iter(DataLoader(ds, batch_size=4)))
    assert ng.is_constant(xb) and ng.is_constant(yb)
    eng = ng.Autograd()
    with eng:
        ng.sum(ng.exp(xb))
    assert eng.operation_list == []  # no input needs a gradient: nothing recorded


class Squares(Dataset):
    """A map-style dataset without __getitems__: the loader collates sample by sample."""

    def __len__(self) -> int:
        return 5

    def __getitem__(self, i: int):
        return np.full(2, float(i)), i * i


def test_generic_dataset_default_and_custom_collate():
    xb, yb = next(iter(DataLoader(Squares(), batch_size=3)))
    assert xb.shape == (3, 2) and yb.tolist() == [0, 1, 4]
    got = list(DataLoader(Squares(), batch_size=2, collate_fn=lambda s: [t[1] for t in s]))
    assert got == [[0, 1], [4, 9], [16]]
    with pytest.raises(NotImplementedError):
        len(Dataset())


def test_namedtuple_samples_and_batches_keep_their_type():
    """As PyTorch's default_collate: a namedtuple sample gives a namedtuple batch; a collate_fn may return one."""
    Pair = namedtuple("Pair", "x y")

    class Pairs(Dataset):
        def __len__(self) -> int:
            return 5

        def __getitem__(self, i: int):
            return Pair(np.full(2, float(i)), i)

    batches = list(DataLoader(Pairs(), batch_size=2))
    assert all(type(b) is Pair for b in batches) and batches[1].y.tolist() == [2, 3]
    assert ng.is_constant(batches[0].x)
    stack = lambda s: Pair(np.stack([p.x for p in s]), np.array([p.y for p in s]))  # noqa: E731
    custom = list(DataLoader(Pairs(), batch_size=2, collate_fn=stack))
    assert type(custom[0]) is Pair and custom[2].x.shape == (1, 2) and ng.is_constant(custom[2].x)


def test_array_dataset_of_a_list_and_a_bool_batch_size():
    ds = ArrayDataset(np.arange(5.0), [0, 1, 2, 3, 4])  # labels as a plain list
    assert [y.tolist() for _, y in DataLoader(ds, batch_size=2)] == [[0, 1], [2, 3], [4]]
    with pytest.raises(DataError, match="batch_size"):  # True is an int to Python, not a batch size
        DataLoader(ds, batch_size=True)


def test_a_split_of_a_plain_dataset_gives_batches():
    """random_split (PyTorch's way to hold out a validation set) of a dataset without __getitems__: the loader
    collates its samples (it yielded the list of samples itself)."""
    train, _ = random_split(Squares(), [3, 2], generator=0)
    xb, yb = next(iter(DataLoader(train, batch_size=2)))
    rows = [int(i) for i in train.indices[:2]]
    assert xb.shape == (2, 2) and yb.tolist() == [i * i for i in rows]
    assert ng.is_constant(xb) and ng.is_constant(yb)


def test_random_split_lengths_fractions_and_reproducibility():
    ds = ArrayDataset(np.arange(10))
    a, b = random_split(ds, [7, 3], generator=0)
    assert isinstance(a, Subset) and (len(a), len(b)) == (7, 3)
    ia, ib = set(a.indices.tolist()), set(b.indices.tolist())
    assert not ia & ib and ia | ib == set(range(10))
    a2, _ = random_split(ds, [7, 3], generator=np.random.default_rng(0))
    assert a2.indices.tolist() == a.indices.tolist()
    parts = random_split(ds, [0.5, 0.3, 0.2], generator=1)
    assert [len(p) for p in parts] == [5, 3, 2]
    (xs,) = next(iter(DataLoader(b, batch_size=3)))  # a Subset batches through __getitems__
    assert sorted(xs.tolist()) == sorted(ib)
    with pytest.raises(DataError, match="sum to 9"):
        random_split(ds, [6, 3])
    with pytest.raises(DataError, match="add up to 1"):
        random_split(ds, [0.5, 0.4])


# -- scikit-learn's digits -----------------------------------------------------------------------------


def test_digits_splits_shapes_and_fixed_test_set():
    d = load_digits()
    assert (len(d.train), len(d.val), len(d.test)) == (1294, 144, 359)
    x, y = d.test.arrays
    assert x.shape == (359, 1, 8, 8) and x.dtype == np.float32 and y.dtype == np.int64
    assert 0.0 <= x.min() and x.max() <= 1.0 and set(np.unique(y)) == set(range(10))
    other = load_digits(seed=5, dtype=np.float64)
    assert np.array_equal(other.test.arrays[1], y)  # the test set does not depend on the seed
    assert other.test.arrays[0].dtype == np.float64
    assert other.val.indices.tolist() != d.val.indices.tolist()
    assert load_digits(val_fraction=0).val is None


# -- MNIST as .npy files ---------------------------------------------------------------------------


def _fake_npy(root, n=12, layout=(784,), one_hot=False, val=True):
    rng = np.random.default_rng(0)
    for split in ("train", "val", "test") if val else ("train", "test"):
        np.save(root / f"{split}_data.npy", rng.integers(0, 256, (n, *layout), dtype=np.uint8))
        labels = rng.integers(0, 10, n)
        np.save(root / f"{split}_labels.npy", np.eye(10)[labels] if one_hot else labels)


@pytest.mark.parametrize("layout", [(784,), (28, 28), (1, 28, 28)])
def test_mnist_npy_layouts(tmp_path, layout):
    _fake_npy(tmp_path, layout=layout)
    d = load_mnist_npy(tmp_path)
    x, y = d.train.arrays
    assert x.shape == (12, 1, 28, 28) and x.dtype == np.float32 and x.max() <= 1.0
    assert y.dtype == np.int64 and len(d.val) == 12 and d.num_classes == 10


def test_mnist_npy_one_hot_labels_and_no_val_files(tmp_path):
    _fake_npy(tmp_path, n=20, one_hot=True, val=False)
    d = load_mnist_npy(tmp_path, val_fraction=0.25)
    assert (len(d.train), len(d.val), len(d.test)) == (15, 5, 20)
    assert d.test.arrays[1].ndim == 1


def test_mnist_npy_errors(tmp_path):
    with pytest.raises(DataError, match="not a directory"):
        load_mnist_npy(tmp_path / "nope")
    _fake_npy(tmp_path)
    (tmp_path / "test_labels.npy").unlink()
    with pytest.raises(DataError, match="missing file .*test_labels.npy"):
        load_mnist_npy(tmp_path)
    np.save(tmp_path / "test_labels.npy", np.zeros(11, dtype=np.int64))
    with pytest.raises(DataError, match="11 labels for 12 images"):
        load_mnist_npy(tmp_path)
    np.save(tmp_path / "test_labels.npy", np.full(12, 10))
    with pytest.raises(DataError, match="0..9"):
        load_mnist_npy(tmp_path)
    np.save(tmp_path / "test_labels.npy", np.zeros(12, dtype=np.int64))
    np.save(tmp_path / "test_data.npy", np.zeros((12, 783)))
    with pytest.raises(DataError, match="not square"):
        load_mnist_npy(tmp_path)
    (tmp_path / "test_data.npy").write_bytes(b"garbage, not an array")
    with pytest.raises(DataError, match="not a readable .npy"):
        load_mnist_npy(tmp_path)


def test_non_finite_pixels_are_refused_at_load_time(tmp_path):
    _fake_npy(tmp_path)
    base = np.random.default_rng(0).integers(0, 256, (12, 784)).astype(np.float64)  # 0-255 floats
    for bad, word in ((np.nan, "nan"), (np.inf, "inf"), (-np.inf, "inf")):
        x = base.copy()
        x[3, 17] = bad
        np.save(tmp_path / "train_data.npy", x)
        with pytest.raises(DataError, match=rf"train_data.npy.*{word}.*\(3, 17\)") as info:
            load_mnist_npy(tmp_path)
        assert "1 " in str(info.value)  # how many
    np.save(tmp_path / "train_data.npy", base)  # the same data without the bad pixel loads, scaled to [0, 1]
    x = load_mnist_npy(tmp_path).train.arrays[0]
    assert np.isfinite(x).all() and x.max() <= 1.0


def test_one_hot_labels_must_be_one_hot(tmp_path):
    _fake_npy(tmp_path, one_hot=True)
    good = np.load(tmp_path / "train_labels.npy")
    for row, word in ((np.full(10, np.nan), "not finite"), (np.zeros(10), "one-hot"), (np.full(10, 0.1), "one-hot")):
        y = good.copy()
        y[5] = row
        np.save(tmp_path / "train_labels.npy", y)
        with pytest.raises(DataError, match=rf"train_labels.npy.*row 5.*{word}|train_labels.npy.*{word}.*row 5"):
            load_mnist_npy(tmp_path)
    y = good.copy()
    np.save(tmp_path / "train_labels.npy", y.astype(np.uint8))  # integer one-hot rows are fine
    assert load_mnist_npy(tmp_path).train.arrays[1].tolist() == good.argmax(axis=1).tolist()


def _npy_declaring(path, shape, dtype="<f4", payload=b""):
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    path.write_bytes(buf.getvalue() + payload)


def test_impossible_declared_npy_shape_is_a_data_error(tmp_path):
    import tracemalloc

    _fake_npy(tmp_path)
    _npy_declaring(tmp_path / "train_data.npy", (10**15, 784), payload=b"\0" * 4096)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"train_data.npy.*\(1000000000000000, 784\).*4096 bytes"):
            load_mnist_npy(tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20
    _npy_declaring(tmp_path / "train_data.npy", (12, 784), dtype="|O", payload=b"\0" * 96)
    with pytest.raises(DataError, match="train_data.npy"):
        load_mnist_npy(tmp_path)


def test_gzip_idx_declaring_more_than_it_can_inflate_to(tmp_path):
    head = bytes([0, 0, 0x08, 3]) + np.asarray([10**9, 4000, 4000], dtype=">u4").tobytes()
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(head + b"\0" * 1000))
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz.*declares shape"):
        read_idx(path)
    import tracemalloc

    bomb = tmp_path / "bomb.gz"  # honest header, then 256 MiB more than declared (256 KiB on disk)
    with gzip.open(bomb, "wb") as f:
        f.write(bytes([0, 0, 0x08, 1]) + np.asarray([4], dtype=">u4").tobytes() + b"\0" * 4)
        for _ in range(256):
            f.write(b"\0" * 2**20)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="bomb.gz.*more data than"):
            read_idx(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20


# -- MNIST as IDX files ---------------------------------------------------------------------------------


def _idx_bytes(a: np.ndarray) -> bytes:
    code = {np.uint8: 0x08, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}[a.dtype.type]
    head = bytes([0, 0, code, a.ndim]) + np.asarray(a.shape, dtype=">u4").tobytes()
    return head + a.astype(a.dtype.newbyteorder(">")).tobytes()


def _write_idx(path, a, gz=False):
    data = _idx_bytes(a)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip(tmp_path, dtype, gz):
    a = (np.arange(24).reshape(2, 3, 4) * 3).astype(dtype)
    got = read_idx(_write_idx(tmp_path / "a.idx", a, gz))
    assert got.shape == a.shape and np.array_equal(got, a) and got.dtype.isnative


def test_read_idx_errors(tmp_path):
    with pytest.raises(DataError, match="missing file"):
        read_idx(tmp_path / "none")
    (tmp_path / "bad").write_bytes(b"\x12\x34\x08\x01abcd")
    with pytest.raises(DataError, match="magic number 1234"):
        read_idx(tmp_path / "bad")
    good = _idx_bytes(np.zeros((4, 2, 2), dtype=np.uint8))
    (tmp_path / "short").write_bytes(good[:-3])
    with pytest.raises(DataError, match="truncated"):
        read_idx(tmp_path / "short")


def _fake_idx_dir(root, n=10, gz=True):
    rng = np.random.default_rng(1)
    sfx = ".gz" if gz else ""
    for prefix, m in (("train", n), ("t10k", n // 2)):
        _write_idx(root / f"{prefix}-images-idx3-ubyte{sfx}", rng.integers(0, 256, (m, 28, 28)).astype(np.uint8), gz)
        _write_idx(root / f"{prefix}-labels-idx1-ubyte{sfx}", rng.integers(0, 10, m).astype(np.uint8), gz)


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_from_directory_and_paths(tmp_path, gz):
    _fake_idx_dir(tmp_path, gz=gz)
    d = load_mnist_idx(tmp_path, val_fraction=0.2)
    assert (len(d.train), len(d.val), len(d.test)) == (8, 2, 5)
    assert d.test.arrays[0].shape == (5, 1, 28, 28) and d.test.arrays[1].dtype == np.int64
    sfx = ".gz" if gz else ""
    d2 = load_mnist_idx(
        train_images=tmp_path / f"train-images-idx3-ubyte{sfx}",
        train_labels=tmp_path / f"train-labels-idx1-ubyte{sfx}",
        test_images=tmp_path / f"t10k-images-idx3-ubyte{sfx}",
        test_labels=tmp_path / f"t10k-labels-idx1-ubyte{sfx}",
        val_fraction=0,
    )
    assert len(d2.train) == 10 and d2.val is None


def test_mnist_idx_errors(tmp_path):
    with pytest.raises(DataError, match="give a directory or all four paths"):
        load_mnist_idx(train_images=tmp_path / "x")
    _fake_idx_dir(tmp_path, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="no test labels file"):
        load_mnist_idx(tmp_path)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(4, dtype=np.uint8))
    with pytest.raises(DataError, match="4 labels for 5 images"):
        load_mnist_idx(tmp_path)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(0, 40), batch_size=st.integers(1, 12), shuffle=st.booleans(), drop_last=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_loader_batches_partition_the_dataset(n, batch_size, shuffle, drop_last, seed):
    loader = DataLoader(ArrayDataset(np.arange(n)), batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed)
    batches = [b.tolist() for (b,) in loader]
    assert len(batches) == len(loader)
    assert all(len(b) == batch_size for b in batches[:-1]) and all(0 < len(b) <= batch_size for b in batches)
    seen = sum(batches, [])
    assert len(seen) == len(set(seen)) and set(seen) <= set(range(n))
    assert len(seen) == (n // batch_size) * batch_size if drop_last else sorted(seen) == list(range(n))
