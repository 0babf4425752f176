"""new_grad's exceptions: one base class, a few precise kinds.

Every message names the op, the shapes involved and what to do about it, so a
student can fix the mistake without reading the engine.
"""

from __future__ import annotations

import os
import sys


class NewGradError(Exception):
    """Base class of every error new_grad raises on purpose."""


class ShapeError(NewGradError, ValueError):
    """Operand shapes do not fit the op (or a gradient has the wrong shape)."""


class TapeError(NewGradError, RuntimeError):
    """The tape is used out of order: empty, already consumed, mismatched lists."""


class EmptyTapeError(TapeError):
    """`backward` was called but nothing was recorded."""


class TapeConsumedError(TapeError):
    """`backward` was called a second time over a tape it already consumed."""


class GradientError(NewGradError, ValueError):
    """A backward function returned the wrong number, shape or kind of gradients."""


class UnknownArrayError(NewGradError, KeyError):
    """An array has no slot in the memory buffer."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class DtypeError(NewGradError, TypeError):
    """A gradient was asked of an array whose dtype cannot carry one (int, bool)."""


class AnomalyError(NewGradError, FloatingPointError):
    """Anomaly mode found a NaN or inf; the message names the op that made it first."""


class ReplayError(NewGradError, RuntimeError):
    """A replayed step does not match the recorded one (shapes, dtypes or control flow)."""


class CheckpointError(NewGradError, OSError):
    """A checkpoint file is missing, truncated, foreign or incompatible."""


class DataError(NewGradError, ValueError):
    """A dataset file is missing or malformed."""


def shape_str(x: object) -> str:
    """`(3, 4) float64` for arrays, `scalar 2.0` for numbers: for error messages."""
    shape = getattr(x, "shape", None)
    if shape is None:
        return f"scalar {x!r}" if isinstance(x, (int, float, complex)) else type(x).__name__
    return f"{tuple(shape)} {getattr(x, 'dtype', '')}".strip()


class IndexingError(NewGradError, IndexError):
    """An index is out of range or of a kind the op cannot take."""


class UntrackedViewWarning(UserWarning):
    """An input is a NumPy view of a taped array made outside any recorded op: its gradient stops there."""


class OptimizerError(NewGradError, ValueError):
    """An optimiser, learning-rate scheduler or gradient clipping got an invalid setting or state."""


class ArgumentError(NewGradError, ValueError):
    """An op got an argument value it does not accept (an unknown mode, min > max, ...)."""


class GradcheckError(NewGradError, AssertionError):
    """``gradcheck`` found analytic gradients that disagree with central differences."""


class ArgumentTypeError(NewGradError, TypeError):
    """An argument is of a kind the function cannot take (e.g. a non-Module given to ``add_module``)."""


class UnsupportedError(NewGradError, NotImplementedError):
    """What new_grad does not implement: an option PyTorch has, or a method a subclass must define.

    The message names the option and what is supported instead.
    """


class TapeGrowthWarning(UserWarning):
    """The tape keeps growing across retained backward passes (a forgotten ``zero_grad()``)."""


class NoGradientWarning(UserWarning):
    """An optimiser step found parameters whose gradient stayed zero: nothing reached them in this step."""


class NoGradientError(NewGradError, RuntimeError):
    """An optimiser step found parameters that got no gradient, where that is an error (``new-grad train``)."""


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning raised by new_grad point at the user's own line.

    Call it from the function that calls ``warnings.warn``: it counts the frames
    above that function up to the first one outside the new_grad package, so the
    warning names the user's line however deep inside ops, modules or transforms
    it was raised (and Python's once-per-location filter sees each mistake).
    """
    frame = sys._getframe(2)  # the caller of the function that calls warnings.warn
    level = 2
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    return level


class DistributedError(NewGradError, RuntimeError):
    """Processes of a distributed run disagree (model layout, steps taken) or one of them stopped responding."""


class DeviceError(NewGradError, TypeError):
    """Arrays of two devices (NumPy on the CPU, CuPy on a GPU) meet in one op, or a device is unknown.

    The message names the op, each operand's device and how to move one of them.
    """


def complex_error(name: str, x: object) -> DtypeError:
    """The error for a complex array reaching the gradient of an op without a complex rule (never silently wrong)."""
    return DtypeError(
        f"{name}: {shape_str(x)} is complex, and this op has no complex gradient (complex is not supported for "
        "it; docs/ops-guide.md lists the ops that have one). Carry the real and imaginary parts as two float "
        "arrays (new_grad.real / new_grad.imag), or compute this part under new_grad.no_grad()."
    )
