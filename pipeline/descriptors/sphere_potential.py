"""Long-range potential of a Chebyshev–Tucker potential on the sphere grids, ring by ring.

The projection grid of :mod:`pipeline.descriptors.projection` has its rings at constant
``y`` (the polar axis is +y): on ring j of the sphere around atom i every point shares
``y = y_i + ρ cos β_j``. The Tucker form Φ_L(x, y, z) = Σ_abc G_abc e1_a(x) e2_b(y) e3_c(z)
(e_k = T(ξ_k) U_k, Chebyshev polynomials times the Tucker factor of axis k) is therefore
contracted with e2 once per ring, M_ij = Σ_b G_·b· e2_b(y_ij), an (r1, r3) matrix, and then
evaluated at each azimuth as e1ᵀ M_ij e3. That costs n_rings·r1·r2·r3 + n_points·r1·r3 per
atom instead of n_points·r1·r2·r3 for independent points (n_azimuth times fewer operations),
with the same values up to rounding.

The projection onto Y_lm (:meth:`TuckerSphereEvaluator.sphere_projection`) goes further and
never forms the grid values: e1 and e3 are replaced around each atom by their local Chebyshev
interpolants (values at ≈ 20 local nodes instead of the m-term global series, the neglected
part at round-off), and the quadrature of the products of the interpolants' Lagrange
polynomials on each ring is a fixed table, so per atom only the ring contraction, two small
matrix products and one product with the table remain (at ranks ≈ 25, 11 rings and 19 local
nodes: 165k, 125k, 95k and 36k multiply-adds). A chunk of centres is one compiled call that
holds no GIL (:mod:`pipeline.descriptors.sphere_kernels`); its temporaries live in per-thread
workspaces: with fresh arrays for them the descriptors process spent 0.5-1.9 s of system time
in page faults at 10^5 atoms, now 0.04 s.

:class:`TuckerSphereEvaluator` is a callable (points → Φ_L, through
:meth:`ChebyshevTuckerPotential.long_range`) that also offers :meth:`sphere_values` and
:meth:`sphere_projection`, which :func:`pipeline.descriptors.projection.potential_expansion`
uses when present.
"""

from __future__ import annotations

import numpy as np

from pipeline.backend import to_host
from pipeline.electrostatics.chebyshev import (
    cheb_nodes1,
    chebvander,
    to_reference,
    values_to_coefficients_matrix,
)
from pipeline.descriptors.sphere_kernels import project_chunk, projection_scratch_size
from pipeline.equivariant.chunk_threads import run_chunks, worker_threads
from pipeline.equivariant.ring_transform import Workspace

#: Bytes of the per-batch (rings × r1·r3) intermediate.
BATCH_BYTES = 64 * 2**20
#: Sphere centres per chunk of :meth:`TuckerSphereEvaluator.sphere_projection` (chunks run on
#: threads; their factor values are evaluated together).
PROJECTION_BATCH = 256
#: Sphere centres per ring contraction of :meth:`TuckerSphereEvaluator.sphere_projection`: the
#: (16·n_rings, r1·r3) intermediate, 0.8 MB at 11 rings and ranks 25, stays in a core's L2
#: cache (8 to 64 centres measured within 3 % of each other on one thread at 10^5 atoms).
RING_BATCH = 16
#: Largest neglected coefficient of a factor's local Chebyshev expansion on a sphere's
#: interval, relative to the factor's largest value (:meth:`TuckerSphereEvaluator.local_degree`);
#: raised to 2·m·ε where the round-off of coefficients computed from m values is larger. The
#: bound is loose: on the 10⁵-atom cloud (ρ = 2 Å) 1e-14, 1e-12 and 1e-11 keep 19, 17 and 16
#: nodes and all leave 3e-15 against pointwise quadrature, well under the band limit's 1e-13;
#: 1e-12 takes 7 % less time than 1e-14.
LOCAL_TOLERANCE = 1e-12
#: Sphere centres sampled along an axis when choosing the local degree.
LOCAL_SAMPLES = 65


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

    def local_degree(self, axis: int, lo_A: float, hi_A: float, radius_A: float) -> int:
        """Nodes of the local Chebyshev interpolant of factor ``axis`` on [c − ρ, c + ρ], lo ≤ c ≤ hi.

        The factor's columns are polynomials of degree m − 1; re-expanded on an interval of
        half-width ρ around c they have local Chebyshev coefficients that decay quickly. For
        :data:`LOCAL_SAMPLES` centres c spread over [lo, hi] the exact local coefficients (m
        nodes) are computed, and the result is the smallest n such that every |c_k|, k ≥ n, is
        at most :data:`LOCAL_TOLERANCE` × the largest factor value, for every column and sampled
        centre (never more than m, where the interpolant is exact).
        """
        factor = self.factors[axis]
        m = factor.shape[0]
        half = 0.5 * (self.box_hi[axis] - self.box_lo[axis])
        delta = radius_A / half
        xi = to_reference(np.linspace(lo_A, hi_A, LOCAL_SAMPLES), self.box_lo[axis], self.box_hi[axis])
        xi = np.clip(xi, -1.0 + delta, 1.0 - delta)
        points = (xi[:, None] + delta * cheb_nodes1(m)[None, :]).reshape(-1)
        values = (chebvander(points, m) @ factor).reshape(xi.size, m, -1)
        coef = np.abs(np.matmul(values_to_coefficients_matrix(m), values))  # (samples, m, r)
        tail = np.maximum.accumulate(coef.max(axis=(0, 2))[::-1])[::-1]  # tail[n] = max_{k≥n} |c_k|
        limit = max(LOCAL_TOLERANCE, 2.0 * m * np.finfo(np.float64).eps) * np.abs(values).max()
        small = np.nonzero(tail <= limit)[0]
        return int(max(small[0], 2)) if small.size else m

    def sphere_projection(
        self,
        centres_A: np.ndarray,
        radius_A: float,
        cos_beta: np.ndarray,
        alpha: np.ndarray,
        projector: np.ndarray,
        *,
        threads: int | None = None,
    ) -> np.ndarray:
        """Σ_g P_g,o Φ_L(x_i + ρ n̂_g): the grid values of :meth:`sphere_values` times ``projector``.

        The same sum without the grid values. On ring j of atom i the potential is
        e1(x)ᵀ M_ij e3(z) with M_ij the ring contraction of the module docstring; the factors
        e1 and e3 are replaced by their local Chebyshev interpolants on [x_i − ρ, x_i + ρ] and
        [z_i − ρ, z_i + ρ], given by their values F1_i, F3_i at the :meth:`local_degree` nodes
        (neglected part below :data:`LOCAL_TOLERANCE`). In the local variables
        u = sin β_j sin α_k and w = sin β_j cos α_k the grid sum becomes
        Σ_j Σ_pr (F1_i M_ij F3_iᵀ)_pr Q_jpr,o with the fixed table
        Q_jpr,o = Σ_k P_jk,o ℓ_p(u_jk) ℓ_r(w_jk) (ℓ: Lagrange polynomials of the nodes), so no
        per-point work remains. Centres are taken :data:`RING_BATCH` at a time for the ring
        contraction, in chunks of :data:`PROJECTION_BATCH` on threads.

        Parameters
        ----------
        centres_A : (B, 3) float64, Å
        radius_A : float, Å
        cos_beta : (n_rings,) ring polar cosines
        alpha : (n_azimuth,) azimuths, radians
        projector : (n_rings·n_azimuth, n_out) float64
            Weights per grid point (ring-major), e.g. quadrature weight × Y_lm.
        threads : int, optional
            Threads working on batches of centres (default: the BLAS thread limit, see
            :mod:`pipeline.equivariant.chunk_threads`); the result does not depend on it.

        Returns
        -------
        (B, n_out) float64
        """
        centres_A = np.asarray(centres_A, dtype=np.float64).reshape(-1, 3)
        self._check_inside(centres_A, radius_A)
        t = np.asarray(cos_beta, dtype=np.float64)
        s = np.sqrt(np.maximum(1.0 - t * t, 0.0))
        n_rings, n_azimuth, n_centres = t.size, len(alpha), centres_A.shape[0]
        projector = np.asarray(projector, dtype=np.float64).reshape(n_rings, n_azimuth, -1)
        n_out = projector.shape[-1]
        out = np.empty((n_centres, n_out))
        if n_centres == 0:
            return out
        n1, n3 = (self.local_degree(k, centres_A[:, k].min(), centres_A[:, k].max(), radius_A) for k in (0, 2))
        u = (s[:, None] * np.sin(alpha)[None, :]).reshape(-1)
        w = (s[:, None] * np.cos(alpha)[None, :]).reshape(-1)
        # Σ_p T_p(u) D_pq: the local interpolant's weight of the value at node q, evaluated at u
        t1 = (chebvander(u, n1) @ values_to_coefficients_matrix(n1)).reshape(n_rings, n_azimuth, n1)
        t3 = (chebvander(w, n3) @ values_to_coefficients_matrix(n3)).reshape(n_rings, n_azimuth, n3)
        table = np.einsum("jko,jkp,jkr->pjro", projector, t1, t3).reshape(n1 * n_rings * n3, n_out)
        nodes1, nodes3 = radius_A * cheb_nodes1(n1), radius_A * cheb_nodes1(n3)
        offsets2 = radius_A * t
        factors = tuple(np.ascontiguousarray(f) for f in self.factors)
        scratch_size = projection_scratch_size(min(PROJECTION_BATCH, n_centres), max(f.shape[0] for f in factors),
                                               self.core.shape, n1, n3, n_rings, RING_BATCH)

        def body(rows: slice, ws: Workspace) -> None:
            project_chunk(centres_A[rows], factors, self.box_lo, self.box_hi, nodes1, nodes3, offsets2, self._core_y,
                          table, RING_BATCH, ws.get("sphere_projection", (scratch_size,)), out[rows])

        # a few centres (the band-limit sample, validation) still spread over the threads, and
        # every chunk runs its many small GEMMs on one BLAS thread
        share = -(-n_centres // worker_threads(threads, np))
        step = min(PROJECTION_BATCH, -(-share // RING_BATCH) * RING_BATCH)
        run_chunks(n_centres, step, body, xp=np, dtype=np.float64, threads=threads, align=RING_BATCH)
        return out

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
        r1, _, r3 = self.core.shape
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


class PeriodicSphereEvaluator:
    """Long-range potential Φ_L (e/Å) of a periodic Chebyshev–Tucker potential at any points.

    The Tucker form of a periodic potential is stored over fractional coordinates, so the ring
    contraction of :class:`TuckerSphereEvaluator` does not apply; points (wrapped into the cell
    by the potential) are evaluated directly.
    """

    def __init__(self, potential) -> None:
        self.potential = potential

    def __call__(self, points_A: np.ndarray) -> np.ndarray:
        """Φ_L at ``points_A`` (M, 3) Å, (M,) e/Å."""
        return np.asarray(to_host(self.potential.long_range(points_A)), dtype=np.float64)


def sphere_evaluator(potential):
    """The long-range evaluator of the descriptors for ``potential`` (periodic or free space)."""
    return PeriodicSphereEvaluator(potential) if getattr(potential, "periodic", False) else TuckerSphereEvaluator(potential)
