"""``new-grad tape``: one training step of a model, and the tape it recorded.

What a student looks at to see autodiff happen: the forward pass writes one row
per op on the tape; backward walks those rows last to first and fills each
parameter's gradient; the optimiser then moves the parameters.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from .. import optim
from ..autograd_engine import Autograd, constant, no_grad
from ..data import load_digits
from ..errors import NewGradError
from ..models import build_model
from ..tape_html import write_tape_html
from ..tape_view import format_tape, human_bytes, tape_to_dot
from .train import make_loss

INSTALL_DOT = (
    "Graphviz's `dot` is not installed, so no SVG; install it (apt install graphviz, brew install graphviz, "
    "conda install graphviz) or render the DOT text elsewhere"
)


def _use_color(no_color: bool) -> bool:
    return not no_color and sys.stdout.isatty() and os.environ.get("NO_COLOR") is None and os.environ.get("TERM") != "dumb"


def render_svg(dot_text: str, svg: Path, dot: Path | None = None) -> None:
    """Run Graphviz's ``dot -Tsvg``; a clear error when it is missing or fails.

    Without Graphviz the DOT text is kept for rendering elsewhere: in ``dot`` (``--dot``) when given,
    else beside the SVG, but never over a file that is already there.
    """
    exe = shutil.which("dot")
    if exe is None:
        if dot is not None:
            raise NewGradError(f"{INSTALL_DOT} (the DOT text is in {dot}: dot -Tsvg {dot} -o {svg})")
        dot_file = svg.with_suffix(".dot")
        if dot_file.exists():
            raise NewGradError(f"{INSTALL_DOT}; {dot_file} already exists, so the DOT text was not written: "
                               "save it with --dot FILE")
        dot_file.write_text(dot_text)
        raise NewGradError(f"{INSTALL_DOT} (wrote the DOT text to {dot_file}: dot -Tsvg {dot_file} -o {svg}; "
                           "--dot FILE chooses where)")
    done = subprocess.run([exe, "-Tsvg", "-o", str(svg)], input=dot_text, text=True, capture_output=True)
    if done.returncode != 0:
        raise NewGradError(f"dot failed on the tape ({done.stderr.strip() or done.returncode})")


def run_tape(args: argparse.Namespace) -> int:
    color = _use_color(args.no_color)

    def bold(text: str) -> str:
        return f"\033[1m{text}\033[0m" if color else text

    digits = load_digits(val_fraction=0.0, dtype=np.dtype(args.dtype))
    images, labels = digits.train.arrays
    n = min(args.batch_size, len(labels))
    x, y = constant(images[:n].copy()), constant(labels[:n].copy())
    np.random.seed(args.seed)
    model = build_model(args.model, digits.sample_shape, digits.num_classes, args.hidden, np.dtype(args.dtype))
    names = {id(p): name for name, (p, _) in model.named_parameters()}
    names[id(x)], names[id(y)] = "x", "y"
    loss_fn = make_loss()
    opt = optim.SGD(model.parameters(), lr=0.1)

    engine = Autograd()
    with engine:
        loss = loss_fn(model(x), y)
    before = float(loss)
    n_ops = len(engine.operation_list)
    print(bold(f"new-grad tape: {args.model} ({model.num_parameters():,} parameters), one SGD step on a batch of "
               f"{n} digits (x {tuple(x.shape)} {x.dtype}, labels y {tuple(y.shape)})"))
    print()
    print(f"Forward pass: {n_ops} ops written to the tape, in the order they ran. "
          "#i in the inputs is the output of op i.")
    print()
    print(format_tape(engine, names=names, color=color))
    dot_text = tape_to_dot(engine, names=names)
    if args.dot is not None:
        args.dot.write_text(dot_text)
    if args.html is not None:  # before backward, which consumes the tape
        title = f"new-grad tape: {args.model}, one step on {n} digits"
        write_tape_html(engine, args.html, names=names, title=title)

    engine.backward(1, output=loss)
    print()
    print(f"Backward pass: the same {n_ops} rows, last to first (#{n_ops - 1} … #0); each op's backward turned its "
          "output's gradient into its inputs' gradients.")
    print("Gradients that reached the parameters:")
    print()
    params = list(model.named_parameters())
    w = max(len("parameter"), *(len(name) for name, _ in params))
    head = f"  {'parameter':<{w}}  {'shape':<12} {'|grad|':>10}  {'max |grad|':>10}"
    print(bold(head) if color else head)
    total = 0
    for name, (p, g) in params:
        total += g.nbytes
        shape = "(" + ",".join(str(d) for d in p.shape) + ("," if p.ndim == 1 else "") + ")"
        print(f"  {name:<{w}}  {shape:<12} {float(np.linalg.norm(g)):>10.4g}  {float(np.abs(g).max()):>10.4g}")
    opt.step()
    engine.zero_grad()
    with no_grad():
        after = float(loss_fn(model(x), y))
    print()
    print(f"{len(params)} parameter arrays, {human_bytes(total)} of gradients. "
          f"SGD step (lr 0.1): loss {before:.4f} → {after:.4f} on this batch.")
    written = []
    if args.dot is not None:
        written.append(f"DOT graph: {args.dot}")
    if args.html is not None:
        written.append(f"HTML page that plays the tape: {args.html}")
    if args.svg is not None:
        render_svg(dot_text, args.svg, args.dot)
        written.append(f"SVG: {args.svg}")
    if written:
        print("Wrote " + "; ".join(written))
    return 0
