"""Charge-weighted neighbour density expansion ``A_i,nlm = Σ_j q_j R_n(r_ij) Y_lm(r̂_ij)``.

``r_ij = x_j − x_i`` (from the centre atom to its neighbour), ``j ≠ i``, ``r_ij < r_c``;
``R_n`` is the radial basis of :mod:`pipeline.descriptors.radial` (dimensionless, smooth
cutoff), ``Y_lm`` the integral-normalised real spherical harmonics of
:func:`pipeline.equivariant.spherical_harmonics.spherical_harmonics` (e3nn basis: polar axis
+y, flat index l² + l + m). Units of ``A``: e.

For all atoms each unordered pair is visited once: the reverse direction uses
``Y_lm(−r̂) = (−1)^l Y_lm(r̂)``. For a subset of centres (validation samples) the directed
pairs centre → neighbour are searched directly. Pairs are processed in chunks (bounded memory)
and scattered to atoms by sparse incidence-matrix products.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from tqdm import tqdm

from pipeline.descriptors.neighbours import PairList
from pipeline.descriptors.radial import radial_basis
from pipeline.equivariant.spherical_harmonics import sh_dim, spherical_harmonics

log = logging.getLogger(__name__)

#: Bytes of per-chunk pair features (n_chunk × n_radial × (L+1)²) processed at a time.
CHUNK_BYTES = 64 * 2**20

#: Units of the density expansion coefficients (charge × dimensionless radial basis).
DENSITY_UNITS = "e"


def degree_parity_signs(lmax: int) -> np.ndarray:
    """``(−1)^l`` for every flat SH index up to ``lmax``: (L+1)² array of ±1."""
    return np.concatenate([np.full(2 * l + 1, (-1.0) ** l) for l in range(lmax + 1)])


def _check(charges_e: np.ndarray, n_atoms: int, lmax: int, n_radial: int) -> np.ndarray:
    charges_e = np.asarray(charges_e, dtype=np.float64)
    if charges_e.shape != (n_atoms,):
        raise ValueError(f"charges must have shape ({n_atoms},), got {charges_e.shape}")
    if int(lmax) < 0:
        raise ValueError(f"lmax must be >= 0, got {lmax}")
    if int(n_radial) < 1:
        raise ValueError(f"n_radial must be >= 1, got {n_radial}")
    return charges_e


def _accumulate(out, rows, weights, vectors, distances, *, lmax, cutoff_A, n_radial, reverse=None, desc="density"):
    """Add ``weights_p R_n(d_p) Y(v̂_p)`` to ``out[rows_p]`` chunk by chunk.

    ``reverse = (rows2, weights2)`` also adds ``weights2_p R_n(d_p) Y(−v̂_p)`` to ``out[rows2_p]``.
    ``out`` is (n_out, n_radial·(L+1)²), modified in place.
    """
    import scipy.sparse as sp  # imported by the pair-list routes only

    n_out, n_feat = out.shape
    n_pairs = rows.shape[0]
    signs = np.tile(degree_parity_signs(lmax), n_radial)
    chunk = max(1024, CHUNK_BYTES // (8 * n_feat))
    starts = range(0, n_pairs, chunk)
    for lo in tqdm(starts, desc=desc, unit="chunk", disable=None if len(starts) > 1 else True):
        hi = min(lo + chunk, n_pairs)
        sh = spherical_harmonics(lmax, vectors[lo:hi] / distances[lo:hi, None], normalize=False)
        rad = radial_basis(distances[lo:hi], cutoff_A, n_radial)
        feat = (rad[:, :, None] * sh[:, None, :]).reshape(hi - lo, n_feat)
        cols = np.arange(hi - lo)
        out += sp.csr_matrix((weights[lo:hi], (rows[lo:hi], cols)), shape=(n_out, hi - lo)) @ feat
        if reverse is not None:
            rows2, weights2 = reverse
            back = sp.csr_matrix((weights2[lo:hi], (rows2[lo:hi], cols)), shape=(n_out, hi - lo)) @ feat
            out += back * signs


def neighbour_density(
    charges_e: np.ndarray, pairs: PairList, n_atoms: int, *, lmax: int, cutoff_A: float, n_radial: int
) -> np.ndarray:
    """Charge-weighted density expansion around every atom.

    Parameters
    ----------
    charges_e : (n_atoms,) float64, e
    pairs : PairList
        Half pair list within ``cutoff_A`` (:func:`pipeline.descriptors.neighbours.neighbour_pairs`).
    n_atoms : int
    lmax : int
        Largest degree L.
    cutoff_A : float
        Cutoff of the radial basis, Å (pairs beyond it get weight 0).
    n_radial : int
        Number of radial functions N.

    Returns
    -------
    (n_atoms, n_radial, (L+1)²) float64, e
    """
    start = time.perf_counter()
    charges_e = _check(charges_e, n_atoms, lmax, n_radial)
    out = np.zeros((n_atoms, n_radial * sh_dim(lmax)))
    i, j = pairs.first, pairs.second
    # centre i sees neighbour j along +r̂; centre j sees i along −r̂.
    _accumulate(
        out, i, charges_e[j], pairs.vectors_A, pairs.distances_A,
        lmax=lmax, cutoff_A=cutoff_A, n_radial=n_radial, reverse=(j, charges_e[i]),
    )
    log.info(
        "density: %d atoms, %d pairs, L=%d, N=%d %.2fs", n_atoms, pairs.n_pairs, lmax, n_radial, time.perf_counter() - start
    )
    return out.reshape(n_atoms, n_radial, sh_dim(lmax))


def neighbour_density_at(
    positions_A: np.ndarray,
    charges_e: np.ndarray,
    centres: np.ndarray,
    *,
    lmax: int,
    cutoff_A: float,
    n_radial: int,
) -> np.ndarray:
    """The same expansion for selected centre atoms only, from a fresh directed neighbour search.

    Parameters
    ----------
    positions_A : (n_atoms, 3) float64, Å
    charges_e : (n_atoms,) float64, e
    centres : (n_centres,) int
        Indices of the centre atoms.
    lmax, cutoff_A, n_radial
        As in :func:`neighbour_density`.

    Returns
    -------
    (n_centres, n_radial, (L+1)²) float64, e
    """
    from scipy.spatial import cKDTree

    positions_A = np.asarray(positions_A, dtype=np.float64)
    charges_e = _check(charges_e, positions_A.shape[0], lmax, n_radial)
    centres = np.asarray(centres, dtype=np.intp)
    lists = cKDTree(positions_A).query_ball_point(positions_A[centres], cutoff_A, workers=-1)
    counts = np.fromiter(map(len, lists), dtype=np.intp, count=len(lists))
    neighbours = np.concatenate([np.asarray(x, dtype=np.intp) for x in lists]) if counts.sum() else np.zeros(0, np.intp)
    rows = np.repeat(np.arange(centres.shape[0], dtype=np.intp), counts)
    vectors = positions_A[neighbours] - positions_A[centres[rows]]
    distances = np.sqrt(np.einsum("pk,pk->p", vectors, vectors))
    keep = (distances > 0.0) & (distances < cutoff_A)
    rows, neighbours, vectors, distances = rows[keep], neighbours[keep], vectors[keep], distances[keep]
    out = np.zeros((centres.shape[0], n_radial * sh_dim(lmax)))
    _accumulate(out, rows, charges_e[neighbours], vectors, distances, lmax=lmax, cutoff_A=cutoff_A, n_radial=n_radial)
    return out.reshape(centres.shape[0], n_radial, sh_dim(lmax))
