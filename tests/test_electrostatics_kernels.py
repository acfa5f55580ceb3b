"""Compiled kernels of the potential against plain NumPy references written from the formulas.

References: brute-force pair sums with scipy.special.erfc (short range), explicit Gaussian
weights (spreading, interpolation), an explicit O(n⁶) discrete convolution (FFT step), the Tucker
error definition (compression), the cost model evaluated at neighbouring α.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import special

from pipeline.electrostatics import (
    EwaldSplit,
    GaussianSumSplit,
    build_potential,
    direct_potential,
    self_check,
)
from pipeline.electrostatics.gridding import interpolate_grid, spread_charges
from pipeline.electrostatics.long_range import convolve_long_kernel, plan_long_range
from pipeline.electrostatics.parameters import (
    MAX_CUTOFF,
    MIN_CUTOFF,
    choose_alpha,
    estimate_cost,
    ewald_cutoff,
)
from pipeline.electrostatics.short_range import (
    horner,
    kernel_accuracy,
    kernel_polynomial,
    kernel_table,
    short_range_at_atoms,
    short_range_sum,
)
from pipeline.electrostatics.short_range_grid import short_range_grid
from pipeline.electrostatics.splitting import ScreenedEwaldSplit
from pipeline.electrostatics.tucker import tucker_hosvd, tucker_to_full


def _short_reference(targets, positions, charges, alpha, cutoff):
    """Σ_{0<r<r_c} q erfc(αr)/r by brute force, and Σ q over coincident atoms."""
    d = np.linalg.norm(targets[:, None, :] - positions[None, :, :], axis=-1)
    inside = (d > 0) & (d < cutoff)
    safe = np.where(inside, d, 1.0)
    pot = (np.where(inside, special.erfc(alpha * safe) / safe, 0.0) * charges).sum(axis=1)
    same = (np.where(d == 0, 1.0, 0.0) * charges).sum(axis=1)
    return pot, same


@pytest.mark.parametrize("split", [EwaldSplit(alpha=0.35), GaussianSumSplit.for_alpha(0.35, 40.0, 1e-8)])
def test_kernel_table_matches_split(rng, split):
    cutoff = 9.0
    table, inv_step = kernel_table(split, cutoff)
    r = rng.uniform(1e-3, cutoff, 2000)
    k = np.minimum((r * inv_step).astype(int), table.shape[0] - 1)
    t = r * inv_step - k
    g = sum(table[k, p] * t**p for p in range(table.shape[1]))
    dg = sum(p * table[k, p] * t ** (p - 1) for p in range(1, table.shape[1])) * inv_step
    np.testing.assert_allclose(g, r * split.short(r), rtol=0, atol=1e-12)  # g(0) = 1
    # g' = φ_S + r φ_S'
    np.testing.assert_allclose(dg, split.short(r) + r * split.short_derivative(r), rtol=0, atol=1e-9)


def test_short_range_sums_match_brute_force(rng):
    pos = rng.uniform(0, 18, (700, 3))
    q = rng.normal(size=700)
    alpha, cutoff = 0.4, 7.5
    split = EwaldSplit(alpha=alpha)
    targets = np.vstack([rng.uniform(-2, 20, (300, 3)), pos[:5]])  # some outside the atoms' box, five on atoms
    ref, ref_same = _short_reference(targets, pos, q, alpha, cutoff)
    pot, same = short_range_sum(targets, pos, q, split, cutoff, coincident=True)
    np.testing.assert_allclose(pot, ref, rtol=0, atol=1e-12 * np.abs(ref).max())
    np.testing.assert_array_equal(same, ref_same)
    assert np.all(same[-5:] == q[:5]) and np.all(same[:-5] == 0)
    # each pair once, credited to both atoms
    at_atoms = short_range_at_atoms(pos, q, split, cutoff)
    ref_atoms, _ = _short_reference(pos, pos, q, alpha, cutoff)
    np.testing.assert_allclose(at_atoms, ref_atoms, rtol=0, atol=1e-12 * np.abs(ref_atoms).max())


def test_short_range_grid_matches_brute_force(rng):
    pos = rng.uniform(0, 12, (300, 3))
    q = rng.normal(size=300)
    axes = [np.linspace(-1.0, 13.0, 15), np.linspace(0.5, 11.5, 12), np.linspace(-0.7, 12.9, 18)]
    pos[0] = [axes[0][4], axes[1][7], axes[2][2]]  # an atom exactly on a grid point
    split = EwaldSplit(alpha=0.45)
    cutoff = 6.5
    grid = short_range_grid(axes, pos, q, split, cutoff)
    gx, gy, gz = np.meshgrid(*axes, indexing="ij")
    pts = np.stack([gx.ravel(), gy.ravel(), gz.ravel()], axis=1)
    ref, same = _short_reference(pts, pos, q, 0.45, cutoff)
    ref = (ref - same * split.long_at_zero()).reshape(grid.shape)
    assert same.reshape(grid.shape)[4, 7, 2] == q[0]
    np.testing.assert_allclose(grid, ref, rtol=0, atol=1e-11 * np.abs(ref).max())


def test_grid_with_non_uniform_axes_matches_points(rng):
    pos = rng.uniform(0, 12, (200, 3))
    q = rng.normal(size=200)
    pot, _ = build_potential(pos, q, tolerance=1e-7)
    axes = [np.sort(rng.uniform(pot.box_lo[k], pot.box_hi[k], n)) for k, n in enumerate((5, 6, 7))]
    grid = pot.grid(*axes)
    gx, gy, gz = np.meshgrid(*axes, indexing="ij")
    pts = np.stack([gx.ravel(), gy.ravel(), gz.ravel()], axis=1)
    np.testing.assert_allclose(grid.ravel(), pot.potential(pts), rtol=1e-12, atol=1e-12)
    assert np.max(np.abs(grid.ravel() - direct_potential(pts, pos, q))) < 0.2e-7 * np.abs(grid).max()  # 0.03 ε


def _window(d, plan):
    w = np.exp(-0.5 * (d / plan.sigma) ** 2) / (math.sqrt(2 * math.pi) * plan.sigma)
    return np.where(np.abs(d) <= plan.radius, w, 0.0)


def _semicircle_window(d, plan):
    t = d / plan.radius
    return np.where(np.abs(t) < 1.0, np.exp(plan.beta * (np.sqrt(np.clip(1.0 - t * t, 0.0, None)) - 1.0)), 0.0)


@pytest.mark.parametrize("beta", [0.0, 18.5])
def test_spreading_and_interpolation_match_explicit_weights(rng, beta):
    """Gaussian (β = 0, free space) and exponential-of-semicircle (β > 0, periodic) windows."""
    pos = rng.uniform(0, 14, (60, 3))
    q = rng.normal(size=60)
    plan = plan_long_range(pos.min(0) - 1, pos.max(0) + 1, 0.5, 1e-6)
    window = _window
    if beta:
        plan, window = dataclasses.replace(plan, beta=beta, radius=4.0 * plan.spacing), _semicircle_window
    axes = [plan.origin[k] + plan.spacing * np.arange(plan.shape[k]) for k in range(3)]
    w = [window(axes[k][None, :] - pos[:, k, None], plan) for k in range(3)]  # (n, n_k)
    assert all(np.count_nonzero(wk, axis=1).max() >= 8 for wk in w)
    rho_ref = np.einsum("j,ja,jb,jc->abc", q, *w)
    rho = spread_charges(pos, q, plan)
    np.testing.assert_allclose(rho, rho_ref, rtol=0, atol=1e-13 * np.abs(rho_ref).max())
    grid = rng.normal(size=plan.shape)
    vals = interpolate_grid(grid, pos, plan)
    ref = np.einsum("abc,ja,jb,jc->j", grid, *w) * plan.spacing**3
    np.testing.assert_allclose(vals, ref, rtol=0, atol=1e-13 * np.abs(ref).max())


def test_fft_convolution_matches_explicit_sum(rng):
    split = EwaldSplit(alpha=0.5)
    plan = plan_long_range([0.0] * 3, [1.5, 2.0, 1.0], split.alpha, 1e-6)
    rho = rng.normal(size=plan.shape)
    out = convolve_long_kernel(rho, plan, split)
    idx = np.stack(np.meshgrid(*(np.arange(n) for n in plan.shape), indexing="ij"), axis=-1).reshape(-1, 3)
    dist = np.linalg.norm((idx[:, None, :] - idx[None, :, :]) * plan.spacing, axis=-1)
    ref = (split.deconvolved_long(dist, plan.sigma) * plan.spacing**3) @ rho.reshape(-1)
    np.testing.assert_allclose(out.reshape(-1), ref, rtol=0, atol=1e-12 * np.abs(ref).max())


def test_sequential_hosvd_error_and_orthonormal_factors(rng):
    u = [np.linalg.qr(rng.normal(size=(n, n)))[0] for n in (18, 20, 22)]
    core = rng.normal(size=(18, 20, 22)) * np.exp(-0.6 * np.add.outer(np.add.outer(np.arange(18), np.arange(20)), np.arange(22)))
    t = tucker_to_full(core, u)
    for tol in (1e-3, 1e-6):
        g, factors, err = tucker_hosvd(t, tol)
        actual = np.linalg.norm(tucker_to_full(g, factors) - t) / np.linalg.norm(t)
        assert actual <= tol
        assert abs(actual - err) < 1e-2 * tol  # √(‖T‖² − ‖G‖²) loses digits to cancellation
        for f in factors:
            np.testing.assert_allclose(f.T @ f, np.eye(f.shape[1]), atol=1e-12)
    assert max(tucker_hosvd(t, 1e-3)[0].shape) < max(tucker_hosvd(t, 1e-6)[0].shape)


def test_cost_model_picks_a_local_minimum():
    lo, hi = np.zeros(3), np.full(3, 100.0)
    alpha = choose_alpha(lo, hi, 1e-6, n_atoms=100_000)
    assert MIN_CUTOFF <= ewald_cutoff(alpha, 1e-6) <= MAX_CUTOFF
    cost = estimate_cost(alpha, lo, hi, 1e-6, 100_000)["total_s"]
    assert cost <= estimate_cost(alpha * 0.8, lo, hi, 1e-6, 100_000)["total_s"]
    assert cost <= estimate_cost(alpha * 1.25, lo, hi, 1e-6, 100_000)["total_s"]
    # more atoms in the same box make the short range dearer: α does not decrease
    assert choose_alpha(lo, hi, 1e-6, n_atoms=1_000_000) >= alpha


def test_atom_values_from_grid_match_tucker_and_self_check(rng):
    pos = rng.uniform(0, 20, (1200, 3))
    q = rng.normal(size=1200)
    pot, _ = build_potential(pos, q, tolerance=1e-6)
    assert pot.atom_long is not None
    total, _, long = pot.at_atoms()
    pot_tucker, _ = build_potential(pos, q, tolerance=1e-6, atom_values=False)
    assert pot_tucker.atom_long is None
    total_t, _, long_t = pot_tucker.at_atoms()
    ref = direct_potential(pos, pos, q)
    scale = np.abs(ref).max()
    # dense cloud (0.15 atoms/Å³): measured 0.20, 0.18 and 0.22 ε
    assert np.max(np.abs(total - ref)) < 0.3e-6 * scale
    assert np.max(np.abs(total_t - ref)) < 0.3e-6 * scale
    assert np.max(np.abs(long - long_t)) < 0.3e-6 * scale
    check = self_check(pot, total, n_sample=100, rng=rng, tolerance=1e-6)
    # every atom is checked (n ≤ EXACT_LIMIT): the representation's error there is total_t's
    assert check["max_rel_error_atoms_representation"] == pytest.approx(
        np.max(np.abs(pot.potential(pos) - ref)) / scale, rel=1e-9)
    assert check["max_rel_error_atoms"] < 0.3e-6 and check["tolerance_exceeded"] == 0


def test_map_with_its_own_split_matches_direct(rng):
    from pipeline.electrostatics.mid_range import choose_map_alpha

    pos = rng.uniform(0, 16, (500, 3))
    q = rng.normal(size=500)
    pot, _ = build_potential(pos, q, tolerance=1e-6, alpha=0.25)
    axes = [np.linspace(pot.box_lo[k], pot.box_hi[k], n) for k, n in enumerate((40, 44, 48))]
    pos_on = pos.copy()
    pos_on[3] = [axes[0][10], axes[1][20], axes[2][30]]  # one atom on a map point
    pot, _ = build_potential(pos_on, q, tolerance=1e-6, alpha=0.25, box=(pot.box_lo, pot.box_hi))
    alpha2 = choose_map_alpha(pot, axes)
    assert alpha2 is not None and alpha2 > 1.2 * 0.25  # the map uses a larger α than the atoms
    grid = pot.grid(*axes)
    gx, gy, gz = np.meshgrid(*axes, indexing="ij")
    pts = np.stack([gx.ravel(), gy.ravel(), gz.ravel()], axis=1)
    pick = np.append(rng.choice(pts.shape[0], 400, replace=False), np.ravel_multi_index((10, 20, 30), grid.shape))
    ref = direct_potential(pts[pick], pos_on, q)
    scale = np.abs(ref).max()
    assert np.max(np.abs(grid.ravel()[pick] - ref)) < 0.4e-6 * scale  # measured 0.26 ε
    # and the stored split's own short range at the same points (points path)
    assert np.max(np.abs(grid.ravel()[pick] - pot.potential(pts[pick]))) < 0.2e-6 * scale  # measured 0.02 ε


def test_tucker_matches_tensorly_at_fixed_ranks(rng):
    """TensorLy's HOOI (a peer implementation) at the same ranks is the reference.

    Truncated HOSVD is quasi-optimal (error within √3 of the best rank-(r1, r2, r3)
    approximation, De Lathauwer et al. 2000); on a smooth tensor the two agree closely, and
    our reported error must be the true reconstruction error.
    """
    tensorly = pytest.importorskip("tensorly")
    from tensorly.decomposition import tucker

    x = np.linspace(-1.0, 1.0, 24)
    grid = np.stack(np.meshgrid(x, x, x, indexing="ij"), axis=-1)
    tensor = np.exp(-3.0 * np.sum((grid - 0.2) ** 2, axis=-1)) + 0.5 / (1.5 + grid @ [0.3, -0.5, 0.2])
    ranks = (5, 6, 7)
    core, factors, reported = tucker_hosvd(tensor, 1e-12, ranks=ranks)
    ours = np.linalg.norm(tucker_to_full(core, factors) - tensor) / np.linalg.norm(tensor)
    assert core.shape == ranks
    assert abs(reported - ours) <= 1e-2 * ours  # reported from the discarded Gram spectrum
    peer = tensorly.tucker_to_tensor(tucker(tensorly.tensor(tensor), rank=list(ranks), n_iter_max=50, tol=1e-12, init="svd"))
    theirs = np.linalg.norm(peer - tensor) / np.linalg.norm(tensor)
    assert theirs <= ours <= np.sqrt(3.0) * theirs * (1 + 1e-9)
    assert ours <= 1.2 * theirs  # on smooth data HOSVD is close to optimal


def test_self_check_turned_off_reports_nan(rng):
    pos = rng.uniform(0, 32, (3200, 3))  # above EXACT_LIMIT: nothing is sampled with n_sample=0
    q = rng.normal(size=3200)
    pot, _ = build_potential(pos, q, tolerance=1e-5)
    check = self_check(pot, pot.at_atoms()[0], n_sample=0, rng=rng, tolerance=1e-5)
    assert check["selfcheck_atoms"] == 0 and check["selfcheck_points"] == 0
    assert np.isnan(check["max_rel_error_atoms"]) and np.isnan(check["max_rel_error_points"])
    assert check["tolerance_exceeded"] == 0


class _NarrowSplit:
    """Ewald short range plus a narrow Gaussian term: its long range 1/r − φ_S is not smooth in r²."""

    def __init__(self, alpha: float, width: float):
        self.alpha, self.width = alpha, width

    def short(self, r):
        return special.erfc(self.alpha * r) / r + np.exp(-((r / self.width) ** 2)) / r


def _short_formula(split, r):
    """φ_S(r) written from the closed forms with scipy.special.erfc (r > 0)."""
    if isinstance(split, ScreenedEwaldSplit):
        a, k = split.alpha, split.kappa
        b = k / (2 * a)
        return (np.exp(-k * r) * special.erfc(a * r - b) + np.exp(k * r) * special.erfc(a * r + b)) / (2 * r)
    if isinstance(split, EwaldSplit):
        return special.erfc(split.alpha * r) / r
    return split.short(r)  # Gaussian sum (1/r minus its explicit Gaussians) and _NarrowSplit: the formula itself


_SPLITS = [EwaldSplit(alpha=0.4), ScreenedEwaldSplit(alpha=0.4, kappa=0.1), GaussianSumSplit.for_alpha(0.4, 30.0, 1e-8),
           _NarrowSplit(0.4, 0.3)]


@pytest.mark.parametrize("split", _SPLITS)
@pytest.mark.parametrize("tolerance", [None, 1e-4])
def test_kernel_polynomial_reaches_its_accuracy(rng, split, tolerance):
    # g(r) = r φ_S(r) = 1 − r L(r²) from the polynomial, within the accuracy asked for; no
    # polynomial where 1/r − φ_S is not smooth in r² (the screened kernel's e^{−κr}/r has odd
    # powers of r; _NarrowSplit), so the table is used; fewer terms at a loose tolerance
    cutoff = 7.5
    accuracy = kernel_accuracy(tolerance)
    coefficients, scale = kernel_polynomial(split, cutoff, accuracy)
    assert (coefficients is None) == isinstance(split, (_NarrowSplit, ScreenedEwaldSplit))
    if coefficients is None:
        return
    r = np.concatenate([rng.uniform(1e-4, cutoff, 2000), [cutoff]])
    g = 1.0 - r * horner(r * r * scale - 1.0, coefficients)
    assert np.max(np.abs(g - r * _short_formula(split, r))) <= accuracy
    if tolerance is not None:
        assert len(coefficients) < len(kernel_polynomial(split, cutoff)[0])


@pytest.mark.parametrize("split", _SPLITS)
@pytest.mark.parametrize("tolerance", [None, 1e-12, 1e-6])
def test_short_range_paths_match_direct_sums(rng, split, tolerance):
    # at atoms (each pair once), at atoms as targets, and at off-atom points with some on atoms:
    # the polynomial path (Ewald, Gaussian sum) and the tabulated path (screened, _NarrowSplit) against plain
    # sums of the closed-form φ_S; duplicated atoms (r = 0) are skipped and reported as coincident
    cutoff = 7.5
    pos = rng.uniform(0, 20, (900, 3))
    pos[-3:] = pos[:3]  # three atoms twice
    q = rng.normal(size=900)
    points = np.vstack([rng.uniform(-2, 22, (300, 3)), pos[:4]])

    def reference(targets):
        d = np.linalg.norm(targets[:, None, :] - pos[None, :, :], axis=-1)
        inside = (d > 0) & (d < cutoff)
        return (np.where(inside, _short_formula(split, np.where(inside, d, 1.0)), 0.0) * q).sum(axis=1)

    # full accuracy: 1e-12 of the largest value as before; at ε the kernel error allowed is 1e-3 ε
    rel = 1e-12 if tolerance is None or tolerance < 1e-10 else 1e-2 * tolerance
    ref = reference(pos)
    at_atoms = short_range_at_atoms(pos, q, split, cutoff, tolerance=tolerance)
    np.testing.assert_allclose(at_atoms, ref, rtol=0, atol=rel * np.abs(ref).max())
    pot, same = short_range_sum(pos, pos, q, split, cutoff, coincident=True, tolerance=tolerance)
    np.testing.assert_allclose(pot, ref, rtol=0, atol=rel * np.abs(ref).max())
    np.testing.assert_allclose(same, q + np.where(np.arange(900) < 3, q[-3:][np.arange(900) % 3], 0.0)
                               + np.where(np.arange(900) >= 897, q[:3][np.arange(900) % 3], 0.0), rtol=0, atol=1e-15)
    ref_points = reference(points)
    pot, same = short_range_sum(points, pos, q, split, cutoff, coincident=True, tolerance=tolerance)
    np.testing.assert_allclose(pot, ref_points, rtol=0, atol=rel * np.abs(ref_points).max())
    assert np.all(same[:300] == 0) and np.allclose(same[300:], q[:4] + np.append(q[-3:], 0.0), rtol=0, atol=1e-15)


@pytest.mark.parametrize("split", [EwaldSplit(alpha=0.4), ScreenedEwaldSplit(alpha=0.4, kappa=0.1)])
def test_short_range_field_matches_direct_sums(rng, split):
    # −∇Φ_S = Σ_j −q_j φ_S'(r) d/r against the closed-form derivative; points on atoms skip r = 0
    cutoff = 7.5
    pos = rng.uniform(0, 16, (600, 3))
    q = rng.normal(size=600)
    points = np.vstack([rng.uniform(-1, 17, (200, 3)), pos[:3]])
    d_vec = points[:, None, :] - pos[None, :, :]
    d = np.linalg.norm(d_vec, axis=-1)
    inside = (d > 0) & (d < cutoff)
    r = np.where(inside, d, 1.0)
    deriv = split.short_derivative(r)
    if isinstance(split, EwaldSplit):  # written out: −erfc(αr)/r² − (2α/√π) e^{−α²r²}/r
        deriv = -special.erfc(0.4 * r) / r**2 - (0.8 / math.sqrt(math.pi)) * np.exp(-((0.4 * r) ** 2)) / r
    ref = (np.where(inside, -q * deriv / r, 0.0)[:, :, None] * d_vec).sum(axis=1)
    _, fld = short_range_sum(points, pos, q, split, cutoff, field=True)
    np.testing.assert_allclose(fld, ref, rtol=0, atol=1e-11 * np.abs(ref).max())
