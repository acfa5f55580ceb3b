"""Chebyshev coefficients of the long-range potential in O(N) + poly(m), and their compression.

Method (real-space Gaussian gridding, in the spirit of Spectral Ewald / particle-mesh Ewald
but free space and without a periodic FFT solve): write φ_L = W_s * W_s * ψ with W_s a
normalised 3-D Gaussian of variance s² per axis and ψ the deconvolved long-range kernel
(:meth:`deconvolved_long`). Then, on a uniform grid y_g of spacing h covering the box plus the
spreading radius,

1. spread: ρ_g = Σ_j q_j W_s(y_g − x_j), truncated at radius R_w (N·P³ work, P ≈ 2R_w/h;
   compiled loop on the CPU, bincount of the separable weights on other backends);
2. convolve: U_g = h³ Σ_g' ψ(y_g − y_g') ρ_g' (exact aperiodic discrete convolution through a
   zero-padded FFT; ψ is smooth, so sampling it is harmless);
3. gather at the Chebyshev nodes x_abc of the box: Φ_L(x) = h³ Σ_g W_s(x − y_g) U_g, separable,
   hence three mode products with (m_k × n_k) matrices;
4. DCT-II per axis (dense m×m matrices) to Chebyshev coefficients.

Steps 2–3 are trapezoidal rules for the two convolution integrals; their aliasing error is
≈ exp(−(2π/h)²/(4α'² + 2/s²)). Balancing against the constraint 1/α'² = 1/α² − 4s² gives
s ≈ 0.383/α and h ≈ 1.30/(α√ln(1/ε)); R_w = s√(2 ln(1/ε)). The whole map from charges to
coefficients is linear in the charges: :func:`long_range_coefficients` on chunks of atoms can
be summed (scatter–gather), and :func:`compress_coefficients` compresses the sum.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass

import numba
import numpy as np

from pipeline.backend import backend_name, namespace_of
from pipeline.electrostatics.chebyshev import (
    cheb_nodes1,
    degree_for_gaussian,
    from_reference,
    values_to_coefficients_matrix,
)
from pipeline.electrostatics.tucker import mode_product, tucker_hosvd

log = logging.getLogger(__name__)

#: Atoms per spreading chunk (bounds the (chunk·P³) temporaries).
SPREAD_CHUNK_ENTRIES = 8_000_000


@dataclass(frozen=True)
class LongRangePlan:
    """Box, Chebyshev sizes and spreading grid of a long-range build (all lengths in Å).

    Attributes
    ----------
    box_lo, box_hi : tuple of 3 floats
        Chebyshev box; every charge and target must lie inside.
    degree : tuple of 3 ints
        Chebyshev nodes per axis m_k.
    spacing : float
        Uniform grid spacing h.
    sigma : float
        Standard deviation s of the spreading Gaussian per axis.
    radius : float
        Truncation radius R_w of the spreading Gaussian.
    origin : tuple of 3 floats
        Position of grid point (0, 0, 0).
    shape : tuple of 3 ints
        Uniform grid points per axis n_k.
    """

    box_lo: tuple
    box_hi: tuple
    degree: tuple
    spacing: float
    sigma: float
    radius: float
    origin: tuple
    shape: tuple

    def to_dict(self) -> dict:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}


def plan_long_range(box_lo, box_hi, t_max: float, tolerance: float, *, degree=None, spacing=None) -> LongRangePlan:
    """Choose Chebyshev sizes and the spreading grid for long-range exponent ``t_max`` (1/Å).

    Parameters
    ----------
    box_lo, box_hi : (3,) Å
    t_max : float
        Largest Gaussian exponent of φ_L (α for Ewald), 1/Å.
    tolerance : float
        Target relative accuracy ε.
    degree : int or 3 ints, optional
        Override of the Chebyshev nodes per axis (degree rule of :func:`degree_for_gaussian`).
    spacing : float, optional
        Override of the grid spacing h, Å.
    """
    lo = np.asarray(box_lo, dtype=float)
    hi = np.asarray(box_hi, dtype=float)
    if np.any(hi <= lo):
        raise ValueError(f"box must have hi > lo on every axis, got lo={lo.tolist()} hi={hi.tolist()}")
    if degree is None:
        deg = tuple(degree_for_gaussian(t_max, 0.5 * (h_ - l_), tolerance) for l_, h_ in zip(lo, hi))
    elif np.ndim(degree) == 0:
        deg = (int(degree),) * 3
    else:
        deg = tuple(int(d) for d in degree)
    if min(deg) < 2:
        raise ValueError(f"Chebyshev degree must be ≥ 2 per axis, got {deg}")
    log_eps = math.log(1.0 / (tolerance / 10.0))
    sigma = 0.383 / t_max
    h = 1.30 / (t_max * math.sqrt(log_eps)) if spacing is None else float(spacing)
    radius = sigma * math.sqrt(2.0 * log_eps)
    origin = lo - radius - h
    shape = tuple(int(v) for v in np.ceil((hi - lo + 2 * radius) / h).astype(int) + 3)
    return LongRangePlan(
        box_lo=tuple(lo.tolist()),
        box_hi=tuple(hi.tolist()),
        degree=deg,
        spacing=float(h),
        sigma=float(sigma),
        radius=float(radius),
        origin=tuple(origin.tolist()),
        shape=shape,
    )


def _gauss1(d, sigma: float, xp):
    return xp.exp(-0.5 * (d / sigma) ** 2) / (math.sqrt(2 * math.pi) * sigma)


@numba.njit(cache=True)
def _spread_compiled(pos, q, origin, h, sigma, radius, npt, out):  # pragma: no cover - compiled
    n1, n2, n3 = out.shape
    norm = 1.0 / (math.sqrt(2.0 * math.pi) * sigma)
    w = np.empty((3, npt))
    first = np.empty(3, dtype=np.int64)
    for j in range(pos.shape[0]):
        for a in range(3):
            rel = (pos[j, a] - origin[a]) / h
            f = int(math.ceil(rel - radius / h))
            first[a] = f
            for p in range(npt):
                d = (f + p - rel) * h
                w[a, p] = norm * math.exp(-0.5 * (d / sigma) ** 2) if abs(d) <= radius else 0.0
        for p in range(npt):
            wx = q[j] * w[0, p]
            i = first[0] + p
            for r in range(npt):
                wxy = wx * w[1, r]
                k = first[1] + r
                for t in range(npt):
                    out[i, k, first[2] + t] += wxy * w[2, t]


def spread_charges(positions, charges, plan: LongRangePlan):
    """Grid density ρ_g = Σ_j q_j W_s(y_g − x_j), shape ``plan.shape``, e/Å³ (linear in charges).

    Parameters
    ----------
    positions : (n_atoms, 3) float64, Å, inside the box
    charges : (n_atoms,) float64, e
    """
    xp = namespace_of(positions, charges)
    n1, n2, n3 = plan.shape
    h = plan.spacing
    npt = int(math.floor(2 * plan.radius / h)) + 2
    if backend_name(xp) == "numpy":
        out = np.zeros(plan.shape)
        _spread_compiled(np.ascontiguousarray(positions, dtype=np.float64), np.ascontiguousarray(charges, dtype=np.float64),
                         np.asarray(plan.origin), h, plan.sigma, plan.radius, npt, out)
        return out
    origin = xp.asarray(plan.origin)
    total = xp.zeros(n1 * n2 * n3, dtype=xp.float64)
    offs = xp.arange(npt)
    chunk = max(1, SPREAD_CHUNK_ENTRIES // npt**3)
    for start in range(0, positions.shape[0], chunk):
        pos = positions[start : start + chunk]
        q = charges[start : start + chunk]
        rel = (pos - origin) / h
        first = xp.ceil(rel - plan.radius / h).astype(xp.int64)  # (c, 3)
        idx = first[:, :, None] + offs[None, None, :]  # (c, 3, P)
        w = _gauss1((idx - rel[:, :, None]) * h, plan.sigma, xp)  # (c, 3, P)
        w = xp.where(xp.abs(idx - rel[:, :, None]) * h <= plan.radius, w, 0.0)
        wx = w[:, 0] * q[:, None]
        weights = (wx[:, :, None, None] * w[:, 1][:, None, :, None]) * w[:, 2][:, None, None, :]
        flat = (idx[:, 0][:, :, None, None] * n2 + idx[:, 1][:, None, :, None]) * n3 + idx[:, 2][:, None, None, :]
        total += xp.bincount(flat.reshape(-1), weights=weights.reshape(-1), minlength=total.size)
    return total.reshape(plan.shape)


def _fft(xp):
    if backend_name(xp) == "numpy":
        import scipy.fft

        return scipy.fft, {"workers": -1}
    return xp.fft, {}


def convolve_long_kernel(rho, plan: LongRangePlan, split):
    """U_g = h³ Σ_g' ψ(y_g − y_g') ρ_g' by zero-padded FFT, shape ``plan.shape``, e/Å."""
    xp = namespace_of(rho)
    fft, kw = _fft(xp)
    import scipy.fft as sfft

    h = plan.spacing
    fshape = tuple(sfft.next_fast_len(2 * n - 1, real=True) for n in plan.shape)
    axes = []
    for n, nf in zip(plan.shape, fshape):
        k = np.arange(nf)
        k = np.where(k < n, k, k - nf)  # wrap-around offsets; the middle gap is never used
        axes.append(xp.asarray(k * h, dtype=xp.float64))
    r = xp.sqrt(axes[0][:, None, None] ** 2 + axes[1][None, :, None] ** 2 + axes[2][None, None, :] ** 2)
    kernel = split.deconvolved_long(r, plan.sigma) * h**3
    del r
    spec = fft.rfftn(kernel, s=fshape, **kw)
    del kernel
    spec *= fft.rfftn(rho, s=fshape, **kw)
    out = fft.irfftn(spec, s=fshape, **kw)
    n1, n2, n3 = plan.shape
    return xp.ascontiguousarray(out[:n1, :n2, :n3])


def node_coordinates(plan: LongRangePlan, *, xp=np):
    """Chebyshev node coordinates per axis (list of three (m_k,) arrays, Å)."""
    return [
        from_reference(cheb_nodes1(m, xp=xp), lo, hi) for m, lo, hi in zip(plan.degree, plan.box_lo, plan.box_hi)
    ]


def gather_at_nodes(grid_values, plan: LongRangePlan):
    """Φ_L at the Chebyshev nodes, shape ``plan.degree``: h³ Σ_g W_s(x − y_g) U_g, separable."""
    xp = namespace_of(grid_values)
    out = grid_values
    for axis, x in enumerate(node_coordinates(plan, xp=xp)):
        y = plan.origin[axis] + plan.spacing * xp.arange(plan.shape[axis], dtype=xp.float64)
        mat = _gauss1(x[:, None] - y[None, :], plan.sigma, xp) * plan.spacing
        out = mode_product(out, mat, axis)
    return out


def values_to_coefficients(values):
    """Chebyshev coefficients (low to high per axis) of node values, shape unchanged."""
    xp = namespace_of(values)
    out = values
    for axis in range(3):
        out = mode_product(out, values_to_coefficients_matrix(values.shape[axis], xp=xp), axis)
    return out


def long_range_coefficients(positions, charges, plan: LongRangePlan, split):
    """Chebyshev coefficient tensor of Σ_j q_j φ_L(x − x_j) over the box (linear in ``charges``).

    Calling this on disjoint chunks of atoms and summing the results gives the coefficients
    of the whole system (up to rounding), which makes it the unit of work of a scatter–gather
    build.

    Parameters
    ----------
    positions : (n_atoms, 3) float64, Å (inside the box of ``plan``)
    charges : (n_atoms,) float64, e
    plan : LongRangePlan
    split : EwaldSplit or GaussianSumSplit

    Returns
    -------
    (m1, m2, m3) float64 array
        Coefficients c_abc with Φ_L(x) ≈ Σ c_abc T_a(ξ₁) T_b(ξ₂) T_c(ξ₃), e/Å.
    """
    t0 = time.perf_counter()
    rho = spread_charges(positions, charges, plan)
    t1 = time.perf_counter()
    grid = convolve_long_kernel(rho, plan, split)
    t2 = time.perf_counter()
    coeffs = values_to_coefficients(gather_at_nodes(grid, plan))
    t3 = time.perf_counter()
    log.debug(
        "long range: %d atoms, grid %s, m %s: spread %.2fs, convolve %.2fs, gather+dct %.2fs",
        positions.shape[0], plan.shape, plan.degree, t1 - t0, t2 - t1, t3 - t2,
    )
    return coeffs


def compress_coefficients(coeffs, tolerance: float, *, ranks=None, max_rank=None, hooi_sweeps: int = 0):
    """Tucker-compress a coefficient tensor: ``(core, factors, rel_error)``, see :func:`tucker_hosvd`."""
    return tucker_hosvd(coeffs, tolerance, ranks=ranks, max_rank=max_rank, hooi_sweeps=hooi_sweeps)
