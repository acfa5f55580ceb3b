"""Real spherical harmonics in the e3nn basis, for any degree, by stable recurrences.

Conventions (pinned by ``tests/test_equivariant_sh.py``):

* polar axis +y: cos β = y, azimuth α = atan2(x, z), so x = sin β sin α, y = cos β,
  z = sin β cos α;
* no Condon–Shortley phase; order m = −l..l; flat index l² + l + m, so a signal of degree
  ≤ L has (L+1)² coefficients;
* Y_l0 = P̃_l^0(cos β), Y_lm = √2 P̃_l^m(cos β) cos(mα) and Y_l,−m = √2 P̃_l^m(cos β) sin(mα)
  for m > 0, with P̃_l^m = √((2l+1)/4π · (l−m)!/(l+m)!) P_l^m the 4π-normalised associated
  Legendre function (P_l^m ≥ 0 near β = 0⁺ for m ≥ 0: no (−1)^m);
* then the l = 1 block is (x, y, z) times a constant, so its Wigner matrix is the rotation.

Normalisations: ``"integral"`` (∫ Y_lm² dΩ = 1) and ``"component"`` (√4π × integral, so that
Σ_m Y_lm² = 2l+1 on the unit sphere).

The Legendre part is computed with the standard three-term recurrence in l for fixed m,
seeded by P̃_m^m = √((2m+1)/2m) sin β P̃_{m−1}^{m−1}; it is stable to high degree (tested to
l = 40 against orthonormality). The azimuthal part uses Re/Im (z + i x)^m, which carries
sin^m β, so no division by sin β occurs at the poles.

References
----------
Holmes & Featherstone, J. Geodesy 76 (2002) 279, doi:10.1007/s00190-002-0216-2.
Geiger & Smidt, e3nn: Euclidean neural networks, arXiv:2207.09453.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from pipeline.backend import namespace_of

log = logging.getLogger(__name__)

NORMALIZATIONS = ("integral", "component")


def sh_dim(lmax: int) -> int:
    """Number of coefficients (L+1)² of a signal of degree ≤ ``lmax``."""
    return (int(lmax) + 1) ** 2


def sh_index(l: int, m: int) -> int:
    """Flat index l² + l + m of (l, m) in e3nn order."""
    if abs(m) > l:
        raise ValueError(f"order m must satisfy |m| <= l, got l={l}, m={m}")
    return l * l + l + m


def lmax_of_dim(dim: int, *, name: str = "last axis") -> int:
    """Degree L with (L+1)² = ``dim``; ValueError naming ``name`` otherwise."""
    root = math.isqrt(int(dim))
    if root * root != dim or dim < 1:
        raise ValueError(f"{name} must have size (L+1)**2 (1, 4, 9, 16, ...), got {dim}")
    return root - 1


def legendre_table(lmax: int, cos_beta: Any, sin_beta: Any) -> Any:
    """4π-normalised associated Legendre functions, with the real-SH √2 for m > 0.

    Parameters
    ----------
    lmax : int
        Largest degree L.
    cos_beta, sin_beta : (n,) arrays
        cos β and the factor used for sin β. Passing ``sin_beta = 1`` gives the polynomial
        part P̃_l^m / sin^m β; passing a negative sin β evaluates the analytic continuation
        of P̃_l^m(cos β) to β ∈ (π, 2π) (used by the torus Fourier tables).

    Returns
    -------
    table : (L+1, L+1, n) array, indexed [m, l, point]
        c_m P̃_l^m(cos β) with c_0 = 1, c_m = √2; zero where l < m.
    """
    xp = namespace_of(cos_beta)
    z = xp.asarray(cos_beta)
    s = xp.asarray(sin_beta) + 0 * z
    n = z.shape[0]
    table = xp.zeros((lmax + 1, lmax + 1, n), dtype=z.dtype)
    pmm = xp.full((n,), 1.0 / math.sqrt(4.0 * math.pi), dtype=z.dtype)
    for m in range(lmax + 1):
        if m > 0:
            pmm = math.sqrt((2 * m + 1) / (2 * m)) * s * pmm
        scale = 1.0 if m == 0 else math.sqrt(2.0)
        table[m, m] = scale * pmm
        if m == lmax:
            break
        p_prev2 = pmm
        p_prev1 = math.sqrt(2 * m + 3) * z * pmm
        table[m, m + 1] = scale * p_prev1
        a_prev = math.sqrt(2 * m + 3)
        for l in range(m + 2, lmax + 1):
            a = math.sqrt((4 * l * l - 1) / (l * l - m * m))
            p = a * (z * p_prev1 - p_prev2 / a_prev)
            table[m, l] = scale * p
            p_prev2, p_prev1, a_prev = p_prev1, p, a
    return table


def spherical_harmonics(
    lmax: int,
    vectors: Any,
    *,
    normalization: str = "integral",
    normalize: bool = True,
) -> Any:
    """Real spherical harmonics Y_lm(r̂) for l = 0..``lmax`` in the e3nn basis.

    Parameters
    ----------
    lmax : int
        Largest degree L ≥ 0.
    vectors : (..., 3) float array
        Points (x, y, z); normalised to the unit sphere when ``normalize`` (zero vectors
        give the values at +y).
    normalization : {"integral", "component"}
        ∫ Y² dΩ = 1, or √4π times that.
    normalize : bool
        If False the vectors are assumed to be unit vectors already.

    Returns
    -------
    (..., (L+1)²) array of the dtype of ``vectors``, flat index l² + l + m.

    Examples
    --------
    >>> import numpy as np
    >>> y = spherical_harmonics(1, np.array([0.0, 0.0, 1.0]), normalization="component")
    >>> np.allclose(y[1:], [0.0, 0.0, np.sqrt(3.0)])
    True
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    if int(lmax) < 0:
        raise ValueError(f"lmax must be >= 0, got {lmax}")
    xp = namespace_of(vectors)
    v = xp.asarray(vectors)
    if v.ndim < 1 or v.shape[-1] != 3:
        raise ValueError(f"vectors must have shape (..., 3), got {tuple(v.shape)}")
    if v.dtype.kind != "f":
        v = v.astype(np.float64)
    batch = v.shape[:-1]
    v = v.reshape(-1, 3)
    if normalize:
        norm = xp.sqrt(xp.sum(v * v, axis=-1, keepdims=True))
        safe = norm > 0
        v = xp.where(safe, v / xp.where(safe, norm, 1.0), xp.asarray([0.0, 1.0, 0.0], dtype=v.dtype))
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    poly = legendre_table(lmax, y, xp.ones_like(y))  # P̃_l^m / sin^m β
    out = xp.zeros((v.shape[0], (lmax + 1) ** 2), dtype=v.dtype)
    cos_m = xp.ones_like(x)  # Re (z + i x)^m = sin^m β cos mα
    sin_m = xp.zeros_like(x)  # Im (z + i x)^m = sin^m β sin mα
    for m in range(lmax + 1):
        if m > 0:
            cos_m, sin_m = cos_m * z - sin_m * x, sin_m * z + cos_m * x
        for l in range(m, lmax + 1):
            out[:, l * l + l + m] = poly[m, l] * cos_m
            if m > 0:
                out[:, l * l + l - m] = poly[m, l] * sin_m
    if normalization == "component":
        out = out * math.sqrt(4.0 * math.pi)
    return out.reshape(*batch, (lmax + 1) ** 2)
