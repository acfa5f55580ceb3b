"""Equivariance, invariance and method agreement of the descriptors (float64).

The potentials used here are analytic, so every number is checked against something the
descriptor code was not derived from: a cubic polynomial potential (its restriction to any
sphere has degree ≤ 3, so the sphere quadrature is exact and equivariance must hold to
round-off), and the smooth long range of point charges, Σ q_k erf(α r)/r.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import erf

from pipeline.descriptors.compute import DescriptorParameters, compute_descriptors
from pipeline.descriptors.products import PRODUCT_METHODS, all_products
from pipeline.descriptors.validation import transform_sh, validate
from pipeline.equivariant.wigner import random_rotations


def cubic_potential(points: np.ndarray) -> np.ndarray:
    """A fixed cubic polynomial in x, y, z (e/Å)."""
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    return 0.3 + 0.1 * x - 0.2 * y + 0.05 * z + 0.02 * x * y - 0.03 * z * z + 0.004 * x * y * z + 0.002 * y**3


def long_range_of(sources: np.ndarray, charges: np.ndarray, alpha: float):
    def potential(points: np.ndarray) -> np.ndarray:
        r = np.linalg.norm(points[:, None, :] - sources[None, :, :], axis=-1)
        safe = np.where(r > 0, r, 1.0)
        return np.sum(charges * np.where(r > 0, erf(alpha * safe) / safe, 2 * alpha / np.sqrt(np.pi)), axis=1)

    return potential


def molecule(rng, n=36, box=8.0):
    return rng.uniform(0, box, size=(n, 3)), rng.normal(scale=0.5, size=n)


PARAMS = DescriptorParameters(lmax=3, cutoff_A=4.5, n_radial=3, sphere_radius_A=1.5, n_validation=16, seed=5)


def test_equivariance_error_below_1e10_with_band_limited_potential(rng):
    positions, charges = molecule(rng)
    result = compute_descriptors(positions, charges, cubic_potential, PARAMS)
    v = result.validation
    assert set(v.equivariance_error) == set(PRODUCT_METHODS)
    for method, error in v.equivariance_error.items():
        assert error < 1e-10, f"{method}: equivariance error {error:.2e}"
    assert v.equivariance_error_density < 1e-12
    assert v.equivariance_error_potential < 1e-12
    assert v.projection_error < 1e-12
    assert v.fourier_grid_difference < 1e-12
    assert max(v.gaunt_cg_difference.values()) < 1e-12
    # the sampled features are not trivially zero
    assert np.abs(result.products[0].values).max() > 1e-3


def test_equivariance_with_smooth_long_range_potential(rng):
    # erf(αr)/r of charges 3–6 Å away from the sphere centres: content decays fast with l;
    # with band limit 24 the quadrature error is at round-off level.
    positions, charges = molecule(rng)
    potential = long_range_of(positions, charges, alpha=0.3)
    params = DescriptorParameters(lmax=2, cutoff_A=4.5, n_radial=2, sphere_radius_A=1.0, band_limit=24, n_validation=12, seed=1)
    result = compute_descriptors(positions, charges, potential, params)
    for method, error in result.validation.equivariance_error.items():
        assert error < 1e-10, f"{method}: equivariance error {error:.2e}"


def test_validation_detects_a_broken_feature(rng):
    # The check can fail: features whose l = 1 block has the wrong sign (a parity slip) are
    # no longer equivariant under the improper rotation, and the recorded error is O(1).
    positions, charges = molecule(rng)
    params = DescriptorParameters(lmax=2, cutoff_A=4.5, n_radial=2, sphere_radius_A=1.2, n_validation=12, seed=3)
    good = compute_descriptors(positions, charges, cubic_potential, params)
    broken_sh = good.potential_sh.copy()
    broken_sh[:, 1:4] *= -1.0
    products = all_products(good.density, broken_sh, 2)
    v = validate(
        positions, charges, cubic_potential, good.density, broken_sh, products, lmax=2, cutoff_A=4.5, n_radial=2,
        sphere_radius_A=1.2, band_limit=10, n_sample=12, rng=np.random.default_rng(3),
    )
    assert v.equivariance_error_potential > 0.1
    assert min(v.equivariance_error.values()) > 1e-2


def test_invariants_unchanged_under_rotation_and_translation(rng):
    positions, charges = molecule(rng)
    params = DescriptorParameters(lmax=2, cutoff_A=4.5, n_radial=3, sphere_radius_A=1.2, n_validation=0)
    base = compute_descriptors(positions, charges, cubic_potential, params)
    rotation = random_rotations(1, rng=rng)[0]
    shift = np.array([3.0, -7.5, 11.0])
    moved = positions @ rotation.T + shift

    def moved_potential(points):  # the same field carried along: Φ'(y) = Φ(Rᵀ(y − t))
        return cubic_potential((points - shift) @ rotation)

    other = compute_descriptors(moved, charges, moved_potential, params)
    for a, b in zip(base.products, other.products):
        for block in a.irreps.blocks:
            if block.label == "0e":
                np.testing.assert_allclose(b.values[..., block.slice], a.values[..., block.slice], atol=1e-12, rtol=0,
                                           err_msg=f"{a.method}: invariant block changed")
    # the rotated inputs are the Wigner-transformed ones (proper rotation: no parity sign)
    np.testing.assert_allclose(other.density, transform_sh(base.density, 2, rotation, 1.0), atol=1e-12)
    np.testing.assert_allclose(other.potential_sh, transform_sh(base.potential_sh, 2, rotation, 1.0), atol=1e-12)


def test_cg_invariants_are_scaled_dot_products(rng):
    # The CG path (l, l, 0) is Σ_m A_lm Φ_lm / √(2l+1) (real w3j(l,l,0) = δ/√(2l+1), times √1).
    positions, charges = molecule(rng)
    params = DescriptorParameters(lmax=2, cutoff_A=4.5, n_radial=2, sphere_radius_A=1.2, n_validation=0)
    result = compute_descriptors(positions, charges, cubic_potential, params)
    cg = result.products[0]
    for block in cg.irreps.blocks:
        (l1, l2), = block.paths
        if block.l == 0:
            sl = slice(l1 * l1, (l1 + 1) ** 2)
            expected = np.einsum("anm,am->an", result.density[..., sl], result.potential_sh[:, sl]) / np.sqrt(2 * l1 + 1)
            got = cg.values[..., block.slice][..., 0]
            # real w3j(l, l, 0) = +δ_mm'/√(2l+1) in this basis (a fixed sign, not fitted: an
            # all-zero output must fail), and the reference itself is not trivially zero
            assert np.abs(expected).max() > 1e-3, f"path ({l1}, {l2}, 0): reference is zero"
            np.testing.assert_allclose(got, expected, atol=1e-13, err_msg=f"path ({l1}, {l2}, 0)")


@pytest.mark.parametrize("bad", [dict(lmax=9), dict(lmax=-1), dict(n_radial=0), dict(cutoff_A=0.0), dict(sphere_radius_A=-1.0)])
def test_parameters_rejected(bad):
    with pytest.raises(ValueError):
        DescriptorParameters(**bad)


def test_validation_transform_is_improper(rng):
    # the structure is mapped by Q = −R: orthogonal with det −1, so parity labels are tested
    positions, charges = molecule(rng)
    result = compute_descriptors(positions, charges, cubic_potential, PARAMS)
    q = result.validation.transform
    np.testing.assert_allclose(q @ q.T, np.eye(3), atol=1e-14)
    assert np.linalg.det(q) == pytest.approx(-1.0, abs=1e-12)
    assert np.linalg.det(result.validation.rotation) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(q, -result.validation.rotation, atol=0)



def _relabelled(monkeypatch, parity_of):
    """Make the validation see every product's irreps with parities ``parity_of(blocks, block)``."""
    import dataclasses

    from pipeline.descriptors import validation as module
    from pipeline.equivariant.irreps import ProductIrreps

    real = module.descriptor_product

    def product(density, potential, method, lmax_out):
        values, irreps = real(density, potential, method, lmax_out)
        blocks = tuple(dataclasses.replace(b, parity=parity_of(irreps.blocks, b)) for b in irreps.blocks)
        return values, ProductIrreps(blocks=blocks)

    monkeypatch.setattr(module, "descriptor_product", product)


def _validate_cubic(positions, charges):
    params = DescriptorParameters(lmax=2, cutoff_A=4.5, n_radial=2, sphere_radius_A=1.2, n_validation=0)
    good = compute_descriptors(positions, charges, cubic_potential, params)
    return validate(
        positions, charges, cubic_potential, good.density, good.potential_sh, good.products, lmax=2, cutoff_A=4.5,
        n_radial=2, sphere_radius_A=1.2, band_limit=10, n_sample=12, rng=np.random.default_rng(3),
    )


def test_wrong_parity_label_gives_a_large_equivariance_error(rng, monkeypatch):
    # the first l = 1 output block of every product labelled with the opposite parity: still
    # equivariant under every proper rotation, so only the inversion in the transform exposes it
    positions, charges = molecule(rng)
    assert max(_validate_cubic(positions, charges).equivariance_error.values()) < 1e-10

    def flip_first_l1(blocks, block):
        first = next(b for b in blocks if b.l == 1)
        return -block.parity if block is first else block.parity

    _relabelled(monkeypatch, flip_first_l1)
    v = _validate_cubic(positions, charges)
    for method, error in v.equivariance_error.items():
        assert error > 1e-2, f"{method}: a wrong parity label went unnoticed ({error:.1e})"


def test_odd_path_sign_gives_a_large_equivariance_error(rng, monkeypatch):
    # outputs labelled (−1)^l, the sign a spherical-harmonic signal would take, instead of
    # p1·p2·(−1)^(l1+l2): wrong exactly for the odd paths (l1 + l2 + l3 odd, e.g. 1o ⊗ 1o → 1e),
    # which CG and the vector Gaunt product compute and the plain Gaunt products never reach
    positions, charges = molecule(rng)
    _relabelled(monkeypatch, lambda blocks, block: (-1) ** block.l)
    v = _validate_cubic(positions, charges)
    for method in ("cg", "gaunt_grid+vector_gaunt"):
        assert v.equivariance_error[method] > 1e-2, f"{method}: odd-path parity went unnoticed"
    for method in ("gaunt_fourier", "gaunt_grid"):
        assert v.equivariance_error[method] < 1e-10, f"{method}: only even paths, labels were right"
