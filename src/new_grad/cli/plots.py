"""The run's pictures: loss and error curves (train and validation) and the test confusion matrix.

matplotlib with the Agg backend (files only, no window), imported only here: the
command line is the one layer that draws.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter  # noqa: E402

TRAIN, VAL, BEST = "#1f77b4", "#d62728", "#7f7f7f"


def _curve(history: list[dict[str, Any]], key: str, out: Path, title: str, ylabel: str, percent: bool) -> None:
    fig = curve_figure(history, key, title, ylabel, percent)
    fig.savefig(out)
    plt.close(fig)


def curve_figure(history: list[dict[str, Any]], key: str, title: str, ylabel: str, percent: bool) -> Any:
    """Train and validation curves of ``key`` per epoch; the legend and the best-epoch label cover no line."""
    epochs = [r["epoch"] for r in history]
    train = [r[f"train_{key}"] for r in history]
    val = [r[f"val_{key}"] for r in history]
    scale = 100.0 if percent else 1.0
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    ax.plot(epochs, [v * scale for v in train], "-o", color=TRAIN, ms=3.5, lw=1.8, label="train")
    label = None
    if any(v is not None for v in val):
        vals = [np.nan if v is None else v * scale for v in val]
        ax.plot(epochs, vals, "-s", color=VAL, ms=3.5, lw=1.8, label="validation")
        best = int(np.nanargmin([np.nan if r["val_loss"] is None else r["val_loss"] for r in history]))
        ax.axvline(epochs[best], color=BEST, ls=":", lw=1.2, label=f"best val loss (epoch {epochs[best]})")
        label = (epochs[best], vals[best], f"{vals[best]:.3g}{'%' if percent else ''}")
    values = [v * scale for v in train + [x for x in val if x is not None] if v is not None]
    positive = [v for v in values if v > 0]
    if positive and max(positive) / min(positive) > 30:
        if min(values) > 0:
            ax.set_yscale("log")
        else:  # a perfect epoch (0 % error) has no logarithm: linear near zero, logarithmic above
            ax.set_yscale("symlog", linthresh=10 ** math.floor(math.log10(min(positive))), linscale=0.5)
            ax.set_ylim(0, max(values) * 1.6)
    if percent:
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}%"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title}: {ylabel}", fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    ax.grid(True, which="minor", alpha=0.1)
    ax.spines[["top", "right"]].set_visible(False)
    # the legend goes under the axes, where there is no data to hide
    ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize=9)
    fig.tight_layout()
    if label is not None:
        _place_label(fig, ax, *label)
    return fig


def line_points(ax: Any, per_segment: int = 40) -> np.ndarray:
    """Points along every line of ``ax`` (curves and the best-epoch marker), in display coordinates."""
    pts = []
    for line in ax.get_lines():
        xy = line.get_transform().transform(np.asarray(line.get_xydata(), dtype=float))
        xy = xy[np.isfinite(xy).all(axis=1)]
        if len(xy) == 1:
            pts.append(xy)
        for a, b in zip(xy[:-1], xy[1:]):
            t = np.linspace(0, 1, per_segment)[:, None]
            pts.append(a + t * (b - a))
    return np.concatenate(pts) if pts else np.zeros((0, 2))


def _place_label(fig: Any, ax: Any, x: float, y: float, text: str) -> None:
    """Write the best value next to its point, on the first side where it covers no line."""
    renderer = fig.canvas.get_renderer()
    points = line_points(ax)
    inside = ax.get_window_extent(renderer)
    style = dict(textcoords="offset points", color=VAL, fontsize=9, zorder=5)
    tried = [(6, 8, "left", "bottom"), (-6, 8, "right", "bottom"), (6, -8, "left", "top"), (-6, -8, "right", "top"),
             (6, 22, "left", "bottom"), (-6, 22, "right", "bottom"), (6, -22, "left", "top"), (-6, -22, "right", "top"),
             (12, 40, "left", "bottom"), (-12, 40, "right", "bottom"), (12, -40, "left", "top"), (-12, -40, "right", "top")]
    for dx, dy, ha, va in tried:
        note = ax.annotate(text, (x, y), xytext=(dx, dy), ha=ha, va=va, **style)
        box = note.get_window_extent(renderer).expanded(1.1, 1.2)
        clear = not box.count_contains(points) and inside.x0 <= box.x0 and box.x1 <= inside.x1 and \
            inside.y0 <= box.y0 and box.y1 <= inside.y1
        if clear:
            return
        note.remove()
    ax.annotate(text, (x, y), xytext=tried[0][:2], ha="left", va="bottom",
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85), **style)


def confusion_matrix(preds: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts ``cm[true, predicted]``."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (labels.astype(np.int64), preds.astype(np.int64)), 1)
    return cm


def _confusion(cm: np.ndarray, out: Path, title: str) -> None:
    k = cm.shape[0]
    rows = cm.sum(axis=1, keepdims=True)
    frac = cm / np.maximum(rows, 1)
    acc = np.trace(cm) / max(1, cm.sum())
    size = min(9.0, 3.0 + 0.45 * k)
    fig, ax = plt.subplots(figsize=(size + 1.2, size), dpi=120)
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    if k <= 30:
        for i in range(k):
            for j in range(k):
                if cm[i, j]:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=9 if k <= 12 else 6,
                            color="white" if frac[i, j] > 0.5 else ("#b00000" if i != j else "black"))
        ax.set_xticks(range(k))
        ax.set_yticks(range(k))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"{title}: test confusion matrix\naccuracy {100 * acc:.2f}% on {cm.sum()} samples", fontsize=11)
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label("fraction of the true class")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def write_all(history: list[dict[str, Any]], preds: np.ndarray, labels: np.ndarray, num_classes: int, out: Path,
              title: str) -> list[str]:
    """``loss.png``, ``error.png`` and ``confusion.png`` in ``out``; returns their names."""
    names = []
    if history:
        _curve(history, "loss", out / "loss.png", title, "cross-entropy loss", percent=False)
        _curve(history, "error", out / "error.png", title, "error rate", percent=True)
        names += ["loss.png", "error.png"]
    _confusion(confusion_matrix(preds, labels, num_classes), out / "confusion.png", title)
    return [*names, "confusion.png"]
