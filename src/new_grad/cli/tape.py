"""``new-grad tape``: one training step of a model, and the tape it recorded."""

from __future__ import annotations

import argparse


def run_tape(args: argparse.Namespace) -> int:
    return 0
