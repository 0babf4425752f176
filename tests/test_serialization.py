"""``new_grad.save`` / ``new_grad.load``: exact round trips, resumable training, atomic writes, clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import new_grad as ng
from new_grad.errors import CheckpointError


class MLP(ng.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = ng.nn.Linear(4, 8)
        self.fc2 = ng.nn.Linear(8, 2)

    def forward(self, x):
        return self.fc2(ng.tanh(self.fc1(x)))


def train_step(model, opt, x, y):
    engine = ng.Autograd()
    model.set_engine(engine)
    opt.zero_grad()
    loss_fn = ng.nn.MSELoss(engine)
    loss_fn(y, model(ng.constant(x)))
    loss_fn.backward()
    opt.step()


def test_round_trip_keeps_types_keys_and_bits(tmp_path):
    obj = {
        "epoch": 7,
        "lr": 0.1,
        "name": "run/α",
        "done": False,
        "nothing": None,
        "specials": [float("nan"), float("inf"), -float("inf"), -0.0],
        "betas": (0.9, 0.999),
        1: {"nested": [np.arange(6, dtype=np.int32).reshape(2, 3), {"deep": np.float32(2.5)}]},
        (1, "a"): "tuple key",
        "arrays": {
            "f64": np.random.default_rng(0).standard_normal((3, 4)),
            "f32": np.ones((2,), np.float32),
            "bool": np.array([True, False]),
            "scalar0d": np.array(3.0),
            "empty": np.zeros((0, 5)),
            "strided": np.arange(12.0).reshape(3, 4)[:, ::2],
            "str": np.array(["a", "bc"]),
        },
        "file": np.zeros(1),  # names that np.savez would choke on
        "allow_pickle": np.zeros(1),
    }
    path = tmp_path / "ck.npz"
    ng.save(obj, path)
    back = ng.load(path)
    assert set(back) == set(obj)
    assert back["epoch"] == 7 and type(back["epoch"]) is int
    assert back["lr"] == 0.1 and type(back["lr"]) is float
    assert back["name"] == "run/α" and back["done"] is False and back["nothing"] is None
    s = back["specials"]
    assert np.isnan(s[0]) and s[1] == np.inf and s[2] == -np.inf and str(s[3]) == "-0.0"
    assert back["betas"] == (0.9, 0.999) and isinstance(back["betas"], tuple)
    assert back[(1, "a")] == "tuple key"
    nested = back[1]["nested"]
    assert nested[0].dtype == np.int32 and np.array_equal(nested[0], obj[1]["nested"][0])
    assert isinstance(nested[1]["deep"], np.float32) and nested[1]["deep"] == 2.5
    for k, v in obj["arrays"].items():
        assert back["arrays"][k].dtype == v.dtype and back["arrays"][k].shape == v.shape, k
        assert np.array_equal(back["arrays"][k], v), k
    # any NumPy can read the arrays, by readable names
    with np.load(path, allow_pickle=False) as z:
        assert "arrays.f64" in z.files and np.array_equal(z["arrays.f64"], obj["arrays"]["f64"])


def test_model_and_optimizer_resume_bit_identical(tmp_path):
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((16, 4)), rng.standard_normal((16, 2))
    np.random.seed(0)
    model = MLP()
    opt = ng.optim.Adam(model.parameters(), lr=0.01, amsgrad=True)
    sched = ng.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(3):
        train_step(model, opt, x, y)
        sched.step()
    path = tmp_path / "ckpt.npz"
    ng.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "sched": sched.state_dict(), "epoch": 3}, path)

    np.random.seed(99)  # a different initialisation, overwritten by the checkpoint
    model2 = MLP()
    opt2 = ng.optim.Adam(model2.parameters(), lr=0.5)
    sched2 = ng.optim.lr_scheduler.StepLR(opt2, step_size=2, gamma=0.5)
    ck = ng.load(path)
    model2.load_state_dict(ck["model"])
    opt2.load_state_dict(ck["optimizer"])
    sched2.load_state_dict(ck["sched"])
    assert ck["epoch"] == 3
    for _ in range(4):
        train_step(model, opt, x, y)
        sched.step()
        train_step(model2, opt2, x, y)
        sched2.step()
    for (n1, (p1, _)), (n2, (p2, _)) in zip(model.named_parameters(), model2.named_parameters()):
        assert n1 == n2 and np.array_equal(p1, p2), n1
    assert opt.state_dict()["param_groups"][0]["lr"] == opt2.state_dict()["param_groups"][0]["lr"]


def test_failure_mid_save_keeps_old_file_and_cleans_up(tmp_path, monkeypatch):
    path = tmp_path / "ck.npz"
    ng.save({"w": np.ones(3)}, path)
    import new_grad.serialization as ser

    real = ser.np.lib.format.write_array
    calls = []

    def failing(fp, arr, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # interrupted half way through the archive
        return real(fp, arr, **kw)

    monkeypatch.setattr(ser.np.lib.format, "write_array", failing)
    with pytest.raises(KeyboardInterrupt):
        ng.save({"w": np.zeros(3), "v": np.zeros(1000)}, path)
    monkeypatch.undo()
    assert np.array_equal(ng.load(path)["w"], np.ones(3))
    assert os.listdir(tmp_path) == ["ck.npz"]  # the temporary file is gone


def test_hard_crash_mid_save_keeps_old_file(tmp_path):
    """A process killed while writing (os._exit in the middle of the archive): the old checkpoint survives."""
    path = tmp_path / "ck.npz"
    ng.save({"w": np.ones(3), "epoch": 1}, path)
    script = textwrap.dedent(
        f"""
        import os, numpy as np, new_grad as ng
        import new_grad.serialization as ser
        real = ser.np.lib.format.write_array
        n = [0]
        def dying(fp, arr, **kw):
            n[0] += 1
            if n[0] == 3:
                os._exit(3)  # no cleanup, no finally: like a power cut or kill -9
            return real(fp, arr, **kw)
        ser.np.lib.format.write_array = dying
        ng.save({{"w": np.zeros(3), "a": np.zeros(10000), "b": np.zeros(10), "epoch": 2}}, {str(path)!r})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == 3, proc.stderr.decode()
    back = ng.load(path)
    assert back["epoch"] == 1 and np.array_equal(back["w"], np.ones(3))
    leftovers = [f for f in os.listdir(tmp_path) if f != "ck.npz"]
    assert all(f.startswith(".ck.npz.") and f.endswith(".tmp") for f in leftovers)  # a stray temp, never the target


def test_truncated_file(tmp_path):
    path = tmp_path / "ck.npz"
    ng.save({"w": np.arange(1000.0)}, path)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 3):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match=f"cut{cut}.npz"):
            ng.load(bad)


def test_corrupted_member(tmp_path):
    path = tmp_path / "ck.npz"
    ng.save({"w": np.arange(1000.0)}, path)
    data = bytearray(path.read_bytes())
    data[500] ^= 0xFF  # inside the array's bytes: the zip CRC catches it
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="ck.npz"):
        ng.load(path)


def test_foreign_files(tmp_path):
    npz = tmp_path / "other.npz"
    np.savez(npz, a=np.ones(2))
    with pytest.raises(CheckpointError, match="not a new_grad checkpoint.*other.npz|other.npz.*not a new_grad"):
        ng.load(npz)
    npy = tmp_path / "x.npy"
    np.save(npy, np.ones(2))
    with pytest.raises(CheckpointError, match="x.npy"):
        ng.load(npy)
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    with pytest.raises(CheckpointError, match="notes.txt"):
        ng.load(txt)
    other_zip = tmp_path / "fake.npz"
    with zipfile.ZipFile(other_zip, "w") as zf:
        zf.writestr("__new_grad__.npy", b"garbage")
    with pytest.raises(CheckpointError, match="fake.npz"):
        ng.load(other_zip)
    with pytest.raises(CheckpointError, match="no checkpoint at .*missing.npz"):
        ng.load(tmp_path / "missing.npz")


def test_unwritable_paths(tmp_path):
    with pytest.raises(CheckpointError, match="no_such_dir"):
        ng.save({"w": np.ones(1)}, tmp_path / "no_such_dir" / "ck.npz")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(CheckpointError, match="afile"):
        ng.save({"w": np.ones(1)}, tmp_path / "afile" / "ck.npz")
    with pytest.raises(CheckpointError, match="directory"):
        ng.save({"w": np.ones(1)}, tmp_path)


def test_refuses_what_would_need_pickle(tmp_path):
    with pytest.raises(CheckpointError, match="state_dict"):
        ng.save({"model": MLP()}, tmp_path / "m.npz")
    with pytest.raises(CheckpointError, match="object"):
        ng.save({"a": np.array([1, "x", None], dtype=object)}, tmp_path / "o.npz")
    with pytest.raises(CheckpointError, match="set"):
        ng.save({"s": {1, 2}}, tmp_path / "s.npz")
    assert not list(tmp_path.iterdir())


def test_overwrite_keeps_permissions_and_file_objects(tmp_path):
    import io

    path = tmp_path / "ck.npz"
    ng.save({"a": 1}, path)
    os.chmod(path, 0o640)
    ng.save({"a": 2}, path)
    assert ng.load(path) == {"a": 2} and (os.stat(path).st_mode & 0o777) == 0o640
    buf = io.BytesIO()
    ng.save({"w": np.arange(3)}, buf)
    buf.seek(0)
    assert np.array_equal(ng.load(buf)["w"], np.arange(3))
