"""``new_grad.save`` / ``new_grad.load``: exact round trips, resumable training, atomic writes, clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

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


# -- hostile files: every one is a CheckpointError, bounded in time and memory ----------------------------------


def _structure_member(tree) -> bytes:
    import io
    import json

    doc = json.dumps({"format": "new_grad.checkpoint", "version": 1, "tree": tree}).encode()
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.frombuffer(doc, dtype=np.uint8), allow_pickle=False)
    return buf.getvalue()


def _handmade(path, tree, members=(), compression=zipfile.ZIP_STORED):
    """An archive laid out as new_grad.save lays it out, with members (name, bytes) chosen by the test."""
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members:
            zf.writestr(name, data)
        zf.writestr("__new_grad__.npy", _structure_member(tree), compress_type=zipfile.ZIP_STORED)


def _peak_bytes(fn):
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_deep_nesting_is_refused_on_save_and_on_load(tmp_path):
    deep: list = []
    for _ in range(600):
        deep = [deep]
    with pytest.raises(CheckpointError, match="nested"):
        ng.save({"x": deep}, tmp_path / "deep.npz")
    assert not list(tmp_path.iterdir())
    tree: object = {"list": []}
    for _ in range(300):
        tree = {"list": [tree]}
    _handmade(tmp_path / "deep.npz", tree)
    with pytest.raises(CheckpointError, match="deep.npz.*nested"):
        ng.load(tmp_path / "deep.npz")
    for depth in (5000, 100_000):  # beyond what a JSON parser can recurse into
        (tmp_path / "deeper.npz").unlink(missing_ok=True)
        with zipfile.ZipFile(tmp_path / "deeper.npz", "w") as zf:
            doc = b'{"format": "new_grad.checkpoint", "version": 1, "tree": ' + b"[" * depth + b"]" * depth + b"}"
            import io

            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.frombuffer(doc, dtype=np.uint8), allow_pickle=False)
            zf.writestr("__new_grad__.npy", buf.getvalue())
        with pytest.raises(CheckpointError, match="deeper.npz"):
            ng.load(tmp_path / "deeper.npz")
    # what save writes at a realistic depth still loads
    ok: object = np.ones(2)
    for i in range(50):
        ok = {f"k{i}": ok}
    ng.save(ok, tmp_path / "ok.npz")
    assert ng.load(tmp_path / "ok.npz") is not None


def test_absurd_declared_shape_is_refused_without_allocating(tmp_path):
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**15,)}
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_2_0(buf, header)
    member = buf.getvalue() + np.zeros(1).tobytes()  # declares 8 PB, holds 8 bytes
    _handmade(tmp_path / "huge.npz", {"dict": [["w", {"array": "w"}]]}, [("w.npy", member)])
    peak = _peak_bytes(lambda: _expect_checkpoint_error(tmp_path / "huge.npz", r"huge.npz.*\(1000000000000000,\)"))
    assert peak < 16 * 2**20
    # an object dtype declared in a member header is refused too (it would need pickle)
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False, "shape": (1,)})
    _handmade(tmp_path / "obj.npz", {"dict": [["w", {"array": "w"}]]}, [("w.npy", buf.getvalue() + b"\0" * 8)])
    _expect_checkpoint_error(tmp_path / "obj.npz", "obj.npz")


def _expect_checkpoint_error(path, pattern):
    with pytest.raises(CheckpointError, match=pattern):
        ng.load(path)


def test_compressed_member_is_refused_without_inflating(tmp_path):
    bomb = np.zeros(64 * 2**20, dtype=np.uint8)  # 64 MiB of zeros: about 64 KiB once deflated
    import io

    buf = io.BytesIO()
    np.lib.format.write_array(buf, bomb)
    _handmade(tmp_path / "bomb.npz", {"dict": [["w", {"array": "w"}]]}, [("w.npy", buf.getvalue())],
              compression=zipfile.ZIP_DEFLATED)
    del bomb, buf
    assert os.path.getsize(tmp_path / "bomb.npz") < 2**20
    peak = _peak_bytes(lambda: _expect_checkpoint_error(tmp_path / "bomb.npz", "bomb.npz.*compressed"))
    assert peak < 16 * 2**20


def test_fifo_and_other_non_regular_paths_are_refused_at_once(tmp_path):
    import threading

    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    outcome: list = []

    def attempt():
        try:
            ng.load(fifo)
        except BaseException as e:  # noqa: BLE001 - the outcome is checked below
            outcome.append(e)

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(60)
    if t.is_alive():  # it blocked on open(): give it a writer so the thread can end, then fail
        with open(fifo, "wb"):
            pass
        t.join(60)
        pytest.fail("load blocked on a named pipe")
    assert len(outcome) == 1 and isinstance(outcome[0], CheckpointError), outcome
    assert "pipe.npz" in str(outcome[0]) and "regular file" in str(outcome[0])
    with pytest.raises(CheckpointError, match="regular file"):
        ng.load("/dev/null")


# -- temporary files of killed or interrupted saves -------------------------------------------------------------


def _killed_save(path, die_at: int) -> None:
    script = textwrap.dedent(
        f"""
        import os, numpy as np, new_grad as ng
        import new_grad.serialization as ser
        real = ser.np.lib.format.write_array
        n = [0]
        def dying(fp, arr, **kw):
            n[0] += 1
            if n[0] == {die_at}:
                os._exit(3)
            return real(fp, arr, **kw)
        ser.np.lib.format.write_array = dying
        ng.save({{"a": np.zeros(10000), "b": np.zeros(10), "epoch": 2}}, {str(path)!r})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == 3, proc.stderr.decode()


def test_next_save_removes_temporaries_left_by_killed_saves(tmp_path):
    import fcntl

    path = tmp_path / "ck.npz"
    ng.save({"epoch": 1}, path)
    for die_at in (1, 2, 3):  # each killed save sweeps its predecessor's leftover: at most one at a time
        _killed_save(path, die_at)
        stale = [f for f in os.listdir(tmp_path) if f != "ck.npz"]
        assert len(stale) == 1 and stale[0].startswith(".ck.npz.") and stale[0].endswith(".tmp"), stale
    # not stale: another target's temporaries, and one a running save holds (locked) right now
    others = [".ck.npz.b.abcd1234.tmp", ".other.npz.abcd1234.tmp", "ck.npz.abcd1234.tmp"]
    for name in others:
        (tmp_path / name).write_bytes(b"x")
    live = tmp_path / ".ck.npz.live0000.tmp"
    live.write_bytes(b"being written")
    with open(live, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        ng.save({"epoch": 3}, path)
        assert sorted(os.listdir(tmp_path)) == sorted(["ck.npz", live.name, *others])
    assert ng.load(path) == {"epoch": 3}
    ng.save({"epoch": 4}, path)  # its writer is gone now: swept too
    assert sorted(os.listdir(tmp_path)) == sorted(["ck.npz", *others])


def test_an_interruption_as_the_temporary_is_created_leaves_nothing(tmp_path, monkeypatch):
    import new_grad.serialization as ser

    path = tmp_path / "ck.npz"
    ng.save({"epoch": 1}, path)
    real = ser.tempfile.mkstemp

    def interrupted(*args, **kwargs):
        real(*args, **kwargs)  # the file exists, but Ctrl-C lands before its name is returned
        raise KeyboardInterrupt

    monkeypatch.setattr(ser.tempfile, "mkstemp", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ng.save({"epoch": 2}, path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ck.npz"] and ng.load(path) == {"epoch": 1}


def test_concurrent_saves_of_one_target_never_lose_a_temporary(tmp_path):
    """Saves racing on one path (threads here) never sweep each other's live temporary."""
    import threading

    path = tmp_path / "ck.npz"
    errors: list = []

    def saver(k):
        try:
            for i in range(20):
                ng.save({"who": k, "i": i, "w": np.full(2000, float(k))}, path)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=saver, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    back = ng.load(path)
    assert back["i"] == 19 and np.all(back["w"] == back["who"])
    assert os.listdir(tmp_path) == ["ck.npz"]


def test_save_through_a_symbolic_link_keeps_the_link(tmp_path):
    """As open() writes through a link: the link stays and the file it names gets the new checkpoint."""
    (tmp_path / "runs").mkdir()
    real = tmp_path / "runs" / "epoch3.npz"
    ng.save({"w": np.ones(2)}, real)
    link = tmp_path / "last.npz"
    link.symlink_to(Path("runs") / "epoch3.npz")
    ng.save({"w": np.zeros(2)}, link)
    assert link.is_symlink()
    assert np.array_equal(ng.load(real)["w"], np.zeros(2))
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["epoch3.npz"]  # no temporary left
    dangling = tmp_path / "next.npz"
    dangling.symlink_to(Path("runs") / "epoch4.npz")
    ng.save({"w": np.full(2, 4.0)}, dangling)  # a link to a file not yet written creates that file
    assert dangling.is_symlink() and np.array_equal(ng.load(tmp_path / "runs" / "epoch4.npz")["w"], np.full(2, 4.0))
