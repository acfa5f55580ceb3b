"""Exact short-range sums Σ_{0 < |y − x_j| < r_c} q_j φ_S(|y − x_j|) and their gradients.

On the CPU a compiled cell list (Numba, parallel over targets) does the work: sources are
sorted by cells of edge r_c/3, targets are visited in the same cell order (so neighbouring
targets read the same sources from cache), and for every target only the cell rows that the
sphere of radius r_c reaches are scanned, each trimmed to the cells the sphere crosses. Each
target accumulates its own sum, so there are no write conflicts. At the atoms themselves
(:func:`short_range_at_atoms`) each pair is evaluated once and credited to both atoms through
per-thread buffers, half the work. The kernel is tabulated:
g(r) = r·φ_S(r), smooth on [0, r_c] for both splits, is stored as piecewise polynomials
(degree :data:`TABLE_DEGREE` on equal intervals, checked to ~1e-14 of g(0) = 1 when built)
and φ_S = g/r, φ_S' = g'/r − g/r².

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
from pipeline.electrostatics.short_range_cells import cell_short_range_at_atoms, cell_short_range_sum

log = logging.getLogger(__name__)

#: Cell edge as a fraction of the cutoff.
CELL_FRACTION = 1.0 / 3.0
#: Largest per-thread accumulation buffer of the pairwise at-atom sum (entries of n_atoms each, summed over threads).
SELF_BUFFER_ENTRIES = 200_000_000
#: Targets per parallel work item of the target-centric sum.
TARGET_BLOCK = 256
#: Polynomial degree of the tabulated kernel per interval.
TABLE_DEGREE = 6
#: Largest accepted error of the tabulated g(r) = r φ_S(r) (g(0) = 1).
TABLE_TOLERANCE = 1e-13


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
def _g(r, table, inv_step):  # pragma: no cover - compiled
    # Horner written out for TABLE_DEGREE = 6 (a fixed degree lets the compiler schedule it)
    x = r * inv_step
    k = int(x)
    t = x - k
    return table[k, 0] + t * (table[k, 1] + t * (table[k, 2] + t * (table[k, 3] + t * (
        table[k, 4] + t * (table[k, 5] + t * table[k, 6])))))


@numba.njit(cache=True)
def _cell_block(targets, order, i0, i1, src, q, cell_start, origin, cell, nc, rc, table, inv_step, want_field,
                pot, same, fld):  # pragma: no cover - compiled
    rc2 = rc * rc
    for ii in range(i0, i1):
        i = order[ii]
        y0 = targets[i, 0]
        y1 = targets[i, 1]
        y2 = targets[i, 2]
        acc = 0.0
        coin = 0.0
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
                base = (a * nc[1] + b) * nc[2]
                for j in range(cell_start[base + c_lo], cell_start[base + c_hi + 1]):
                    d0 = y0 - src[j, 0]
                    d1 = y1 - src[j, 1]
                    d2 = y2 - src[j, 2]
                    r2 = d0 * d0 + d1 * d1 + d2 * d2
                    if r2 < rc2:
                        if r2 == 0.0:
                            coin += q[j]
                            continue
                        r = math.sqrt(r2)
                        if not want_field:
                            acc += q[j] * _g(r, table, inv_step) / r
                            continue
                        g, dg = _g_and_dg(r, table, inv_step)
                        inv_r = 1.0 / r
                        acc += q[j] * g * inv_r
                        if want_field:
                            # −q φ_S'(r)/r · d with φ_S' = g'/r − g/r²
                            s = -q[j] * (dg - g * inv_r) * inv_r * inv_r
                            e0 += s * d0
                            e1 += s * d1
                            e2 += s * d2
        pot[i] = acc
        same[i] = coin
        if want_field:
            fld[i, 0] = e0
            fld[i, 1] = e1
            fld[i, 2] = e2


@numba.njit(cache=True, parallel=True)
def _cell_sum(targets, order, src, q, cell_start, origin, cell, nc, rc, table, inv_step, want_field):  # pragma: no cover
    # blocks of consecutive (cell-ordered) targets; the prange body only calls the serial worker,
    # which Numba optimises better than a loop body outlined by the parallel backend
    n_t = targets.shape[0]
    pot = np.zeros(n_t)
    same = np.zeros(n_t)
    fld = np.zeros((n_t, 3)) if want_field else np.zeros((1, 3))
    n_blocks = (n_t + TARGET_BLOCK - 1) // TARGET_BLOCK
    for blk in numba.prange(n_blocks):
        _cell_block(targets, order, blk * TARGET_BLOCK, min(n_t, (blk + 1) * TARGET_BLOCK), src, q, cell_start, origin,
                    cell, nc, rc, table, inv_step, want_field, pot, same, fld)
    return pot, same, fld


@numba.njit(cache=True)
def _self_block(src, q, i0, i1, cell_start, origin, cell, nc, rc, table, inv_step, acc_row):  # pragma: no cover
    # Every pair once (sources sorted by cell: rows before the target's own row hold only
    # earlier atoms, rows after it only later ones); both ends accumulate into acc_row.
    rc2 = rc * rc
    for i in range(i0, i1):
        y0 = src[i, 0]
        y1 = src[i, 1]
        y2 = src[i, 2]
        qi = q[i]
        a_i = min(max(int(math.floor((y0 - origin[0]) / cell)), 0), nc[0] - 1)
        b_i = min(max(int(math.floor((y1 - origin[1]) / cell)), 0), nc[1] - 1)
        own_row = a_i * nc[1] + b_i
        acc = 0.0
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
                j0 = cell_start[row * nc[2] + c_lo]
                if row == own_row:
                    j0 = max(j0, i + 1)
                for j in range(j0, cell_start[row * nc[2] + c_hi + 1]):
                    d0 = y0 - src[j, 0]
                    d1 = y1 - src[j, 1]
                    d2 = y2 - src[j, 2]
                    r2 = d0 * d0 + d1 * d1 + d2 * d2
                    if r2 < rc2 and r2 > 0.0:
                        r = math.sqrt(r2)
                        v = _g(r, table, inv_step) / r
                        acc += q[j] * v
                        acc_row[j] += qi * v
        acc_row[i] += acc


@numba.njit(cache=True, parallel=True)
def _self_sum(src, q, cell_start, origin, cell, nc, rc, table, inv_step, n_blocks):  # pragma: no cover
    n = src.shape[0]
    buf = np.zeros((n_blocks, n))
    size = (n + n_blocks - 1) // n_blocks
    for blk in numba.prange(n_blocks):
        _self_block(src, q, blk * size, min(n, (blk + 1) * size), cell_start, origin, cell, nc, rc, table, inv_step,
                    buf[blk])
    return buf.sum(axis=0)


def _cell_index(points, lo, cell, nc):
    idx = np.clip(np.floor((points - lo) / cell).astype(np.int64), 0, nc - 1)
    return (idx[:, 0] * nc[1] + idx[:, 1]) * nc[2] + idx[:, 2]


def _cell_list(positions, charges, cutoff):
    lo = positions.min(axis=0) - 1e-9
    hi = positions.max(axis=0)
    cell = CELL_FRACTION * float(cutoff)
    nc = np.maximum(np.ceil((hi - lo) / cell).astype(np.int64), 1)
    while int(np.prod(nc)) > 8 * positions.shape[0] + 1000:  # very sparse: coarser cells
        cell *= 1.5
        nc = np.maximum(np.ceil((hi - lo) / cell).astype(np.int64), 1)
    key = _cell_index(positions, lo, cell, nc)
    order = np.argsort(key, kind="stable")
    counts = np.bincount(key, minlength=int(np.prod(nc)))
    start = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=start[1:])
    return (
        np.ascontiguousarray(positions[order]),
        np.ascontiguousarray(charges[order]),
        start,
        np.ascontiguousarray(lo),
        cell,
        nc,
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
        src, q, start, origin, cell, nc = _cell_list(positions, np.asarray(charges, dtype=np.float64), cutoff)
        order = np.argsort(_cell_index(targets, origin, cell, nc), kind="stable")
        table, inv_step = kernel_table(split, cutoff)
        pot, same, fld = _cell_sum(targets, order, src, q, start, origin, cell, nc, float(cutoff), table, inv_step, bool(field))
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
    src, q, start, origin, cell, nc = _cell_list(positions, np.asarray(charges, dtype=np.float64), cutoff)
    order = np.argsort(_cell_index(positions, origin, cell, nc), kind="stable")
    table, inv_step = kernel_table(split, cutoff)
    n_blocks = int(max(1, min(numba.get_num_threads(), SELF_BUFFER_ENTRIES // positions.shape[0])))
    pot_sorted = _self_sum(src, q, start, origin, cell, nc, float(cutoff), table, inv_step, n_blocks)
    out = np.empty_like(pot_sorted)
    out[order] = pot_sorted
    return out

