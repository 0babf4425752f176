"""The ``new-grad`` command (also ``python -m new_grad``): train, tape, bench.

The only layer of new_grad that parses arguments, prints progress and draws
plots. Every mistake a user can make ends in one line on stderr and a non-zero
exit status; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from .. import __version__
from ..errors import NewGradError

EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 1, 2, 130, 141


class UsageError(Exception):
    """A malformed command line (argparse's errors, as one line)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: error: {message} (see `{self.prog} --help`)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


SEED_MAX = 2**32 - 1  # NumPy's legacy generator, which layers initialise from, takes seeds in [0, 2**32)


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"{value} is out of range: give a whole number from 0 to {SEED_MAX}")
    return value


def _nonneg_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number ≥ 0")
    return value


def _positive_float(text: str) -> float:
    value = _nonneg_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def _fraction(text: str) -> float:
    value = _nonneg_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"{text} must be in [0, 1)")
    return value


def _dataset(text: str) -> str:
    kind, sep, where = text.partition(":")
    if kind == "digits" and not sep:
        return text
    if kind in ("mnist-npy", "mnist-idx") and sep and where:
        return text
    raise argparse.ArgumentTypeError(
        f"{text!r}: use digits (bundled with scikit-learn), mnist-npy:DIR (train_data.npy, ...) or mnist-idx:DIR"
    )


def build_parser() -> argparse.ArgumentParser:
    from .train import DEFAULT_LR, DEFAULTS, OPTIMIZERS, SCHEDULERS

    p = _Parser(
        prog="new-grad",
        description="new_grad: reverse-mode autodiff on NumPy arrays. Train a model, look at its tape, run the benchmarks.",
    )
    p.add_argument("--version", action="version", version=f"new_grad {__version__}")
    sub = p.add_subparsers(dest="command", metavar="{train,tape,bench}")

    t = sub.add_parser(
        "train",
        help="train a model (default: an MLP on scikit-learn's digits, under a minute)",
        description="Train a reference model, with a progress bar per epoch and one line per epoch;\n"
        "write metrics.json, PNG plots and checkpoints (last.npz, best.npz) to --out.\n"
        "Ctrl-C saves a checkpoint; --resume continues exactly where it stopped.",
        epilog="examples (test accuracy on the bundled digits in brackets):\n"
        "  new-grad train                                                      (98 %, about a second)\n"
        "  new-grad train --model cnn --epochs 10                              (98 %)\n"
        "  new-grad train --model gru --optimizer adam --lr 0.01 --epochs 10   (97 %)\n"
        "  new-grad train --dataset mnist-idx:~/data/mnist --model cnn --out runs/cnn\n"
        "  new-grad train --resume runs/cnn/last.npz\n\n"
        "extending a finished run (--resume with a larger --epochs) continues its schedule: none keeps the\n"
        "learning rate, step keeps dividing it by 10 every third of the original length, exponential keeps\n"
        "multiplying it by 0.9, plateau keeps watching the validation loss. cosine and onecycle plan the\n"
        "learning rate over the run's length (cosine ends at 0), so such a run can be resumed but not extended.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.add_argument("--model", choices=["mlp", "cnn", "gru"], help=f"architecture (default {DEFAULTS['model']})")
    t.add_argument("--hidden", type=_positive_int, metavar="N", help="hidden width (default: 128 for mlp, 64 for cnn and gru)")
    t.add_argument("--dataset", type=_dataset, metavar="{digits,mnist-npy:DIR,mnist-idx:DIR}",
                   help=f"training data (default {DEFAULTS['dataset']}): scikit-learn's bundled 8x8 digits, MNIST "
                   "as the course's .npy files, or MNIST's IDX files (gzip or not)")
    t.add_argument("--epochs", type=_positive_int, metavar="N", help=f"passes over the training set (default {DEFAULTS['epochs']})")
    t.add_argument("--batch-size", type=_positive_int, metavar="N", help=f"samples per step (default {DEFAULTS['batch_size']})")
    t.add_argument("--optimizer", choices=list(OPTIMIZERS), help=f"update rule (default {DEFAULTS['optimizer']})")
    t.add_argument("--lr", type=_positive_float,
                   help="learning rate (default " + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items()) + ")")
    t.add_argument("--momentum", type=_nonneg_float, metavar="M", help="momentum for sgd (default 0.9) and rmsprop (default 0)")
    t.add_argument("--weight-decay", type=_nonneg_float, metavar="WD", help="L2 penalty (decoupled for adamw) (default 0)")
    t.add_argument("--scheduler", choices=list(SCHEDULERS),
                   help=f"learning-rate schedule (default {DEFAULTS['scheduler']}): none, step (×0.1 every third of the run), exponential "
                   "(×0.9 per epoch), cosine (to 0 over the run), onecycle (per batch, peak --lr), plateau (×0.1 "
                   "when val loss stalls 2 epochs)")
    t.add_argument("--dtype", choices=["float32", "float64"], help=f"parameter and data precision (default {DEFAULTS['dtype']})")
    t.add_argument("--seed", type=_seed, metavar="N", help=f"seeds initialisation, validation split and shuffling (default {DEFAULTS['seed']})")
    t.add_argument("--val-fraction", type=_fraction, metavar="F",
                   help=f"share of the training set held out for validation (default {DEFAULTS['val_fraction']}; "
                   "mnist-npy uses its val_*.npy files when present)")
    t.add_argument("--out", type=Path, metavar="DIR", help="output directory (default runs/<UTC timestamp>, or the resumed run's)")
    t.add_argument("--resume", type=Path, metavar="CHECKPOINT",
                   help="continue the run saved in this checkpoint (last.npz); a larger --epochs extends it "
                   "(see below for what that means under each --scheduler)")
    t.add_argument("--overwrite", action="store_true",
                   help="train into an --out folder that already holds a run, replacing its files")
    t.add_argument("--device", choices=["cpu", "gpu", "standin"],
                   help="where to compute: gpu needs CuPy; standin is a CPU stand-in for a device that checks code "
                   "for NumPy calls hard-wired where the array's namespace belongs (default cpu)")
    t.add_argument("--threads", type=_positive_int, default=1, metavar="N",
                   help="BLAS threads (default 1: small models run fastest on one, and a busy machine slows more down)")
    t.add_argument("--distributed", action="store_true",
                   help="data-parallel over MPI: run as `mpiexec -n N new-grad train --distributed` (--batch-size stays "
                   "the global batch; process 0 prints and writes; needs the mpi extra)")
    t.add_argument("--no-replay", action="store_true",
                   help="run every step eagerly (by default a step whose tape repeats is replayed: same results, faster)")
    t.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    t.add_argument("--quiet", action="store_true", help="print nothing but errors")
    t.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    t.add_argument("--stop-after-steps", type=_positive_int, help=argparse.SUPPRESS)  # tests: a Ctrl-C on cue

    tp = sub.add_parser(
        "tape",
        help="run one training step and print the tape (the operation list)",
        description="Build a model, run one training step on a small batch of digits, and print the operation list "
        "the engine recorded (index, op, inputs, output shape, dtype, bytes held, totals), then the gradients "
        "backward put into the parameters.",
    )
    tp.add_argument("--model", choices=["mlp", "cnn", "gru"], default="mlp", help="architecture (default mlp)")
    tp.add_argument("--hidden", type=_positive_int, metavar="N", help="hidden width (default 128 for mlp, 64 for cnn and gru)")
    tp.add_argument("--batch-size", type=_positive_int, default=8, metavar="N", help="samples in the step (default 8)")
    tp.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="precision (default float32)")
    tp.add_argument("--seed", type=_seed, default=0, metavar="N", help="seeds the initialisation (default 0)")
    tp.add_argument("--dot", type=Path, metavar="FILE", help="also write the tape as Graphviz DOT to FILE")
    tp.add_argument("--svg", type=Path, metavar="FILE", help="also render the tape to FILE with Graphviz's dot")
    tp.add_argument("--html", type=Path, metavar="FILE",
                    help="also write FILE: one self-contained page that plays the step forward, then backward, "
                    "with the memory buffer filling (open it in any browser; no server, no network)")
    tp.add_argument("--no-color", action="store_true", help="plain text even on a terminal (NO_COLOR is honoured too)")
    tp.add_argument("--debug", action="store_true", help="show tracebacks on errors")

    sub.add_parser(
        "bench",
        help="run the benchmark suite against PyTorch and the other peers and print its table "
        "(`new-grad bench --help` for its options; --quick for a smoke run)",
        add_help=False,
    )
    return p


RUN_FILES = ("metrics.json", "last.npz", "best.npz", "loss.png", "error.png", "confusion.png")


def _out_dir(out: Path | None, resume: Path | None, overwrite: bool = False) -> Path:
    """The output directory, checked but not created (the run makes it when it first writes).

    A folder that already holds a run is used only to continue that run (``--resume``) or with ``--overwrite``.
    """
    if out is None:
        if resume is not None:
            out = resume.parent
        else:
            out = Path("runs") / time.strftime("%Y%m%d-%H%M%S", time.gmtime())
            n = 1
            base = out
            while out.exists():
                n += 1
                out = base.with_name(f"{base.name}-{n}")
    from .train import UserError

    held = [name for name in RUN_FILES if (out / name).exists()]
    continuing = resume is not None and out.resolve() == resume.resolve().parent
    if held and not continuing and not overwrite:
        raise UserError(
            f"--out {out} already holds a run ({', '.join(held)}); continue it with --resume {out / 'last.npz'}, "
            "replace it with --overwrite, or choose another --out"
        )
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        why = "not a folder" if not existing.is_dir() else "no write permission"
        raise OSError(f"cannot write to the output directory {out} ({existing}: {why}); choose another with --out")
    return out


def blas_threads(n: int | None) -> Any:
    """Limit the BLAS thread pool to ``n`` threads inside the block (needs threadpoolctl; else no-op)."""
    if n is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(n, user_api="blas")


def cmd_train(args: argparse.Namespace) -> int:
    from .checkpoint import load_checkpoint
    from .train import DEFAULTS, Interrupted, Trainer, check_resume_length, resolve_config

    rng_state = np.random.get_state()
    options = {k: getattr(args, k) for k in DEFAULTS}
    saved = None
    if args.resume is not None:
        saved = load_checkpoint(args.resume)
        if not isinstance(saved.get("config"), dict):
            raise NewGradError(f"--resume: {args.resume} holds no run configuration")
    cfg = resolve_config(options, saved["config"] if saved else None)
    make = Trainer
    if args.distributed:
        from .distributed import DistributedTrainer, shared_out_dir

        make, out = DistributedTrainer, shared_out_dir(lambda: _out_dir(args.out, args.resume, args.overwrite))
    else:
        out = _out_dir(args.out, args.resume, args.overwrite)
    try:
        trainer = make(cfg, out, quiet=args.quiet, resume=saved, stop_after_steps=args.stop_after_steps,
                       plots=not args.no_plots, replay=not args.no_replay)
        if saved is not None:
            check_resume_length(saved, cfg, args.resume)
        if args.overwrite and getattr(trainer, "lead", True):  # the earlier run's files go once this one can start
            for name in RUN_FILES:
                (out / name).unlink(missing_ok=True)
        with blas_threads(args.threads), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            trainer.run()  # a diverging run is reported in one line by the loss check, not by NumPy's warnings
    except Interrupted:
        return EXIT_INTERRUPTED
    finally:
        np.random.set_state(rng_state)  # the run seeds NumPy's global generator; give the caller theirs back
    return 0


def cmd_tape(args: argparse.Namespace) -> int:
    from .tape import run_tape

    return run_tape(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``new-grad``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        if argv[:1] == ["bench"]:  # the suite parses its own options (new-grad bench --help shows them)
            from .bench import run_bench

            return run_bench(argv[1:])
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        commands: dict[str, Any] = {"train": cmd_train, "tape": cmd_tape}
        status = int(commands[args.command](args) or 0)
        sys.stdout.flush()  # a reader that left (`| head`) is noticed here, not in the interpreter's exit
        return status
    except BrokenPipeError:
        return _reader_gone()
    except UsageError as e:
        print(f"{e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        if debug:
            raise
        print("new-grad: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (NewGradError, OSError) as e:
        if debug:
            raise
        print(f"new-grad: error: {_one_line(e)}", file=sys.stderr)
        return EXIT_ERROR


def _reader_gone() -> int:
    """stdout's reader has closed the pipe: stop quietly with the status of a tool killed by SIGPIPE."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush then has nowhere to fail
    return EXIT_BROKEN_PIPE


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


__all__ = ["main", "build_parser"]
