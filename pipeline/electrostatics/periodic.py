"""Periodic long range in any triclinic cell: a smooth particle-mesh Ewald sum in fractional coordinates.

Cell. ``cell`` is the (3, 3) matrix whose rows are the cell vectors a₁, a₂, a₃ (Å), built from
the box lengths and angles in the MDAnalysis convention by :func:`cell_matrix`. Fractional
coordinates u = x A⁻¹; reciprocal vectors b_j are the columns of A⁻¹ (a_i·b_j = δ_ij), the
cell widths w_j = 1/|b_j| (the distances between opposite faces).

Sum. For the kernel splits of :mod:`.splitting` the periodic long range at x is
Φ_L(x) = (1/V) Σ_m φ̂_L(k_m) S(m) e^{2πi m·u}, k_m = 2π A⁻¹ m, S(m) = Σ_j q_j e^{−2πi m·u_j}
(tin-foil boundary: the k = 0 term of the Coulomb kernel is left out; the screened kernel keeps
it). A net charge Q of a Coulomb cell adds the uniform neutralising background −πQ/(Vα²)
(:func:`background_potential`), which makes the total independent of α.

Grid (the free-space machinery of :mod:`.gridding` in grid-index units v = u·n): charges are
spread with a Gaussian of standard deviation τ grid points per axis (separable in fractional
coordinates, so any triclinic cell works), folded periodically onto n₁×n₂×n₃ points,
transformed by a real FFT, multiplied by N φ̂_L(k)/(V ŵ(m)²) with ŵ(m) = Π e^{−2π²τ²m_k²/n_k²},
transformed back and gathered with the same window, at the atoms (interpolation) and at the
Chebyshev nodes of the unit cube of fractional coordinates, whose coefficients are then
Tucker-compressed exactly as in free space. Errors: φ̂_L is negligible (≤ ε_g) beyond
|k| = 2α√ln(1/ε_g), i.e. |m_k| ≤ M_k = |a_k| α √ln(1/ε_g)/π; with n_k = 2c·M_k points the
aliased images are damped by e^{−2π²τ²(1 − 1/c)} ≤ ε_g, which fixes τ; the window is cut at
R = τ√(2 ln(1/ε_g)). Chebyshev degree per axis: the Gaussian rule with half width |a_k|/2.

Short range: every atom's periodic images within the cutoff of the cell (:func:`periodic_sources`)
join the sources of the ordinary free-space cell list; targets are wrapped into the cell. This
holds for any cutoff, also one larger than half the cell width.

References
----------
Essmann et al., "A smooth particle mesh Ewald method", J. Chem. Phys. 103, 8577 (1995).
Lindbo, Tornberg, "Spectral accuracy in fast Ewald-based methods", J. Comput. Phys. 230 (2011).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.backend import backend_name, namespace_of, to_host
from pipeline.electrostatics.chebyshev import cheb_nodes1, degree_for_gaussian, from_reference
from pipeline.electrostatics.gridding import interpolate_grid, spread_charges
from pipeline.electrostatics.long_range import LongRangePlan, gather_on_axes, values_to_coefficients
from pipeline.electrostatics.blas import single_blas_thread

#: Oversampling c of the periodic grid: n_k = 2c·M_k points per axis.
OVERSAMPLING = 2.0
#: Accuracy of the grid steps relative to the requested tolerance.
GRID_MARGIN = 0.3
#: Smallest grid per axis.
MIN_GRID = 8


def cell_matrix(box) -> np.ndarray:
    """Cell vectors (rows, Å) from box lengths and angles [a, b, c, α, β, γ] (Å, degrees).

    MDAnalysis convention: a = (a, 0, 0), b = (b cos γ, b sin γ, 0), c in the upper half space.
    A (3, 3) input is taken as the cell matrix itself. ``ValueError`` for non-positive lengths or
    angles that make a degenerate cell.
    """
    box = np.asarray(box, dtype=np.float64)
    if box.shape == (3, 3):
        cell = box.copy()
    elif box.shape == (6,):
        a, b, c, alpha, beta, gamma = box
        if not (a > 0 and b > 0 and c > 0) or not np.all(np.isfinite(box)):
            raise ValueError(f"box lengths must be finite and > 0 Å, got {box[:3].tolist()}")
        if not all(0 < ang < 180 for ang in (alpha, beta, gamma)):
            raise ValueError(f"box angles must lie in (0, 180) degrees, got {box[3:].tolist()}")
        ca, cb, cg = (math.cos(math.radians(v)) for v in (alpha, beta, gamma))
        sg = math.sin(math.radians(gamma))
        cz2 = 1.0 - cb**2 - ((ca - cb * cg) / sg) ** 2
        if cz2 <= 1e-10:
            raise ValueError(f"box angles {box[3:].tolist()} degrees make a degenerate (flat) cell")
        cell = np.array([[a, 0.0, 0.0], [b * cg, b * sg, 0.0], [c * cb, c * (ca - cb * cg) / sg, c * math.sqrt(cz2)]])
    else:
        raise ValueError(f"box must be [a, b, c, alpha, beta, gamma] or a (3, 3) cell matrix, got shape {box.shape}")
    volume = float(np.linalg.det(cell))
    if not volume > 1e-9 * float(np.prod(np.linalg.norm(cell, axis=1))):
        raise ValueError(f"cell {cell.tolist()} Å is degenerate or left-handed (volume {volume:.3g} Å³)")
    return cell


def cell_widths(cell) -> np.ndarray:
    """Distances between opposite faces of the cell, (3,) Å (w_j = 1/|b_j|)."""
    inv = np.linalg.inv(np.asarray(cell, dtype=np.float64))
    return 1.0 / np.linalg.norm(inv, axis=0)


def apply_matrix(points, matrix):
    """``points @ matrix`` for (n, 3) points and a (3, 3) host matrix, row by row elementwise.

    Unlike a GEMM, whose rounding can depend on how many rows it is given, the result for a
    point does not depend on the other points, so an atom and a target placed on it wrap to the
    same coordinates bit for bit.
    """
    xp = namespace_of(points)
    m = np.asarray(matrix, dtype=np.float64)
    cols = [points[:, 0] * m[0, k] + points[:, 1] * m[1, k] + points[:, 2] * m[2, k] for k in range(3)]
    return xp.stack(cols, axis=1)


def fractional(points, cell_inv):
    """Fractional coordinates wrapped into [0, 1): (n, 3)."""
    xp = namespace_of(points)
    u = apply_matrix(points, cell_inv)
    u = u - xp.floor(u)
    return xp.where(u >= 1.0, 0.0, u)  # rounding of values just below 1


def wrap(points, cell):
    """Cartesian points wrapped into the cell (x = u A with u in [0, 1)), (n, 3) Å."""
    cell = np.asarray(cell, dtype=np.float64)
    return apply_matrix(fractional(points, np.linalg.inv(cell)), cell)


def periodic_sources(positions, charges, cell, cutoff: float):
    """The atoms wrapped into the cell plus every periodic image within ``cutoff`` of it.

    Returns
    -------
    sources : (n_sources, 3) Å
        The wrapped atoms first (in input order), then the images.
    source_charges : (n_sources,) e
    """
    xp = namespace_of(positions, charges)
    cell = np.asarray(cell, dtype=np.float64)
    u = fractional(positions, np.linalg.inv(cell))
    margin = float(cutoff) / cell_widths(cell)
    reach = np.ceil(margin).astype(int)
    parts, part_q = [u], [charges]
    for n0 in range(-reach[0], reach[0] + 1):
        for n1 in range(-reach[1], reach[1] + 1):
            for n2 in range(-reach[2], reach[2] + 1):
                if n0 == n1 == n2 == 0:
                    continue
                shifted = u + xp.asarray([n0, n1, n2], dtype=xp.float64)
                keep = xp.all((shifted >= -margin[None, :]) & (shifted < 1.0 + margin[None, :]), axis=1)
                if bool(keep.any()):
                    parts.append(shifted[keep])
                    part_q.append(charges[keep])
    return apply_matrix(xp.concatenate(parts), cell), xp.concatenate(part_q)


def background_potential(total_charge: float, cell, split) -> float:
    """Uniform neutralising background −πQ/(Vα²) of a net-charged Coulomb cell, e/Å (0 when screened)."""
    if getattr(split, "kappa", 0.0) > 0:
        return 0.0
    volume = float(abs(np.linalg.det(np.asarray(cell, dtype=np.float64))))
    return float(-math.pi * total_charge / (volume * split.alpha**2))


@dataclass(frozen=True)
class PeriodicPlan:
    """Grid and Chebyshev sizes of a periodic long-range build.

    Attributes
    ----------
    cell : tuple of 3 tuples
        Cell vectors (rows), Å.
    degree : tuple of 3 ints
        Chebyshev nodes per fractional axis.
    grid : tuple of 3 ints
        Periodic grid points per axis n_k.
    tau : float
        Window standard deviation, grid points.
    radius : float
        Window truncation radius, grid points.
    """

    cell: tuple
    degree: tuple
    grid: tuple
    tau: float
    radius: float
    periodic: bool = True

    #: The Chebyshev box of a periodic potential is the unit cube of fractional coordinates.
    box_lo = (0.0, 0.0, 0.0)
    box_hi = (1.0, 1.0, 1.0)

    @property
    def pad(self) -> int:
        """Grid points added on each side so a window never leaves the extended grid.

        A window starts at ⌈v − R⌉ and covers ⌊2R⌋ + 2 points, so for v < n it ends below
        n + R + 2: ⌊R⌋ + 3 points of padding.
        """
        return int(math.floor(self.radius)) + 3

    @property
    def shape(self) -> tuple:
        return self.grid

    @property
    def window(self) -> LongRangePlan:
        """The extended grid in grid-index units, as the spreading/interpolation kernels take it."""
        pad = self.pad
        ext = tuple(n + 2 * pad for n in self.grid)
        return LongRangePlan(box_lo=(0.0,) * 3, box_hi=tuple(float(n) for n in self.grid), degree=self.degree,
                             spacing=1.0, sigma=float(self.tau), radius=float(self.radius),
                             origin=(-float(pad),) * 3, shape=ext)

    def to_dict(self) -> dict:
        return {"periodic": True, "cell": [list(r) for r in self.cell], "degree": list(self.degree),
                "grid": list(self.grid), "tau": self.tau, "radius": self.radius}

    @classmethod
    def from_dict(cls, data: dict) -> "PeriodicPlan":
        return cls(cell=tuple(tuple(float(v) for v in r) for r in data["cell"]), degree=tuple(data["degree"]),
                   grid=tuple(data["grid"]), tau=float(data["tau"]), radius=float(data["radius"]))


def plan_periodic(cell, t_max: float, tolerance: float, *, degree=None, grid_tolerance: float | None = None) -> PeriodicPlan:
    """Grid and Chebyshev sizes for a periodic long range of exponent ``t_max`` (1/Å) in ``cell``.

    ``grid_tolerance`` is the accuracy ε_g of the grid steps (default ε · :data:`GRID_MARGIN`).
    """
    import scipy.fft as sfft

    cell = np.asarray(cell, dtype=np.float64)
    lengths = np.linalg.norm(cell, axis=1)
    grid_tol = tolerance * GRID_MARGIN if grid_tolerance is None else float(grid_tolerance)
    log_tol = math.log(1.0 / grid_tol)
    modes = lengths * t_max * math.sqrt(log_tol) / math.pi
    grid = tuple(max(MIN_GRID, sfft.next_fast_len(int(math.ceil(2.0 * OVERSAMPLING * m)), real=True)) for m in modes)
    tau = math.sqrt(log_tol / (2.0 * math.pi**2 * (1.0 - 1.0 / OVERSAMPLING)))
    radius = tau * math.sqrt(2.0 * log_tol)
    if degree is None:
        deg = tuple(degree_for_gaussian(t_max, 0.5 * float(length), tolerance) for length in lengths)
    elif np.ndim(degree) == 0:
        deg = (int(degree),) * 3
    else:
        deg = tuple(int(d) for d in degree)
    return PeriodicPlan(cell=tuple(tuple(float(v) for v in row) for row in cell), degree=deg, grid=grid,
                        tau=float(tau), radius=float(radius))


def estimate_periodic_bytes(plan: PeriodicPlan, n_atoms: int, cutoff: float) -> int:
    """Peak memory of a periodic build (bytes, dominant arrays, within about a factor of two).

    The largest of: the spreading step (extended grid 8·Π(n_k + 2·pad) plus the folded grid and
    its half spectrum 16·Πn_k); the Chebyshev step (extended grid, gather intermediates and five
    m₁m₂m₃ copies); the short range over the atoms and their images within the cutoff (about
    12 float64 per source); plus positions and charges.
    """
    pad = plan.pad
    n_ext = math.prod(n + 2 * pad for n in plan.grid)
    n_grid = math.prod(plan.grid)
    (m1, m2, m3), (_, n2, n3) = plan.degree, plan.grid
    spread_step = 8 * n_ext + 24 * n_grid
    chebyshev_step = 8 * n_ext + 8 * (m1 * (n2 + 2 * pad) * (n3 + 2 * pad) + m1 * m2 * (n3 + 2 * pad)) + 40 * m1 * m2 * m3
    cell = np.asarray(plan.cell)
    skin = float(np.prod(1.0 + 2.0 * cutoff / cell_widths(cell)))
    short_step = 8 * 12 * n_atoms * skin
    return int(max(spread_step, chebyshev_step, short_step) + 32 * n_atoms)


def _fold(rho_ext, pad: int, grid):
    """Add the extended grid's points onto their periodic images: shape ``grid``."""
    xp = namespace_of(rho_ext)
    out = rho_ext
    del rho_ext  # each axis's folded array replaces the previous one
    for axis, n in enumerate(grid):
        length = out.shape[axis]
        folded_shape = list(out.shape)
        folded_shape[axis] = n
        folded = xp.zeros(folded_shape)
        index = (np.arange(length) - pad) % n
        for start in range(0, length, n):
            sl = [slice(None)] * 3
            sl[axis] = slice(start, min(start + n, length))
            block = out[tuple(sl)]
            target = [slice(None)] * 3
            # consecutive extended points map to consecutive periodic points, wrapping at most once
            idx = index[start : start + block.shape[axis]]
            first = int(idx[0])
            head = min(n - first, block.shape[axis])
            target[axis] = slice(first, first + head)
            src = [slice(None)] * 3
            src[axis] = slice(0, head)
            folded[tuple(target)] += block[tuple(src)]
            if head < block.shape[axis]:
                target[axis] = slice(0, block.shape[axis] - head)
                src[axis] = slice(head, block.shape[axis])
                folded[tuple(target)] += block[tuple(src)]
        out = folded
    return out


def _extend(values, pad: int):
    """Periodic extension by ``pad`` points on each side of every axis."""
    xp = namespace_of(values)
    shape = values.shape
    out = values
    del values  # each axis's extended array replaces the previous one
    for axis, n in enumerate(shape):
        index = xp.asarray((np.arange(n + 2 * pad) - pad) % n)
        out = xp.take(out, index, axis=axis)
    return xp.ascontiguousarray(out)


#: First-axis planes of the half spectrum whose kernel multiplier is formed at a time (bounds the
#: temporaries of :func:`apply_kernel` to a few slabs instead of several spectrum-sized arrays).
KERNEL_SLAB = 16


def kernel_multiplier(plan: PeriodicPlan, split, *, rows=slice(None), xp=np):
    """N φ̂_L(k_m)/(V ŵ(m)²) on the real-FFT half spectrum, shape (n1, n2, n3//2 + 1) (or ``rows`` of axis 0)."""
    cell = np.asarray(plan.cell)
    inv = np.linalg.inv(cell)
    metric = inv.T @ inv  # k = 2π A⁻¹ m, so k² = 4π² mᵀ (A⁻ᵀ A⁻¹) m
    n1, n2, n3 = plan.grid
    m = [np.fft.fftfreq(n1, 1.0 / n1)[rows], np.fft.fftfreq(n2, 1.0 / n2), np.fft.rfftfreq(n3, 1.0 / n3)]
    m0, m1, m2 = m[0][:, None, None], m[1][None, :, None], m[2][None, None, :]
    k2 = 4.0 * math.pi**2 * (metric[0, 0] * m0 * m0 + metric[1, 1] * m1 * m1 + metric[2, 2] * m2 * m2
                             + 2.0 * (metric[0, 1] * m0 * m1 + metric[0, 2] * m0 * m2 + metric[1, 2] * m1 * m2))
    deconv = np.exp(4.0 * math.pi**2 * plan.tau**2 * ((m0 / n1) ** 2 + (m1 / n2) ** 2 + (m2 / n3) ** 2))
    volume = float(abs(np.linalg.det(cell)))
    total = float(n1 * n2 * n3)
    return xp.asarray(split.fourier_long(k2) * deconv * (total / volume))


def apply_kernel(spec, plan: PeriodicPlan, split) -> None:
    """``spec *= kernel_multiplier(...)`` in place, :data:`KERNEL_SLAB` planes at a time."""
    xp = namespace_of(spec)
    for start in range(0, spec.shape[0], KERNEL_SLAB):
        rows = slice(start, min(start + KERNEL_SLAB, spec.shape[0]))
        spec[rows] *= kernel_multiplier(plan, split, rows=rows, xp=xp)


def periodic_long_range_grid(positions, charges, plan: PeriodicPlan, split):
    """Periodic long range (without background) on the extended grid of ``plan.window``, e/Å."""
    xp = namespace_of(positions, charges)
    cell = np.asarray(plan.cell)
    v = fractional(positions, np.linalg.inv(cell)) * xp.asarray(plan.grid, dtype=xp.float64)
    rho = _fold(spread_charges(v, charges, plan.window), plan.pad, plan.grid)
    if backend_name(xp) == "numpy":
        import scipy.fft as fft

        spec = fft.rfftn(rho, workers=-1)
        del rho
        apply_kernel(spec, plan, split)
        values = fft.irfftn(spec, s=plan.grid, workers=-1, overwrite_x=True)
    else:
        spec = xp.fft.rfftn(rho)
        del rho
        apply_kernel(spec, plan, split)
        values = xp.fft.irfftn(spec, s=plan.grid)
    del spec
    return _extend(values, plan.pad)


def periodic_grid_to_coefficients(grid_values, plan: PeriodicPlan):
    """Chebyshev coefficients (m1, m2, m3) over the unit cube of fractional coordinates, e/Å."""
    xp = namespace_of(grid_values)
    axes = [from_reference(cheb_nodes1(m, xp=xp), 0.0, float(n)) for m, n in zip(plan.degree, plan.grid)]
    with single_blas_thread(xp):
        return values_to_coefficients(gather_on_axes(grid_values, plan.window, axes))


def periodic_interpolate(grid_values, positions, plan: PeriodicPlan):
    """Periodic long range at ``positions`` (any, wrapped here) from the extended grid, (n,) e/Å."""
    xp = namespace_of(grid_values, positions)
    v = fractional(positions, np.linalg.inv(np.asarray(plan.cell))) * xp.asarray(plan.grid, dtype=xp.float64)
    return interpolate_grid(grid_values, v, plan.window)


def total_charge(charges) -> float:
    """Σ q_j as a Python float (one host transfer)."""
    return float(to_host(charges.sum()))
