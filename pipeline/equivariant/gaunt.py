"""Real Gaunt coefficients G(l1m1, l2m2, l3m3) = ∫ Y_l1m1 Y_l2m2 Y_l3m3 dΩ (integral-normalised SH).

Tables are computed by exact quadrature of :func:`spherical_harmonics` on the minimal
Gauss–Legendre × equispaced grid (exact for l1 + l2 + l3 ≤ D), independently of the
Clebsch–Gordan code. They satisfy (tested)

    G = √((2l1+1)(2l2+1)(2l3+1)/4π) · |(l1 l2 l3; 0 0 0)| · w3j(l1, l2, l3)

for l1 + l2 + l3 even and G = 0 for odd sums (parity). Values (SymPy 1.14 ``real_gaunt``):
G(00,00,00) = 0.282094791774, G(10,10,20) = 0.252313252202.
"""

from __future__ import annotations

import functools
import logging
import math

import numpy as np

from pipeline.equivariant.clebsch_gordan import triangle_ok
from pipeline.equivariant.s2grid import gauss_legendre_grid, grid_points, minimal_grid
from pipeline.equivariant.spherical_harmonics import spherical_harmonics

log = logging.getLogger(__name__)


def three_j_zero(l1: int, l2: int, l3: int) -> float:
    """(l1 l2 l3; 0 0 0) in closed form: 0 for odd l1+l2+l3, else
    (−1)^g √((J−2l1)!(J−2l2)!(J−2l3)!/(J+1)!) · g!/((g−l1)!(g−l2)!(g−l3)!), J = 2g."""
    big_j = l1 + l2 + l3
    if big_j % 2 or not triangle_ok(l1, l2, l3):
        return 0.0
    g = big_j // 2
    f = math.factorial
    ratio = f(big_j - 2 * l1) * f(big_j - 2 * l2) * f(big_j - 2 * l3) / f(big_j + 1)
    return (-1) ** g * math.sqrt(ratio) * f(g) / (f(g - l1) * f(g - l2) * f(g - l3))


def gaunt_path_factor(l1: int, l2: int, l3: int) -> float:
    """√((2l1+1)(2l2+1)(2l3+1)/4π) · |(l1 l2 l3; 0 0 0)|: ratio G / w3j on an even path."""
    return math.sqrt((2 * l1 + 1) * (2 * l2 + 1) * (2 * l3 + 1) / (4.0 * math.pi)) * abs(three_j_zero(l1, l2, l3))


@functools.lru_cache(maxsize=None)
def _gaunt_cached(l1: int, l2: int, l3: int) -> np.ndarray:
    shape = (2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1)
    if (l1 + l2 + l3) % 2 or not triangle_ok(l1, l2, l3):
        out = np.zeros(shape)
    else:
        n_rings, n_azimuth = minimal_grid(l1 + l2 + l3)
        _, w, _ = gauss_legendre_grid(n_rings, n_azimuth)
        pts = grid_points(n_rings, n_azimuth).reshape(-1, 3)
        weights = np.broadcast_to(w * (2.0 * np.pi / n_azimuth), (n_azimuth, n_rings)).reshape(-1)
        y = spherical_harmonics(max(l1, l2, l3), pts, normalize=False)
        y1, y2, y3 = (y[:, l * l : (l + 1) ** 2] for l in (l1, l2, l3))
        out = np.einsum("p,pa,pb,pc->abc", weights, y1, y2, y3, optimize=True)
        out[np.abs(out) < 1e-15] = 0.0
    out.setflags(write=False)
    return out


def gaunt_table(l1: int, l2: int, l3: int) -> np.ndarray:
    """Real Gaunt tensor for one path.

    Returns
    -------
    (2l1+1, 2l2+1, 2l3+1) float64 read-only array; zeros when l1+l2+l3 is odd or the
    triangle rule fails.
    """
    for l in (l1, l2, l3):
        if int(l) != l or l < 0:
            raise ValueError(f"degrees must be non-negative integers, got {(l1, l2, l3)}")
    return _gaunt_cached(int(l1), int(l2), int(l3))


def gaunt_dense(lmax1: int, lmax2: int, lmax_out: int) -> np.ndarray:
    """Dense Gaunt tensor between flat SH vectors (the explicit reference contraction).

    Returns
    -------
    ((L1+1)², (L2+1)², (Lout+1)²) float64 array; out = einsum("...i,...j,ijk->...k", x, y, G).
    """
    g = np.zeros(((lmax1 + 1) ** 2, (lmax2 + 1) ** 2, (lmax_out + 1) ** 2))
    for l1 in range(lmax1 + 1):
        for l2 in range(lmax2 + 1):
            for l3 in range(abs(l1 - l2), min(l1 + l2, lmax_out) + 1, 2):
                g[l1 * l1 : (l1 + 1) ** 2, l2 * l2 : (l2 + 1) ** 2, l3 * l3 : (l3 + 1) ** 2] = gaunt_table(l1, l2, l3)
    return g
