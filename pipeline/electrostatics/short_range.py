"""Exact short-range sums Σ_{0 < |y − x_j| < r_c} q_j φ_S(|y − x_j|) and their gradients.

On the CPU a compiled cell list (Numba, parallel over targets) does the work. Sources are
stored as separate coordinate arrays (x, y, z, q), sorted by columns of cells of edge r_c/3
in x and y and, inside a column, by z. Targets are visited in cell order (neighbouring
targets read the same sources from cache); for every target only the columns that the
sphere of radius r_c reaches are scanned, each trimmed to the exact z-range the sphere
covers above the column's nearest point (the z order makes that range contiguous), so
about 1.5 pairs are visited per pair inside the cutoff. The distances of a run are computed
in one loop that keeps the in-range pairs without branches; the kernel is then evaluated on
all collected pairs of the target in one long loop without branches, which the compiler
vectorises. Each target accumulates its own sum, so there are no write conflicts. At the
atoms themselves (:func:`short_range_at_atoms`) each pair is evaluated once and credited to
both atoms through per-thread buffers, half the work.

The kernel g(r) = r·φ_S(r), smooth on [0, r_c] for both splits, is evaluated as one
Chebyshev series of :data:`SERIES_TERMS` terms (:func:`kernel_series`, accurate to
:data:`TABLE_TOLERANCE` of g(0) = 1) when that is accurate enough, otherwise (and for the
field) from piecewise polynomials (:func:`kernel_table`, degree :data:`TABLE_DEGREE` on
equal intervals); φ_S = g/r, φ_S' = g'/r − g/r².

For other array backends (CuPy) the sorted cell list of
:mod:`~pipeline.electrostatics.short_range_cells` (array code, O(N)) does the same sum.

Coincident pairs (r = 0, an atom evaluated at its own site) are skipped and their charges
summed separately (``coincident=True``), so the caller can remove the long-range self term.
"""

from __future__ import annotations

import logging
import math

import numba
import numpy as np

from pipeline.backend import backend_name, namespace_of
from pipeline.electrostatics.chebyshev import (
    cheb_nodes1,
    chebvander,
    values_to_coefficients_matrix,
)
from pipeline.electrostatics.short_range_cells import cell_short_range_at_atoms, cell_short_range_sum

log = logging.getLogger(__name__)

#: Cell edge as a fraction of the cutoff.
CELL_FRACTION = 1.0 / 3.0
#: Largest per-thread accumulation buffer of the pairwise at-atom sum (entries of n_atoms each, summed over threads).
SELF_BUFFER_ENTRIES = 200_000_000
#: Targets per parallel work item of the target-centric sum.
TARGET_BLOCK = 256
#: Pairs collected per target before the kernel is evaluated on them in one vectorised loop
#: (raised to the longest column where that is longer).
PAIR_BUFFER = 4096
#: Polynomial degree of the tabulated kernel per interval.
TABLE_DEGREE = 6
#: Largest accepted error of the tabulated g(r) = r φ_S(r) (g(0) = 1).
TABLE_TOLERANCE = 1e-13
#: Terms of the single Chebyshev series of g on [0, r_c] used by the vectorised loops (a
#: compile-time constant, so the compiler unrolls the series and vectorises over pairs;
#: 40 terms reach 1e-14 for the Ewald split up to tolerance 1e-12).
SERIES_TERMS = 32


def kernel_table(split, cutoff: float):
    """Piecewise-polynomial table of g(r) = r·φ_S(r) on [0, ``cutoff``] Å.

    Parameters
    ----------
    split : EwaldSplit or GaussianSumSplit
    cutoff : float
        r_c in Å.

    Returns
    -------
    table : (n_intervals + 1, TABLE_DEGREE + 1) float64
        Row k holds the monomial coefficients (low to high) of g on [k Δ, (k+1) Δ] in the
        local variable t = r/Δ − k ∈ [0, 1] (the last row repeats the last interval).
    inv_step : float
        1/Δ in 1/Å.
    """
    deg = TABLE_DEGREE
    t_fit = 0.5 + 0.5 * np.cos(np.pi * (np.arange(3 * deg) + 0.5) / (3 * deg))  # interior points
    t_chk = np.linspace(0.0, 1.0, 17)[1:-1] + 1.0 / 64
    vander_fit = np.vander(t_fit, deg + 1, increasing=True)
    vander_chk = np.vander(t_chk, deg + 1, increasing=True)
    n_int = 64
    while True:
        step = float(cutoff) / n_int
        k = np.arange(n_int)[:, None]
        r_fit = (k + t_fit[None, :]) * step
        g_fit = r_fit * split.short(r_fit)
        coef = np.linalg.lstsq(vander_fit, g_fit.T, rcond=None)[0].T  # (n_int, deg + 1)
        r_chk = (k + t_chk[None, :]) * step
        err = float(np.max(np.abs(coef @ vander_chk.T - r_chk * split.short(r_chk))))
        if err <= TABLE_TOLERANCE or n_int >= 8192:
            break
        n_int *= 2
    if err > 1e3 * TABLE_TOLERANCE:
        raise RuntimeError(f"short-range kernel table: error {err:.1e} with {n_int} intervals (expected ≤ {TABLE_TOLERANCE})")
    table = np.vstack([coef, coef[-1:]])
    return np.ascontiguousarray(table), 1.0 / step


def kernel_series(split, cutoff: float):
    """Single Chebyshev series of g(r) = r·φ_S(r) on [0, ``cutoff``] Å, or None where it is not accurate.

    Returns
    -------
    coefficients : (SERIES_TERMS,) float64 or None
        g(r) = Σ_n c_n T_n(2r/r_c − 1), low to high; None when the series misses
        :data:`TABLE_TOLERANCE` (splits with very narrow short-range terms), so the
        piecewise table of :func:`kernel_table` is used instead.
    scale : float
        2/r_c in 1/Å.
    """
    m = SERIES_TERMS
    r = (cheb_nodes1(m) + 1.0) * (0.5 * float(cutoff))
    coef = values_to_coefficients_matrix(m) @ (r * split.short(r))
    r_chk = np.linspace(0.0, float(cutoff), 4 * m + 1)[1:]
    err = float(np.max(np.abs(chebvander(2.0 * r_chk / cutoff - 1.0, m) @ coef - r_chk * split.short(r_chk))))
    return (np.ascontiguousarray(coef) if err <= TABLE_TOLERANCE else None), 2.0 / float(cutoff)


@numba.njit(cache=True, inline="always")
def _series(r, coef, scale):  # pragma: no cover - compiled
    # Clenshaw recurrence with a compile-time number of terms
    x = r * scale - 1.0
    x2 = 2.0 * x
    b1 = 0.0
    b2 = 0.0
    for p in range(SERIES_TERMS - 1, 0, -1):
        b0 = coef[p] + x2 * b1 - b2
        b2 = b1
        b1 = b0
    return coef[0] + x * b1 - b2


@numba.njit(cache=True, inline="always")
def _g_and_dg(r, table, inv_step):  # pragma: no cover - compiled
    x = r * inv_step
    k = int(x)
    t = x - k
    deg = table.shape[1] - 1
    g = table[k, deg]
    dg = 0.0
    for p in range(deg - 1, -1, -1):
        dg = dg * t + g
        g = g * t + table[k, p]
    return g, dg * inv_step


@numba.njit(cache=True, inline="always")
def table_value(r, table, inv_step):  # pragma: no cover - compiled
    # Horner written out for TABLE_DEGREE = 6 (a fixed degree lets the compiler schedule it)
    x = r * inv_step
    k = int(x)
    t = x - k
    return table[k, 0] + t * (table[k, 1] + t * (table[k, 2] + t * (table[k, 3] + t * (
        table[k, 4] + t * (table[k, 5] + t * table[k, 6])))))


@numba.njit(cache=True, inline="always")
def _column_range(zs, start, base, c_lo, c_hi, z_lo, z_hi):  # pragma: no cover - compiled
    # sources of cells c_lo..c_hi of one column, trimmed to z_lo <= z <= z_hi (z-sorted column)
    j0 = start[base + c_lo]
    j1 = start[base + c_hi + 1]
    while j0 < j1 and zs[j0] < z_lo:
        j0 += 1
    while j1 > j0 and zs[j1 - 1] > z_hi:
        j1 -= 1
    return j0, j1


@numba.njit(cache=True, fastmath=True, error_model="numpy")
def _series_values(buf_r2, n, series, scale, out):  # pragma: no cover - compiled
    # out[k] = φ_S(√buf_r2[k]) = g(r)/r for k < n: one long loop without branches, the series
    # unrolled, so the compiler vectorises it over pairs
    for k in range(n):
        r = math.sqrt(buf_r2[k])
        out[k] = _series(r, series, scale) / r


@numba.njit(cache=True, fastmath=True, error_model="numpy")
def _cell_block(targets, order, i0, i1, xs, ys, zs, q, cell_start, origin, cell, nc, rc, table, inv_step, series, scale,
                use_series, want_field, pot, same, fld, buf_r2, buf_j, buf_v):  # pragma: no cover - compiled
    rc2 = rc * rc
    for ii in range(i0, i1):
        i = order[ii]
        y0 = targets[i, 0]
        y1 = targets[i, 1]
        y2 = targets[i, 2]
        acc = 0.0
        coin = 0.0
        n_buf = 0
        e0 = 0.0
        e1 = 0.0
        e2 = 0.0
        a_lo = max(int(math.floor((y0 - rc - origin[0]) / cell)), 0)
        a_hi = min(int(math.floor((y0 + rc - origin[0]) / cell)), nc[0] - 1)
        b_lo = max(int(math.floor((y1 - rc - origin[1]) / cell)), 0)
        b_hi = min(int(math.floor((y1 + rc - origin[1]) / cell)), nc[1] - 1)
        for a in range(a_lo, a_hi + 1):
            xa = origin[0] + a * cell
            dx = max(xa - y0, y0 - xa - cell, 0.0)
            dx2 = dx * dx
            if dx2 >= rc2:
                continue
            for b in range(b_lo, b_hi + 1):
                yb = origin[1] + b * cell
                dy = max(yb - y1, y1 - yb - cell, 0.0)
                dxy2 = dx2 + dy * dy
                if dxy2 >= rc2:
                    continue
                dz = math.sqrt(rc2 - dxy2)
                c_lo = max(int(math.floor((y2 - dz - origin[2]) / cell)), 0)
                c_hi = min(int(math.floor((y2 + dz - origin[2]) / cell)), nc[2] - 1)
                if c_lo > c_hi:
                    continue
                j0, j1 = _column_range(zs, cell_start, (a * nc[1] + b) * nc[2], c_lo, c_hi, y2 - dz, y2 + dz)
                if use_series and not want_field:
                    # in-range pairs of every run collected, evaluated together when the buffer fills
                    if n_buf + (j1 - j0) > buf_r2.shape[0]:
                        _series_values(buf_r2, n_buf, series, scale, buf_v)
                        for k in range(n_buf):
                            acc += q[buf_j[k]] * buf_v[k]
                        n_buf = 0
                    for j in range(j0, j1):
                        d0 = y0 - xs[j]
                        d1 = y1 - ys[j]
                        d2 = y2 - zs[j]
                        r2 = d0 * d0 + d1 * d1 + d2 * d2
                        buf_r2[n_buf] = r2
                        buf_j[n_buf] = j
                        n_buf += (r2 < rc2) & (r2 > 0.0)
                        coin += q[j] if r2 == 0.0 else 0.0
                    continue
                # distances of the whole run, in-range ones compressed without branches
                n_in = 0
                for j in range(j0, j1):
                    d0 = y0 - xs[j]
                    d1 = y1 - ys[j]
                    d2 = y2 - zs[j]
                    r2 = d0 * d0 + d1 * d1 + d2 * d2
                    buf_r2[n_in] = r2
                    buf_j[n_in] = j
                    n_in += r2 < rc2
                for k in range(n_in):
                    r2 = buf_r2[k]
                    j = buf_j[k]
                    if r2 == 0.0:
                        coin += q[j]
                        continue
                    r = math.sqrt(r2)
                    if not want_field:
                        acc += q[j] * table_value(r, table, inv_step) / r
                        continue
                    g, dg = _g_and_dg(r, table, inv_step)
                    inv_r = 1.0 / r
                    acc += q[j] * g * inv_r
                    # −q φ_S'(r)/r · d with φ_S' = g'/r − g/r²
                    s = -q[j] * (dg - g * inv_r) * inv_r * inv_r
                    e0 += s * (y0 - xs[j])
                    e1 += s * (y1 - ys[j])
                    e2 += s * (y2 - zs[j])
        if n_buf > 0:
            _series_values(buf_r2, n_buf, series, scale, buf_v)
            for k in range(n_buf):
                acc += q[buf_j[k]] * buf_v[k]
        pot[i] = acc
        same[i] = coin
        if want_field:
            fld[i, 0] = e0
            fld[i, 1] = e1
            fld[i, 2] = e2


@numba.njit(cache=True, parallel=True)
def _cell_sum(targets, order, xs, ys, zs, q, cell_start, origin, cell, nc, rc, table, inv_step, series, scale, use_series,
              want_field, max_column):  # pragma: no cover
    # blocks of consecutive (cell-ordered) targets; the prange body only calls the serial worker,
    # which Numba optimises better than a loop body outlined by the parallel backend
    n_t = targets.shape[0]
    pot = np.zeros(n_t)
    same = np.zeros(n_t)
    fld = np.zeros((n_t, 3)) if want_field else np.zeros((1, 3))
    n_blocks = (n_t + TARGET_BLOCK - 1) // TARGET_BLOCK
    for blk in numba.prange(n_blocks):
        buf_r2 = np.empty(max(max_column, PAIR_BUFFER))
        buf_j = np.empty(max(max_column, PAIR_BUFFER), dtype=np.int64)
        buf_v = np.empty(max(max_column, PAIR_BUFFER))
        _cell_block(targets, order, blk * TARGET_BLOCK, min(n_t, (blk + 1) * TARGET_BLOCK), xs, ys, zs, q, cell_start,
                    origin, cell, nc, rc, table, inv_step, series, scale, use_series, want_field, pot, same, fld, buf_r2,
                    buf_j, buf_v)
    return pot, same, fld


@numba.njit(cache=True, fastmath=True, error_model="numpy")
def _flush_pairs(buf_r2, buf_j, n, series, scale, buf_v, q, qi, acc_row):  # pragma: no cover - compiled
    # n collected pairs (i, buf_j[k]) at squared distances buf_r2[k]: Σ_k q_j φ_S for atom i
    # (returned) and q_i φ_S credited to each j
    _series_values(buf_r2, n, series, scale, buf_v)
    acc = 0.0
    for k in range(n):
        j = buf_j[k]
        acc += q[j] * buf_v[k]
        acc_row[j] += qi * buf_v[k]
    return acc


@numba.njit(cache=True, fastmath=True, error_model="numpy")
def _self_block(xs, ys, zs, q, i0, i1, cell_start, origin, cell, nc, rc, table, inv_step, series, scale, use_series,
                acc_row, buf_r2, buf_j, buf_v):  # pragma: no cover
    # Every pair once (sources sorted by column, then z: columns before the target's own hold
    # only earlier atoms, columns after it only later ones, and in its own column the later
    # atoms are those above it); both ends accumulate into acc_row.
    rc2 = rc * rc
    for i in range(i0, i1):
        y0 = xs[i]
        y1 = ys[i]
        y2 = zs[i]
        qi = q[i]
        a_i = min(max(int(math.floor((y0 - origin[0]) / cell)), 0), nc[0] - 1)
        b_i = min(max(int(math.floor((y1 - origin[1]) / cell)), 0), nc[1] - 1)
        own_row = a_i * nc[1] + b_i
        acc = 0.0
        n_buf = 0
        a_lo = max(int(math.floor((y0 - rc - origin[0]) / cell)), a_i)
        a_hi = min(int(math.floor((y0 + rc - origin[0]) / cell)), nc[0] - 1)
        b_lo = max(int(math.floor((y1 - rc - origin[1]) / cell)), 0)
        b_hi = min(int(math.floor((y1 + rc - origin[1]) / cell)), nc[1] - 1)
        for a in range(a_lo, a_hi + 1):
            xa = origin[0] + a * cell
            dx = max(xa - y0, y0 - xa - cell, 0.0)
            dx2 = dx * dx
            if dx2 >= rc2:
                continue
            for b in range(b_lo, b_hi + 1):
                row = a * nc[1] + b
                if row < own_row:
                    continue
                yb = origin[1] + b * cell
                dy = max(yb - y1, y1 - yb - cell, 0.0)
                dxy2 = dx2 + dy * dy
                if dxy2 >= rc2:
                    continue
                dz = math.sqrt(rc2 - dxy2)
                c_lo = max(int(math.floor((y2 - dz - origin[2]) / cell)), 0)
                c_hi = min(int(math.floor((y2 + dz - origin[2]) / cell)), nc[2] - 1)
                if c_lo > c_hi:
                    continue
                j0, j1 = _column_range(zs, cell_start, row * nc[2], c_lo, c_hi, y2 - dz, y2 + dz)
                if row == own_row:
                    j0 = max(j0, i + 1)
                if use_series:
                    # in-range pairs of every run collected, evaluated together when the buffer fills
                    if n_buf + (j1 - j0) > buf_r2.shape[0]:
                        acc += _flush_pairs(buf_r2, buf_j, n_buf, series, scale, buf_v, q, qi, acc_row)
                        n_buf = 0
                    for j in range(j0, j1):
                        d0 = y0 - xs[j]
                        d1 = y1 - ys[j]
                        d2 = y2 - zs[j]
                        r2 = d0 * d0 + d1 * d1 + d2 * d2
                        buf_r2[n_buf] = r2
                        buf_j[n_buf] = j
                        n_buf += (r2 < rc2) & (r2 > 0.0)
                    continue
                n_in = 0
                for j in range(j0, j1):
                    d0 = y0 - xs[j]
                    d1 = y1 - ys[j]
                    d2 = y2 - zs[j]
                    r2 = d0 * d0 + d1 * d1 + d2 * d2
                    buf_r2[n_in] = r2
                    buf_j[n_in] = j
                    n_in += (r2 < rc2) & (r2 > 0.0)
                for k in range(n_in):
                    r = math.sqrt(buf_r2[k])
                    v = table_value(r, table, inv_step) / r
                    buf_v[k] = v
                    acc += q[buf_j[k]] * v
                for k in range(n_in):
                    acc_row[buf_j[k]] += qi * buf_v[k]
        if n_buf > 0:
            acc += _flush_pairs(buf_r2, buf_j, n_buf, series, scale, buf_v, q, qi, acc_row)
        acc_row[i] += acc


@numba.njit(cache=True, parallel=True)
def _self_sum(xs, ys, zs, q, cell_start, origin, cell, nc, rc, table, inv_step, series, scale, use_series, n_blocks,
              max_column):  # pragma: no cover
    n = xs.shape[0]
    buf = np.zeros((n_blocks, n))
    size = (n + n_blocks - 1) // n_blocks
    for blk in numba.prange(n_blocks):
        buf_r2 = np.empty(max(max_column, PAIR_BUFFER))
        buf_j = np.empty(max(max_column, PAIR_BUFFER), dtype=np.int64)
        buf_v = np.empty(max(max_column, PAIR_BUFFER))
        _self_block(xs, ys, zs, q, blk * size, min(n, (blk + 1) * size), cell_start, origin, cell, nc, rc, table, inv_step,
                    series, scale, use_series, buf[blk], buf_r2, buf_j, buf_v)
    return buf.sum(axis=0)


def _cell_index(points, lo, cell, nc):
    idx = np.clip(np.floor((points - lo) / cell).astype(np.int64), 0, nc - 1)
    return (idx[:, 0] * nc[1] + idx[:, 1]) * nc[2] + idx[:, 2]


def _cell_list(positions, charges, cutoff):
    """Sources sorted by cell column (x, y cells) and then by z, as separate coordinate arrays.

    Returns (xs, ys, zs, q, start, origin, cell, nc, order, max_column): start[k] is the first
    sorted source of cell k (cells numbered (a·nc_y + b)·nc_z + c, so each column's cells are
    consecutive and its sources sorted by z), order maps sorted to input indices, max_column
    is the largest number of sources in one column.
    """
    lo = positions.min(axis=0) - 1e-9
    hi = positions.max(axis=0)
    cell = CELL_FRACTION * float(cutoff)
    nc = np.maximum(np.ceil((hi - lo) / cell).astype(np.int64), 1)
    while int(np.prod(nc)) > 8 * positions.shape[0] + 1000:  # very sparse: coarser cells
        cell *= 1.5
        nc = np.maximum(np.ceil((hi - lo) / cell).astype(np.int64), 1)
    key = _cell_index(positions, lo, cell, nc)
    order = np.lexsort((positions[:, 2], key))  # cell, then z (the z cell is monotone in z)
    counts = np.bincount(key, minlength=int(np.prod(nc)))
    start = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=start[1:])
    sorted_pos = positions[order]
    return (
        np.ascontiguousarray(sorted_pos[:, 0]),
        np.ascontiguousarray(sorted_pos[:, 1]),
        np.ascontiguousarray(sorted_pos[:, 2]),
        np.ascontiguousarray(charges[order]),
        start,
        np.ascontiguousarray(lo),
        cell,
        nc,
        order,
        int(counts.reshape(-1, nc[2]).sum(axis=1).max()),
    )


def short_range_sum(targets, positions, charges, split, cutoff: float, *, field: bool = False, coincident: bool = False):
    """Short-range potential (and optionally field) at ``targets`` from all atoms within ``cutoff``.

    Parameters
    ----------
    targets : (n_targets, 3) float64, Å
    positions : (n_atoms, 3) float64, Å
    charges : (n_atoms,) float64, e
    split : EwaldSplit or GaussianSumSplit
    cutoff : float
        r_c in Å; pairs with r ≥ r_c or r = 0 are skipped.
    field : bool
        Also return the short-range field −∇Φ_S, shape (n_targets, 3), e/Å².
    coincident : bool
        Also return Σ q_j over the atoms located exactly at each target, (n_targets,) e.

    Returns
    -------
    potential : (n_targets,) float64, e/Å
    field : (n_targets, 3) float64, e/Å² (only when ``field`` is true)
    coincident : (n_targets,) float64, e (only when ``coincident`` is true; last)
    """
    xp = namespace_of(targets, positions, charges)
    if targets.shape[0] == 0 or positions.shape[0] == 0:
        pot, same, fld = xp.zeros(targets.shape[0]), xp.zeros(targets.shape[0]), xp.zeros((targets.shape[0], 3))
    elif backend_name(xp) == "numpy":
        positions = np.ascontiguousarray(positions, dtype=np.float64)
        targets = np.ascontiguousarray(targets, dtype=np.float64)
        xs, ys, zs, q, start, origin, cell, nc, _, max_column = _cell_list(positions, np.asarray(charges, dtype=np.float64), cutoff)
        order = np.argsort(_cell_index(targets, origin, cell, nc), kind="stable")
        table, inv_step = kernel_table(split, cutoff)
        series, scale = kernel_series(split, cutoff)
        use_series = series is not None
        series = series if use_series else np.zeros(SERIES_TERMS)
        pot, same, fld = _cell_sum(targets, order, xs, ys, zs, q, start, origin, cell, nc, float(cutoff), table, inv_step,
                                   series, scale, use_series, bool(field), max_column)
    else:
        pot, same, fld = cell_short_range_sum(targets, positions, charges, split, cutoff, field=field)
    out = (pot,) + ((fld,) if field else ()) + ((same,) if coincident else ())
    return out if len(out) > 1 else pot


def short_range_at_atoms(positions, charges, split, cutoff: float):
    """Short-range potential at every atom from all other atoms within ``cutoff``, (n_atoms,) e/Å.

    Same sum as ``short_range_sum(positions, positions, charges, ...)``, but each pair is
    evaluated once and credited to both atoms (on the CPU through per-thread buffers, on other
    backends by :func:`~.short_range_cells.cell_short_range_at_atoms`), about half the work.
    Atoms at the same site are skipped.
    """
    xp = namespace_of(positions, charges)
    if backend_name(xp) != "numpy":
        return cell_short_range_at_atoms(positions, charges, split, cutoff)
    if positions.shape[0] < 2:
        return short_range_sum(positions, positions, charges, split, cutoff)
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    xs, ys, zs, q, start, origin, cell, nc, order, max_column = _cell_list(positions, np.asarray(charges, dtype=np.float64), cutoff)
    table, inv_step = kernel_table(split, cutoff)
    series, scale = kernel_series(split, cutoff)
    use_series = series is not None
    series = series if use_series else np.zeros(SERIES_TERMS)
    n_blocks = int(max(1, min(numba.get_num_threads(), SELF_BUFFER_ENTRIES // positions.shape[0])))
    pot_sorted = _self_sum(xs, ys, zs, q, start, origin, cell, nc, float(cutoff), table, inv_step, series, scale, use_series,
                           n_blocks, max_column)
    out = np.empty_like(pot_sorted)
    out[order] = pot_sorted
    return out

