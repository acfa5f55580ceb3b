"""Radial basis of the neighbour density expansion: Gaussians times a smooth cosine cutoff.

Conventions
-----------
Smooth cutoff (Behler 2011)::

    f_c(r) = ½ [1 + cos(π r / r_c)]    for r < r_c,    0 otherwise,

continuous with its first derivative at ``r_c``. Radial functions, ``n = 0 … N−1``::

    R_n(r) = exp(−(r − μ_n)² / (2σ²)) · f_c(r),    μ_n = n r_c / N,    σ = r_c / N.

``R_n`` is dimensionless, so ``A_i,nlm = Σ_j q_j R_n(r_ij) Y_lm(r̂_ij)`` is in units of e.

References
----------
J. Behler, "Atom-centered symmetry functions for constructing high-dimensional neural
network potentials", J. Chem. Phys. 134, 074106 (2011), doi:10.1063/1.3553717.
"""

from __future__ import annotations

import numpy as np

from pipeline.backend import namespace_of

#: Units of the radial basis values (dimensionless).
RADIAL_UNITS = "1"


def cosine_cutoff(r_A, cutoff_A: float):
    """Smooth cutoff ``f_c(r) = ½[1 + cos(πr/r_c)]`` for ``r < r_c``, else 0.

    Parameters
    ----------
    r_A : (...,) float array, Å
        Distances (non-negative).
    cutoff_A : float
        Cutoff radius ``r_c`` in Å, positive.

    Returns
    -------
    (...,) float array, dimensionless, in [0, 1].
    """
    if not cutoff_A > 0:
        raise ValueError(f"cutoff must be positive (Å), got {cutoff_A!r}")
    xp = namespace_of(r_A)
    return xp.where(r_A < cutoff_A, 0.5 * (1.0 + xp.cos(np.pi * r_A / cutoff_A)), 0.0)


def radial_centres(cutoff_A: float, n_radial: int) -> tuple[np.ndarray, float]:
    """Centres ``μ_n = n r_c / N`` (Å) and common width ``σ = r_c / N`` (Å) of the Gaussians."""
    if n_radial < 1:
        raise ValueError(f"n_radial must be >= 1, got {n_radial!r}")
    width = cutoff_A / n_radial
    return np.arange(n_radial) * width, width


def radial_basis(r_A, cutoff_A: float, n_radial: int):
    """Radial functions ``R_n(r) = exp(−(r − μ_n)²/(2σ²)) f_c(r)`` (see the module docstring).

    Parameters
    ----------
    r_A : (n_pairs,) float array, Å
    cutoff_A : float
        Cutoff radius in Å.
    n_radial : int
        Number of functions ``N`` (>= 1).

    Returns
    -------
    (n_pairs, n_radial) float array, dimensionless.
    """
    xp = namespace_of(r_A)
    centres, width = radial_centres(cutoff_A, n_radial)
    centres = xp.asarray(centres, dtype=r_A.dtype)
    gauss = xp.exp(-((r_A[:, None] - centres[None, :]) ** 2) / (2.0 * width**2))
    return gauss * cosine_cutoff(r_A, cutoff_A)[:, None]
