"""Sphere expansion of a potential against closed forms (multipole series, linear field)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.descriptors.projection import potential_expansion


def real_sh_closed_form_l_le_1(u: np.ndarray) -> np.ndarray:
    """Integral-normalised e3nn real SH for l ≤ 1: 1/√4π and √(3/4π)·(x, y, z)/r."""
    u = u / np.linalg.norm(u)
    return np.concatenate([[1.0 / math.sqrt(4 * math.pi)], math.sqrt(3 / (4 * math.pi)) * u])


def real_sh_closed_form_l2(u: np.ndarray) -> np.ndarray:
    """Integral-normalised e3nn real SH for l = 2 (polar axis +y, m = −2..2), written out by hand."""
    x, y, z = u / np.linalg.norm(u)
    c = math.sqrt(5 / (4 * math.pi))
    return c * np.array([math.sqrt(3) * x * z, math.sqrt(3) * x * y, y * y - 0.5 * (x * x + z * z),
                         math.sqrt(3) * y * z, math.sqrt(3) / 2 * (z * z - x * x)])


def test_linear_potential_has_only_l0_and_l1(rng):
    # Φ(x) = c + g·x on a sphere of radius ρ around x_i: Φ = (c + g·x_i) + ρ g·n̂, so
    # Φ_00 = √4π (c + g·x_i), Φ_1m = ρ √(4π/3) g_m (g in (x, y, z) order), all l ≥ 2 vanish.
    c, g = 0.7, np.array([0.3, -0.45, 0.12])
    centres = rng.uniform(-5, 5, size=(7, 3))
    rho = 1.7
    got = potential_expansion(lambda p: c + p @ g, centres, lmax=3, sphere_radius_A=rho, band_limit=1)
    np.testing.assert_allclose(got[:, 0], math.sqrt(4 * math.pi) * (c + centres @ g), atol=1e-13)
    np.testing.assert_allclose(got[:, 1:4], np.tile(rho * math.sqrt(4 * math.pi / 3) * g, (7, 1)), atol=1e-13)
    np.testing.assert_allclose(got[:, 4:], 0.0, atol=1e-13)


def test_far_point_charge_multipole_expansion(rng):
    # 1/|x − s| = Σ_l ρ^l/d^{l+1} (4π/(2l+1)) Σ_m Y_lm(n̂) Y_lm(ŝ) for ρ < d, so
    # Φ_lm = q ρ^l / d^{l+1} · 4π/(2l+1) · Y_lm(ŝ). Checked for l ≤ 2 with the closed-form SH,
    # and the l = 2 block also through its rotation-invariant norm (Σ_m Y_2m² = 5/4π).
    q, source = -1.3, np.array([14.0, -9.0, 21.0])
    centres = rng.uniform(-2, 2, size=(5, 3))
    rho, lmax = 1.2, 2
    got = potential_expansion(
        lambda p: q / np.linalg.norm(p - source, axis=1), centres, lmax=lmax, sphere_radius_A=rho, band_limit=24
    )
    for k, centre in enumerate(centres):
        s = source - centre
        d = np.linalg.norm(s)
        y = real_sh_closed_form_l_le_1(s)
        np.testing.assert_allclose(got[k, 0], q / d * 4 * math.pi * y[0], rtol=1e-13)
        np.testing.assert_allclose(got[k, 1:4], q * rho / d**2 * 4 * math.pi / 3 * y[1:], rtol=1e-12, atol=1e-16)
        norm2 = abs(q) * rho**2 / d**3 * 4 * math.pi / 5 * math.sqrt(5 / (4 * math.pi))
        np.testing.assert_allclose(np.linalg.norm(got[k, 4:9]), norm2, rtol=1e-12)
        expected = q * rho**2 / d**3 * 4 * math.pi / 5 * real_sh_closed_form_l2(s)
        np.testing.assert_allclose(got[k, 4:9], expected, rtol=0, atol=1e-11 * np.abs(expected).max())


def test_batching_does_not_change_result(rng):
    centres = rng.uniform(-3, 3, size=(11, 3))
    f = lambda p: np.exp(-0.1 * np.sum(p * p, axis=1))  # noqa: E731
    one = potential_expansion(f, centres, lmax=2, sphere_radius_A=1.0)
    many = potential_expansion(f, centres, lmax=2, sphere_radius_A=1.0, max_points=1)
    np.testing.assert_allclose(one, many, rtol=0, atol=1e-14 * np.abs(one).max())  # round-off only


def test_projection_rejects_bad_arguments():
    with pytest.raises(ValueError, match="sphere radius"):
        potential_expansion(lambda p: p[:, 0], np.zeros((1, 3)), lmax=1, sphere_radius_A=0.0)
    with pytest.raises(ValueError, match="one value per point"):
        potential_expansion(lambda p: p, np.zeros((1, 3)), lmax=1, sphere_radius_A=1.0)


def test_tucker_sphere_evaluator_matches_pointwise_long_range(rng):
    # Ring-by-ring contraction of the Chebyshev–Tucker form == the potential's own pointwise
    # evaluation at the same sphere points (round-off), and both ≈ Σ q erf(αr)/r (tolerance).
    from scipy.special import erf

    from pipeline.descriptors.sphere_potential import TuckerSphereEvaluator
    from pipeline.electrostatics.build import build_potential

    positions = rng.uniform(0, 10, size=(30, 3))
    charges = rng.normal(size=30)
    potential, _ = build_potential(positions, charges, tolerance=1e-7)
    evaluator = TuckerSphereEvaluator(potential)
    fast = potential_expansion(evaluator, positions, lmax=3, sphere_radius_A=1.5)
    slow = potential_expansion(lambda p: evaluator(p), positions, lmax=3, sphere_radius_A=1.5)
    np.testing.assert_allclose(fast, slow, atol=1e-13 * np.abs(slow).max(), rtol=0)
    alpha = float(potential.params["alpha"])

    def direct(p):
        r = np.linalg.norm(p[:, None, :] - positions[None], axis=-1)
        return np.sum(charges * erf(alpha * r) / r, axis=1)

    exact = potential_expansion(direct, positions, lmax=3, sphere_radius_A=1.5)
    assert np.abs(fast - exact).max() < 0.25 * 1e-7 * np.abs(exact).max()  # ≤ 0.25 ε; measured 0.12 ε
    with pytest.raises(ValueError, match="outside the Chebyshev box"):
        evaluator.sphere_values(positions[:1], 50.0, np.array([0.0]), np.array([0.0]))


def test_sphere_projection_with_local_expansion_matches_grid_values(rng):
    # A wide box makes the local Chebyshev series much shorter than the global one: the
    # projected coefficients must still equal grid values × projector (pointwise long range).
    from pipeline.descriptors.projection import sphere_quadrature
    from pipeline.descriptors.sphere_potential import TuckerSphereEvaluator
    from pipeline.electrostatics.build import build_potential

    positions = rng.uniform(0, 60, size=(400, 3))
    charges = rng.normal(size=400)
    potential, _ = build_potential(positions, charges, tolerance=1e-8)
    evaluator = TuckerSphereEvaluator(potential)
    m = evaluator.factors[0].shape[0]
    n_local = evaluator.local_degree(0, positions[:, 0].min(), positions[:, 0].max(), 2.0)
    assert n_local < m, (n_local, m)
    cos_beta, alpha, directions, projector = sphere_quadrature(3, 12)
    centres = positions[:50]
    points = centres[:, None, None, :] + 2.0 * directions[None]
    reference = evaluator(points.reshape(-1, 3)).reshape(50, -1) @ projector
    one = evaluator.sphere_projection(centres, 2.0, cos_beta, alpha, projector, threads=1)
    two = evaluator.sphere_projection(centres, 2.0, cos_beta, alpha, projector, threads=2)
    np.testing.assert_allclose(one, reference, atol=1e-13 * np.abs(reference).max(), rtol=0)
    np.testing.assert_array_equal(one, two)
    with pytest.raises(ValueError, match="outside the Chebyshev box"):
        evaluator.sphere_projection(centres[:1], 100.0, cos_beta, alpha, projector)


def test_sphere_projection_over_several_chunks_matches_pointwise_quadrature(rng):
    # More centres than one chunk and one ring batch, with partial ones of each: every centre's
    # coefficients equal the explicit quadrature of the pointwise long range, on 1 and 2 threads.
    from pipeline.descriptors.projection import sphere_quadrature
    from pipeline.descriptors.sphere_potential import PROJECTION_BATCH, RING_BATCH, TuckerSphereEvaluator
    from pipeline.electrostatics.build import build_potential

    positions = rng.uniform(0, 40, size=(200, 3))
    potential, _ = build_potential(positions, rng.normal(size=200), tolerance=1e-8)
    evaluator = TuckerSphereEvaluator(potential)
    n_centres = 2 * PROJECTION_BATCH + RING_BATCH + 3
    centres = rng.uniform(3, 37, size=(n_centres, 3))
    cos_beta, alpha, directions, projector = sphere_quadrature(2, 10)
    points = centres[:, None, None, :] + 1.5 * directions[None]
    reference = np.asarray(potential.long_range(points.reshape(-1, 3))).reshape(n_centres, -1) @ projector
    one = evaluator.sphere_projection(centres, 1.5, cos_beta, alpha, projector, threads=1)
    two = evaluator.sphere_projection(centres, 1.5, cos_beta, alpha, projector, threads=2)
    np.testing.assert_allclose(one, reference, atol=1e-13 * np.abs(reference).max(), rtol=0)
    np.testing.assert_array_equal(one, two)


def test_sphere_projection_in_an_elongated_box_matches_pointwise_quadrature(rng):
    # A 90 × 30 × 12 Å cloud: the three Tucker factors have different numbers of Chebyshev terms
    # and ranks, so the compiled chunk's scratch layout and factor evaluation see unequal axes.
    from pipeline.descriptors.projection import sphere_quadrature
    from pipeline.descriptors.sphere_potential import TuckerSphereEvaluator
    from pipeline.electrostatics.build import build_potential

    positions = rng.uniform(0, 1, size=(300, 3)) * np.array([90.0, 30.0, 12.0])
    potential, _ = build_potential(positions, rng.normal(size=300), tolerance=1e-8)
    evaluator = TuckerSphereEvaluator(potential)
    terms = [f.shape[0] for f in evaluator.factors]
    assert len(set(terms)) > 1, terms
    centres = positions[(positions[:, 2] > 2.5) & (positions[:, 2] < 9.5)][:40]
    cos_beta, alpha, directions, projector = sphere_quadrature(2, 12)
    points = centres[:, None, None, :] + 2.0 * directions[None]
    reference = np.asarray(potential.long_range(points.reshape(-1, 3))).reshape(len(centres), -1) @ projector
    got = evaluator.sphere_projection(centres, 2.0, cos_beta, alpha, projector, threads=2)
    np.testing.assert_allclose(got, reference, atol=1e-13 * np.abs(reference).max(), rtol=0)


def _multipole_reference(q, source, centres, rho, lmax):
    """Closed-form Φ_lm (l ≤ 2) of q/|x − s| on spheres of radius ρ < |s − x_i|: q ρ^l/d^{l+1} 4π/(2l+1) Y_lm(ŝ)."""
    out = []
    for centre in centres:
        s = source - centre
        d = np.linalg.norm(s)
        y = np.concatenate([real_sh_closed_form_l_le_1(s), real_sh_closed_form_l2(s)])
        scale = np.repeat([q / d * 4 * math.pi, q * rho / d**2 * 4 * math.pi / 3, q * rho**2 / d**3 * 4 * math.pi / 5],
                          [1, 3, 5])
        out.append(scale * y)
    return np.array(out)


@pytest.mark.parametrize(("distance", "expected_range"), [(20.0, (10, 16)), (2.0, (24, 30))])
def test_chosen_band_limit_converges_the_expansion_of_a_point_charge(rng, distance, expected_range):
    # 1/|x − s| has harmonic content ~(ρ/d)^l on the sphere, so the band limit needed for 1e-13
    # grows with ρ/d: L + 10 at ρ/d ≈ 0.1, L + 24 at ρ/d ≈ 0.5 (measured; a fixed L + 16 leaves
    # 4e-10 there). The expansion at the chosen band limit is compared with the closed form at
    # every centre, not only at the sample the choice looked at (measured 1.1e-13 there).
    from pipeline.descriptors.projection import BAND_TOLERANCE, choose_band_limit

    q, rho = 1.1, 2.0
    centres = rng.uniform(-1.0, 1.0, size=(300, 3))
    source = np.array([distance, 0.0, 0.0]) + 3.0 * np.sign(distance)  # every centre at ≥ d from it
    potential = lambda p: q / np.linalg.norm(p - source, axis=1)  # noqa: E731
    band = choose_band_limit(potential, centres, lmax=2, sphere_radius_A=rho, rng=np.random.default_rng(0))
    assert expected_range[0] <= band <= expected_range[1], band
    got = potential_expansion(potential, centres, lmax=2, sphere_radius_A=rho, band_limit=band)
    exact = _multipole_reference(q, source, centres, rho, 2)
    assert np.abs(got - exact).max() <= 5 * BAND_TOLERANCE * np.abs(exact).max()
    fixed = potential_expansion(potential, centres, lmax=2, sphere_radius_A=rho, band_limit=2 + 16)
    if distance < 10:
        assert np.abs(fixed - exact).max() > 1e3 * BAND_TOLERANCE * np.abs(exact).max()  # the fixed L + 16 falls short


def test_chosen_band_limit_of_a_chebyshev_tucker_potential_against_pointwise_quadrature(rng):
    # Large α ρ (ρ = 5.5 Å, α ≈ 0.2/Å): more than the fixed L + 16; small ρ: fewer. Checked at every
    # atom against the potential's own pointwise values integrated on a much finer grid.
    from pipeline.descriptors.projection import BAND_TOLERANCE, choose_band_limit
    from pipeline.descriptors.sphere_potential import TuckerSphereEvaluator
    from pipeline.electrostatics.build import build_potential

    n = 400
    positions = rng.uniform(0.0, (n / 0.1) ** (1 / 3), size=(n, 3))
    charges = rng.normal(0.0, 0.5, n)
    potential, _ = build_potential(positions, charges - charges.mean(), tolerance=1e-6, padding=6.0)
    evaluator = TuckerSphereEvaluator(potential)
    chosen = {}
    for rho in (1.0, 5.5):
        band = choose_band_limit(evaluator, positions, lmax=2, sphere_radius_A=rho, rng=np.random.default_rng(1))
        got = potential_expansion(evaluator, positions, lmax=2, sphere_radius_A=rho, band_limit=band)
        fine = potential_expansion(lambda p: evaluator(p), positions, lmax=2, sphere_radius_A=rho, band_limit=60)
        assert np.abs(got - fine).max() <= 5 * BAND_TOLERANCE * np.abs(fine).max(), (rho, band)
        chosen[rho] = band
    assert chosen[1.0] < 2 + 16 < chosen[5.5], chosen
