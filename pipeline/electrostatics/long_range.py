"""Chebyshev coefficients of the long-range potential in O(N) + poly(m), and their compression.

Method (real-space Gaussian gridding, in the spirit of Spectral Ewald / particle-mesh Ewald
but free space and without a periodic FFT solve): write φ_L = W_s * W_s * ψ with W_s a
normalised 3-D Gaussian of variance s² per axis and ψ the deconvolved long-range kernel
(:meth:`deconvolved_long`). Then, on a uniform grid y_g of spacing h covering the box plus the
spreading radius,

1. spread: ρ_g = Σ_j q_j W_s(y_g − x_j), truncated at radius R_w (N·P³ work,
   :func:`~pipeline.electrostatics.gridding.spread_charges`);
2. convolve: U_g = h³ Σ_g' ψ(y_g − y_g') ρ_g' (exact aperiodic discrete convolution through a
   zero-padded FFT of even length; ψ is even, so its transform is the DCT-I of one octant);
3. gather at the Chebyshev nodes x_abc of the box: Φ_L(x) = h³ Σ_g W_s(x − y_g) U_g, separable,
   hence three mode products with (m_k × n_k) matrices (and at the atoms themselves by
   :func:`~pipeline.electrostatics.gridding.interpolate_grid`, N·P³);
4. DCT-II per axis (dense m×m matrices) to Chebyshev coefficients.

Steps 2–3 are trapezoidal rules for the two convolution integrals; their aliasing error is
≈ exp(−(2π/h)²/(4α'² + 2/s²)) with 1/α'² = 1/α² − 4s², and truncating the window at
R_w = s√(2 ln(1/ε_g)) costs ≈ ε_g. We take s = :data:`SIGMA_FACTOR`/α, ε_g = ε ·
:data:`GRID_MARGIN` and the largest h that meets ε_g. The whole map from charges to
coefficients is linear in the charges: :func:`long_range_coefficients` on chunks of atoms can
be summed (scatter–gather), and :func:`compress_coefficients` compresses the sum.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass

import numpy as np

from pipeline.backend import backend_name, namespace_of
from pipeline.electrostatics.blas import single_blas_thread
from pipeline.electrostatics.chebyshev import (
    cheb_nodes1,
    degree_for_gaussian,
    from_reference,
    values_to_coefficients_matrix,
)
from pipeline.electrostatics.gridding import spread_charges, window_weights
from pipeline.electrostatics.short_range import SELF_BUFFER_ENTRIES
from pipeline.electrostatics.tucker import mode_product, tucker_hosvd

log = logging.getLogger(__name__)

#: Spreading width s·t_max (dimensionless); smaller s means fewer window points P but a finer grid.
SIGMA_FACTOR = 0.3
#: Accuracy of the grid steps relative to the requested tolerance.
GRID_MARGIN = 0.3


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
        Truncation radius R_w of the window.
    origin : tuple of 3 floats
        Position of grid point (0, 0, 0).
    shape : tuple of 3 ints
        Uniform grid points per axis n_k.
    beta : float
        0 for the Gaussian window (free space); > 0 for the exponential-of-semicircle window
        of shape parameter β and half-width R_w (``sigma`` unused), see
        :func:`~pipeline.electrostatics.gridding.window_weights`.
    """

    box_lo: tuple
    box_hi: tuple
    degree: tuple
    spacing: float
    sigma: float
    radius: float
    origin: tuple
    shape: tuple
    beta: float = 0.0

    def to_dict(self) -> dict:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "LongRangePlan":
        """Inverse of :meth:`to_dict` (lists back to tuples)."""
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in data.items()})


def grid_spacing(t_max: float, sigma: float, grid_tolerance: float) -> float:
    """Largest h (Å) with aliasing exp(−(2π/h)²/(4α'² + 2/s²)) ≤ ``grid_tolerance``."""
    inv = 1.0 / t_max**2 - 4.0 * sigma**2
    if inv <= 0:
        raise ValueError(f"spreading width s={sigma} Å too large for t_max={t_max} 1/Å (need s < 1/(2 t_max))")
    width2 = 4.0 / inv + 2.0 / sigma**2
    return 2.0 * math.pi / math.sqrt(width2 * math.log(1.0 / grid_tolerance))


def plan_long_range(box_lo, box_hi, t_max: float, tolerance: float, *, degree=None, spacing=None,
                    grid_tolerance: float | None = None) -> LongRangePlan:
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
    grid_tolerance : float, optional
        Accuracy ε_g of the grid steps (default ε · :data:`GRID_MARGIN`).
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
    grid_tol = tolerance * GRID_MARGIN if grid_tolerance is None else float(grid_tolerance)
    sigma = SIGMA_FACTOR / t_max
    h = grid_spacing(t_max, sigma, grid_tol) if spacing is None else float(spacing)
    radius = sigma * math.sqrt(2.0 * math.log(1.0 / grid_tol))
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


def fft_shape(shape) -> tuple:
    """Zero-padded FFT sizes: the smallest fast even length ≥ 2n − 1 per axis."""
    import scipy.fft as sfft

    out = []
    for n in shape:
        nf = sfft.next_fast_len(2 * n - 1, real=True)
        while nf % 2:
            nf = sfft.next_fast_len(nf + 1, real=True)
        out.append(int(nf))
    return tuple(out)


def estimate_build_bytes(plan: LongRangePlan, n_atoms: int, *, threads: int | None = None) -> int:
    """Peak memory of a build with ``plan`` (bytes, dominant arrays, within about a factor of two).

    The largest of: the FFT step (spread grid 8·Πn_k plus the zero-padded spectra, 16·Πnf_k of
    :func:`fft_shape`); the Chebyshev step (the grid, the gather intermediates
    8·(m₁n₂n₃ + m₁m₂n₃) and five m₁m₂m₃ copies for the transforms and the compression); the
    short range at the atoms (cell list about 12 float64 per atom plus one accumulation row of
    n_atoms per thread); plus positions and charges.
    """
    n_grid = math.prod(plan.shape)
    (m1, m2, m3), (_, n2, n3) = plan.degree, plan.shape
    fft_step = 8 * n_grid + 16 * math.prod(fft_shape(plan.shape))
    chebyshev_step = 8 * n_grid + 8 * (m1 * n2 * n3 + m1 * m2 * n3) + 40 * m1 * m2 * m3
    threads = (os.cpu_count() or 1) if threads is None else threads
    short_step = 8 * n_atoms * (12 + min(threads, SELF_BUFFER_ENTRIES // max(n_atoms, 1)))
    return int(max(fft_step, chebyshev_step, short_step) + 32 * n_atoms)


def kernel_spectrum(plan: LongRangePlan, split, fshape, *, xp=np):
    """DFT of h³ψ on the zero-padded grid, real, one octant: shape (nf_k/2 + 1,) per axis, on ``xp``.

    The kernel sampled at the wrap-around offsets is the even extension of its octant
    (offsets 0 … nf/2 per axis), whose DFT is the (unnormalised) DCT-I of the octant: SciPy's
    ``dctn(type=1)`` on the CPU; on other backends (CuPy has no DCT-I) three mode products with
    the dense DCT-I matrices, so the octant is built and transformed on the device.
    """
    h = plan.spacing
    # the grid is isotropic: |offset|² = h²(i² + j² + k²) takes few distinct integer values,
    # so ψ is evaluated once per value (on the host, 1-D) and gathered
    sq = [xp.arange(nf // 2 + 1, dtype=xp.int64) ** 2 for nf in fshape]
    n_values = sum((nf // 2) ** 2 for nf in fshape) + 1
    table = xp.asarray(split.deconvolved_long(h * np.sqrt(np.arange(n_values, dtype=np.float64)), plan.sigma))
    index = sq[0][:, None, None] + sq[1][None, :, None] + sq[2][None, None, :]
    kernel = table[index] * h**3
    del index
    if backend_name(xp) == "numpy":
        import scipy.fft as sfft

        return sfft.dctn(kernel, type=1, workers=-1, overwrite_x=True)
    for axis, nf in enumerate(fshape):
        half = nf // 2  # DCT-I: y_k = x_0 + (−1)^k x_N + 2 Σ_{0<n<N} x_n cos(πkn/N), N = nf/2
        n = np.arange(half + 1)
        mat = 2.0 * np.cos(np.pi * np.outer(n, n) / half)
        mat[:, 0] *= 0.5
        mat[:, -1] *= 0.5
        kernel = mode_product(kernel, xp.asarray(mat), axis)
    return kernel


def _multiply_even(spec, octant, xp):
    """spec (nf1, nf2, nf3/2+1) *= the even extension of ``octant`` along axes 0 and 1, in place."""
    h1, h2 = octant.shape[0] - 1, octant.shape[1] - 1
    spec[: h1 + 1, : h2 + 1] *= octant
    spec[: h1 + 1, h2 + 1 :] *= octant[:, h2 - 1 : 0 : -1]
    spec[h1 + 1 :, : h2 + 1] *= octant[h1 - 1 : 0 : -1, :]
    spec[h1 + 1 :, h2 + 1 :] *= octant[h1 - 1 : 0 : -1, h2 - 1 : 0 : -1]


def convolve_long_kernel(rho, plan: LongRangePlan, split):
    """U_g = h³ Σ_g' ψ(y_g − y_g') ρ_g' by zero-padded FFT, shape ``plan.shape``, e/Å.

    The 3-D transform is done one axis at a time (z, y, x forward; x, y, z back), so the
    zero padding of an axis is only ever transformed for the rows that carry data and the
    output is cut back to ``plan.shape`` axis by axis: the largest array is one padded
    spectrum (nf1 · nf2 · (nf3/2 + 1) complex values).
    """
    xp = namespace_of(rho)
    fshape = fft_shape(plan.shape)
    octant = kernel_spectrum(plan, split, fshape, xp=xp)
    n1, n2, n3 = plan.shape
    if backend_name(xp) == "numpy":
        import scipy.fft as fft

        kw = {"workers": -1}
        own = {"workers": -1, "overwrite_x": True}
    else:
        fft, kw, own = xp.fft, {}, {}
    spec = fft.rfft(rho, n=fshape[2], axis=2, **kw)  # (n1, n2, nf3/2+1)
    spec = fft.fft(spec, n=fshape[1], axis=1, **own)  # (n1, nf2, ·)
    spec = fft.fft(spec, n=fshape[0], axis=0, **own)  # (nf1, nf2, ·)
    _multiply_even(spec, octant, xp)
    del octant
    spec = fft.ifft(spec, axis=0, **own)[:n1]
    spec = fft.ifft(spec, axis=1, **own)[:, :n2]
    out = fft.irfft(spec, n=fshape[2], axis=2, **kw)[:, :, :n3]
    return xp.ascontiguousarray(out)


def node_coordinates(plan: LongRangePlan, *, xp=np):
    """Chebyshev node coordinates per axis (list of three (m_k,) arrays, Å)."""
    return [
        from_reference(cheb_nodes1(m, xp=xp), lo, hi) for m, lo, hi in zip(plan.degree, plan.box_lo, plan.box_hi)
    ]


def gather_on_axes(grid_values, plan: LongRangePlan, axes):
    """h³ Σ_g W(x − y_g) U_g on the tensor grid ``axes[0] × axes[1] × axes[2]`` (Å), separable.

    Three mode products with (len(axes[k]) × n_k) window matrices (:func:`window_weights`),
    sparse on the CPU for a window of compact support; shape (len(axes[0]), …).
    """
    xp = namespace_of(grid_values)
    banded = plan.beta > 0.0 and backend_name(xp) == "numpy"  # a window of compact support
    out = grid_values
    for axis, x in enumerate(axes):
        y = plan.origin[axis] + plan.spacing * xp.arange(plan.shape[axis], dtype=xp.float64)
        mat = window_weights(xp.asarray(x)[:, None] - y[None, :], plan, xp) * plan.spacing
        out = _sparse_mode_product(out, mat, axis) if banded else mode_product(out, mat, axis)
    return out


def _sparse_mode_product(tensor, matrix, mode: int):
    """:func:`mode_product` for a (p, n) ``matrix`` with few nonzeros per row, as sparse products.

    A window of compact support touches P ≪ n grid points per node, so the cost is
    P·p·(the other two sizes) instead of n times that.
    """
    from scipy import sparse

    csr = sparse.csr_matrix(matrix)
    s0, s1, s2 = tensor.shape
    if mode == 0:
        return (csr @ tensor.reshape(s0, s1 * s2)).reshape(csr.shape[0], s1, s2)
    if mode == 1:
        return np.stack([csr @ tensor[a] for a in range(s0)])
    flat = np.ascontiguousarray(tensor.reshape(s0 * s1, s2).T)
    return np.ascontiguousarray((csr @ flat).T).reshape(s0, s1, csr.shape[0])


def gather_at_nodes(grid_values, plan: LongRangePlan):
    """Φ_L at the Chebyshev nodes, shape ``plan.degree``: h³ Σ_g W_s(x − y_g) U_g, separable."""
    return gather_on_axes(grid_values, plan, node_coordinates(plan, xp=namespace_of(grid_values)))


def values_to_coefficients(values):
    """Chebyshev coefficients (low to high per axis) of node values, shape unchanged.

    A DCT-II per axis: with SciPy's FFT on the CPU (m³ log m), as dense (m × m) mode products
    on other backends.
    """
    xp = namespace_of(values)
    if backend_name(xp) != "numpy":
        out = values
        for axis in range(3):
            out = mode_product(out, values_to_coefficients_matrix(values.shape[axis], xp=xp), axis)
        return out
    import scipy.fft as sfft

    out = np.asarray(values, dtype=np.float64)
    for axis in range(3):
        # c = (2/m) Σ_j f_j cos(πn(j + ½)/m), c₀ halved; scipy's unnormalised DCT-II has the factor 2
        out = sfft.dct(out, type=2, axis=axis, workers=-1) / out.shape[axis]
        out[(slice(None),) * axis + (0,)] *= 0.5
    return out


def long_range_grid(positions, charges, plan: LongRangePlan, split):
    """U = h³ ψ * ρ on the uniform grid of ``plan`` (steps 1–2 of the module Notes), e/Å."""
    t0 = time.perf_counter()
    rho = spread_charges(positions, charges, plan)
    t1 = time.perf_counter()
    grid = convolve_long_kernel(rho, plan, split)
    log.debug("long range: %d atoms, grid %s: spread %.2fs, convolve %.2fs", positions.shape[0], plan.shape,
              t1 - t0, time.perf_counter() - t1)
    return grid


def grid_to_coefficients(grid_values, plan: LongRangePlan):
    """Chebyshev coefficients (m1, m2, m3) of h³ W_s * U at the nodes (steps 3–4), e/Å."""
    with single_blas_thread(namespace_of(grid_values), grid_values.size):
        return values_to_coefficients(gather_at_nodes(grid_values, plan))


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
    return grid_to_coefficients(long_range_grid(positions, charges, plan, split), plan)


def compress_coefficients(coeffs, tolerance: float, *, ranks=None, max_rank=None, hooi_sweeps: int = 0):
    """Tucker-compress a coefficient tensor: ``(core, factors, rel_error)``, see :func:`tucker_hosvd`."""
    return tucker_hosvd(coeffs, tolerance, ranks=ranks, max_rank=max_rank, hooi_sweeps=hooi_sweeps)
