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
from typing import TYPE_CHECKING

import numpy as np

from pipeline.backend import Array, backend_name, namespace_of, to_host
from pipeline.electrostatics.blas import single_blas_thread
from pipeline.electrostatics.chebyshev import chebvander, derivative_matrix, to_reference
from pipeline.electrostatics.mid_range import map_short_range, points_short_range
from pipeline.electrostatics.parameters import internal_tolerance
from pipeline.electrostatics.periodic import apply_matrix, fractional, periodic_sources
from pipeline.electrostatics.short_range import short_range_at_atoms, short_range_sum
from pipeline.electrostatics.short_range_grid import uniform_axis

if TYPE_CHECKING:
    from pipeline.electrostatics.splitting import Split

log = logging.getLogger(__name__)

#: Points per block when contracting the Tucker core (bounds the (block, r2·r3) temporary).
EVAL_BLOCK = 8192
#: Largest (atoms + images) / atoms for which the periodic short range at the atoms sums each
#: pair of the extended set once (half the pairs, but also those between images) rather than
#: the atoms' own neighbourhoods.
PAIR_ONCE_SKIN = 1.8


def check_inside(points, lo, hi, what: str) -> None:
    """``ValueError`` unless ``points`` (n, 3) are finite and inside the box [lo, hi] (Å)."""
    if points.ndim == 2 and points.shape[1] == 3 and points.shape[0] > 0:
        # device arrays: bring back the 6 extremes, not the points (NaN and ±inf show in them)
        xp = namespace_of(points)
        ext = to_host(xp.stack([points.min(axis=0), points.max(axis=0)]))
        if np.all(np.isfinite(ext)) and np.all(ext[0] >= np.asarray(lo) - 1e-9) and np.all(ext[1] <= np.asarray(hi) + 1e-9):
            return
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


def tucker_storage_bytes(core, factors) -> int:
    """Bytes of a Tucker form stored in float64 (core + factors) plus box/parameters (~50 B)."""
    return int(8 * (core.size + sum(f.size for f in factors)) + 8 * 6)


@dataclass(frozen=True)
class AtomLongRange:
    """Long range of one split at every atom, interpolated from the uniform grid of a build.

    Attributes
    ----------
    values : (n_atoms,) array, e/Å
        Φ_L at every atom, each atom's own self term included.
    split : EwaldSplit or GaussianSumSplit
        The split of ``values`` (the build's split, chosen for the atoms).
    cutoff : float
        Short-range cutoff of that split, Å.
    """

    values: Array
    split: Split
    cutoff: float


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
        Split of the stored long range (the Tucker form holds its φ_L).
    cutoff : float
        Short-range cutoff r_c of ``split``, Å.
    positions : (n_atoms, 3) array, Å
    charges : (n_atoms,) array, e
    params : dict
        Build parameters (tolerance, degree, ranks, ...), stored with the potential.
    atom_long : AtomLongRange, optional
        Long range at every atom from the build's uniform grid, with the split chosen for the
        atoms (which may differ from ``split`` when the stored form was shrunk to fit a storage
        limit); when absent, :meth:`at_atoms` evaluates the representation like any points.
        Not stored in files.
    dielectric : float
        Relative permittivity ε_r; the charges act as ``charges / dielectric`` (:attr:`sources`).
    cell : tuple of 3 tuples, optional
        Periodic cell vectors (rows, Å). Then ``box_lo``/``box_hi`` are the unit cube of
        fractional coordinates, every target is wrapped into the cell (a map of any region
        works) and the short range sums over the atoms' periodic images.
    temperature : float
        Temperature of the medium, K (its Debye length, and kT/e on output).
    """

    box_lo: tuple
    box_hi: tuple
    core: Array
    factors: list
    split: Split
    cutoff: float
    positions: Array
    charges: Array
    params: dict = field(default_factory=dict)
    atom_long: AtomLongRange | None = None
    dielectric: float = 1.0
    cell: tuple | None = None
    temperature: float = 298.15
    _images: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def periodic(self) -> bool:
        return self.cell is not None

    def extent(self) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi) in Å of the region a default map covers: the Chebyshev box, or the cell's bounding box."""
        if not self.periodic:
            return np.asarray(self.box_lo, dtype=float), np.asarray(self.box_hi, dtype=float)
        corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=float)
        corners = corners @ np.asarray(self.cell)
        return corners.min(axis=0), corners.max(axis=0)

    @property
    def sources(self):
        """Charges as the kernels see them, q_j/ε_r, (n_atoms,) e."""
        return self.charges if self.dielectric == 1.0 else self.charges / self.dielectric

    def periodic_sources(self, cutoff: float):
        """(positions, charges/ε_r) of the wrapped atoms and their images within ``cutoff`` (cached)."""
        key = float(cutoff)
        if key not in self._images:
            self._images.clear()
            self._images[key] = periodic_sources(self.positions, self.sources, self.cell, key)
        return self._images[key]

    def wrap(self, points):
        """Points wrapped into the periodic cell, (n, 3) Å (elementwise, so equal inputs wrap equally)."""
        return apply_matrix(self.reference_coordinates(points), np.asarray(self.cell))

    def reference_coordinates(self, points, *, check: bool = True):
        """Coordinates of ``points`` in the Chebyshev box: fractional and wrapped (periodic) or Å.

        ``check`` (default) raises unless the points are finite and, in free space, inside the
        box (:func:`check_inside`, one small host transfer); ``False`` is for callers that
        checked the points already.
        """
        if self.periodic:
            if check:
                check_inside(points, (-np.inf,) * 3, (np.inf,) * 3, "targets")
            return fractional(points, np.linalg.inv(np.asarray(self.cell)))
        if check:
            check_inside(points, self.box_lo, self.box_hi, "targets")
        return points

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
        """Bytes of the compressed long range (core + factors, float64) plus box/parameters."""
        return tucker_storage_bytes(self.core, self.factors)

    # -- long range -----------------------------------------------------------------------
    def _axis_matrix(self, coords, axis: int, factor):
        xi = to_reference(coords, self.box_lo[axis], self.box_hi[axis])
        return chebvander(xi, factor.shape[0]) @ factor

    def _contract(self, e1, e2, e3):
        """Σ_abc G_abc e1_pa e2_pb e3_pc for one block of points: (block,)."""
        xp = self.xp
        r1, r2, r3 = self.core.shape
        y = (e1 @ self.core.reshape(r1, r2 * r3)).reshape(-1, r2, r3)
        z = xp.einsum("pb,pbc->pc", e2, y)
        return xp.sum(z * e3, axis=1)

    def long_range(self, points, *, check: bool = True):
        """Φ_L at ``points`` (n, 3) Å, including every atom's self term, (n,) e/Å.

        Points are taken in blocks of :data:`EVAL_BLOCK`: per block three (block × m)(m × r_k)
        products and the core contraction, so memory stays at block · (m + r₂r₃).
        ``check=False`` skips the box check of :meth:`reference_coordinates` (for points
        checked before, such as sphere grids whose centres and radius were checked once).
        """
        xp = self.xp
        points = self.reference_coordinates(xp.asarray(points, dtype=xp.float64), check=check)
        out = xp.empty(points.shape[0])
        for s in range(0, points.shape[0], EVAL_BLOCK):
            block = points[s : s + EVAL_BLOCK]
            e = [self._axis_matrix(block[:, k], k, self.factors[k]) for k in range(3)]
            out[s : s + EVAL_BLOCK] = self._contract(*e)
        return out

    def _derivative_factors(self):
        xp = self.xp
        out = []
        for k, f in enumerate(self.factors):
            scale = 2.0 / (self.box_hi[k] - self.box_lo[k])
            out.append(derivative_matrix(f.shape[0], xp=xp) @ f * scale)
        return out

    def long_range_field(self, points):
        """E_L = −∇Φ_L at ``points``, (n, 3) e/Å² (Chebyshev differentiation per axis, same ranks).

        Periodic: the derivatives along the fractional axes u_k, turned into Cartesian ones by
        ∇_x = A⁻¹ ∇_u.
        """
        xp = self.xp
        points = self.reference_coordinates(xp.asarray(points, dtype=xp.float64))
        dfac = self._derivative_factors()
        out = xp.empty((points.shape[0], 3))
        for s in range(0, points.shape[0], EVAL_BLOCK):
            block = points[s : s + EVAL_BLOCK]
            e = [self._axis_matrix(block[:, k], k, self.factors[k]) for k in range(3)]
            d = [self._axis_matrix(block[:, k], k, f) for k, f in enumerate(dfac)]
            out[s : s + EVAL_BLOCK, 0] = -self._contract(d[0], e[1], e[2])
            out[s : s + EVAL_BLOCK, 1] = -self._contract(e[0], d[1], e[2])
            out[s : s + EVAL_BLOCK, 2] = -self._contract(e[0], e[1], d[2])
        if self.periodic:
            out = apply_matrix(out, np.linalg.inv(np.asarray(self.cell)).T)
        return out

    def long_range_grid(self, xs, ys, zs):
        """Φ_L on the tensor grid xs × ys × zs (1-D arrays, Å): three GEMMs, shape (nx, ny, nz)."""
        xp = self.xp
        axes = [xp.asarray(a, dtype=xp.float64).reshape(-1) for a in (xs, ys, zs)]
        if self.periodic:  # a Cartesian grid is not a tensor grid of fractional coordinates
            return self.long_range(_grid_points(axes, xp)).reshape(tuple(a.shape[0] for a in axes))
        for k, a in enumerate(axes):
            pts = xp.zeros((a.shape[0], 3)) + xp.asarray(self.box_lo)[None, :]
            pts[:, k] = a
            check_inside(pts, self.box_lo, self.box_hi, "grid coordinates")
        r1, r2, r3 = self.core.shape
        with single_blas_thread(xp):
            e = [self._axis_matrix(a, k, self.factors[k]) for k, a in enumerate(axes)]
            t = (e[0] @ self.core.reshape(r1, r2 * r3)).reshape(-1, r2, r3)  # (nx, r2, r3)
            t = xp.matmul(e[1][None, :, :], t)  # (nx, ny, r3)
            return t @ e[2].T  # (nx, ny, nz)

    # -- total ------------------------------------------------------------------------------
    def potential(self, points, *, parts: bool = False):
        """Total Φ at ``points`` (n, 3) Å, (n,) e/Å; an atom at a point is left out.

        The Tucker form plus :func:`~pipeline.electrostatics.mid_range.points_short_range` (the
        stored split's short range, or a mid range and the short range of a larger α₂ when that
        is cheaper for this many points). With ``parts=True`` returns ``(total, short, long)``
        where ``short`` is the short range of the split used and ``long`` the rest, self term
        excluded.
        """
        xp = self.xp
        points = xp.asarray(points, dtype=xp.float64)
        long = self.long_range(points)  # checks the points first
        if self.periodic:
            short, same = short_range_sum(self.wrap(points), *self.periodic_sources(self.cutoff), self.split,
                                          self.cutoff, coincident=True)
            long = long - same * self.split.long_at_zero()
            total = short + long
            return (total, short, long) if parts else total
        mid, short, self_term = points_short_range(self, points)
        long = long + mid - self_term
        total = short + long
        return (total, short, long) if parts else total

    def at_atoms(self):
        """(total, short, long) at every atom (self excluded), each (n_atoms,) e/Å.

        With :attr:`atom_long` (a build) the long range comes from the build grid and the short
        range from its split, each pair visited once; otherwise the representation is evaluated
        at the atoms as at any points (:meth:`potential`).
        """
        if self.atom_long is None:
            return self.potential(self.positions, parts=True)
        split, cutoff = self.atom_long.split, self.atom_long.cutoff
        tolerance = internal_tolerance(self.params)
        long = self.atom_long.values - self.sources * split.long_at_zero()
        if self.periodic:
            sources, source_charges = self.periodic_sources(cutoff)
            n_atoms = self.positions.shape[0]
            if sources.shape[0] <= PAIR_ONCE_SKIN * n_atoms:  # each pair once over atoms and images
                short = short_range_at_atoms(sources, source_charges, split, cutoff, tolerance=tolerance)[:n_atoms]
            else:  # many images (a small cell): only the atoms' own sums
                short = short_range_sum(sources[:n_atoms], sources, source_charges, split, cutoff, tolerance=tolerance)
        else:
            short = short_range_at_atoms(self.positions, self.sources, split, cutoff, tolerance=tolerance)
        return short + long, short, long

    def field(self, points):
        """Electric field E = −∇Φ at ``points``, (n, 3) e/Å² (an atom at a point is left out).

        Tucker-form field plus the short-range field of the stored split (its cutoff, so a form
        stored at a small α to fit a storage limit costs more pairs per point).
        """
        xp = self.xp
        points = xp.asarray(points, dtype=xp.float64)
        long_field = self.long_range_field(points)  # checks the points first
        if self.periodic:
            _, short_field = short_range_sum(self.wrap(points), *self.periodic_sources(self.cutoff), self.split,
                                             self.cutoff, field=True)
        else:
            _, short_field = short_range_sum(points, self.positions, self.sources, self.split, self.cutoff, field=True)
        return long_field + short_field

    def grid(self, xs, ys, zs, *, long_only: bool = False):
        """Φ on the tensor grid xs × ys × zs, shape (nx, ny, nz), e/Å.

        The long range takes three GEMMs; for uniformly spaced axes on the CPU the rest comes
        from :func:`~pipeline.electrostatics.mid_range.map_short_range` (a map-specific split whose
        short range visits each atom's ball of grid points once), otherwise from the points path
        (:func:`~pipeline.electrostatics.mid_range.points_short_range`).
        """
        xp = self.xp
        if self.periodic:  # points wrapped into the cell one by one
            axes = [xp.asarray(a, dtype=xp.float64).reshape(-1) for a in (xs, ys, zs)]
            pts = _grid_points(axes, xp)
            values = self.long_range(pts) if long_only else self.potential(pts)
            return values.reshape(tuple(a.shape[0] for a in axes))
        values = self.long_range_grid(xs, ys, zs)
        if long_only:
            return values
        if backend_name(xp) == "numpy" and all(uniform_axis(a) is not None for a in (xs, ys, zs)):
            return values + map_short_range(self, (xs, ys, zs))
        pts = _grid_points([xp.asarray(a) for a in (xs, ys, zs)], xp)
        mid, short, self_term = points_short_range(self, pts)
        return values + (mid + short - self_term).reshape(values.shape)


def _grid_points(axes, xp):
    """The points of the tensor grid axes[0] × axes[1] × axes[2], (n, 3), C order."""
    gx, gy, gz = xp.meshgrid(*[a.reshape(-1) for a in axes], indexing="ij")
    return xp.stack([gx.reshape(-1), gy.reshape(-1), gz.reshape(-1)], axis=1)
