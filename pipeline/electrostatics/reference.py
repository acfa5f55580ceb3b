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
from pipeline.electrostatics.periodic import background_potential, cell_widths, periodic_sources, wrap
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


def _reference_alpha(cell, n_targets: int, n_atoms: int, log_tol: float) -> float:
    """α_ref balancing target pairs n_t·ρ·(4π/3)r³ against structure-factor work N·n_k."""
    volume = float(abs(np.linalg.det(cell)))
    density = n_atoms / volume
    best, best_cost = None, math.inf
    for alpha in np.geomspace(0.02, 2.0, 60):
        r_ref = math.sqrt(log_tol) / alpha
        k_ref = 2.0 * alpha * math.sqrt(log_tol)
        n_k = volume * (4.0 / 3.0) * math.pi * k_ref**3 / (8.0 * math.pi**3) / 2.0
        images = (1.0 + 2.0 * r_ref / float(min(cell_widths(cell)))) ** 3
        cost = n_targets * density * (4.0 / 3.0) * math.pi * r_ref**3 + n_atoms * n_k + n_atoms * images * 0.05
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


def _reciprocal_sum(targets, positions, charges, cell, split, k_max: float) -> np.ndarray:
    """(1/V) Σ_{0<|k|≤k_max} φ̂_L(k) Re[S(k) e^{ik·y}] (+ the k = 0 term when screened), on the host."""
    inv = np.linalg.inv(cell)
    volume = float(abs(np.linalg.det(cell)))
    lengths = np.linalg.norm(cell, axis=1)
    reach = np.ceil(k_max * lengths / (2.0 * np.pi)).astype(int)
    ranges = [np.arange(-r, r + 1) for r in reach]
    m = np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1).reshape(-1, 3)
    # half space: keep m > 0 lexicographically, count twice (S(−k) = conj S(k))
    half = (m[:, 0] > 0) | ((m[:, 0] == 0) & (m[:, 1] > 0)) | ((m[:, 0] == 0) & (m[:, 1] == 0) & (m[:, 2] > 0))
    k = 2.0 * np.pi * (m[half] @ inv.T)
    k2 = np.einsum("ij,ij->i", k, k)
    keep = k2 <= k_max**2
    k, k2 = k[keep], k2[keep]
    weight = 2.0 * split.fourier_long(k2) / volume
    out = np.zeros(targets.shape[0])
    block = max(1, BLOCK_ENTRIES // max(positions.shape[0], targets.shape[0], 1))
    for s in range(0, k.shape[0], block):
        kb = k[s : s + block]
        phase_src = positions @ kb.T  # (n_atoms, nk)
        s_re = charges @ np.cos(phase_src)
        s_im = -(charges @ np.sin(phase_src))
        phase_t = targets @ kb.T
        out += (np.cos(phase_t) * s_re - np.sin(phase_t) * s_im) @ weight[s : s + block]
    kappa = float(getattr(split, "kappa", 0.0))
    if kappa > 0:
        out += float(split.fourier_long(np.zeros(1))[0]) * float(charges.sum()) / volume
    return out
