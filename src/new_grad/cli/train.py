"""``new-grad train``: train a reference model, show progress, write metrics, plots and checkpoints.

The loop is the one a student writes by hand — zero the tape, forward inside
``with engine:``, ``engine.backward(1)``, ``optimizer.step()`` — plus what makes a
run trustworthy: a seeded shuffle, a checkpoint after every epoch and on Ctrl-C,
and a resume that replays the interrupted epoch batch for batch, so a resumed run
ends with the same numbers as one that was never stopped.
"""

from __future__ import annotations

import json
import math
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import nn, optim
from ..autograd_engine import Autograd, constant, no_grad
from ..backends import cuda_available, to_device, to_numpy
from ..data import DataLoader, Splits, load_digits, load_mnist_idx, load_mnist_npy
from ..errors import NewGradError, ReplayError
from ..models import DEFAULT_HIDDEN, build_model
from ..replay import compile as compile_step
from .checkpoint import save_checkpoint
from .resume import check_fits

# options that define a run (stored in metrics.json and in checkpoints) and their defaults;
# ``None`` means "depends on another option" (the model's width, the optimiser's learning rate).
DEFAULTS: dict[str, Any] = {
    "model": "mlp",
    "hidden": None,
    "dataset": "digits",
    "epochs": 30,
    "batch_size": 64,
    "optimizer": "sgd",
    "lr": None,
    "momentum": None,
    "weight_decay": 0.0,
    "scheduler": "cosine",
    "dtype": "float32",
    "seed": 0,
    "val_fraction": 0.1,
    "device": "cpu",
}
# options a resumed run may change; the others must match the checkpoint
RESUMABLE = {"epochs", "device"}
DEFAULT_LR = {"sgd": 0.1, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-3}
DEFAULT_MOMENTUM = {"sgd": 0.9, "rmsprop": 0.0}
OPTIMIZERS = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop"}
SCHEDULERS = ("none", "step", "exponential", "cosine", "onecycle", "plateau")
EVAL_BATCH = 1000


class UserError(NewGradError):
    """A mistake on the command line: reported as one line, no traceback."""


# -- configuration --------------------------------------------------------------------------------


def resolve_config(options: dict[str, Any], saved: dict[str, Any] | None = None) -> dict[str, Any]:
    """Concrete values for every run option: given ones, else the checkpoint's, else the defaults."""
    cfg = dict(DEFAULTS)
    if saved is not None:
        for key, value in options.items():
            if value is not None and key not in RESUMABLE and key in saved and value != saved[key]:
                raise UserError(
                    f"--resume: the checkpoint was trained with --{key.replace('_', '-')} {saved[key]}, not {value}; "
                    "drop the option to continue that run, or start a new run without --resume"
                )
        cfg.update(saved)
    cfg.update({k: v for k, v in options.items() if v is not None})
    if cfg["optimizer"] not in OPTIMIZERS:
        raise UserError(f"unknown optimizer {cfg['optimizer']!r}; choose one of {', '.join(OPTIMIZERS)}")
    if cfg["hidden"] is None:
        cfg["hidden"] = DEFAULT_HIDDEN[cfg["model"]]
    if cfg["lr"] is None:
        cfg["lr"] = DEFAULT_LR[cfg["optimizer"]]
    if cfg["momentum"] is None:
        cfg["momentum"] = DEFAULT_MOMENTUM.get(cfg["optimizer"], 0.0)
    if cfg["momentum"] and cfg["optimizer"] not in DEFAULT_MOMENTUM:
        raise UserError(f"--momentum applies to sgd and rmsprop, not {cfg['optimizer']} (which has betas)")
    return cfg


def load_dataset(cfg: dict[str, Any]) -> Splits:
    """``digits``, ``mnist-npy:DIR`` or ``mnist-idx:DIR`` (validated by the argument parser)."""
    kind, _, where = cfg["dataset"].partition(":")
    where = str(Path(where).expanduser()) if where else where
    common = dict(val_fraction=cfg["val_fraction"], seed=cfg["seed"], dtype=np.dtype(cfg["dtype"]))
    if kind == "digits":
        return load_digits(**common)
    if kind == "mnist-npy":
        return load_mnist_npy(where, **common)
    if kind == "mnist-idx":
        return load_mnist_idx(where, **common)
    raise UserError(f"unknown dataset {cfg['dataset']!r}; use digits, mnist-npy:DIR or mnist-idx:DIR")


def check_resume_length(saved: dict[str, Any], cfg: dict[str, Any], path: Path) -> None:
    """``--resume`` must leave something to train, and extend a run only where its schedule allows it.

    Extending (a larger ``--epochs``) continues the schedule's rule: ``none`` keeps the learning
    rate, ``step`` keeps its original step size, ``exponential`` keeps multiplying, ``plateau``
    keeps watching. ``cosine`` and ``onecycle`` are planned over the run's length, so they refuse.
    """
    loop, before = saved.get("loop"), saved.get("config")
    try:
        done, planned = int(loop["epoch"]), int(before["epochs"])  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return  # an incomplete checkpoint is reported when it is restored
    if cfg["epochs"] <= done:
        fewer = f" (--epochs {cfg['epochs']} asks for fewer)" if cfg["epochs"] < done else ""
        raise UserError(
            f"--resume: {path} already trained {done} epoch{'s' if done != 1 else ''}{fewer}, so there is nothing "
            f"to do; give --epochs with more than {done} to extend the run"
        )
    if cfg["epochs"] > planned and cfg["scheduler"] in ("cosine", "onecycle"):
        end = " (it brings the learning rate to 0 at the end)" if cfg["scheduler"] == "cosine" else ""
        raise UserError(
            f"--resume: the run's --scheduler {cfg['scheduler']} is planned over its {planned} epochs{end}, so it "
            f"cannot be extended to {cfg['epochs']}; resume it without --epochs, or start a new run with "
            f"--epochs {cfg['epochs']}"
        )


def make_optimizer(cfg: dict[str, Any], model: nn.Module) -> optim.Optimizer:
    cls = getattr(optim, OPTIMIZERS[cfg["optimizer"]], None)
    if cls is None:
        raise UserError(f"--optimizer {cfg['optimizer']}: this version of new_grad has no optim.{OPTIMIZERS[cfg['optimizer']]}")
    kwargs: dict[str, Any] = {"lr": cfg["lr"], "weight_decay": cfg["weight_decay"]}
    if cfg["optimizer"] in DEFAULT_MOMENTUM:
        kwargs["momentum"] = cfg["momentum"]
    opt = cls(model.parameters(), **kwargs)
    opt.check_gradients = "error"  # a parameter that gets no gradient means a broken model: stop, naming it
    return opt


def make_scheduler(cfg: dict[str, Any], opt: optim.Optimizer, steps_per_epoch: int) -> tuple[Any, str]:
    """The scheduler and when it steps: ``"epoch"``, ``"batch"`` or ``"val"`` (plateau: on val loss)."""
    name = cfg["scheduler"]
    if name == "none":
        return None, "epoch"
    sched = getattr(optim, "lr_scheduler", None)
    if sched is None:
        raise UserError(f"--scheduler {name}: this version of new_grad has no optim.lr_scheduler")
    epochs = cfg["epochs"]
    if name == "step":
        return sched.StepLR(opt, step_size=max(1, epochs // 3), gamma=0.1), "epoch"
    if name == "exponential":
        return sched.ExponentialLR(opt, gamma=0.9), "epoch"
    if name == "cosine":
        return sched.CosineAnnealingLR(opt, T_max=epochs), "epoch"
    if name == "onecycle":
        return sched.OneCycleLR(opt, max_lr=cfg["lr"], total_steps=epochs * steps_per_epoch), "batch"
    if name == "plateau":
        return sched.ReduceLROnPlateau(opt, factor=0.1, patience=2), "val"
    raise UserError(f"unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}")


def make_loss() -> Callable[[Any, Any], Any]:
    """Mean cross-entropy of logits against class indices (one fused op on the tape)."""
    return nn.CrossEntropyLoss()


# -- the device -----------------------------------------------------------------------------------


class Device:
    """Where arrays live: NumPy (``cpu``), CuPy (``gpu``) or the CPU stand-in (``standin``), moved by ``Module.to``."""

    def __init__(self, name: str) -> None:
        self.name = name
        if name == "gpu" and not cuda_available():
            raise UserError(
                "--device gpu needs CuPy and a CUDA GPU, and none was found; install CuPy with "
                "`pip install 'new_grad[gpu-cuda12]'` (or gpu-cuda13, after your driver's CUDA version) on a machine with an "
                "NVIDIA GPU, or use --device cpu"
            )

    def put(self, x: Any) -> Any:
        """A data batch on this device, still marked constant."""
        return x if self.name == "cpu" else constant(to_device(x, self.name))

    def move_model(self, model: nn.Module) -> None:
        model.to(self.name)


# -- Ctrl-C ----------------------------------------------------------------------------------------


class StopRequest:
    """First Ctrl-C: finish the current batch, save, exit. Second Ctrl-C: stop at once."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.requested = False
        self.say = say
        self._previous: Any = None

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.say("\nnew-grad: stopping after this batch to save a checkpoint (Ctrl-C again to quit without saving)")

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class Interrupted(Exception):
    """Training stopped on request after saving ``checkpoint``."""

    def __init__(self, checkpoint: Path) -> None:
        super().__init__(str(checkpoint))
        self.checkpoint = checkpoint


# -- the run ------------------------------------------------------------------------------------


def _fmt_pct(x: float | None) -> str:
    return "   -  " if x is None else f"{100 * x:5.2f}%"


def _fmt_loss(x: float | None) -> str:
    return "  -   " if x is None else f"{x:.4f}"


class Trainer:
    """One training run: data, model, optimiser, the loop, and everything it writes to ``out``."""

    def __init__(
        self,
        cfg: dict[str, Any],
        out: Path,
        *,
        quiet: bool = False,
        resume: dict[str, Any] | None = None,
        stop_after_steps: int | None = None,
        plots: bool = True,
        replay: bool = True,
    ) -> None:
        self.cfg, self.out, self.quiet, self.plots = cfg, out, quiet, plots
        self.stop_after_steps = stop_after_steps
        self.device = Device(cfg["device"])
        self.data = load_dataset(cfg)
        if len(self.data.train) == 0:
            raise UserError(f"{cfg['dataset']}: the training set is empty")
        dtype = np.dtype(cfg["dtype"])
        np.random.seed(cfg["seed"])  # layers initialise from NumPy's global generator, as PyTorch's do
        self.model = build_model(cfg["model"], self.data.sample_shape, self.data.num_classes, cfg["hidden"], dtype)
        self.device.move_model(self.model)
        self.loader = DataLoader(self.data.train, batch_size=cfg["batch_size"], shuffle=True, seed=cfg["seed"])
        self.optimizer = make_optimizer(cfg, self.model)
        self.scheduler, self.sched_when = make_scheduler(cfg, self.optimizer, len(self.loader))
        self.loss_fn = make_loss()
        self.engine = Autograd()
        # Replayed steps (new_grad.compile) give the eager results bit for bit, faster. One compiled step per
        # batch shape; a shape whose step cannot be replayed (it records different ops each time) runs eagerly.
        self.replay = replay and cfg["device"] == "cpu"
        self._compiled: dict[tuple, Any] = {}
        # loop state (all of it goes into checkpoints)
        self.epoch = 0  # index of the epoch in progress
        self.step = 0  # batches of that epoch already done
        self.acc = {"loss_sum": 0.0, "wrong": 0, "seen": 0, "seconds": 0.0}
        self.epoch_start_loader = self.loader.state_dict()
        self.epoch_lr = float(self.optimizer.param_groups[0]["lr"])
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {"loss": None, "epoch": None}
        if resume is not None:
            self._restore(resume)

    # -- checkpoints ----------------------------------------------------------------------------
    def _payload(self) -> dict[str, Any]:
        return {
            "config": self.cfg,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "loop": {
                "epoch": self.epoch,
                "step": self.step,
                "acc": self.acc,
                "loader": self.epoch_start_loader,
                "epoch_lr": self.epoch_lr,
                "np_random": np.random.get_state(),
                "history": self.history,
                "best": self.best,
            },
        }

    def _ensure_out(self) -> None:
        """The output folder is made when the run first has something to write (failed runs leave none)."""
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OSError(f"cannot write to the output directory {self.out} ({e.strerror or e}); choose another with --out") from None

    def save(self, name: str) -> Path:
        self._ensure_out()
        return save_checkpoint(self._payload(), self.out / name)

    def _restore(self, ckpt: dict[str, Any]) -> None:
        check_fits(ckpt, self.optimizer, self.scheduler, len(self.loader))
        try:
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            if self.scheduler is not None and ckpt.get("scheduler") is not None:
                self.scheduler.load_state_dict(ckpt["scheduler"])
            loop = ckpt["loop"]
            self.epoch, self.step = int(loop["epoch"]), int(loop["step"])
            self.acc = dict(loop["acc"])
            self.epoch_start_loader = loop["loader"]
            self.epoch_lr = float(loop["epoch_lr"])
            self.loader.load_state_dict(loop["loader"])
            np.random.set_state(tuple(loop["np_random"]))
            self.history = list(loop["history"])
            self.best = dict(loop["best"])
        except NewGradError as e:
            raise UserError(f"--resume: the checkpoint does not fit this model ({e})") from None
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise UserError(f"--resume: the checkpoint is incomplete or from another version ({type(e).__name__}: {e})") from None

    # -- evaluation -------------------------------------------------------------------------------
    def evaluate(self, dataset: Any) -> tuple[float, float, np.ndarray, np.ndarray]:
        """Mean loss, error rate, predictions and labels over ``dataset``, recording nothing."""
        self.model.eval()
        loss_sum, preds, labels = 0.0, [], []
        with no_grad():
            for x, y in DataLoader(dataset, batch_size=EVAL_BATCH):
                xd, yd = self.device.put(x), self.device.put(y)
                logits = self.model(xd)
                loss_sum += float(to_numpy(self.loss_fn(logits, yd))) * len(y)
                preds.append(to_numpy(logits).argmax(axis=1))
                labels.append(np.asarray(y))
        self.model.train()
        p, t = np.concatenate(preds), np.concatenate(labels)
        return loss_sum / len(t), float(np.mean(p != t)), p, t

    # -- one epoch --------------------------------------------------------------------------------
    def _train_epoch(self, stop: StopRequest, steps_done: list[int]) -> bool:
        """Train over the rest of the current epoch; False when stopped on request."""
        cfg = self.cfg
        batches = self.loader.batch_indices()
        bar = self._bar(sum(len(b) for b in batches), sum(len(b) for b in batches[: self.step]))
        tic = time.perf_counter()
        try:
            for i in range(self.step, len(batches)):
                loss_sum, wrong, seen = self._train_step(batches[i], stop)
                if self.scheduler is not None and self.sched_when == "batch":
                    self.scheduler.step()
                value = loss_sum / seen
                if not math.isfinite(value):
                    raise UserError(
                        f"epoch {self.epoch + 1}, batch {i + 1}: the loss is {value}; training diverged — "
                        f"lower --lr (now {cfg['lr']})"
                    )
                self.acc["loss_sum"] += loss_sum
                self.acc["wrong"] += wrong
                self.acc["seen"] += seen
                self.step = i + 1
                steps_done[0] += 1
                if bar is not None:
                    bar.update(seen)
                    bar.set_postfix_str(f"loss {self.acc['loss_sum'] / self.acc['seen']:.4f}", refresh=False)
                if self.stop_after_steps is not None and steps_done[0] >= self.stop_after_steps:
                    stop.requested = True
                if stop.requested and self.step < len(batches):
                    return False
        finally:
            self.acc["seconds"] += time.perf_counter() - tic
            if bar is not None:
                bar.close()
        return True

    def _train_step(self, indices: np.ndarray, stop: StopRequest) -> tuple[float, int, int]:
        """One optimiser step on the batch at ``indices``: its summed loss, wrong predictions and size.

        (The distributed trainer overrides this: each process takes a slice, the sums are global.)
        """
        model, opt, engine = self.model, self.optimizer, self.engine
        x, y = self.loader.fetch(indices)
        xd, yd = constant(self.device.put(x)), constant(self.device.put(y))
        engine.zero_grad()
        opt.zero_grad()
        loss = logits = None
        step = self._compiled_step(xd, yd)
        if step is not None:
            try:
                loss, logits = step(xd, yd)
            except ReplayError:  # this batch shape records different ops from call to call: eager from now on
                self._compiled[(xd.shape, yd.shape)] = None
                engine.zero_grad()
                opt.zero_grad()
        if loss is None:
            with engine:
                logits = model(xd)
                loss = self.loss_fn(logits, yd)
            engine.backward(1, output=loss)
        opt.step()
        return float(to_numpy(loss)) * len(y), int((to_numpy(logits).argmax(axis=1) != y).sum()), len(y)

    def _compiled_step(self, xd: Any, yd: Any) -> Any:
        """The replayed step for this batch shape (made on first use), or None to run eagerly."""
        if not self.replay:
            return None
        key = (xd.shape, yd.shape)
        if key not in self._compiled:

            def step(x: Any, y: Any) -> tuple[Any, Any]:
                logits = self.model(x)
                return self.loss_fn(logits, y), logits

            self._compiled[key] = compile_step(step, self.engine, has_aux=True)
        return self._compiled[key]

    def _bar(self, total: int, initial: int) -> Any:
        if self.quiet:
            return None
        try:
            from tqdm import tqdm
        except ImportError:
            return None
        return tqdm(
            total=total,
            initial=initial,
            desc=f"epoch {self.epoch + 1}/{self.cfg['epochs']}",
            unit="img",
            leave=False,
            file=sys.stderr,
            ncols=min(110, shutil.get_terminal_size((110, 24)).columns),
            disable=None,  # no bar when stderr is not a terminal
            bar_format="{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]",
        )

    def _finish_epoch(self) -> dict[str, Any]:
        tic = time.perf_counter()
        if self.data.val is not None and len(self.data.val):
            val_loss, val_err, _, _ = self.evaluate(self.data.val)
        else:
            val_loss = val_err = None
        seen = max(1, self.acc["seen"])
        record = {
            "epoch": self.epoch + 1,
            "train_loss": self.acc["loss_sum"] / seen,
            "train_error": self.acc["wrong"] / seen,
            "val_loss": val_loss,
            "val_error": val_err,
            "lr": self.epoch_lr,
            "seconds": self.acc["seconds"] + time.perf_counter() - tic,
        }
        if self.scheduler is not None and self.sched_when == "epoch":
            self.scheduler.step()
        elif self.scheduler is not None and self.sched_when == "val":
            self.scheduler.step(val_loss if val_loss is not None else record["train_loss"])
        self.history.append(record)
        self.epoch += 1
        self.step = 0
        self.acc = {"loss_sum": 0.0, "wrong": 0, "seen": 0, "seconds": 0.0}
        self.epoch_start_loader = self.loader.state_dict()
        return record

    # -- the whole run ----------------------------------------------------------------------------
    def say(self, text: str, err: bool = False) -> None:
        if not self.quiet or err:
            print(text, file=sys.stderr if err else sys.stdout, flush=True)

    def run(self) -> dict[str, Any]:
        cfg, data = self.cfg, self.data
        sizes = " / ".join(f"{k} {len(v)}" for k, v in (("train", data.train), ("val", data.val), ("test", data.test)) if v is not None)
        self.say(
            f"new-grad train: {cfg['model']} ({self.model.num_parameters():,} parameters) on {cfg['dataset']} "
            f"({sizes}); {cfg['optimizer']} lr {cfg['lr']:g}, batch {cfg['batch_size']}, {cfg['dtype']}, "
            f"seed {cfg['seed']}"
        )
        if self.epoch or self.step:
            self.say(f"resuming at epoch {self.epoch + 1}, batch {self.step}")
        steps_done = [0]
        with StopRequest(lambda s: self.say(s, err=True)) as stop:
            while self.epoch < cfg["epochs"]:
                if self.step == 0:
                    self.epoch_start_loader = self.loader.state_dict()
                    self.epoch_lr = float(self.optimizer.param_groups[0]["lr"])
                if not self._train_epoch(stop, steps_done):
                    path = self.save("last.npz")
                    self.write_metrics()
                    self.say(f"stopped in epoch {self.epoch + 1} after batch {self.step}; saved {path}", err=True)
                    self.say(f"continue with: new-grad train --resume {path}", err=True)
                    raise Interrupted(path)
                rec = self._finish_epoch()
                self.say(
                    f"epoch {rec['epoch']:>{len(str(cfg['epochs']))}}/{cfg['epochs']}  "
                    f"train loss {_fmt_loss(rec['train_loss'])} err {_fmt_pct(rec['train_error'])}  "
                    f"val loss {_fmt_loss(rec['val_loss'])} err {_fmt_pct(rec['val_error'])}  "
                    f"lr {rec['lr']:.3g}  {rec['seconds']:.2f}s"
                )
                key = rec["val_loss"] if rec["val_loss"] is not None else rec["train_loss"]
                if self.best["loss"] is None or key < self.best["loss"]:
                    self.best = {"loss": key, "epoch": rec["epoch"]}
                    self.save("best.npz")
                self.save("last.npz")
                self.write_metrics()
                if stop.requested and self.epoch < cfg["epochs"]:
                    path = self.out / "last.npz"
                    self.say(f"stopped after epoch {self.epoch}; saved {path}", err=True)
                    self.say(f"continue with: new-grad train --resume {path}", err=True)
                    raise Interrupted(path)
        test_loss, test_err, preds, labels = self.evaluate(data.test)
        metrics = self.write_metrics(test_loss, 1.0 - test_err)
        written = [name for name in ("metrics.json", "last.npz", "best.npz") if (self.out / name).exists()]
        if self.plots:
            written += self._plot(preds, labels)
        self.say(
            f"test loss {test_loss:.4f}  test accuracy {100 * (1 - test_err):.2f}%  "
            f"(best {'val' if data.val is not None else 'train'} loss at epoch {self.best['epoch']}); wrote {', '.join(written)} to {self.out}"
        )
        return metrics

    def write_metrics(self, test_loss: float | None = None, test_accuracy: float | None = None) -> dict[str, Any]:
        metrics = {"config": self.cfg, "epochs": self.history, "test_loss": test_loss, "test_accuracy": test_accuracy}
        self._ensure_out()
        tmp = self.out / "metrics.json.tmp"
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
        tmp.replace(self.out / "metrics.json")
        return metrics

    def _plot(self, preds: np.ndarray, labels: np.ndarray) -> list[str]:
        try:
            from . import plots
        except ImportError:
            self.say("new-grad: matplotlib is not installed, so no plots (pip install 'new_grad[train]')", err=True)
            return []
        title = f"{self.cfg['model']} on {self.cfg['dataset']}"
        return plots.write_all(self.history, preds, labels, self.data.num_classes, self.out, title)
