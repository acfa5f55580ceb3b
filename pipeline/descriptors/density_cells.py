"""Neighbour density expansion straight from a cell list, by a compiled parallel kernel (no pair list).

The same quantity as :func:`pipeline.descriptors.density.neighbour_density`,
``A_i,nlm = Σ_j q_j R_n(r_ij) Y_lm(r̂_ij)`` (``r_ij = x_j − x_i``, ``0 < r_ij < r_c``, units
e), computed without materialising the pairs:

* :func:`build_cells` sorts the source atoms into cubic cells of side ≥ cutoff /
  :data:`CELLS_PER_CUTOFF` (cells numbered (a·n_y + b)·n_z + c; ``start[k]`` is the first
  sorted source of cell k);
* :func:`atom_density_from_cells` (all atoms, the stage) evaluates every unordered pair once
  and adds it to both atoms (the reverse direction by ``Y_lm(−r̂) = (−1)^l Y_lm(r̂)``); slabs
  of cells along x run on Numba's threads, even slabs first, then odd ones, so no two threads
  write the same row;
* :func:`density_from_cells` (chosen centres, e.g. the validation sample) visits, for every
  centre, the cells within :data:`CELLS_PER_CUTOFF` cells of its own and accumulates
  ``q_j R_n(r) Y_lm(r̂)`` into the centre's row; blocks of centres run on Numba's threads.

Both skip columns of cells along z whose distance across x, y exceeds the cutoff.
The spherical harmonics are those of :func:`pipeline.equivariant.spherical_harmonics.spherical_harmonics`
(e3nn basis, integral normalisation) evaluated per pair by the same recurrences: the
4π-normalised Legendre functions over sin^m β by the three-term recurrence in l, times
Re/Im (z + i x)^m. The radial basis is :func:`pipeline.descriptors.radial.radial_basis`.
Results agree with the pair-list route to round-off (the sums run in another order).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numba
import numpy as np

from pipeline.descriptors.radial import radial_centres
from pipeline.equivariant.spherical_harmonics import sh_dim

log = logging.getLogger(__name__)

#: Centre blocks per thread of :func:`density_from_cells` (load balance against per-block set-up).
BLOCKS_PER_THREAD = 8
#: Cells per cutoff length: smaller cells visit fewer candidates outside the cutoff sphere
#: (5³ cells of side r_c/2 span 15.6 r_c³ against 27 r_c³ for 3³ cells of side r_c).
CELLS_PER_CUTOFF = 2
#: Largest number of cells per atom before the cells are made coarser (sparse structures).
MAX_CELLS_PER_ATOM = 8


@dataclass(frozen=True)
class CellList:
    """Source atoms sorted into cubic cells.

    Attributes
    ----------
    xs, ys, zs : (n_sources,) float64, Å
        Coordinates in cell order.
    order : (n_sources,) intp
        Input index of every sorted source.
    start : (n_cells + 1,) int64
        Sources of cell k are ``start[k]:start[k+1]``.
    origin : (3,) float64, Å
        Lower corner of cell (0, 0, 0).
    side : float
        Cell side, Å (≥ cutoff / :data:`CELLS_PER_CUTOFF`).
    shape : (3,) int64
        Cells per axis.
    """

    xs: np.ndarray
    ys: np.ndarray
    zs: np.ndarray
    order: np.ndarray
    start: np.ndarray
    origin: np.ndarray
    side: float
    shape: np.ndarray


def _cell_coords(points: np.ndarray, origin: np.ndarray, side: float, shape: np.ndarray) -> np.ndarray:
    return np.clip(np.floor((points - origin) / side).astype(np.int64), 0, shape - 1)


def build_cells(sources_A: np.ndarray, cutoff_A: float) -> CellList:
    """Sort ``sources_A`` (n_sources, 3) Å into cells of side ≥ ``cutoff_A`` / :data:`CELLS_PER_CUTOFF`."""
    sources_A = np.ascontiguousarray(sources_A, dtype=np.float64)
    origin = sources_A.min(axis=0)
    extent = sources_A.max(axis=0) - origin
    side = float(cutoff_A) / CELLS_PER_CUTOFF
    shape = np.maximum(np.ceil(extent / side).astype(np.int64), 1)
    while int(np.prod(shape)) > MAX_CELLS_PER_ATOM * sources_A.shape[0] + 1000:
        side *= 1.5
        shape = np.maximum(np.ceil(extent / side).astype(np.int64), 1)
    idx = _cell_coords(sources_A, origin, side, shape)
    key = (idx[:, 0] * shape[1] + idx[:, 1]) * shape[2] + idx[:, 2]
    order = np.argsort(key, kind="stable")
    start = np.zeros(int(np.prod(shape)) + 1, dtype=np.int64)
    np.cumsum(np.bincount(key, minlength=int(np.prod(shape))), out=start[1:])
    s = sources_A[order]
    return CellList(np.ascontiguousarray(s[:, 0]), np.ascontiguousarray(s[:, 1]), np.ascontiguousarray(s[:, 2]),
                    order, start, origin, side, shape)


def sh_recurrence_tables(lmax: int) -> tuple[np.ndarray, np.ndarray]:
    """Constants of the SH recurrences for degree ≤ ``lmax``.

    Returns
    -------
    pmm : (L+1,) float64
        P̃_m^m / sin^m β = √((2m+1)/2m) · P̃_{m−1}^{m−1} / sin^{m−1} β, P̃_0^0 = 1/√4π.
    rec : (L+1, L+1) float64
        ``rec[m, l] = √((4l² − 1)/(l² − m²))`` for l > m (the three-term recurrence factor a_lm;
        ``rec[m, m+1] = √(2m+3)``), 0 elsewhere.
    """
    pmm = np.empty(lmax + 1)
    rec = np.zeros((lmax + 1, lmax + 1))
    value = 1.0 / math.sqrt(4.0 * math.pi)
    for m in range(lmax + 1):
        if m > 0:
            value = math.sqrt((2 * m + 1) / (2 * m)) * value
        pmm[m] = value
        for l in range(m + 1, lmax + 1):
            rec[m, l] = math.sqrt(2 * m + 3) if l == m + 1 else math.sqrt((4 * l * l - 1) / (l * l - m * m))
    return pmm, rec


def gaussian_steps(cutoff_A: float, n_radial: int) -> tuple[float, np.ndarray]:
    """1/σ (1/Å) and the factors e^{−(2n−1)/2} (n ≥ 1; entry 0 is 1) of the Gaussian recurrence.

    The Gaussians of :func:`pipeline.descriptors.radial.radial_basis` have centres μ_n = nσ, so
    with x = r/σ, exp(−(x − n)²/2) = exp(−(x − n + 1)²/2) · eˣ · e^{−(2n−1)/2}.
    """
    _, width = radial_centres(cutoff_A, n_radial)
    steps = np.exp(-(2.0 * np.arange(n_radial) - 1.0) / 2.0)
    steps[0] = 1.0
    return 1.0 / width, steps


@numba.njit(cache=True, inline="always")
def _sh_unit(x, y, z, lmax, pmm, rec, out):  # pragma: no cover - compiled
    """Integral-normalised real SH (e3nn order) of the unit vector (x, y, z) into ``out``."""
    sqrt2 = math.sqrt(2.0)
    c = 1.0  # Re (z + i x)^m
    s = 0.0  # Im (z + i x)^m
    for m in range(lmax + 1):
        if m > 0:
            c, s = c * z - s * x, s * z + c * x
        scale = 1.0 if m == 0 else sqrt2
        p2 = pmm[m]
        k = m * m + 2 * m  # l = m: l² + l + m
        out[k] = (scale * p2) * c
        if m > 0:
            out[k - 2 * m] = (scale * p2) * s
        if m == lmax:
            break
        p1 = rec[m, m + 1] * y * p2
        k = (m + 1) * (m + 1) + (m + 1) + m
        out[k] = (scale * p1) * c
        if m > 0:
            out[k - 2 * m] = (scale * p1) * s
        a_prev = rec[m, m + 1]
        for l in range(m + 2, lmax + 1):
            a = rec[m, l]
            p = a * (y * p1 - p2 / a_prev)
            k = l * l + l + m
            out[k] = (scale * p) * c
            if m > 0:
                out[k - 2 * m] = (scale * p) * s
            p2, p1, a_prev = p1, p, a


@numba.njit(cache=True)
def sh_rows(vectors, lmax, pmm, rec):  # pragma: no cover - compiled
    """Real SH of unit ``vectors`` (n, 3): (n, (L+1)²) float64 (the kernel's own evaluation, for tests)."""
    n = vectors.shape[0]
    out = np.empty((n, (lmax + 1) ** 2))
    for i in range(n):
        _sh_unit(vectors[i, 0], vectors[i, 1], vectors[i, 2], lmax, pmm, rec, out[i])
    return out


@numba.njit(cache=True, inline="always")
def _pair_features(vx, vy, vz, d, cutoff, inv_width, steps, lmax, pmm, rec, rad, sh):  # pragma: no cover - compiled
    """R_n(d) into ``rad`` and Y_lm(v/d) into ``sh`` for the pair vector v of length d.

    With x = d/σ and μ_n = nσ: exp(−(x − n)²/2) = exp(−(x − n + 1)²/2) · eˣ · e^{−(2n−1)/2}
    (``steps[n]`` = e^{−(2n−1)/2}), two exponentials per pair for any N.
    """
    fc = 0.5 * (1.0 + math.cos(math.pi * d / cutoff))
    x = d * inv_width
    g = math.exp(-0.5 * x * x)
    ex = math.exp(x)
    rad[0] = g * fc
    for n in range(1, steps.shape[0]):
        g = g * ex * steps[n]
        rad[n] = g * fc
    inv_d = 1.0 / d
    _sh_unit(vx * inv_d, vy * inv_d, vz * inv_d, lmax, pmm, rec, sh)


@numba.njit(cache=True, parallel=True)
def _density_kernel(cx, cy, cz, centre_order, xs, ys, zs, qs, start, origin, side, shape, reach, cutoff, lmax,
                    inv_width, steps, pmm, rec, n_blocks, out, counts, zeros):  # pragma: no cover - compiled
    n_centres = cx.shape[0]
    n_radial = steps.shape[0]
    n_sh = (lmax + 1) ** 2
    size = (n_centres + n_blocks - 1) // n_blocks
    cut2 = cutoff * cutoff
    for blk in numba.prange(n_blocks):
        sh = np.empty(n_sh)
        rad = np.empty(n_radial)
        acc = np.empty(n_radial * n_sh)
        for t in range(blk * size, min(n_centres, (blk + 1) * size)):
            i = centre_order[t]
            x, y, z = cx[i], cy[i], cz[i]
            acc[:] = 0.0
            n_near = 0
            n_zero = 0
            a0 = min(max(int(math.floor((x - origin[0]) / side)), 0), shape[0] - 1)
            b0 = min(max(int(math.floor((y - origin[1]) / side)), 0), shape[1] - 1)
            c0 = min(max(int(math.floor((z - origin[2]) / side)), 0), shape[2] - 1)
            for a in range(max(a0 - reach, 0), min(a0 + reach + 1, shape[0])):
                gap_x = max(origin[0] + a * side - x, x - origin[0] - (a + 1) * side, 0.0)
                for b in range(max(b0 - reach, 0), min(b0 + reach + 1, shape[1])):
                    gap_y = max(origin[1] + b * side - y, y - origin[1] - (b + 1) * side, 0.0)
                    if gap_x * gap_x + gap_y * gap_y > cut2:
                        continue
                    row = (a * shape[1] + b) * shape[2]
                    lo = start[row + max(c0 - reach, 0)]
                    hi = start[row + min(c0 + reach + 1, shape[2])]
                    for j in range(lo, hi):
                        vx, vy, vz = xs[j] - x, ys[j] - y, zs[j] - z
                        d2 = vx * vx + vy * vy + vz * vz
                        if d2 > cut2:
                            continue
                        if d2 == 0.0:
                            n_zero += 1
                            continue
                        d = math.sqrt(d2)
                        if d >= cutoff:
                            continue
                        n_near += 1
                        _pair_features(vx, vy, vz, d, cutoff, inv_width, steps, lmax, pmm, rec, rad, sh)
                        for n in range(n_radial):
                            w = qs[j] * rad[n]
                            base = n * n_sh
                            for k in range(n_sh):
                                acc[base + k] += w * sh[k]
            for k in range(n_radial * n_sh):
                out[i, k] = acc[k]
            counts[i] = n_near
            zeros[i] = n_zero


@numba.njit(cache=True, parallel=True)
def _half_kernel(xs, ys, zs, qs, rows, start, origin, side, shape, reach, cutoff, lmax, inv_width, steps, pmm, rec, signs,
                 slab_start, parity, out, counts, zeros):  # pragma: no cover - compiled
    n_radial = steps.shape[0]
    n_sh = (lmax + 1) ** 2
    cut2 = cutoff * cutoff
    n_tasks = (slab_start.shape[0] - 1 - parity + 1) // 2
    for task in numba.prange(n_tasks):
        k = 2 * task + parity
        sh = np.empty(n_sh)
        rad = np.empty(n_radial)
        acc = np.empty(n_radial * n_sh)
        for s in range(slab_start[k], slab_start[k + 1]):
            rs = rows[s]
            x, y, z = xs[s], ys[s], zs[s]
            acc[:] = 0.0
            n_near = 0
            n_zero = 0
            a0 = min(max(int(math.floor((x - origin[0]) / side)), 0), shape[0] - 1)
            b0 = min(max(int(math.floor((y - origin[1]) / side)), 0), shape[1] - 1)
            c0 = min(max(int(math.floor((z - origin[2]) / side)), 0), shape[2] - 1)
            for a in range(a0, min(a0 + reach + 1, shape[0])):  # later sources lie in the same or later x cells
                gap_x = max(origin[0] + a * side - x, x - origin[0] - (a + 1) * side, 0.0)
                for b in range(max(b0 - reach, 0), min(b0 + reach + 1, shape[1])):
                    gap_y = max(origin[1] + b * side - y, y - origin[1] - (b + 1) * side, 0.0)
                    if gap_x * gap_x + gap_y * gap_y > cut2:
                        continue
                    row = (a * shape[1] + b) * shape[2]
                    lo = max(start[row + max(c0 - reach, 0)], s + 1)
                    hi = start[row + min(c0 + reach + 1, shape[2])]
                    for t in range(lo, hi):
                        rt = rows[t]
                        if rs < 0 and rt < 0:
                            continue
                        vx, vy, vz = xs[t] - x, ys[t] - y, zs[t] - z
                        d2 = vx * vx + vy * vy + vz * vz
                        if d2 > cut2:
                            continue
                        if d2 == 0.0:
                            n_zero += 1
                            if rt >= 0:
                                zeros[rt] += 1
                            continue
                        d = math.sqrt(d2)
                        if d >= cutoff:
                            continue
                        _pair_features(vx, vy, vz, d, cutoff, inv_width, steps, lmax, pmm, rec, rad, sh)
                        if rs >= 0:
                            n_near += 1
                            for n in range(n_radial):
                                w = qs[t] * rad[n]
                                base = n * n_sh
                                for m in range(n_sh):
                                    acc[base + m] += w * sh[m]
                        if rt >= 0:  # centre t sees s along −v: Y_lm(−v̂) = (−1)^l Y_lm(v̂)
                            counts[rt] += 1
                            for n in range(n_radial):
                                w = qs[s] * rad[n]
                                base = n * n_sh
                                for m in range(n_sh):
                                    out[rt, base + m] += w * (signs[m] * sh[m])
            if rs >= 0:
                for m in range(n_radial * n_sh):
                    out[rs, m] += acc[m]
                counts[rs] += n_near
                zeros[rs] += n_zero


def atom_density_from_cells(
    sources_A: np.ndarray, charges_e: np.ndarray, *, n_centres: int, lmax: int, cutoff_A: float, n_radial: int,
    cells: CellList | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Density expansion around the first ``n_centres`` sources, each unordered pair evaluated once.

    The sorted sources are grouped into slabs along x, each :data:`CELLS_PER_CUTOFF` cells (at
    least one cutoff) thick. Source s visits the later sources t > s (same or following x
    cells) and adds the pair to both rows, the reverse direction by ``Y_lm(−r̂) = (−1)^l Y_lm(r̂)``;
    a slab's pairs then touch only itself and the next slab, so the even slabs run in parallel,
    then the odd ones, without write conflicts.

    Parameters
    ----------
    sources_A : (n_sources, 3) float64, Å
        The centres first, then any further neighbour-only sources (periodic images).
    charges_e : (n_sources,) float64, e
    n_centres : int
        Centres are ``sources_A[:n_centres]``.
    lmax, cutoff_A, n_radial, cells
        As in :func:`density_from_cells`.

    Returns
    -------
    density : (n_centres, n_radial, (L+1)²) float64, e
    n_neighbours : (n_centres,) int64
    n_zero : (n_centres,) int64
        Other sources at distance exactly 0 (coincident atoms; the centre itself is not counted).
    """
    start = time.perf_counter()
    sources_A = np.ascontiguousarray(sources_A, dtype=np.float64).reshape(-1, 3)
    charges_e = np.asarray(charges_e, dtype=np.float64)
    n_sources, n_centres = sources_A.shape[0], int(n_centres)
    _check_arguments(charges_e, n_sources, lmax, cutoff_A, n_radial)
    if not 0 <= n_centres <= n_sources:
        raise ValueError(f"n_centres must be in [0, {n_sources}], got {n_centres}")
    if cells is None:
        cells = build_cells(sources_A, cutoff_A)
    out = np.zeros((n_centres, int(n_radial) * sh_dim(lmax)))
    counts = np.zeros(n_centres, dtype=np.int64)
    zeros = np.zeros(n_centres, dtype=np.int64)
    if n_centres:
        inv_width, steps = gaussian_steps(cutoff_A, int(n_radial))
        pmm, rec = sh_recurrence_tables(int(lmax))
        reach = int(math.ceil(cutoff_A / cells.side))
        plane = int(cells.shape[1] * cells.shape[2])
        edges = np.minimum(np.arange(0, int(cells.shape[0]) + reach, reach), int(cells.shape[0]))
        slab_start = cells.start[np.unique(edges) * plane]
        rows = np.where(cells.order < n_centres, cells.order, -1).astype(np.int64)
        signs = np.repeat((-1.0) ** np.arange(int(lmax) + 1), 2 * np.arange(int(lmax) + 1) + 1)
        for parity in (0, 1):
            _half_kernel(cells.xs, cells.ys, cells.zs, np.ascontiguousarray(charges_e[cells.order]), rows, cells.start,
                         cells.origin, float(cells.side), cells.shape, reach, float(cutoff_A), int(lmax),
                         inv_width, steps, pmm, rec, signs, slab_start, parity, out, counts, zeros)
    log.info("density (cells, pairs once): %d centres, %d sources, %d neighbours, L=%d, N=%d %.2fs", n_centres,
             n_sources, int(counts.sum()), lmax, n_radial, time.perf_counter() - start)
    return out.reshape(n_centres, int(n_radial), sh_dim(lmax)), counts, zeros


def _check_arguments(charges_e, n_sources, lmax, cutoff_A, n_radial) -> None:
    if charges_e.shape != (n_sources,):
        raise ValueError(f"charges must have shape ({n_sources},), got {charges_e.shape}")
    if int(lmax) < 0 or int(n_radial) < 1 or not cutoff_A > 0:
        raise ValueError(f"need lmax >= 0, n_radial >= 1 and a positive cutoff, got {lmax}, {n_radial}, {cutoff_A!r}")


def density_from_cells(
    centres_A: np.ndarray, sources_A: np.ndarray, charges_e: np.ndarray, *, lmax: int, cutoff_A: float, n_radial: int,
    cells: CellList | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Density expansion around ``centres_A`` from every source atom within the cutoff.

    Parameters
    ----------
    centres_A : (n_centres, 3) float64, Å
    sources_A : (n_sources, 3) float64, Å
        Neighbour candidates (a centre that is also a source sees itself at distance 0, which is skipped).
    charges_e : (n_sources,) float64, e
    lmax : int
        Largest degree L.
    cutoff_A : float
        Cutoff of the radial basis, Å (sources at distance ≥ cutoff are left out).
    n_radial : int
        Number of radial functions N.
    cells : CellList, optional
        :func:`build_cells` of ``sources_A`` with this cutoff (built here when not given).

    Returns
    -------
    density : (n_centres, n_radial, (L+1)²) float64, e
    n_neighbours : (n_centres,) int64
        Sources at distance in (0, cutoff).
    n_zero : (n_centres,) int64
        Sources at distance exactly 0 (the centre itself, and any coincident atom).
    """
    start = time.perf_counter()
    centres_A = np.ascontiguousarray(centres_A, dtype=np.float64).reshape(-1, 3)
    sources_A = np.ascontiguousarray(sources_A, dtype=np.float64).reshape(-1, 3)
    charges_e = np.asarray(charges_e, dtype=np.float64)
    _check_arguments(charges_e, sources_A.shape[0], lmax, cutoff_A, n_radial)
    if cells is None:
        cells = build_cells(sources_A, cutoff_A)
    n_centres = centres_A.shape[0]
    out = np.empty((n_centres, int(n_radial) * sh_dim(lmax)))
    counts = np.empty(n_centres, dtype=np.int64)
    zeros = np.empty(n_centres, dtype=np.int64)
    if n_centres and sources_A.shape[0]:
        inv_width, steps = gaussian_steps(cutoff_A, int(n_radial))
        pmm, rec = sh_recurrence_tables(int(lmax))
        idx = _cell_coords(centres_A, cells.origin, cells.side, cells.shape)
        centre_order = np.argsort((idx[:, 0] * cells.shape[1] + idx[:, 1]) * cells.shape[2] + idx[:, 2], kind="stable")
        n_blocks = max(1, min(n_centres, BLOCKS_PER_THREAD * numba.get_num_threads()))
        _density_kernel(centres_A[:, 0].copy(), centres_A[:, 1].copy(), centres_A[:, 2].copy(), centre_order,
                        cells.xs, cells.ys, cells.zs, np.ascontiguousarray(charges_e[cells.order]), cells.start,
                        cells.origin, float(cells.side), cells.shape, int(math.ceil(cutoff_A / cells.side)), float(cutoff_A), int(lmax), inv_width,
                        steps, pmm, rec, n_blocks, out, counts, zeros)
    else:
        out[:] = 0.0
        counts[:] = 0
        zeros[:] = 0
    log.info("density (cells): %d centres, %d sources, %d neighbours, L=%d, N=%d %.2fs", n_centres, sources_A.shape[0],
             int(counts.sum()), lmax, n_radial, time.perf_counter() - start)
    return out.reshape(n_centres, int(n_radial), sh_dim(lmax)), counts, zeros
