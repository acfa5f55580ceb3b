"""Neighbour search and charge-weighted density expansion against a slow direct evaluation.

The reference is written here from the formulas, independently of the package: a double
loop over atom pairs with SciPy's complex spherical harmonics turned into real ones in the
e3nn basis (polar axis +y, azimuth atan2(x, z), no Condon–Shortley phase), and the radial
basis written out again from its definition.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import sph_harm_y

from pipeline.descriptors.density import neighbour_density, neighbour_density_at
from pipeline.descriptors.neighbours import neighbour_pairs
from pipeline.descriptors.radial import cosine_cutoff, radial_basis


def real_sh_reference(lmax: int, v: np.ndarray) -> np.ndarray:
    """Integral-normalised real SH of one vector, e3nn basis, via scipy's complex Y_l^m.

    Standard real SH (polar axis z) evaluated at (X, Y, Z) = (z, x, y); scipy's Y_l^m carries
    the Condon–Shortley phase (−1)^m, removed here.
    """
    x, y, z = v / np.linalg.norm(v)
    theta = math.acos(np.clip(y, -1.0, 1.0))  # polar angle from +y
    phi = math.atan2(x, z)  # azimuth
    out = []
    for l in range(lmax + 1):
        for m in range(-l, l + 1):
            c = sph_harm_y(l, abs(m), theta, phi)
            if m == 0:
                out.append(c.real)
            elif m > 0:
                out.append(math.sqrt(2.0) * (-1) ** m * c.real)
            else:
                out.append(math.sqrt(2.0) * (-1) ** m * c.imag)
    return np.array(out)


def density_reference(positions, charges, lmax, cutoff, n_radial):
    """A_i,nlm = Σ_{j≠i, r<rc} q_j exp(−(r−μ_n)²/2σ²) ½(1+cos πr/rc) Y_lm(r̂), by a double loop."""
    n = len(charges)
    sigma = cutoff / n_radial
    mu = np.arange(n_radial) * sigma
    out = np.zeros((n, n_radial, (lmax + 1) ** 2))
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            v = positions[j] - positions[i]
            r = np.linalg.norm(v)
            if r >= cutoff:
                continue
            fc = 0.5 * (1.0 + math.cos(math.pi * r / cutoff))
            radial = np.exp(-((r - mu) ** 2) / (2 * sigma**2)) * fc
            out[i] += charges[j] * radial[:, None] * real_sh_reference(lmax, v)[None, :]
    return out


def random_molecule(rng, n=40, box=9.0):
    positions = rng.uniform(0.0, box, size=(n, 3))
    charges = rng.normal(scale=0.5, size=n)
    return positions, charges


def test_convention_reference_l1_is_xyz():
    # e3nn convention, integral normalisation: the l = 1 block is √(3/4π)·(x, y, z)/r.
    v = np.array([0.3, -1.2, 0.7])
    expected = math.sqrt(3.0 / (4.0 * math.pi)) * v / np.linalg.norm(v)
    np.testing.assert_allclose(real_sh_reference(1, v)[1:4], expected, atol=1e-14)


def test_convention_reference_l2_closed_form():
    # l = 2, integral normalisation: √(15/4π)·(xz, xy), √(5/16π)(3y²−1), √(15/4π) yz, √(15/16π)(z²−x²).
    v = np.array([0.48, 0.6, -0.64])  # unit vector
    x, y, z = v
    c = math.sqrt(15.0 / (4.0 * math.pi))
    expected = [c * x * z, c * x * y, math.sqrt(5.0 / (16.0 * math.pi)) * (3 * y * y - 1), c * y * z, c / 2 * (z * z - x * x)]
    np.testing.assert_allclose(real_sh_reference(2, v)[4:9], expected, atol=1e-14)


def test_cutoff_and_radial_basis_values():
    rc = 5.0
    r = np.array([0.0, 2.5, 4.999999, 5.0, 7.0])
    np.testing.assert_allclose(cosine_cutoff(r, rc), [1.0, 0.5, 0.0, 0.0, 0.0], atol=1e-10)
    rad = radial_basis(np.array([2.5]), rc, 4)  # μ = 0, 1.25, 2.5, 3.75; σ = 1.25
    expected = 0.5 * np.exp(-((2.5 - np.array([0.0, 1.25, 2.5, 3.75])) ** 2) / (2 * 1.25**2))
    np.testing.assert_allclose(rad[0], expected, rtol=1e-14)


@pytest.mark.parametrize("method", ["query_pairs", "ball_point"])
def test_neighbour_pairs_match_brute_force(rng, method):
    positions, _ = random_molecule(rng, n=60)
    pairs = neighbour_pairs(positions, 3.5, method=method)
    d = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    i, j = np.nonzero(np.triu(d < 3.5, k=1))
    np.testing.assert_array_equal(pairs.first, i)
    np.testing.assert_array_equal(pairs.second, j)
    np.testing.assert_allclose(pairs.distances_A, d[i, j], rtol=1e-15)
    np.testing.assert_allclose(pairs.vectors_A, positions[j] - positions[i], rtol=1e-15)


def test_neighbour_pairs_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        neighbour_pairs(np.zeros((4, 2)), 1.0)
    with pytest.raises(ValueError, match="cutoff"):
        neighbour_pairs(np.zeros((4, 3)), 0.0)
    with pytest.raises(ValueError, match="NaN"):
        neighbour_pairs(np.full((4, 3), np.nan), 1.0)


@pytest.mark.parametrize("lmax", [0, 2, 3])
def test_density_matches_direct_double_loop(rng, lmax):
    positions, charges = random_molecule(rng)
    cutoff, n_radial = 4.0, 3
    pairs = neighbour_pairs(positions, cutoff)
    got = neighbour_density(charges, pairs, len(charges), lmax=lmax, cutoff_A=cutoff, n_radial=n_radial)
    want = density_reference(positions, charges, lmax, cutoff, n_radial)
    assert got.shape == (len(charges), n_radial, (lmax + 1) ** 2)
    assert np.abs(want).max() > 0.1  # the neighbourhoods are not empty
    np.testing.assert_allclose(got, want, atol=1e-13, rtol=0)


def test_density_at_subset_matches_all_atoms(rng):
    positions, charges = random_molecule(rng)
    pairs = neighbour_pairs(positions, 4.0)
    full = neighbour_density(charges, pairs, len(charges), lmax=2, cutoff_A=4.0, n_radial=2)
    centres = np.array([3, 0, 17, 39])
    sub = neighbour_density_at(positions, charges, centres, lmax=2, cutoff_A=4.0, n_radial=2)
    np.testing.assert_allclose(sub, full[centres], atol=1e-14, rtol=0)


def test_density_of_real_protein_slice_matches_direct():
    # First 40 atoms of adk_open.pqr (MDAnalysisTests), real charges and geometry.
    mda = pytest.importorskip("MDAnalysis")
    datafiles = pytest.importorskip("MDAnalysisTests.datafiles")
    atoms = mda.Universe(datafiles.PQR).atoms[:40]
    positions, charges = atoms.positions.astype(np.float64), atoms.charges.astype(np.float64)
    pairs = neighbour_pairs(positions, 5.0)
    got = neighbour_density(charges, pairs, 40, lmax=2, cutoff_A=5.0, n_radial=4)
    want = density_reference(positions, charges, 2, 5.0, 4)
    np.testing.assert_allclose(got, want, atol=1e-13, rtol=0)
