"""Chebyshev interpolation on first-kind nodes, as dense matrices usable with NumPy or CuPy.

Conventions
-----------
* Nodes of the first kind, ordered as generated: ξ_j = cos(π(j + ½)/m), j = 0 … m−1
  (descending from near 1 to near −1).
* Coefficients are low to high: f(ξ) ≈ Σ_{n=0}^{m−1} c_n T_n(ξ).
* Values → coefficients is the DCT-II: c_n = (2 − δ_{n0})/m · Σ_j f(ξ_j) cos(πn(j + ½)/m),
  applied as a dense m×m matrix (CuPy's DCT lacks other types and m is small).
* A physical interval [lo, hi] maps to ξ = (2x − lo − hi)/(hi − lo).
"""

from __future__ import annotations

import numpy as np
from numpy.polynomial import chebyshev as npcheb

from pipeline.backend import namespace_of


def cheb_nodes1(m: int, *, xp=np):
    """First-kind Chebyshev nodes ξ_j = cos(π(j + ½)/m), shape (m,), in (−1, 1)."""
    j = xp.arange(m, dtype=xp.float64)
    return xp.cos(np.pi * (j + 0.5) / m)


def values_to_coefficients_matrix(m: int, *, xp=np):
    """(m, m) matrix D with c = D @ f for values f at :func:`cheb_nodes1` (DCT-II, see module Notes)."""
    n = np.arange(m)[:, None]
    j = np.arange(m)[None, :]
    mat = (2.0 / m) * np.cos(np.pi * n * (j + 0.5) / m)
    mat[0] *= 0.5
    return xp.asarray(mat)


def chebvander(xi, m: int, *, out=None):
    """Values T_n(ξ) for n = 0 … m−1, shape (len(ξ), m); ξ in [−1, 1] (three-term recurrence).

    The result is a transposed view of an (m, len(ξ)) array (Fortran order): ``out`` when
    given (a C-contiguous (m, len(ξ)) float64 array, reused instead of fresh memory).
    """
    xp = namespace_of(xi)
    xi = xp.asarray(xi, dtype=xp.float64).reshape(-1)
    if out is None:
        out = xp.empty((m, xi.shape[0]), dtype=xp.float64)  # rows are contiguous: the recurrence runs along them
    out[0] = 1.0
    if m > 1:
        out[1] = xi
    two_xi = 2.0 * xi
    for n in range(2, m):
        xp.multiply(two_xi, out[n - 1], out=out[n])
        out[n] -= out[n - 2]
    return out.T


def derivative_matrix(m: int, *, xp=np):
    """(m, m) matrix G with coefficients of df/dξ = G @ c (same length m, last row zero).

    Built column by column with :func:`numpy.polynomial.chebyshev.chebder`.
    """
    mat = np.zeros((m, m))
    for k in range(m):
        unit = np.zeros(m)
        unit[k] = 1.0
        der = npcheb.chebder(unit)
        mat[: der.size, k] = der
    return xp.asarray(mat)


def to_reference(x, lo: float, hi: float):
    """Map physical coordinates x in [lo, hi] (Å) to ξ in [−1, 1]."""
    return (2.0 * x - (lo + hi)) / (hi - lo)


def from_reference(xi, lo: float, hi: float):
    """Map ξ in [−1, 1] to physical coordinates in [lo, hi] (Å)."""
    return 0.5 * (hi + lo) + 0.5 * (hi - lo) * xi


def degree_for_gaussian(alpha: float, half_width: float, tolerance: float) -> int:
    """Nodes per axis for Gaussians exp(−α²x²) on an interval of half width ``half_width`` Å.

    Rule m ≈ 2a√ln(1/ε) with a = α·half_width, plus a margin of 6 nodes (checked by the
    tests against direct summation).
    """
    a = alpha * half_width
    return int(np.ceil(2.0 * a * np.sqrt(np.log(1.0 / tolerance)))) + 6
