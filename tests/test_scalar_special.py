"""The standard-library erfc⁻¹ of the parameter choices against SciPy's and against erfc itself."""

import math

import numpy as np
import pytest
from scipy import special

from pipeline.electrostatics.scalar_special import erfcinv


def test_erfcinv_matches_scipy_from_tiny_to_near_two():
    ys = np.concatenate([np.geomspace(1e-300, 1.0, 1500), np.linspace(1e-3, 1.999, 800), [1e-7, 1e-6 * 0.5, 1.0]])
    ours = np.array([erfcinv(y) for y in ys])
    reference = special.erfcinv(ys)
    # x is ill-conditioned near y = 2 (erfc is flat there): 1e-14 of max(|x|, 1) is a few ulp of y
    assert np.max(np.abs(ours - reference) / np.maximum(np.abs(reference), 1.0)) < 1e-14


def test_erfcinv_inverts_erfc_and_refuses_outside_its_range():
    for y in (1e-12, 3e-7, 0.37, 1.9):
        assert math.erfc(erfcinv(y)) == pytest.approx(y, rel=1e-14)
    assert erfcinv(1.0) == pytest.approx(0.0, abs=1e-16)
    for bad in (0.0, 2.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="0 < y < 2"):
            erfcinv(bad)
