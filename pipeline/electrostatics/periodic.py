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

Grid (the machinery of :mod:`.gridding` in grid-index units v = u·n): charges are spread
with the exponential-of-semicircle window w(v) = exp(β(√(1 − (v/R)²) − 1)), |v| < R grid
points per axis (separable in fractional coordinates, so any triclinic cell works), folded
periodically onto n₁×n₂×n₃ points, transformed by a real FFT, multiplied by
N φ̂_L(k)/(V ŵ(m)²) with ŵ(m) = Π_k ŵ₁(m_k/n_k) the window's Fourier transform
(:func:`window_transform`, by quadrature), transformed back and gathered with the same
window, at the atoms (interpolation) and at the Chebyshev nodes of the unit cube of
fractional coordinates, whose coefficients are then Tucker-compressed exactly as in free
space. Errors: φ̂_L is negligible (≤ ε_g) beyond |k| = 2α√ln(1/ε_g), i.e.
|m_k| ≤ M_k = |a_k| α √ln(1/ε_g)/π; with n_k = 2c·M_k points the window of width 2R and
β = 0.98·π·2R(1 − 1/(2c)) errs by about e^{−2πR√(1 − 1/c)} (Barnett et al. 2019), which
fixes R (:func:`plan_periodic`; 2R = 8 points per axis at ε = 1e-6, where a Gaussian window
needs 13.5). Chebyshev degree per axis: the Gaussian rule with half width |a_k|/2.

Short range: every atom's periodic images within the cutoff of the cell (:func:`periodic_sources`)
join the sources of the ordinary free-space cell list; targets are wrapped into the cell. This
holds for any cutoff, also one larger than half the cell width.

References
----------
Essmann et al., "A smooth particle mesh Ewald method", J. Chem. Phys. 103, 8577 (1995).
Lindbo, Tornberg, "Spectral accuracy in fast Ewald-based methods", J. Comput. Phys. 230 (2011).
Barnett, Magland, af Klinteberg, "A parallel nonuniform fast Fourier transform library based on
an 'exponential of semicircle' kernel", SIAM J. Sci. Comput. 41, C479 (2019).
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
#: Window points per axis added to the width that the error estimate asks for.
WINDOW_MARGIN_POINTS = 1
#: β = BETA_FACTOR·π·2R·(1 − 1/(2c)) for a window of half-width R (Barnett et al. 2019).
BETA_FACTOR = 0.98
#: Gauss–Legendre nodes of the window's Fourier transform (:func:`window_transform`).
TRANSFORM_NODES = 64


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
    reach = np.ceil(float(cutoff) / cell_widths(cell)).astype(int)
    margin = xp.asarray(float(cutoff) / cell_widths(cell))  # on the atoms' backend
    parts, part_q = [u], [charges]
    # only atoms within the margin of a face have images inside the extended cell
    near = xp.nonzero(xp.any((u < margin[None, :]) | (u >= 1.0 - margin[None, :]), axis=1))[0]
    u_near, q_near = u[near], charges[near]
    for n0 in range(-reach[0], reach[0] + 1):
        for n1 in range(-reach[1], reach[1] + 1):
            for n2 in range(-reach[2], reach[2] + 1):
                if n0 == n1 == n2 == 0:
                    continue
                shifted = u_near + xp.asarray([n0, n1, n2], dtype=xp.float64)
                keep = xp.all((shifted >= -margin[None, :]) & (shifted < 1.0 + margin[None, :]), axis=1)
                if bool(keep.any()):
                    parts.append(shifted[keep])
                    part_q.append(q_near[keep])
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
    beta : float
        Shape parameter β of the exponential-of-semicircle window.
    radius : float
        Window half-width R, grid points.
    """

    cell: tuple
    degree: tuple
    grid: tuple
    beta: float
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
                             spacing=1.0, sigma=0.0, radius=float(self.radius), origin=(-float(pad),) * 3,
                             shape=ext, beta=float(self.beta))

    def to_dict(self) -> dict:
        return {"periodic": True, "cell": [list(r) for r in self.cell], "degree": list(self.degree),
                "grid": list(self.grid), "beta": self.beta, "radius": self.radius}

    @classmethod
    def from_dict(cls, data: dict) -> "PeriodicPlan":
        return cls(cell=tuple(tuple(float(v) for v in r) for r in data["cell"]), degree=tuple(data["degree"]),
                   grid=tuple(data["grid"]), beta=float(data["beta"]), radius=float(data["radius"]))


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
    width = math.ceil(log_tol / (math.pi * math.sqrt(1.0 - 1.0 / OVERSAMPLING))) + WINDOW_MARGIN_POINTS
    radius = 0.5 * width
    beta = BETA_FACTOR * math.pi * width * (1.0 - 0.5 / OVERSAMPLING)
    if degree is None:
        deg = tuple(degree_for_gaussian(t_max, 0.5 * float(length), tolerance) for length in lengths)
    elif np.ndim(degree) == 0:
        deg = (int(degree),) * 3
    else:
        deg = tuple(int(d) for d in degree)
    return PeriodicPlan(cell=tuple(tuple(float(v) for v in row) for row in cell), degree=deg, grid=grid,
                        beta=float(beta), radius=float(radius))


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
    """Add the extended grid's points onto their periodic images: shape ``grid`` (``rho_ext`` is overwritten).

    Extended index e is periodic point (e − pad) mod n. Where pad ≤ n on every axis, each
    axis's two margins are added in place onto the core planes they wrap to (e ∈ [0, pad) onto
    e + n, e ∈ [n + pad, n + 2·pad) onto e − n) and the core kept, without temporaries;
    otherwise every extended plane is added onto its image one block of n planes at a time.
    """
    xp = namespace_of(rho_ext)
    out = rho_ext
    del rho_ext
    for axis, n in enumerate(grid):
        def on_axis(start, stop, axis=axis):
            return (slice(None),) * axis + (slice(start, stop),)

        if pad <= n:
            out[on_axis(pad, 2 * pad)] += out[on_axis(n + pad, n + 2 * pad)]
            out[on_axis(n, n + pad)] += out[on_axis(0, pad)]
            out = out[on_axis(pad, pad + n)]
            continue
        folded = xp.zeros(out.shape[:axis] + (n,) + out.shape[axis + 1:])
        for start in range(0, out.shape[axis], n):
            block = out[on_axis(start, start + n)]
            first = (start - pad) % n  # consecutive extended planes wrap at most once per block
            head = min(n - first, block.shape[axis])
            folded[on_axis(first, first + head)] += block[on_axis(0, head)]
            if head < block.shape[axis]:
                folded[on_axis(0, block.shape[axis] - head)] += block[on_axis(head, block.shape[axis])]
        out = folded
    return out  # a strided view where pad ≤ n: the FFT reads it as it is (a contiguous copy took as long as the FFT)


def _extend(values, pad: int):
    """Periodic extension by ``pad`` points on each side of every axis."""
    xp = namespace_of(values)
    return xp.ascontiguousarray(xp.pad(values, pad, mode="wrap"))


#: First-axis planes of the half spectrum whose kernel multiplier is formed at a time (bounds the
#: temporaries of :func:`apply_kernel` to a few slabs instead of several spectrum-sized arrays).
KERNEL_SLAB = 16


def window_transform(frequency, plan: PeriodicPlan) -> np.ndarray:
    """ŵ₁(f) = ∫ w(v) e^{−2πi f v} dv of the 1-D window of ``plan`` (v in grid points), same shape as ``frequency``.

    With v = R sin θ the integrand e^{β(cos θ − 1)} cos(2π f R sin θ) R cos θ is smooth on
    [−π/2, π/2], so :data:`TRANSFORM_NODES` Gauss–Legendre nodes reach machine precision.
    """
    nodes, weights = np.polynomial.legendre.leggauss(TRANSFORM_NODES)
    theta = 0.5 * math.pi * nodes
    integrand = np.exp(plan.beta * (np.cos(theta) - 1.0)) * plan.radius * np.cos(theta) * (0.5 * math.pi * weights)
    f = np.asarray(frequency, dtype=np.float64)
    return np.cos(2.0 * math.pi * plan.radius * f[..., None] * np.sin(theta)) @ integrand


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
    w0, w1, w2 = (window_transform(f, plan) for f in (m0 / n1, m1 / n2, m2 / n3))
    deconv = 1.0 / (w0 * w1 * w2) ** 2
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
    with single_blas_thread(xp, grid_values.size):
        return values_to_coefficients(gather_on_axes(grid_values, plan.window, axes))


def periodic_interpolate(grid_values, positions, plan: PeriodicPlan):
    """Periodic long range at ``positions`` (any, wrapped here) from the extended grid, (n,) e/Å."""
    xp = namespace_of(grid_values, positions)
    v = fractional(positions, np.linalg.inv(np.asarray(plan.cell))) * xp.asarray(plan.grid, dtype=xp.float64)
    return interpolate_grid(grid_values, v, plan.window)


def total_charge(charges) -> float:
    """Σ q_j as a Python float (one host transfer)."""
    return float(to_host(charges.sum()))
