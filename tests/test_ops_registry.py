"""Every registered op is checked against PyTorch (float64) or by central differences."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from new_grad.ops._core import builtin_ops

from .cases import ALL_CASES
from .opcheck import check_case


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_op_matches_torch(case, data):
    check_case(case, data)


def test_every_op_has_a_case():
    covered = {c.op for c in ALL_CASES}
    missing = sorted(name for name in builtin_ops() if name not in covered)
    assert not missing, f"ops without a test case in tests/cases/: {missing}"
