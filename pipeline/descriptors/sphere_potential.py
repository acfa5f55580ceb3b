"""Long-range potential of a Chebyshev–Tucker potential on the sphere grids, ring by ring.

The projection grid of :mod:`pipeline.descriptors.projection` has its rings at constant
``y`` (the polar axis is +y): on ring j of the sphere around atom i every point shares
``y = y_i + ρ cos β_j``. The Tucker form Φ_L(x, y, z) = Σ_abc G_abc e1_a(x) e2_b(y) e3_c(z)
(e_k = T(ξ_k) U_k, Chebyshev polynomials times the Tucker factor of axis k) is therefore
contracted with e2 once per ring, M_ij = Σ_b G_·b· e2_b(y_ij), an (r1, r3) matrix, and then
evaluated at each azimuth as e1ᵀ M_ij e3. That costs n_rings·r1·r2·r3 + n_points·r1·r3 per
atom instead of n_points·r1·r2·r3 for independent points (n_azimuth times fewer operations),
with the same values up to rounding.

:class:`TuckerSphereEvaluator` is a callable (points → Φ_L, through
:meth:`ChebyshevTuckerPotential.long_range`) that also offers :meth:`sphere_values`, which
:func:`pipeline.descriptors.projection.potential_expansion` uses when present.
"""

from __future__ import annotations

import numpy as np

from pipeline.backend import to_host
from pipeline.electrostatics.chebyshev import chebvander, to_reference

#: Bytes of the per-batch (rings × r1·r3) intermediate.
BATCH_BYTES = 64 * 2**20


class TuckerSphereEvaluator:
    """Long-range potential Φ_L (e/Å) of a Chebyshev–Tucker potential, at points or on sphere grids.

    Parameters
    ----------
    potential : ChebyshevTuckerPotential
        Any object with ``long_range(points)``, ``core (r1, r2, r3)``, ``factors`` (three
        (m_k, r_k) arrays, Chebyshev coefficients low to high per column), ``box_lo`` and
        ``box_hi`` (Å). Arrays are copied to the host.
    """

    def __init__(self, potential) -> None:
        self.potential = potential
        self.core = np.asarray(to_host(potential.core), dtype=np.float64)
        self.factors = [np.asarray(to_host(f), dtype=np.float64) for f in potential.factors]
        self.box_lo = np.asarray(potential.box_lo, dtype=np.float64)
        self.box_hi = np.asarray(potential.box_hi, dtype=np.float64)
        r1, r2, r3 = self.core.shape
        # core as (r2, r1·r3) for the ring contraction
        self._core_y = np.ascontiguousarray(self.core.transpose(1, 0, 2).reshape(r2, r1 * r3))

    def __call__(self, points_A: np.ndarray) -> np.ndarray:
        """Φ_L at ``points_A`` (M, 3) Å, (M,) e/Å."""
        return np.asarray(to_host(self.potential.long_range(points_A)), dtype=np.float64)

    def _axis(self, coords: np.ndarray, axis: int) -> np.ndarray:
        """e_k = T(ξ) U_k at ``coords`` (n,) Å, shape (n, r_k)."""
        factor = self.factors[axis]
        xi = to_reference(coords, self.box_lo[axis], self.box_hi[axis])
        return chebvander(xi, factor.shape[0]) @ factor

    def _check_inside(self, centres_A: np.ndarray, radius_A: float) -> None:
        lo = centres_A.min(axis=0) - radius_A
        hi = centres_A.max(axis=0) + radius_A
        if np.any(lo < self.box_lo - 1e-9) or np.any(hi > self.box_hi + 1e-9):
            raise ValueError(
                f"spheres of radius {radius_A:g} Å around the centres span {lo.tolist()}..{hi.tolist()} Å, outside the "
                f"Chebyshev box {self.box_lo.tolist()}..{self.box_hi.tolist()} Å of the potential"
            )

    def sphere_values(self, centres_A: np.ndarray, radius_A: float, cos_beta: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """Φ_L at x_i + ρ n̂(β_j, α_k), n̂ = (sin β sin α, cos β, sin β cos α).

        Parameters
        ----------
        centres_A : (B, 3) float64, Å
        radius_A : float, Å
        cos_beta : (n_rings,) ring polar cosines
        alpha : (n_azimuth,) azimuths, radians

        Returns
        -------
        (B, n_rings, n_azimuth) float64, e/Å
        """
        centres_A = np.asarray(centres_A, dtype=np.float64).reshape(-1, 3)
        self._check_inside(centres_A, radius_A)
        r1, r2, r3 = self.core.shape
        t = np.asarray(cos_beta, dtype=np.float64)
        s = np.sqrt(np.maximum(1.0 - t * t, 0.0))
        n_rings, n_azimuth, n_centres = t.size, len(alpha), centres_A.shape[0]
        sin_a, cos_a = np.sin(alpha), np.cos(alpha)
        out = np.empty((n_centres, n_rings, n_azimuth))
        step = max(1, BATCH_BYTES // (8 * n_rings * max(r1 * r3, n_azimuth * (r1 + r3))))
        for lo in range(0, n_centres, step):
            c = centres_A[lo : lo + step]
            b = c.shape[0]
            e2 = self._axis((c[:, 1, None] + radius_A * t[None, :]).reshape(-1), 1)  # (b·n_rings, r2)
            ring = (e2 @ self._core_y).reshape(b * n_rings, r1, r3)
            x = c[:, 0, None, None] + radius_A * s[None, :, None] * sin_a[None, None, :]  # (b, n_rings, n_azimuth)
            z = c[:, 2, None, None] + radius_A * s[None, :, None] * cos_a[None, None, :]
            e1 = self._axis(x.reshape(-1), 0).reshape(b * n_rings, n_azimuth, r1)
            e3 = self._axis(z.reshape(-1), 2).reshape(b * n_rings, n_azimuth, r3)
            values = np.einsum("gkc,gkc->gk", np.matmul(e1, ring), e3)  # (b·n_rings, n_azimuth)
            out[lo : lo + b] = values.reshape(b, n_rings, n_azimuth)
        return out
