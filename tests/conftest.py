"""Shared test fixtures and the per-dtype tolerance table."""

from __future__ import annotations

import sys
from collections import Counter

import numpy as np
import pytest

from pipeline import backend
from pipeline.backend import cupy_available

#: Absolute tolerances for quantities of order one, keyed by dtype.
TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}

requires_gpu = pytest.mark.skipif(not cupy_available(), reason="needs CuPy and a CUDA device")


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator so every run draws the same numbers."""
    return np.random.default_rng(20261127)


def count_host_transfers(monkeypatch) -> Counter:
    """Wrap every ``to_host`` the package's modules imported with a counter keyed "module.function" of the caller."""
    counter = Counter()
    original = backend.to_host

    def counting(array):
        frame = sys._getframe(1)
        counter[f"{frame.f_globals['__name__'].rsplit('.', 1)[-1]}.{frame.f_code.co_name}"] += 1
        return original(array)

    for name, module in list(sys.modules.items()):
        if name.startswith("pipeline") and getattr(module, "to_host", None) is original:
            monkeypatch.setattr(module, "to_host", counting)
    return counter
