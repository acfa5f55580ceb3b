"""Shared test fixtures and the per-dtype tolerance table."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.backend import cupy_available

#: Absolute tolerances for quantities of order one, keyed by dtype.
TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}

requires_gpu = pytest.mark.skipif(not cupy_available(), reason="needs CuPy and a CUDA device")


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator so every run draws the same numbers."""
    return np.random.default_rng(20261127)
