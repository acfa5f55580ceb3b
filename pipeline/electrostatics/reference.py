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
from scipy import special

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
#: vector) product of the structure-factor sum (measured on 2 cores: the optimum α_ref of the
#: solvated adk box, 47,681 atoms and 4,216 targets, is 0.16 1/Å, 3.5 s).
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
        box = float(np.prod(2.0 * np.ceil(k_ref * lengths / (2.0 * math.pi)) + 1.0))
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
    r_ref = float(special.erfcinv(tolerance * REFERENCE_MARGIN * 0.1) / alpha)
    sources, source_q = periodic_sources(positions, charges, cell, r_ref)
    real, same = short_range_sum(wrap(targets, cell), sources, source_q, ref_split, r_ref, coincident=True)
    recip = _reciprocal_sum(to_host(targets), to_host(positions), to_host(charges), cell, ref_split,
                            2.0 * alpha * math.sqrt(log_tol + 3.0))
    background = background_potential(float(to_host(charges).sum()), cell, ref_split)
    return real + xp.asarray(recip) - same * ref_split.long_at_zero() + background


def _phase_factors(fractional_coords: np.ndarray, reach, sign: float) -> list[np.ndarray]:
    """e^{sign·2πi m u_d} for m = −reach_d … reach_d, per axis d: three (n, 2·reach_d + 1) arrays."""
    out = []
    for d, r in enumerate(reach):
        m = np.arange(-r, r + 1)
        out.append(np.exp(sign * 2j * np.pi * np.outer(fractional_coords[:, d], m)))
    return out


def _reciprocal_sum(targets, positions, charges, cell, split, k_max: float) -> np.ndarray:
    """(1/V) Σ_{|k|≤k_max} φ̂_L(k) Re[S(k) e^{ik·y}] on the host (k = 0 only where φ̂_L(0) is finite).

    The structure factor S(m) = Σ_j q_j e^{−2πi m·u_j} of every integer m in the box
    |m_d| ≤ ⌈k_max |a_d|/2π⌉ is exact: since e^{−2πi m·u} = Π_d e^{−2πi m_d u_d}, it is summed as
    complex matrix products of per-axis phase factors over blocks of atoms (no grid, no FFT), and
    then the vectors outside the sphere |k| ≤ k_max are given weight 0.
    """
    inv = np.linalg.inv(cell)
    volume = float(abs(np.linalg.det(cell)))
    reach = np.ceil(k_max * np.linalg.norm(cell, axis=1) / (2.0 * np.pi)).astype(int)
    m = [np.arange(-r, r + 1) for r in reach]
    m0, m1, m2 = m[0][:, None, None], m[1][None, :, None], m[2][None, None, :]
    k = 2.0 * np.pi * (m0[..., None] * inv[:, 0] + m1[..., None] * inv[:, 1] + m2[..., None] * inv[:, 2])
    k2 = np.sum(k * k, axis=-1)
    weight = np.where(k2 <= k_max**2, split.fourier_long(k2), 0.0) / volume  # (A, B, C); 0 at k = 0 unless screened
    a, b, c = weight.shape
    u_src = positions @ inv
    structure = np.zeros((a * b, c), dtype=np.complex128)
    block = max(1, BLOCK_ENTRIES // (a * b))
    for s in range(0, positions.shape[0], block):
        e1, e2, e3 = _phase_factors(u_src[s : s + block], reach, -1.0)
        pair = (charges[s : s + block, None, None] * e1[:, :, None] * e2[:, None, :]).reshape(-1, a * b)
        structure += pair.T @ e3
    weighted = (weight.reshape(a * b, c) * structure).reshape(a, b, c)
    u_t = targets @ inv
    out = np.empty(targets.shape[0])
    block_t = max(1, BLOCK_ENTRIES // (a * b))
    for s in range(0, targets.shape[0], block_t):
        f1, f2, f3 = _phase_factors(u_t[s : s + block_t], reach, 1.0)
        g = (f3 @ weighted.reshape(a * b, c).T).reshape(-1, a, b)  # Σ_c W[a,b,c] f3[y,c]
        out[s : s + block_t] = np.real(np.einsum("yab,ya,yb->y", g, f1, f2))
    return out
