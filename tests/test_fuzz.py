"""Differential fuzzing against PyTorch (see tests/fuzz.py): a short fixed budget here, a long one on demand.

``NEW_GRAD_FUZZ_PROGRAMS=20000 python -m pytest tests/test_fuzz.py`` or ``python -m tests.fuzz --seconds 3600``.
"""

from __future__ import annotations

import numpy as np
import pytest

from .fuzz import CASES, budget, detection_rate, fuzz_test


def test_float64_programs_agree_with_torch():
    fuzz_test(budget(150), np.float64)()


def test_float32_programs_agree_with_torch_and_stay_float32():
    fuzz_test(budget(80), np.float32)()


@pytest.mark.parametrize("fault", ["scale", "largest"])
def test_a_small_error_in_getitem_backward_is_always_caught(fault):
    """The fuzzer's power: getitem's backward made wrong by 0.1 % is flagged in every program that indexes."""
    used, caught = detection_rate(fault, programs=40)
    assert used >= 30, used
    assert caught == used, f"caught {caught} of {used} programs using getitem"


def test_the_fuzzer_reaches_most_of_the_registry():
    assert len({c.op for c in CASES}) >= 70
