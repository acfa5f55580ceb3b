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

Array layout (every GEMM contiguous, no transposes): coefficients ``(B, n_coeff)`` are
permuted once into m-slot order; ring values ``(2L+1, B, n_rings)``; grid values
``(n_azimuth, B·n_rings)``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

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


class S2Grid:
    """Tables for separable synthesis/analysis of degree ≤ ``lmax`` on one grid.

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
        Also build ∂/∂β and (1/sin β) ∂/∂α tables (for the vector Gaunt product).
    """

    def __init__(self, lmax: int, n_rings: int, n_azimuth: int, *, xp: Any, dtype: Any, derivatives: bool = False):
        self.lmax, self.n_rings, self.n_azimuth, self.xp, self.dtype = lmax, n_rings, n_azimuth, xp, np.dtype(dtype)
        t, w, alpha = gauss_legendre_grid(n_rings, n_azimuth)
        s = np.sqrt(1.0 - t * t)
        leg = legendre_table(lmax, t, s)  # [m, l, j]
        mu = np.arange(lmax + 1)
        # azimuth table, slot 0: 1, slot 2μ−1: cos μα, slot 2μ: sin μα  -> (n_azimuth, 2L+1)
        trig = np.empty((n_azimuth, 2 * lmax + 1))
        trig[:, 0] = 1.0
        trig[:, 1::2] = np.cos(np.outer(alpha, mu[1:]))
        trig[:, 2::2] = np.sin(np.outer(alpha, mu[1:]))
        dtrig = np.zeros_like(trig)  # ∂/∂α of each slot
        dtrig[:, 1::2] = -mu[1:] * np.sin(np.outer(alpha, mu[1:]))
        dtrig[:, 2::2] = mu[1:] * np.cos(np.outer(alpha, mu[1:]))
        cast = lambda a: xp.asarray(np.ascontiguousarray(a), dtype=self.dtype)  # noqa: E731
        self.trig = cast(trig)
        self.trig_analysis = cast(trig.T * (2.0 * np.pi / n_azimuth))
        self.leg = [cast(leg[m, m:].T) for m in range(lmax + 1)]  # (n_rings, L−m+1)
        self.leg_analysis = [cast(leg[m, m:] * w[None, :]) for m in range(lmax + 1)]  # (L−m+1, n_rings)
        if derivatives:
            dleg = legendre_dbeta_table(lmax, t, s)
            self.dtrig = cast(dtrig)
            self.leg_dbeta = [cast(dleg[m, m:].T) for m in range(lmax + 1)]
            self.leg_over_sin = [cast(leg[m, m:].T / s[:, None]) for m in range(lmax + 1)]
        self._slots = {l: slot_order(l, xp) for l in range(lmax + 1)}

    def _slot_order(self, lmax: int) -> tuple[Any, Any, list[tuple[int, int, int]]]:
        return self._slots[lmax]

    def synthesize(self, coeffs: Any, lmax: int, kind: str = "value") -> Any:
        """Grid values of f = Σ c_lm Y_lm (or a derivative of f).

        Parameters
        ----------
        coeffs : (B, (lmax+1)²) array, batch first
        lmax : int, ≤ self.lmax
        kind : {"value", "dbeta", "dalpha_over_sin"}
            f, ∂f/∂β, or (1/sin β) ∂f/∂α (the two components of the surface gradient).

        Returns
        -------
        (n_azimuth, B·n_rings) array (values at azimuth k, item b, ring j at [k, b·n_rings + j])
        """
        xp = self.xp
        leg = {"value": self.leg, "dbeta": getattr(self, "leg_dbeta", None), "dalpha_over_sin": getattr(self, "leg_over_sin", None)}[kind]
        trig = self.dtrig if kind == "dalpha_over_sin" else self.trig
        order, _, ranges = self._slot_order(lmax)
        c = coeffs[:, order]
        nslot = 2 * lmax + 1
        rings = xp.empty((nslot, c.shape[0], self.n_rings), dtype=c.dtype)
        for slot, a, b in ranges:
            m = (slot + 1) // 2
            xp.matmul(c[:, a:b], leg[m][:, : b - a].T, out=rings[slot])
        return trig[:, :nslot] @ rings.reshape(nslot, -1)

    def analyze(self, values: Any, lmax: int) -> Any:
        """Quadrature coefficients c_lm = ∫ f Y_lm dΩ of grid values (n_azimuth, B·n_rings),
        returned as (B, (lmax+1)²)."""
        xp = self.xp
        nslot = 2 * lmax + 1
        rings = (self.trig_analysis[:nslot] @ values).reshape(nslot, -1, self.n_rings)
        order, inverse, ranges = self._slot_order(lmax)
        out = xp.empty((rings.shape[1], len(order)), dtype=values.dtype)
        for slot, a, b in ranges:
            m = (slot + 1) // 2
            out[:, a:b] = rings[slot] @ self.leg_analysis[m][: b - a].T
        return out[:, inverse]


def slot_order(lmax: int, xp: Any) -> tuple[Any, Any, list[tuple[int, int, int]]]:
    """Permutation of flat SH indices into m-slot order (m = 0, +1, −1, +2, −2, …; l ascending
    within a slot), its inverse, and the (slot, start, stop) column range of every slot."""
    order, ranges, start = [], [], 0
    for m in range(lmax + 1):
        for k, row in enumerate(_cos_sin_index(lmax, m)):
            order.extend(row.tolist())
            ranges.append((0 if m == 0 else 2 * m - 1 + k, start, start + len(row)))
            start += len(row)
    order = np.array(order)
    return xp.asarray(order), xp.asarray(np.argsort(order)), ranges


def _cos_sin_index(lmax: int, m: int) -> np.ndarray:
    """Flat indices of (l, +m) and (l, −m) for l = m..lmax, shape (2, lmax−m+1) ((1, ·) for m = 0)."""
    ls = np.arange(m, lmax + 1)
    if m == 0:
        return (ls * ls + ls)[None, :]
    return np.stack([ls * ls + ls + m, ls * ls + ls - m])
