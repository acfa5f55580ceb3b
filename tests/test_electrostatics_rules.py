"""The parameters a build chooses satisfy the rules they come from, checked independently.

* Cutoff: erfc(α r_c) = ε·CUTOFF_MARGIN for the Ewald split (and no smaller r_c would do); for
  the Gaussian-sum split |r·φ_S(r)| ≤ ε·CUTOFF_MARGIN beyond r_c. The short range the cutoff
  drops, summed here over every pair beyond r_c with scipy's erfc, stays within that budget.
* Tucker ranks: each r_k is the smallest rank with Σ_{i>r_k} σ_i² ≤ (ε·TUCKER_MARGIN)² ‖C‖²/3,
  σ the singular values (numpy.linalg.svd, not the code's Gram eigenproblem) of the mode-k
  unfolding of the coefficient tensor projected on the earlier modes' factors.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from pipeline.electrostatics import build_potential, direct_potential, long_range_coefficients, prepare_build
from pipeline.electrostatics.long_range import GRID_MARGIN
from pipeline.electrostatics.parameters import CUTOFF_MARGIN, TUCKER_MARGIN
from pipeline.electrostatics.tucker import tucker_to_full


def _cloud(n=1500, width=24.0, seed=20261127):
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0.0, width, (n, 3))
    q = rng.choice([-0.5, 0.5], n) + rng.normal(0.0, 0.1, n)
    return pos, q


def test_error_budget_of_the_plan_is_within_the_tolerance():
    # short-range truncation, grid steps and Tucker compression each get a share of ε
    assert 0 < CUTOFF_MARGIN and 0 < GRID_MARGIN and 0 < TUCKER_MARGIN
    assert CUTOFF_MARGIN + GRID_MARGIN + TUCKER_MARGIN <= 1.0


@pytest.mark.parametrize("tolerance", [1e-6, 1e-8])
def test_ewald_cutoff_satisfies_the_erfc_rule(tolerance):
    pos, q = _cloud()
    pot, _ = build_potential(pos, q, tolerance=tolerance, split="ewald")
    alpha, r_c = pot.params["alpha"], pot.params["cutoff"]
    target = tolerance * CUTOFF_MARGIN
    assert special.erfc(alpha * r_c) <= target * (1 + 1e-9)
    assert special.erfc(alpha * 0.99 * r_c) > target  # the smallest cutoff that meets it
    # what the cutoff drops: Σ_{r ≥ r_c} q erfc(αr)/r at every atom, relative to max |Φ|
    d = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
    far = d >= r_c
    safe = np.where(far, d, 1.0)
    tail = np.sum(np.where(far, special.erfc(alpha * safe) / safe, 0.0) * q, axis=1)
    scale = np.abs(direct_potential(pos, pos, q)).max()
    assert 0 < np.abs(tail).max() / scale < target  # measured 0.0097 ε; a cutoff 0.9× gives 0.2–0.3 ε


@pytest.mark.parametrize("tolerance", [1e-6, 1e-8])
def test_gaussian_sum_cutoff_satisfies_its_rule(tolerance):
    pos, q = _cloud(n=300)
    pot, _ = build_potential(pos, q, tolerance=tolerance, split="gaussian-sum")
    split, r_c = pot.split, pot.cutoff
    r = np.linspace(r_c, split.length_scale, 4000)
    assert np.max(np.abs(r * split.short(r))) <= tolerance * CUTOFF_MARGIN
    assert abs(0.98 * r_c * split.short(np.array([0.98 * r_c]))[0]) > tolerance * CUTOFF_MARGIN


def _sequential_spectra(tensor, ranks):
    """Singular values of each mode unfolding, the tensor projected on the earlier modes' leading vectors."""
    spectra = []
    core = tensor
    for mode, rank in enumerate(ranks):
        unfolding = np.moveaxis(core, mode, 0).reshape(core.shape[mode], -1)
        u, s, _ = np.linalg.svd(unfolding, full_matrices=False)
        spectra.append(s)
        core = np.moveaxis(np.tensordot(u[:, :rank].T, np.moveaxis(core, mode, 0), axes=1), 0, mode)
    return spectra


def _coefficients_and_potential(tolerance, split, n=800):
    pos, q = _cloud(n=n)
    pot, _ = build_potential(pos, q, tolerance=tolerance, split=split, max_storage_bytes=None)
    setup = prepare_build(pos, q, tolerance=tolerance, split=split)
    coeffs = long_range_coefficients(pos, q, setup.plan, setup.split)
    assert coeffs.shape == pot.degree
    return coeffs, pot


@pytest.mark.parametrize(("tolerance", "split"), [(1e-6, "ewald"), (1e-7, "gaussian-sum"), (1e-8, "ewald")])
def test_tucker_ranks_satisfy_the_tail_rule(tolerance, split):
    coeffs, pot = _coefficients_and_potential(tolerance, split)
    budget = (tolerance * TUCKER_MARGIN) ** 2 * np.sum(coeffs**2) / 3.0
    for mode, (rank, sigma) in enumerate(zip(pot.ranks, _sequential_spectra(coeffs, pot.ranks))):
        tail = np.cumsum((sigma**2)[::-1])[::-1]  # tail[i] = Σ_{k ≥ i} σ_k²
        assert rank < sigma.size, f"mode {mode}: rank {rank} is the full size"
        assert tail[rank] <= budget, f"mode {mode}: rank {rank} leaves {tail[rank]:.3e} > budget {budget:.3e}"
        assert tail[rank - 1] > budget, f"mode {mode}: rank {rank - 1} would already do"


@pytest.mark.parametrize("tolerance", [1e-6, 1e-7, 1e-8, 1e-9])
def test_recorded_tucker_error_is_the_reconstruction_error(tolerance):
    # the tucker_rel_error a potential file records, against ‖C − G×U‖/‖C‖ computed here
    coeffs, pot = _coefficients_and_potential(tolerance, "ewald")
    actual = np.linalg.norm(tucker_to_full(pot.core, pot.factors) - coeffs) / np.linalg.norm(coeffs)
    assert actual <= tolerance * TUCKER_MARGIN
    # meaningful against the budget: within a tenth of it (measured 5e-9 and 3.3e-9 off at 1e-6, 1e-7)
    assert abs(pot.params["tucker_rel_error"] - actual) <= 0.1 * tolerance * TUCKER_MARGIN


def test_the_fft_budget_caps_the_automatic_alpha_of_a_large_cell():
    """10⁷ ions of rock salt: a 2.5 GB FFT forces α down (longer cutoff); 30 % of a 20 GB limit
    lets it rise, and every α chosen keeps its grid inside the budget it was given."""
    from pipeline.electrostatics.parameters import (
        FFT_BYTES_PER_POINT,
        FFT_MEMORY_BYTES,
        choose_alpha_periodic,
        fft_memory_budget,
    )
    from pipeline.electrostatics.periodic import cell_matrix, plan_periodic

    assert fft_memory_budget(None) == FFT_MEMORY_BYTES and fft_memory_budget(1e9) == FFT_MEMORY_BYTES
    assert fft_memory_budget(20e9) == pytest.approx(6e9)
    cell = cell_matrix([609.12] * 3 + [90.0] * 3)
    small = choose_alpha_periodic(cell, 1e-6, n_atoms=10_077_696)
    large = choose_alpha_periodic(cell, 1e-6, n_atoms=10_077_696, fft_memory_bytes=fft_memory_budget(20e9))
    assert large > 1.2 * small
    for alpha, budget in ((small, FFT_MEMORY_BYTES), (large, 6e9)):
        assert FFT_BYTES_PER_POINT * np.prod(plan_periodic(cell, alpha, 1e-6).grid) <= budget
