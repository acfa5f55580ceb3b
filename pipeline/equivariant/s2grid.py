"""Gauss–Legendre × equispaced grids on the sphere and separable SH transforms on them.

Grid: rings at the Gauss–Legendre nodes t_j = cos β_j (j < n_rings, weights w_j, Σ w_j = 2)
and n_azimuth equispaced azimuths α_k = 2πk/n_azimuth (α as in
:mod:`pipeline.equivariant.spherical_harmonics`: polar axis +y).

Synthesis of f = Σ c_lm Y_lm and analysis c_lm = Σ_jk (2π/n_azimuth) w_j f(β_j, α_k) Y_lm
are separable: one Legendre GEMM per |m| (cos and sin parts together) and one azimuthal
DFT GEMM, O(L³) per signal instead of the O(L⁴) of a dense (L+1)² × grid matrix.

Exactness: the quadrature integrates Y_l1 Y_l2 Y_l3 exactly for l1 + l2 + l3 ≤ D when
n_rings ≥ ⌊D/2⌋ + 1 (Gauss–Legendre is exact for degree ≤ 2 n_rings − 1 in cos β) and
n_azimuth ≥ D + 1 (no aliasing of frequencies ≤ D); :func:`minimal_grid` returns that size.

The transforms are :class:`~pipeline.equivariant.ring_transform.RingTransform` with the
Legendre tables below (layout batch last: coefficients ``(n_coeff, B)`` in slot order,
values folded in azimuth ``(2, n_azimuth//2 + 1, n_rings, B)``).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from pipeline.equivariant.ring_transform import RingTransform
from pipeline.equivariant.spherical_harmonics import legendre_table

log = logging.getLogger(__name__)


def minimal_grid(degree_sum: int) -> tuple[int, int]:
    """Smallest exact grid (n_rings, n_azimuth) = (⌊D/2⌋ + 1, D + 1) for D = L1 + L2 + Lout."""
    d = int(degree_sum)
    if d < 0:
        raise ValueError(f"degree sum must be >= 0, got {d}")
    return d // 2 + 1, d + 1


def gauss_legendre_grid(n_rings: int, n_azimuth: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes and weights of the product grid.

    Returns
    -------
    cos_beta : (n_rings,) float64, decreasing from near +1 (near the +y pole)
    weights : (n_rings,) float64, Gauss–Legendre weights in cos β (sum 2)
    alpha : (n_azimuth,) float64, radians
    """
    if n_rings < 1 or n_azimuth < 1:
        raise ValueError(f"grid needs n_rings >= 1 and n_azimuth >= 1, got {n_rings}, {n_azimuth}")
    t, w = np.polynomial.legendre.leggauss(n_rings)
    return t[::-1].copy(), w[::-1].copy(), 2.0 * np.pi * np.arange(n_azimuth) / n_azimuth


def grid_points(n_rings: int, n_azimuth: int) -> np.ndarray:
    """Unit vectors of the grid, shape (n_azimuth, n_rings, 3), in the values layout."""
    t, _, alpha = gauss_legendre_grid(n_rings, n_azimuth)
    s = np.sqrt(1.0 - t * t)
    return np.stack(
        [s[None, :] * np.sin(alpha)[:, None], np.broadcast_to(t, (n_azimuth, n_rings)), s[None, :] * np.cos(alpha)[:, None]],
        axis=-1,
    )


def legendre_dbeta_table(lmax: int, cos_beta: np.ndarray, sin_beta: np.ndarray) -> np.ndarray:
    """d/dβ of :func:`legendre_table` (same layout [m, l, point]).

    Uses dP̃_l^m/dβ = ½[√((l+m)(l−m+1)) P̃_l^{m−1} − √((l−m)(l+m+1)) P̃_l^{m+1}] (m ≥ 1) and
    dP̃_l^0/dβ = −√(l(l+1)) P̃_l^1 (no Condon–Shortley phase), corrected for the √2 of m > 0.
    """
    p = legendre_table(lmax + 1, cos_beta, sin_beta)[:, : lmax + 1]  # [m, l, j], m up to L+1
    p = p.copy()
    p[1:] /= math.sqrt(2.0)  # plain 4π-normalised P̃
    out = np.zeros((lmax + 1, lmax + 1, len(cos_beta)))
    ls = np.arange(lmax + 1)[:, None]
    out[0] = -np.sqrt(ls * (ls + 1.0)) * p[1]
    for m in range(1, lmax + 1):
        up = np.sqrt(np.maximum((ls + m) * (ls - m + 1.0), 0.0))
        down = np.sqrt(np.maximum((ls - m) * (ls + m + 1.0), 0.0))
        out[m] = math.sqrt(2.0) * 0.5 * (up * p[m - 1] - down * p[m + 1])
    for m in range(lmax + 1):
        out[m, :m] = 0.0
    return out


class S2Grid(RingTransform):
    """Separable transforms of degree ≤ ``lmax`` on a Gauss–Legendre × equispaced grid.

    β synthesis matrices S_m[j, l−m] = leg_lm(cos β_j) (kind ``"value"``), and with
    ``derivatives`` also ∂leg_lm/∂β (``"dbeta"``) and leg_lm / sin β (``"over_sin"``, paired
    with the ``"dalpha"`` azimuth table for (1/sin β) ∂f/∂α); analysis matrices
    A_m[l−m, j] = w_j leg_lm(cos β_j). See :class:`~pipeline.equivariant.ring_transform.RingTransform`
    for the layout (batch last, coefficients in slot order).

    Parameters
    ----------
    lmax : int
        Largest degree handled (inputs and outputs may use any L ≤ lmax).
    n_rings, n_azimuth : int
        Grid size (see :func:`minimal_grid`).
    xp : module
        Array module for the tables.
    dtype : numpy dtype
        float32 or float64.
    derivatives : bool
        Also build the ∂/∂β and 1/sin β tables (for the vector Gaunt product).
    """

    def __init__(self, lmax: int, n_rings: int, n_azimuth: int, *, xp: Any, dtype: Any, derivatives: bool = False):
        t, w, _ = gauss_legendre_grid(n_rings, n_azimuth)
        s = np.sqrt(1.0 - t * t)
        leg = legendre_table(lmax, t, s)  # [m, l, j]
        synthesis = {"value": [leg[m, m:].T for m in range(lmax + 1)]}
        if derivatives:
            dleg = legendre_dbeta_table(lmax, t, s)
            synthesis["dbeta"] = [dleg[m, m:].T for m in range(lmax + 1)]
            synthesis["over_sin"] = [leg[m, m:].T / s[:, None] for m in range(lmax + 1)]
        analysis = [leg[m, m:] * w[None, :] for m in range(lmax + 1)]
        super().__init__(lmax, n_azimuth, synthesis, analysis, xp=xp, dtype=dtype)
