"""Wigner D matrices of the real spherical harmonics, and random rotations.

D^l(R) is defined by Y_l(R r̂) = D^l(R) Y_l(r̂) for the real SH of
:mod:`pipeline.equivariant.spherical_harmonics` (so D¹(R) = R in the (x, y, z) order). It is
computed exactly by quadrature, D^l_ab = ∫ Y_la(R r̂) Y_lb(r̂) dΩ, on the Gauss–Legendre grid
that integrates degree 2l exactly; this is convention-free (no Euler angles involved).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.backend import namespace_of, to_host
from pipeline.equivariant.s2grid import gauss_legendre_grid, grid_points, minimal_grid
from pipeline.equivariant.spherical_harmonics import spherical_harmonics

log = logging.getLogger(__name__)


def random_rotations(n: int, *, rng: np.random.Generator, xp: Any = np) -> Any:
    """``n`` uniformly random proper rotations (Haar measure), shape (n, 3, 3), float64.

    Uses normalised Gaussian quaternions."""
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    r = np.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
            2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
            2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
        ],
        axis=-1,
    ).reshape(n, 3, 3)
    return xp.asarray(r)


def wigner_D(lmax: int, rotation: Any) -> Any:
    """Block-diagonal Wigner matrix acting on flat SH vectors of degree ≤ ``lmax``.

    Parameters
    ----------
    lmax : int
    rotation : (..., 3, 3) array, proper or improper orthogonal matrices. An improper
        matrix (det −1) gives the matrix of the function map f ↦ f∘R⁻¹ for scalar functions,
        i.e. parity (−1)^l times the rotation part.

    Returns
    -------
    (..., (L+1)², (L+1)²) array with blocks D^l(R) on the diagonal: Y(R r̂) = D Y(r̂).
    """
    xp = namespace_of(rotation)
    r = to_host(rotation).astype(np.float64)
    if r.shape[-2:] != (3, 3):
        raise ValueError(f"rotation must have shape (..., 3, 3), got {r.shape}")
    n_rings, n_azimuth = minimal_grid(2 * lmax)
    _, w, _ = gauss_legendre_grid(n_rings, n_azimuth)
    pts = grid_points(n_rings, n_azimuth).reshape(-1, 3)
    weights = np.broadcast_to(w * (2.0 * np.pi / n_azimuth), (n_azimuth, n_rings)).reshape(-1)
    y = spherical_harmonics(lmax, pts, normalize=False)  # (p, n)
    rotated = spherical_harmonics(lmax, np.einsum("...ij,pj->...pi", r, pts), normalize=False)  # (..., p, n)
    full = np.einsum("...pa,p,pb->...ab", rotated, weights, y)
    mask = np.zeros(((lmax + 1) ** 2,) * 2, dtype=bool)
    for l in range(lmax + 1):
        mask[l * l : (l + 1) ** 2, l * l : (l + 1) ** 2] = True
    full = np.where(mask, full, 0.0)
    return xp.asarray(full)


def parity_signs(lmax: int, parity: int = 1) -> np.ndarray:
    """Sign of each flat coefficient under inversion for a signal whose l-block has parity
    ``parity``·(−1)^l, shape ((L+1)²,) float64."""
    return np.concatenate([np.full(2 * l + 1, parity * (-1.0) ** l) for l in range(lmax + 1)])
