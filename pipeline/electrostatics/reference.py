"""Independent reference potentials for self-checks and tests.

* Free space: exact direct summation (:func:`~pipeline.electrostatics.direct.direct_potential`)
  with the Coulomb or the screened kernel e^{−κr}/r, divided by ε_r.
* Periodic: a plain Ewald sum computed another way than the build: an explicit structure-factor
  sum over every reciprocal vector with |k| ≤ K (no grid, no FFT, no Chebyshev form), a real-space
  sum over the images with its own splitting parameter α_ref (chosen to balance the two parts for
  the number of targets), the self term and, for a net-charged Coulomb cell, the background term
  −πQ/(Vα_ref²). Its accuracy is set by ε_ref = tolerance · :data:`REFERENCE_MARGIN`.

Units: Å, e, e/Å.
"""

from __future__ import annotations

import math

import numpy as np

from pipeline.electrostatics.scalar_special import erfcinv
from pipeline.backend import namespace_of, to_host
from pipeline.electrostatics.direct import direct_potential
from pipeline.electrostatics.periodic import background_potential, periodic_sources, wrap
from pipeline.electrostatics.short_range import short_range_sum

#: Accuracy of the reference relative to the tolerance it checks.
REFERENCE_MARGIN = 0.01
#: Complex multiply–adds per block of the structure-factor sum.
BLOCK_ENTRIES = 4_000_000


def reference_potential(potential, targets, *, tolerance: float):
    """Φ at ``targets`` (n, 3) Å computed independently of ``potential``'s representation, (n,) e/Å.

    An atom located exactly at a target is left out, as in the potential itself.
    """
    sources = potential.sources
    if potential.periodic:
        return ewald_reference(targets, potential.positions, sources, np.asarray(potential.cell), potential.split,
                               tolerance=tolerance)
    kappa = float(getattr(potential.split, "kappa", 0.0))
    if kappa > 0:
        xp = namespace_of(targets)
        return direct_potential(targets, potential.positions, sources, kernel=lambda r: xp.exp(-kappa * r) / r)
    return direct_potential(targets, potential.positions, sources)


#: Relative costs of one target–atom pair of the real-space sum and of one (atom, reciprocal
#: vector) product of the structure-factor sum (fitted on 2 cores to the solvated adk box, 47,681
#: atoms and 4,216 targets).
COST_PAIR = 40.0
COST_MODE = 1.0


def _reference_alpha(cell, n_targets: int, n_atoms: int, log_tol: float) -> float:
    """α_ref of least modelled cost: target pairs n_t·ρ·(4π/3)r³ against N times the k-box size."""
    volume = float(abs(np.linalg.det(cell)))
    lengths = np.linalg.norm(cell, axis=1)
    density = n_atoms / volume
    best, best_cost = None, math.inf
    for alpha in np.geomspace(0.02, 2.0, 60):
        r_ref = math.sqrt(log_tol) / alpha
        k_ref = 2.0 * alpha * math.sqrt(log_tol + 3.0)
        # the half space of the k-box, columns reaching the sphere only: about 0.4 of the box
        box = 0.4 * float(np.prod(2.0 * np.ceil(k_ref * lengths / (2.0 * math.pi)) + 1.0))
        cost = COST_PAIR * n_targets * density * (4.0 / 3.0) * math.pi * r_ref**3 + COST_MODE * n_atoms * box
        if cost < best_cost:
            best, best_cost = float(alpha), cost
    return best


def ewald_reference(targets, positions, charges, cell, split, *, tolerance: float, alpha: float | None = None):
    """Plain Ewald sum (tin-foil) of ``split``'s kernel at ``targets`` (see the module docstring).

    Parameters
    ----------
    targets : (n_targets, 3) Å (any position; wrapped)
    positions : (n_atoms, 3) Å
    charges : (n_atoms,) e (already divided by ε_r)
    cell : (3, 3) Å, rows are cell vectors
    split : EwaldSplit or ScreenedEwaldSplit
        Only its kernel (κ) is used; α_ref is chosen here unless ``alpha`` is given.
    tolerance : float

    Returns
    -------
    (n_targets,) e/Å
    """
    xp = namespace_of(targets, positions, charges)
    cell = np.asarray(cell, dtype=np.float64)
    log_tol = math.log(1.0 / (tolerance * REFERENCE_MARGIN))
    if alpha is None:
        alpha = _reference_alpha(cell, int(targets.shape[0]), int(positions.shape[0]), log_tol)
    ref_split = split.with_alpha(alpha)
    r_ref = float(erfcinv(tolerance * REFERENCE_MARGIN * 0.1) / alpha)
    sources, source_q = periodic_sources(positions, charges, cell, r_ref)
    real, same = short_range_sum(wrap(targets, cell), sources, source_q, ref_split, r_ref, coincident=True)
    recip = _reciprocal_sum(to_host(targets), to_host(positions), to_host(charges), cell, ref_split,
                            2.0 * alpha * math.sqrt(log_tol + 3.0))
    background = background_potential(float(to_host(charges).sum()), cell, ref_split)
    return real + xp.asarray(recip) - same * ref_split.long_at_zero() + background


def _reciprocal_sum(targets, positions, charges, cell, split, k_max: float) -> np.ndarray:
    """(1/V) Σ_{|k|≤k_max} φ̂_L(k) Re[S(k) e^{ik·y}] on the host (k = 0 only where φ̂_L(0) is finite).

    The structure factor S(m) = Σ_j q_j e^{−2πi m·u_j} of the integer vectors m with |k| ≤ k_max
    is exact: since e^{−2πi m·u} = Π_d e^{−2πi m_d u_d}, it is summed as complex matrix products
    of per-axis phase factors over blocks of atoms (no grid, no FFT). Only the half space
    m₁ ≥ 0 is summed (the terms of m and −m are complex conjugates: those with m₁ > 0 count
    twice), and only the (m₁, m₂) columns that reach the sphere.
    """
    inv = np.linalg.inv(cell)
    volume = float(abs(np.linalg.det(cell)))
    reach = np.ceil(k_max * np.linalg.norm(cell, axis=1) / (2.0 * np.pi)).astype(int)
    m = [np.arange(0, reach[0] + 1), np.arange(-reach[1], reach[1] + 1), np.arange(-reach[2], reach[2] + 1)]
    m0, m1, m2 = m[0][:, None, None], m[1][None, :, None], m[2][None, None, :]
    k = 2.0 * np.pi * (m0[..., None] * inv[:, 0] + m1[..., None] * inv[:, 1] + m2[..., None] * inv[:, 2])
    k2 = np.sum(k * k, axis=-1)
    weight = np.where(k2 <= k_max**2, split.fourier_long(k2), 0.0) / volume  # (A, B, C); 0 at k = 0 unless screened
    weight[1:] *= 2.0  # the half space m₁ > 0 stands for −m too
    columns = np.nonzero((weight != 0.0).any(axis=2).reshape(-1))[0]  # (m₁, m₂) pairs reaching the sphere
    a, b, c = weight.shape
    col_a, col_b = np.divmod(columns, b)
    weight = weight.reshape(a * b, c)[columns]
    u_src = positions @ inv
    structure = np.zeros((columns.size, c), dtype=np.complex128)
    block = max(1, BLOCK_ENTRIES // max(columns.size, 1))
    for s in range(0, positions.shape[0], block):
        e1, e2, e3 = _phase_factors_half(u_src[s : s + block], reach, -1.0)
        pair = charges[s : s + block, None] * e1[:, col_a] * e2[:, col_b]  # (atoms, columns)
        structure += pair.T @ e3
    weighted = weight * structure  # (columns, C)
    u_t = targets @ inv
    out = np.empty(targets.shape[0])
    for s in range(0, targets.shape[0], block):
        f1, f2, f3 = _phase_factors_half(u_t[s : s + block], reach, 1.0)
        g = f3 @ weighted.T  # Σ_c W[col, c] f3[y, c], (targets, columns)
        out[s : s + block] = np.real(np.sum(g * f1[:, col_a] * f2[:, col_b], axis=1))
    return out


def _phase_factors_half(fractional_coords: np.ndarray, reach, sign: float) -> list[np.ndarray]:
    """Per-axis phase factors for m₁ = 0 … reach₁ and m_d = −reach_d … reach_d (d = 2, 3)."""
    out = []
    for d, r in enumerate(reach):
        m = np.arange(0, r + 1) if d == 0 else np.arange(-r, r + 1)
        out.append(np.exp(sign * 2j * np.pi * np.outer(fractional_coords[:, d], m)))
    return out
