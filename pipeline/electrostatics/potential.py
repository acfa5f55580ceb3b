"""The range-separated potential object: Chebyshev–Tucker long range + exact short range.

Φ(y) = Σ_{0<|y−x_j|<r_c} q_j φ_S(|y − x_j|) + Φ_L(y) − Σ_{x_j = y} q_j φ_L(0),
Φ_L(y) = Σ_abc G_abc (T(ξ₁)U₁)_a (T(ξ₂)U₂)_b (T(ξ₃)U₃)_c, ξ_k the coordinate y_k mapped to
[−1, 1] over the box. At an atom site the atom itself is left out (its short-range pair is
skipped and its self term q_j φ_L(0) removed), which is the potential that enters
E = ½ Σ q_j Φ(x_j). Units: Å, e, potential e/Å, field e/Å².
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from pipeline.backend import namespace_of, to_host
from pipeline.electrostatics.chebyshev import chebvander, derivative_matrix, to_reference
from pipeline.electrostatics.short_range import short_range_sum

log = logging.getLogger(__name__)

#: Points per block when contracting the Tucker core (bounds the (block, r2·r3) temporary).
EVAL_BLOCK = 8192


def _check_inside(points, lo, hi, what: str) -> None:
    pts = to_host(points)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"{what} must have shape (n, 3), got {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise ValueError(f"{what} contain NaN or infinite coordinates")
    if pts.shape[0] == 0:
        return
    below = pts < np.asarray(lo) - 1e-9
    above = pts > np.asarray(hi) + 1e-9
    if below.any() or above.any():
        bad = int(np.nonzero((below | above).any(axis=1))[0][0])
        raise ValueError(
            f"{what}: point {bad} at {pts[bad].tolist()} Å lies outside the Chebyshev box "
            f"lo={list(lo)} hi={list(hi)} Å; rebuild the potential with a larger box or padding"
        )


@dataclass
class ChebyshevTuckerPotential:
    """Long range in Chebyshev–Tucker form plus what the short range needs.

    Attributes
    ----------
    box_lo, box_hi : (3,) float, Å
    core : (r1, r2, r3) array (NumPy or CuPy), e/Å
    factors : list of three (m_k, r_k) arrays
        Columns are Chebyshev coefficient vectors (low to high) along axis k.
    split : EwaldSplit or GaussianSumSplit
    cutoff : float
        Short-range cutoff r_c, Å.
    positions : (n_atoms, 3) array, Å
    charges : (n_atoms,) array, e
    params : dict
        Build parameters (tolerance, degree, ranks, ...), stored with the potential.
    """

    box_lo: tuple
    box_hi: tuple
    core: object
    factors: list
    split: object
    cutoff: float
    positions: object
    charges: object
    params: dict = field(default_factory=dict)

    @property
    def xp(self):
        return namespace_of(self.core)

    @property
    def degree(self) -> tuple:
        return tuple(int(f.shape[0]) for f in self.factors)

    @property
    def ranks(self) -> tuple:
        return tuple(int(r) for r in self.core.shape)

    @property
    def storage_bytes(self) -> int:
        """Bytes of the compressed long range (core + factors, float64) plus box/parameters (~100 B)."""
        return int(8 * (self.core.size + sum(f.size for f in self.factors)) + 8 * 6)

    # -- long range -----------------------------------------------------------------------
    def _axis_matrix(self, coords, axis: int, factor):
        xi = to_reference(coords, self.box_lo[axis], self.box_hi[axis])
        return chebvander(xi, factor.shape[0]) @ factor

    def _contract(self, e1, e2, e3):
        xp = self.xp
        r1, r2, r3 = self.core.shape
        core = self.core.reshape(r1, r2 * r3)
        out = xp.empty(e1.shape[0])
        for s in range(0, e1.shape[0], EVAL_BLOCK):
            y = (e1[s : s + EVAL_BLOCK] @ core).reshape(-1, r2, r3)
            z = (e2[s : s + EVAL_BLOCK, None, :] @ y)[:, 0, :]
            out[s : s + EVAL_BLOCK] = xp.sum(z * e3[s : s + EVAL_BLOCK], axis=1)
        return out

    def long_range(self, points):
        """Φ_L at ``points`` (n, 3) Å, including every atom's self term, (n,) e/Å."""
        xp = self.xp
        points = xp.asarray(points, dtype=xp.float64)
        _check_inside(points, self.box_lo, self.box_hi, "targets")
        e = [self._axis_matrix(points[:, k], k, self.factors[k]) for k in range(3)]
        return self._contract(*e)

    def _derivative_factors(self):
        xp = self.xp
        out = []
        for k, f in enumerate(self.factors):
            scale = 2.0 / (self.box_hi[k] - self.box_lo[k])
            out.append(derivative_matrix(f.shape[0], xp=xp) @ f * scale)
        return out

    def long_range_field(self, points):
        """E_L = −∇Φ_L at ``points``, (n, 3) e/Å² (Chebyshev differentiation per axis, same ranks)."""
        xp = self.xp
        points = xp.asarray(points, dtype=xp.float64)
        _check_inside(points, self.box_lo, self.box_hi, "targets")
        e = [self._axis_matrix(points[:, k], k, self.factors[k]) for k in range(3)]
        d = [self._axis_matrix(points[:, k], k, f) for k, f in enumerate(self._derivative_factors())]
        out = xp.empty((points.shape[0], 3))
        out[:, 0] = -self._contract(d[0], e[1], e[2])
        out[:, 1] = -self._contract(e[0], d[1], e[2])
        out[:, 2] = -self._contract(e[0], e[1], d[2])
        return out

    def long_range_grid(self, xs, ys, zs):
        """Φ_L on the tensor grid xs × ys × zs (1-D arrays, Å): three GEMMs, shape (nx, ny, nz)."""
        xp = self.xp
        axes = [xp.asarray(a, dtype=xp.float64).reshape(-1) for a in (xs, ys, zs)]
        for k, a in enumerate(axes):
            pts = xp.zeros((a.shape[0], 3)) + xp.asarray(self.box_lo)[None, :]
            pts[:, k] = a
            _check_inside(pts, self.box_lo, self.box_hi, "grid coordinates")
        e = [self._axis_matrix(a, k, self.factors[k]) for k, a in enumerate(axes)]
        r1, r2, r3 = self.core.shape
        t = (e[0] @ self.core.reshape(r1, r2 * r3)).reshape(-1, r2, r3)  # (nx, r2, r3)
        t = xp.matmul(e[1][None, :, :], t)  # (nx, ny, r3)
        return t @ e[2].T  # (nx, ny, nz)

    # -- total ------------------------------------------------------------------------------
    def _short(self, points, field: bool):
        return short_range_sum(points, self.positions, self.charges, self.split, self.cutoff, field=field)

    def _coincident_charge(self, points):
        """Σ q_j over atoms located exactly at each point (0 for ordinary points)."""
        xp = self.xp
        from scipy.spatial import cKDTree

        pts = to_host(points)
        tree = cKDTree(to_host(self.positions))
        dist, idx = tree.query(pts, k=1)
        qh = to_host(self.charges)
        out = np.where(dist == 0.0, qh[np.minimum(idx, qh.size - 1)], 0.0)
        # several atoms on one site would be an invalid structure; the nearest one is used
        return xp.asarray(out)

    def potential(self, points, *, parts: bool = False):
        """Total Φ at ``points`` (n, 3) Å, (n,) e/Å; an atom at a point is left out.

        With ``parts=True`` returns ``(total, short, long)`` where ``long`` excludes the self term.
        """
        xp = self.xp
        points = xp.asarray(points, dtype=xp.float64)
        long = self.long_range(points) - self._coincident_charge(points) * self.split.long_at_zero()
        short = self._short(points, False)
        total = short + long
        return (total, short, long) if parts else total

    def at_atoms(self):
        """(total, short, long) at every atom (self excluded), each (n_atoms,) e/Å."""
        xp = self.xp
        long = self.long_range(self.positions) - self.charges * self.split.long_at_zero()
        short = self._short(self.positions, False)
        return short + long, short, long

    def field(self, points):
        """Electric field E = −∇Φ at ``points``, (n, 3) e/Å² (an atom at a point is left out)."""
        xp = self.xp
        points = xp.asarray(points, dtype=xp.float64)
        _, short_field = self._short(points, True)
        return self.long_range_field(points) + short_field

    def grid(self, xs, ys, zs, *, long_only: bool = False):
        """Φ on the tensor grid xs × ys × zs, shape (nx, ny, nz), e/Å."""
        xp = self.xp
        values = self.long_range_grid(xs, ys, zs)
        if long_only:
            return values
        gx, gy, gz = xp.meshgrid(xp.asarray(xs), xp.asarray(ys), xp.asarray(zs), indexing="ij")
        pts = xp.stack([gx.reshape(-1), gy.reshape(-1), gz.reshape(-1)], axis=1)
        del gx, gy, gz
        corr = self._short(pts, False) - self._coincident_charge(pts) * self.split.long_at_zero()
        return values + corr.reshape(values.shape)
