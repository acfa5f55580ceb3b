"""Exact SH ↔ 2D Fourier (torus) transforms for the Fourier Gaunt product.

Each real SH, written in (β, α), extends analytically to the torus [0, 2π)²:
Y_lm(β, α) = T_l^|m|(β) · {1, cos mα, sin mα}, where T_l^m(β) = c_m P̃_l^m(cos β) is a
trigonometric polynomial of degree l in β (even m: a cosine series, odd m: a sine series,
because sin^m β is continued with its sign). Its coefficients F_lm[n] (|n| ≤ l) are
obtained exactly by a DFT of 2l+2 samples of the continuation.

Product of two signals: synthesise both on a torus grid by an inverse real 2D FFT, multiply
pointwise (= 2D convolution of the Fourier tables, exact when the grid does not alias), take
the forward 2D FFT and project back exactly on [0, π] × [0, 2π) with

    I(n) = ∫₀^π e^{inβ} sin β dβ = (1 + (−1)^n)/(1 − n²) (n ≠ ±1),  I(±1) = ±iπ/2,

so c_lm = 2π · {Re, Re, −Im}(Σ_n ĥ[μ, n] J_lμ[n]) with J_lμ[n] = Σ_n' F_lμ[n'] I(n + n').
No quadrature is involved: float64 results agree with the explicit Gaunt contraction to
~1e-15.

Layout: coefficients ``(B, n_coeff)``; torus values ``(B, n_beta, n_alpha)`` (batch first, so
the FFT axes are the contiguous ones).

References
----------
Luo, Chen, He, Wang, "Enabling efficient equivariant operations in the Fourier basis via
Gaunt tensor products", ICLR 2024, arXiv:2401.10216.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from pipeline.backend import backend_name
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


def torus_size(lmax1: int, lmax2: int, lmax_out: int, *, fast: bool = True) -> tuple[int, int]:
    """Torus grid (n_beta, n_alpha) for which the product of degree-L1 and degree-L2 signals,
    projected to degree Lout, is exact: n_beta ≥ 2(L1+L2)+1, n_alpha ≥ L1+L2+Lout+1 and
    ≥ 2·max(L)+1; rounded up to FFT-friendly sizes when ``fast``."""
    n_beta = 2 * (lmax1 + lmax2) + 1
    n_alpha = max(lmax1 + lmax2 + lmax_out + 1, 2 * max(lmax1, lmax2, lmax_out) + 1)
    if fast:
        from scipy.fft import next_fast_len

        n_beta, n_alpha = next_fast_len(n_beta, real=True), next_fast_len(n_alpha, real=True)
    return n_beta, n_alpha


class TorusTransform:
    """Tables for exact synthesis to and projection from a torus grid of size (n_beta, n_alpha).

    Parameters
    ----------
    lmax : int
        Largest degree handled.
    n_beta, n_alpha : int
        Torus grid size (see :func:`torus_size`).
    xp : module
    dtype : float32 or float64 (complex64/complex128 used internally)
    """

    def __init__(self, lmax: int, n_beta: int, n_alpha: int, *, xp: Any, dtype: Any):
        self.lmax, self.n_beta, self.n_alpha, self.xp = lmax, n_beta, n_alpha, xp
        self.dtype = np.dtype(dtype)
        self.cdtype = np.result_type(self.dtype, np.complex64)
        if n_alpha < 2 * lmax + 1 or n_beta < 2 * lmax + 1:
            raise ValueError(f"torus grid ({n_beta}, {n_alpha}) too small for degree {lmax}")
        table = legendre_fourier_table(lmax)  # [m, l, n+L]
        pos = np.arange(-lmax, lmax + 1) % n_beta
        self.synth = []  # real (n_beta, L−m+1): F = i^(m%2) · R
        for m in range(lmax + 1):
            r = np.zeros((n_beta, lmax - m + 1))
            part = table[m, m:].imag if m % 2 else table[m, m:].real
            np.add.at(r, pos, part.T)
            self.synth.append(xp.asarray(r, dtype=self.dtype))
        signed_n = np.arange(n_beta)
        signed_n = np.where(signed_n > n_beta // 2, signed_n - n_beta, signed_n)
        # J[m, l, k] = Σ_n' F[m, l, n'] I(signed_n[k] + n')
        moments = sin_moment(signed_n[:, None] + np.arange(-lmax, lmax + 1)[None, :])  # (n_beta, 2L+1)
        proj = np.einsum("mln,kn->mlk", table, moments) * (2.0 * np.pi)
        self.proj = [xp.asarray(proj[m, m:], dtype=self.cdtype) for m in range(lmax + 1)]
        from pipeline.equivariant.s2grid import slot_order

        self._slots = {l: slot_order(l, xp) for l in range(lmax + 1)}
        if backend_name(xp) == "numpy":
            import scipy.fft as fft_module

            self._fft = fft_module
        else:
            self._fft = xp.fft

    def synthesize(self, coeffs: Any, lmax: int) -> Any:
        """Torus values (B, n_beta, n_alpha) of f = Σ c_lm Y_lm from coefficients (B, (L+1)²)."""
        xp = self.xp
        order, _, ranges = self._slots[lmax]
        c = coeffs[:, order]
        spec = xp.zeros((c.shape[0], self.n_beta, self.n_alpha // 2 + 1), dtype=self.cdtype)
        parts = {}
        for slot, a, b in ranges:
            m = (slot + 1) // 2
            parts[slot] = c[:, a:b] @ self.synth[m][:, : b - a].T  # (B, n_beta)
        spec[:, :, 0].real = parts[0]
        for m in range(1, lmax + 1):
            cos_part, sin_part = parts[2 * m - 1], parts[2 * m]
            if m % 2 == 0:  # (Sc − i Ss)/2
                spec[:, :, m].real = 0.5 * cos_part
                spec[:, :, m].imag = -0.5 * sin_part
            else:  # i (Sc − i Ss)/2 = (Ss + i Sc)/2
                spec[:, :, m].real = 0.5 * sin_part
                spec[:, :, m].imag = 0.5 * cos_part
        return self._fft.irfft2(spec, s=(self.n_beta, self.n_alpha), axes=(1, 2), norm="forward")

    def analyze(self, values: Any, lmax: int) -> Any:
        """Exact projection c_lm = ∫ f Y_lm dΩ of torus values (B, n_beta, n_alpha) → (B, (L+1)²)."""
        xp = self.xp
        spec = self._fft.rfft2(values, axes=(1, 2), norm="forward")  # (B, n_beta, n_alpha//2+1)
        spec = xp.ascontiguousarray(spec[:, :, : lmax + 1].transpose(2, 0, 1))  # (L+1, B, n_beta)
        order, inverse, ranges = self._slots[lmax]
        out = xp.empty((values.shape[0], len(order)), dtype=values.dtype)
        for slot, a, b in ranges:
            m = (slot + 1) // 2
            if slot == 0 or slot % 2 == 1:
                z = spec[m] @ self.proj[m][: b - a].T
                out[:, a:b] = z.real
            else:
                out[:, a:b] = -z.imag
        return out[:, inverse]
