"""Op test cases by family; ``ALL_CASES`` gathers them for the registry test."""

from __future__ import annotations

import importlib
import pkgutil

from ..opcheck import OpCase

ALL_CASES: list[OpCase] = []
for _m in pkgutil.iter_modules(__path__):
    ALL_CASES.extend(importlib.import_module(f"{__name__}.{_m.name}").CASES)
