"""Charge-weighted neighbour density with array code only (NumPy or CuPy), O(N) through a sorted cell list.

The same expansion as :mod:`pipeline.descriptors.density_cells`,
``A_i,nlm = Σ_j q_j R_n(r_ij) Y_lm(r̂_ij)`` with ``r_ij = x_j − x_i`` (centre → neighbour),
0 < r_ij < r_c, ``R_n`` of :func:`pipeline.descriptors.radial.radial_basis` and the
integral-normalised real spherical harmonics (e3nn order, polar axis +y, index l² + l + m) of
:func:`pipeline.equivariant.spherical_harmonics.spherical_harmonics`; units e. It is written
with sorts, gathers and ``bincount`` so that it runs unchanged on a GPU through CuPy and is
tested in CI through NumPy (the compiled kernel stays the CPU route):

1. The sources are sorted into the cell list of
   :func:`pipeline.electrostatics.short_range_cells.build_cell_list`; the centres (the first
   ``n_centres`` sources) are the targets of
   :func:`~pipeline.electrostatics.short_range_cells.candidate_pairs`, which yields the
   candidate pairs (centre, sorted source) chunk by chunk, at most ``block_pairs`` per chunk.
2. Per chunk the pairs inside the cutoff are kept (compressed before any feature is
   evaluated), their features q_j R_n(r) Y_lm(r̂) formed as one (pairs, N·(L+1)²) array and
   summed per centre by one ``bincount`` over the flat (centre, feature) index, in pair order.
3. Pairs at r = 0 (the centre itself, and atoms at the same site) have no direction and are
   skipped; the coincident ones are counted (the centre itself is not).

Every pair is evaluated from both of its centres (the compiled CPU kernel visits it once and
uses ``Y_lm(−r̂) = (−1)^l Y_lm(r̂)``): a GPU has the arithmetic to spare, and scattering to
the source as well would need atomic updates of N·(L+1)² values per pair. Host transfers: the
three small ones of the cell list (its bounding box, the total count of candidate pairs, the
chunk boundaries), none inside the chunk loop.
Memory: about :func:`bytes_per_pair` bytes per candidate pair of a chunk, plus the atoms and
the result. On NumPy this route is for tests, not speed: at 10⁵ atoms of a protein-like cloud
(L = 2, N = 4, r_c = 6 Å, 84 neighbours per atom) it took 4.3 s against 0.28 s for the compiled
kernel on two threads (medians of three).
"""

from __future__ import annotations

import logging

from pipeline.backend import Array, namespace_of
from pipeline.descriptors.radial import radial_basis
from pipeline.electrostatics.short_range_cells import (
    BYTES_PER_PAIR,
    CELL_FRACTION,
    CellList,
    build_cell_list,
    candidate_pairs,
)
from pipeline.equivariant.spherical_harmonics import sh_dim, spherical_harmonics

log = logging.getLogger(__name__)

#: Bytes of temporaries per chunk by default (:func:`default_block_pairs`).
CHUNK_BYTES = 2**30
#: Fewest candidate pairs per chunk by default.
MIN_BLOCK_PAIRS = 2**12


def bytes_per_pair(lmax: int, n_radial: int) -> int:
    """Bytes of temporaries per candidate pair: the pair search's, plus the features and their flat index.

    The features of a pair inside the cutoff are N·(L+1)² float64 values with an int64 index
    each, and its radial and angular factors N + (L+1)² values; counted for every candidate.
    """
    n_sh = sh_dim(lmax)
    return BYTES_PER_PAIR + 16 * int(n_radial) * n_sh + 8 * (int(n_radial) + 2 * n_sh)


def default_block_pairs(lmax: int, n_radial: int) -> int:
    """Candidate pairs per chunk that keep the temporaries near :data:`CHUNK_BYTES`."""
    return max(MIN_BLOCK_PAIRS, CHUNK_BYTES // bytes_per_pair(lmax, n_radial))


def array_atom_density(
    sources_A: Array, charges_e: Array, *, n_centres: int, lmax: int, cutoff_A: float, n_radial: int,
    block_pairs: int | None = None, cells: CellList | None = None, cell_fraction: float = CELL_FRACTION,
) -> tuple[Array, Array, Array]:
    """Density expansion around the first ``n_centres`` sources, on the sources' array backend.

    Parameters
    ----------
    sources_A : (n_sources, 3) float64 array, Å
        The centres first, then any further neighbour-only sources (periodic images).
    charges_e : (n_sources,) float64 array, e
    n_centres : int
        Centres are ``sources_A[:n_centres]``.
    lmax : int
        Largest degree L.
    cutoff_A : float
        Cutoff r_c of the radial basis, Å (sources at distance ≥ r_c are left out).
    n_radial : int
        Number of radial functions N.
    block_pairs : int, optional
        Candidate pairs per chunk (memory ≈ :func:`bytes_per_pair` · block_pairs bytes; default
        :func:`default_block_pairs`).
    cells : CellList, optional
        :func:`~pipeline.electrostatics.short_range_cells.build_cell_list` of these sources and
        charges with this cutoff (built here when not given).
    cell_fraction : float
        Cell edge / r_c when the cell list is built here.

    Returns
    -------
    density : (n_centres, n_radial, (L+1)²) float64 array, e
    n_neighbours : (n_centres,) int64 array
        Sources at distance in (0, r_c).
    n_zero : (n_centres,) int64 array
        Other sources at distance exactly 0 (coincident atoms; the centre itself is not counted).
    """
    xp = namespace_of(sources_A, charges_e)
    n_sources, n_centres = int(sources_A.shape[0]), int(n_centres)
    if charges_e.shape != (n_sources,):
        raise ValueError(f"charges must have shape ({n_sources},), got {tuple(charges_e.shape)}")
    if not 0 <= n_centres <= n_sources:
        raise ValueError(f"n_centres must be in [0, {n_sources}], got {n_centres}")
    if int(lmax) < 0 or int(n_radial) < 1 or not cutoff_A > 0:
        raise ValueError(f"need lmax >= 0, n_radial >= 1 and a positive cutoff, got {lmax}, {n_radial}, {cutoff_A!r}")
    n_radial, n_sh = int(n_radial), sh_dim(lmax)
    n_feat = n_radial * n_sh
    out = xp.zeros((n_centres, n_feat), dtype=xp.float64)
    counts = xp.zeros(n_centres, dtype=xp.int64)
    zeros = xp.zeros(n_centres, dtype=xp.int64)
    if n_centres == 0:
        return out.reshape(0, n_radial, n_sh), counts, zeros
    if cells is None:
        cells = build_cell_list(sources_A, charges_e, cutoff_A, cell_fraction=cell_fraction)
    centres = sources_A[:n_centres]
    rc2 = float(cutoff_A) ** 2
    feature = xp.arange(n_feat, dtype=xp.int64)
    block = int(block_pairs) if block_pairs is not None else default_block_pairs(lmax, n_radial)
    for t0, t1, tgt, src in candidate_pairs(cells, centres, cutoff_A, block):
        n_chunk = t1 - t0
        d = cells.positions[src] - centres[t0:t1][tgt]  # centre → neighbour
        r2 = xp.sum(d * d, axis=1)
        zeros[t0:t1] = xp.bincount(tgt[r2 == 0.0], minlength=n_chunk) - 1  # every centre meets itself
        keep = xp.nonzero((r2 < rc2) & (r2 > 0.0))[0]
        rows = tgt[keep]
        counts[t0:t1] = xp.bincount(rows, minlength=n_chunk)
        r = xp.sqrt(r2[keep])
        radial = radial_basis(r, cutoff_A, n_radial) * cells.charges[src[keep]][:, None]  # (pairs, N)
        angular = spherical_harmonics(int(lmax), d[keep] / r[:, None], normalize=False)  # (pairs, (L+1)²)
        values = (radial[:, :, None] * angular[:, None, :]).reshape(-1)
        flat = (rows[:, None] * n_feat + feature[None, :]).reshape(-1)
        out[t0:t1] = xp.bincount(flat, weights=values, minlength=n_chunk * n_feat).reshape(n_chunk, n_feat)
    log.debug("density (array cell list): %d centres, %d sources, L=%d, N=%d", n_centres, n_sources, lmax, n_radial)
    return out.reshape(n_centres, n_radial, n_sh), counts, zeros
