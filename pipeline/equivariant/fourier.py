"""Exact SH ↔ Fourier-series transforms on the half torus, for the Fourier Gaunt product.

Each real SH, written in (β, α), extends analytically to the torus [0, 2π)²:
Y_lm(β, α) = T_l^|m|(β) · {1, cos mα, sin mα}, where T_l^m(β) = c_m P̃_l^m(cos β) is a
trigonometric polynomial of degree l in β (even m: a cosine series, odd m: a sine series,
because sin^m β is continued with its sign). Its coefficients F_lm[n] (|n| ≤ l) are
obtained exactly by a DFT of 2l+2 samples of the continuation
(:func:`legendre_fourier_table`).

Product of two signals (Luo et al.): on the torus the product is a 2D convolution of the
Fourier tables, and the result is projected back exactly with

    I(n) = ∫₀^π e^{inβ} sin β dβ = (1 + (−1)^n)/(1 − n²) (n ≠ ±1),  I(±1) = ±iπ/2.

Half torus. The torus is a double cover of the sphere, f(2π − β, α) = f(β, α + π), so
after the azimuthal transform the order-μ part of a product of degree-(L1, L2) signals is a
trigonometric polynomial in β of degree ≤ d = L1 + L2 with parity (−1)^μ: a cosine series
(even μ) or a sine series (odd μ). It is fixed by its values at the N = d + 1 half-torus
nodes β_j = π(j + ½)/N (the DCT-II / DST-II nodes), so only [0, π] is sampled: N rings
instead of the 2d + 1 of the full torus. Per order m the maps are real matrices:

* synthesis S_m[j, l−m] = Σ_n F_lm[n] e^{inβ_j} (the Fourier table summed at the nodes);
* projection A_m = K_m · B_m⁻¹, where B_m[j, n] = cos nβ_j (n = 0..N−1) or sin nβ_j
  (n = 1..N) turns node values into series coefficients, and
  K_m[l−m, n] = ∫₀^π {cos nβ, sin nβ} T_l^m(β) sin β dβ = Σ_n' F_lm[n'] ½(I(n'+n) ± I(n'−n))
  (divided by i for the sine) integrates them exactly against T_l^m.

The azimuth uses n_azimuth = L1 + L2 + Lout + 1 equispaced points, exact for the α
integrals. Both directions then run as per-m GEMMs in
:class:`~pipeline.equivariant.ring_transform.RingTransform`: the DFTs of the torus
formulation (sizes ≤ 4L + 1) are small dense GEMMs, with the Fourier-to-SH projection
fused into them, and the O(L³) cost of the Fourier method is kept. No quadrature rule is
involved: float64 results agree with the explicit Gaunt contraction to ~1e-15.

References
----------
Luo, Chen, He, Wang, "Enabling efficient equivariant operations in the Fourier basis via
Gaunt tensor products", ICLR 2024, arXiv:2401.10216.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.equivariant.ring_transform import RingTransform
from pipeline.equivariant.spherical_harmonics import legendre_table

log = logging.getLogger(__name__)


def legendre_fourier_table(lmax: int) -> np.ndarray:
    """Fourier coefficients of T_l^m(β) = c_m P̃_l^m(cos β) continued to the torus.

    Returns
    -------
    (L+1, L+1, 2L+1) complex128 array indexed [m, l, n + L]: T_l^m(β) = Σ_n F[m, l, n+L] e^{inβ};
    real for even m, imaginary for odd m.
    """
    n_samples = 2 * lmax + 2
    beta = 2.0 * np.pi * np.arange(n_samples) / n_samples
    values = legendre_table(lmax, np.cos(beta), np.sin(beta))  # [m, l, k]
    coeffs = np.fft.fft(values, axis=-1) / n_samples
    freqs = np.arange(-lmax, lmax + 1)
    table = coeffs[..., freqs % n_samples]
    odd = (np.arange(lmax + 1) % 2 == 1)[:, None, None]
    table = np.where(odd, 1j * table.imag, table.real + 0j)
    table[np.abs(table) < 1e-16] = 0.0
    return table


def sin_moment(n: np.ndarray) -> np.ndarray:
    """I(n) = ∫₀^π e^{inβ} sin β dβ for integer n (complex128, closed form)."""
    n = np.asarray(n)
    out = np.zeros(n.shape, dtype=np.complex128)
    even = n % 2 == 0
    out[even] = 2.0 / (1.0 - n[even].astype(np.float64) ** 2)
    out[n == 1] = 0.5j * np.pi
    out[n == -1] = -0.5j * np.pi
    return out


def half_torus_size(lmax1: int, lmax2: int, lmax_out: int) -> tuple[int, int]:
    """(n_beta, n_alpha) = (L1 + L2 + 1, L1 + L2 + Lout + 1): half-torus nodes fixing the
    β series of the product (degree ≤ L1 + L2) and azimuths integrating its α part against
    orders ≤ Lout exactly."""
    if min(lmax1, lmax2, lmax_out) < 0:
        raise ValueError(f"degrees must be >= 0, got {(lmax1, lmax2, lmax_out)}")
    return lmax1 + lmax2 + 1, lmax1 + lmax2 + lmax_out + 1


def half_torus_nodes(n_beta: int) -> np.ndarray:
    """β_j = π(j + ½)/n_beta, j < n_beta (float64, radians, increasing in (0, π))."""
    return np.pi * (np.arange(n_beta) + 0.5) / n_beta


def fourier_beta_matrices(lmax: int, n_beta: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Synthesis and exact projection matrices on the half-torus nodes, per order m.

    Returns
    -------
    synthesis : list of (n_beta, L−m+1) float64
        S_m[j, l−m] = T_l^m(β_j) from the Fourier table.
    projection : list of (L−m+1, n_beta) float64
        A_m with Σ_j A_m[l−m, j] h(β_j) = ∫₀^π h(β) T_l^m(β) sin β dβ for every
        trigonometric polynomial h of degree < n_beta with parity (−1)^m in β.
    """
    if n_beta < 1:
        raise ValueError(f"n_beta must be >= 1, got {n_beta}")
    table = legendre_fourier_table(lmax)  # [m, l, n' + L]
    freqs = np.arange(-lmax, lmax + 1)
    beta = half_torus_nodes(n_beta)
    phase = np.exp(1j * np.outer(beta, freqs))  # (n_beta, 2L+1)
    synthesis, projection = [], []
    for m in range(lmax + 1):
        f = table[m, m:]  # (L−m+1, 2L+1)
        values = phase @ f.T  # (n_beta, L−m+1), real up to rounding
        synthesis.append(values.real.copy())
        if m % 2 == 0:
            n = np.arange(n_beta)
            basis = np.cos(np.outer(beta, n))
            k = 0.5 * (f @ (sin_moment(freqs[:, None] + n[None, :]) + sin_moment(freqs[:, None] - n[None, :])))
        else:
            n = np.arange(1, n_beta + 1)
            basis = np.sin(np.outer(beta, n))
            k = (f @ (sin_moment(freqs[:, None] + n[None, :]) - sin_moment(freqs[:, None] - n[None, :]))) / 2j
        projection.append(np.linalg.solve(basis.T, k.real.T).T)
    return synthesis, projection


class HalfTorusTransform(RingTransform):
    """Exact synthesis to and projection from the half torus (n_beta nodes × n_alpha azimuths).

    Parameters
    ----------
    lmax : int
        Largest degree handled.
    n_beta, n_alpha : int
        Grid size (see :func:`half_torus_size`; for adjoints take the maximum over the
        three degree triples).
    xp : module
    dtype : float32 or float64
    """

    def __init__(self, lmax: int, n_beta: int, n_alpha: int, *, xp: Any, dtype: Any):
        synthesis, projection = fourier_beta_matrices(lmax, n_beta)
        super().__init__(lmax, n_alpha, {"value": synthesis}, projection, xp=xp, dtype=dtype)
