"""pipeline.electrostatics.splitting: every split adds up to its kernel; long ranges match their transforms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, special

from pipeline.electrostatics.splitting import (
    EwaldSplit,
    GaussianSumSplit,
    ScreenedEwaldSplit,
    make_split,
    split_from_params,
)

R = np.array([0.05, 0.7, 2.0, 5.5, 11.0, 19.0])


def _radial_inverse(fourier, r: float, k_max: float = 40.0) -> float:
    """(1/(2π² r)) ∫ k sin(kr) F(k) dk, the inverse 3-D transform of a radial function."""
    return integrate.quad(lambda k: k * math.sin(k * r) * float(fourier(k * k)), 0.0, k_max, limit=500)[0] / (
        2.0 * math.pi**2 * r)


def test_ewald_parts_add_to_coulomb_and_closed_forms():
    split = EwaldSplit(alpha=0.31)
    np.testing.assert_allclose(split.short(R) + split.long(R), 1.0 / R, rtol=1e-14)
    np.testing.assert_allclose(split.short(R), special.erfc(0.31 * R) / R, rtol=1e-14)
    assert split.long(np.array([0.0]))[0] == pytest.approx(2 * 0.31 / math.sqrt(math.pi), rel=1e-15)


@pytest.mark.parametrize("kappa", [0.05, 0.127, 0.6])
def test_screened_parts_add_to_yukawa_and_long_range_matches_its_transform(kappa):
    split = ScreenedEwaldSplit(alpha=0.3, kappa=kappa)
    np.testing.assert_allclose(split.short(R) + split.long(R), np.exp(-kappa * R) / R, rtol=1e-12, atol=1e-16)
    for r in (0.7, 4.0):
        assert _radial_inverse(split.fourier_long, r) == pytest.approx(float(split.long(np.array([r]))[0]), rel=1e-9)
    # φ_L(0) = (1/2π²) ∫ k² φ̂_L(k) dk (the r → 0 limit of the inverse transform)
    at_zero = integrate.quad(lambda k: k * k * float(split.fourier_long(k * k)), 0.0, 40.0, limit=500)[0] / (2 * math.pi**2)
    assert split.long_at_zero() == pytest.approx(at_zero, rel=1e-10)
    h = 1e-6
    derivative = (split.short(R[1:] + h) - split.short(R[1:] - h)) / (2 * h)
    np.testing.assert_allclose(split.short_derivative(R[1:]), derivative, rtol=1e-6)


def test_screening_vanishes_with_kappa():
    screened, plain = ScreenedEwaldSplit(alpha=0.3, kappa=1e-9), EwaldSplit(alpha=0.3)
    np.testing.assert_allclose(screened.short(R), plain.short(R), rtol=1e-8)
    assert screened.long_at_zero() == pytest.approx(plain.long_at_zero(), rel=1e-8)


def test_deconvolved_long_range_reconvolves_to_the_long_range():
    # φ_L = W_s * W_s * ψ  ⇔  F[ψ] = F[φ_L] e^{k² s²}
    split, s = ScreenedEwaldSplit(alpha=0.3, kappa=0.2), 0.9
    for r in (0.5, 3.0):
        expected = _radial_inverse(lambda k2: split.fourier_long(k2) * math.exp(k2 * s * s), r, k_max=12.0)
        assert float(split.deconvolved_long(np.array([r]), s)[0]) == pytest.approx(expected, rel=1e-9)


def test_gaussian_sum_adds_to_coulomb_beyond_its_cutoff():
    split = GaussianSumSplit.for_alpha(0.3, 60.0, 1e-8)
    cutoff = split.cutoff_for(1e-8)
    r = np.linspace(cutoff, 60.0, 500)
    assert np.max(np.abs((split.long(r) - 1.0 / r) * r)) <= 1e-8 * 1.01


def test_make_split_and_round_trip_of_stored_parameters():
    for split in (make_split("ewald", 0.3, tolerance=1e-7, length_scale=50.0),
                  make_split("ewald", 0.3, tolerance=1e-7, length_scale=50.0, kappa=0.1),
                  make_split("gaussian-sum", 0.3, tolerance=1e-7, length_scale=50.0)):
        again = split_from_params(split.params())
        np.testing.assert_allclose(again.short(R[1:]), split.short(R[1:]), rtol=1e-15)
    with pytest.raises(ValueError, match="screening needs the split 'ewald'"):
        make_split("gaussian-sum", 0.3, tolerance=1e-7, length_scale=50.0, kappa=0.1)
    with pytest.raises(ValueError, match="unknown split"):
        make_split("pme", 0.3, tolerance=1e-7, length_scale=50.0)
