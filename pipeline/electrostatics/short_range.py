"""Exact short-range sums Σ_{0 < |y − x_j| < r_c} q_j φ_S(|y − x_j|) and their gradients.

On the CPU a compiled cell list (Numba, parallel over targets) does the work. Sources are
stored as separate coordinate arrays (x, y, z, q), sorted (counting sort) by columns of edge
r_c/3 in x and y and, inside a column, by slabs of height r_c/12 in z, so the sources of a
column between two slabs are one contiguous run. Targets are visited in cell order
(neighbouring targets read the same sources from cache); for every target only the columns
that the sphere of radius r_c reaches are scanned, each over the slabs that the sphere covers
above the column's nearest point (about 1.7 pairs visited per pair inside the cutoff,
counting the padding of the last step of each run).

Every run is evaluated whole, in steps of :data:`LANES` sources (the arrays are padded so a
step may read past the run's end), with the pairs outside the cutoff, coincident or past the
run masked to zero: one contiguous loop without branches, gathers or scatters (unsigned
indices, so no negative-index wrap-around breaks the contiguity), which the compiler
vectorises. The kernel there is φ_S(r) = 1/r − L(r²): for the Ewald and Gaussian-sum splits
L = 1/r − φ_S is the long range, an even entire function, so one polynomial in s = r² on
[0, r_c²] (:func:`kernel_polynomial`, Horner's rule written out for each length of
:data:`POLY_TERMS`) and one 1/√s give φ_S; the field comes from the same loop,
−φ_S'(r)/r = 1/r³ + 2 L'(r²) (the polynomial and its derivative together). The kernel's error
in g(r) = r·φ_S(r) (g(0) = 1) is at most :data:`TABLE_TOLERANCE`, or
:data:`KERNEL_ACCURACY_FRACTION` × the tolerance a caller passes (fewer terms; the at-atom
sums of a potential pass the build's tolerance). At the atoms themselves
(:func:`short_range_at_atoms`) each pair is evaluated once and credited to both atoms (the
run's contiguous entries of a per-thread buffer), half the work.

Splits for which no polynomial of :data:`POLY_TERMS` terms fits (the screened split, whose
1/r − φ_S = φ_L + (1 − e^{−κr})/r has odd powers of r) take the in-range pairs of each run
(compressed without branches) and the piecewise polynomials of :func:`kernel_table` (g and
g′, degree :data:`TABLE_DEGREE` on equal intervals, accurate to :data:`TABLE_TOLERANCE`);
φ_S = g/r, φ_S' = g'/r − g/r².

For other array backends (CuPy) the sorted cell list of
:mod:`~pipeline.electrostatics.short_range_cells` (array code, O(N)) does the same sum.

Coincident pairs (r = 0, an atom evaluated at its own site) are skipped and their charges
summed separately (``coincident=True``), so the caller can remove the long-range self term.
"""

from __future__ import annotations

import functools
import logging
import math

import numba
import numpy as np
from numba.extending import overload

from pipeline.backend import backend_name, namespace_of
from pipeline.electrostatics.chebyshev import cheb_nodes1, values_to_coefficients_matrix
from pipeline.electrostatics.short_range_cells import cell_short_range_at_atoms, cell_short_range_sum

log = logging.getLogger(__name__)

#: Column edge (cell edge in x and y) as a fraction of the cutoff.
CELL_FRACTION = 1.0 / 3.0
#: Slab height (cell edge in z) as a fraction of the cutoff: a run over whole slabs visits at
#: most one slab too many at each end.
SLAB_FRACTION = 1.0 / 12.0
#: Sources per step of the masked loops; the source arrays carry this many padding entries.
LANES = 8
#: Largest per-thread accumulation buffer of the pairwise at-atom sum (entries of n_atoms each, summed over threads).
SELF_BUFFER_ENTRIES = 200_000_000
#: Targets per parallel work item of the target-centric sum.
TARGET_BLOCK = 256
#: Polynomial degree of the tabulated kernel per interval.
TABLE_DEGREE = 6
#: Largest accepted error of the tabulated g(r) = r φ_S(r) (g(0) = 1).
TABLE_TOLERANCE = 1e-13
#: Term counts of the polynomial L(r²) = 1/r − φ_S(r) that are compiled (each a separate
#: specialisation, unrolled); the fewest that reach the accuracy are used. For the Ewald split
#: (α r_c = erfcinv(ε/10)) 24 terms reach 1e-14 of g(0) at ε = 1e-6 and 32 at ε = 1e-12.
POLY_TERMS = (18, 24, 32)
#: Accuracy of the kernel in g = r·φ_S (g(0) = 1) relative to a requested tolerance ε: well
#: below the cutoff's own error erfc(α r_c) = ε/10 per pair.
KERNEL_ACCURACY_FRACTION = 1e-3
#: Squared distances are clamped to at least this (Å²) before 1/√s, so masked coincident
#: pairs stay finite (1/r³ too); distinct float64 positions are never this close.
TINY_R2 = 1e-200


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


def kernel_accuracy(tolerance: float | None) -> float:
    """Largest accepted error of g = r·φ_S (g(0) = 1) for a sum at ``tolerance`` (None: full accuracy)."""
    if tolerance is None:
        return TABLE_TOLERANCE
    return max(TABLE_TOLERANCE, KERNEL_ACCURACY_FRACTION * float(tolerance))


@functools.lru_cache(maxsize=64)
def kernel_polynomial(split, cutoff: float, accuracy: float = TABLE_TOLERANCE):
    """Polynomial of L(r) = 1/r − φ_S(r) in s = r² on [0, ``cutoff``²], or None where none is accurate.

    Interpolated at Chebyshev nodes in t = 2s/r_c² − 1 with the fewest terms of
    :data:`POLY_TERMS` whose g(r) = r·φ_S(r) = 1 − r·L(r) is within ``accuracy`` everywhere on
    (0, r_c] (checked on a fine grid), and rewritten as monomials in t (L is entire in s, so
    the monomial coefficients stay of the size of L: no cancellation).

    Returns
    -------
    coefficients : tuple of float or None
        Monomial coefficients of t, highest power first (Horner order), length one of
        :data:`POLY_TERMS`; None when even the longest misses ``accuracy`` (splits with very
        narrow short-range terms), so the piecewise table of :func:`kernel_table` is used.
        Remembered for the last 64 (split, cutoff, accuracy) (splits are immutable).
    scale : float
        2/r_c² in 1/Å², t = s·scale − 1.
    """
    cutoff = float(cutoff)
    scale = 2.0 / cutoff**2
    r_chk = np.concatenate([np.geomspace(1e-6 * cutoff, 1e-2 * cutoff, 50), np.linspace(0.0, cutoff, 4001)[1:]])
    g_chk = r_chk * split.short(r_chk)
    for m in POLY_TERMS:
        r = np.sqrt((cheb_nodes1(m) + 1.0) / scale)
        cheb = values_to_coefficients_matrix(m) @ ((1.0 - r * split.short(r)) / r)
        coefficients = tuple(float(c) for c in np.polynomial.chebyshev.cheb2poly(cheb)[::-1])
        err = float(np.max(np.abs(1.0 - r_chk * horner(r_chk * r_chk * scale - 1.0, coefficients) - g_chk)))
        if err <= accuracy:
            return coefficients, scale
    return None, scale


def horner(t, coefficients):
    """Σ_k c_k t^(n−1−k) for ``coefficients`` c highest power first (Horner's rule); t any shape.

    Compiled code gets the rule written out for the tuple's length (see :func:`_horner_unrolled`).
    """
    value = np.zeros_like(t) if isinstance(t, np.ndarray) else 0.0
    for c in coefficients:
        value = value * t + c
    return value


@overload(horner, inline="always")
def _horner_unrolled(t, coefficients):
    # one expression per tuple length: the compiler sees straight-line code and vectorises the
    # loop that calls it over pairs
    expression = "coefficients[0]"
    for k in range(1, len(coefficients)):
        expression = f"({expression}) * t + coefficients[{k}]"
    namespace = {}
    exec(f"def impl(t, coefficients):\n    return {expression}\n", namespace)  # noqa: S102 - generated from a length only
    return namespace["impl"]


def horner_with_derivative(t, coefficients):
    """(p(t), p'(t)) of the polynomial of :func:`horner` (same ``coefficients``), each t's shape."""
    value = np.zeros_like(t) if isinstance(t, np.ndarray) else 0.0
    slope = np.zeros_like(t) if isinstance(t, np.ndarray) else 0.0
    for c in coefficients:
        slope = slope * t + value
        value = value * t + c
    return value, slope


@overload(horner_with_derivative, inline="always")
def _horner_with_derivative_unrolled(t, coefficients):
    lines = ["    value = coefficients[0]", "    slope = 0.0 * t"]
    for k in range(1, len(coefficients)):
        lines += ["    slope = slope * t + value", f"    value = value * t + coefficients[{k}]"]
    namespace = {}
    exec("def impl(t, coefficients):\n" + "\n".join(lines) + "\n    return value, slope\n", namespace)  # noqa: S102
    return namespace["impl"]


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
def _column_run(y0, y1, y2, a, b, dx2, cell_start, origin, cell, slab, nc, rc2):  # pragma: no cover - compiled
    # sources of column (a, b) in the slabs that the sphere of radius r_c about y covers above
    # the column's nearest point (x distance² dx2 given); an empty run (j0 = j1) when none
    yb = origin[1] + b * cell
    dy = max(yb - y1, y1 - yb - cell, 0.0)
    dxy2 = dx2 + dy * dy
    if dxy2 >= rc2:
        return 0, 0
    dz = math.sqrt(rc2 - dxy2)
    c_lo = max(int(math.floor((y2 - dz - origin[2]) / slab)), 0)
    c_hi = min(int(math.floor((y2 + dz - origin[2]) / slab)), nc[2] - 1)
    if c_lo > c_hi:
        return 0, 0
    base = (a * nc[1] + b) * nc[2]
    return cell_start[base + c_lo], cell_start[base + c_hi + 1]


@numba.njit(cache=True, inline="always")
def _target_columns(y0, y1, origin, cell, nc, rc):  # pragma: no cover - compiled
    # column index ranges (a_lo, a_hi, b_lo, b_hi) within r_c of y in x and y
    a_lo = max(int(math.floor((y0 - rc - origin[0]) / cell)), 0)
    a_hi = min(int(math.floor((y0 + rc - origin[0]) / cell)), nc[0] - 1)
    b_lo = max(int(math.floor((y1 - rc - origin[1]) / cell)), 0)
    b_hi = min(int(math.floor((y1 + rc - origin[1]) / cell)), nc[1] - 1)
    return a_lo, a_hi, b_lo, b_hi


@numba.njit(cache=True, inline="always")
def _x_gap2(y0, a, origin, cell):  # pragma: no cover - compiled
    xa = origin[0] + a * cell
    dx = max(xa - y0, y0 - xa - cell, 0.0)
    return dx * dx


@numba.njit(cache=True, fastmath=True, error_model="numpy")
def _poly_block(targets, order, i0, i1, xs, ys, zs, q, cell_start, origin, cell, slab, nc, rc, coef, scale, pot,
                same):  # pragma: no cover - compiled
    # potential of targets order[i0:i1]: every run whole, in masked steps of LANES sources
    rc2 = rc * rc
    for ii in range(i0, i1):
        i = order[ii]
        y0 = targets[i, 0]
        y1 = targets[i, 1]
        y2 = targets[i, 2]
        acc = 0.0
        coin = 0.0
        a_lo, a_hi, b_lo, b_hi = _target_columns(y0, y1, origin, cell, nc, rc)
        for a in range(a_lo, a_hi + 1):
            dx2 = _x_gap2(y0, a, origin, cell)
            if dx2 >= rc2:
                continue
            for b in range(b_lo, b_hi + 1):
                j0, j1 = _column_run(y0, y1, y2, a, b, dx2, cell_start, origin, cell, slab, nc, rc2)
                if j1 <= j0:
                    continue
                # unsigned indices: no negative-index wraparound, so the loads are contiguous
                end = np.uint64(j1)
                for j in range(np.uint64(j0), np.uint64(j0 + ((j1 - j0 + LANES - 1) // LANES) * LANES)):
                    d0 = y0 - xs[j]
                    d1 = y1 - ys[j]
                    d2 = y2 - zs[j]
                    r2 = d0 * d0 + d1 * d1 + d2 * d2
                    s = min(max(r2, TINY_R2), rc2)
                    v = 1.0 / math.sqrt(s) - horner(s * scale - 1.0, coef)
                    run = j < end
                    acc += q[j] * v if run & (r2 < rc2) & (r2 > 0.0) else 0.0
                    coin += q[j] if run & (r2 == 0.0) else 0.0
        pot[i] = acc
        same[i] = coin


@numba.njit(cache=True, fastmath=True, error_model="numpy")
def _poly_field_block(targets, order, i0, i1, xs, ys, zs, q, cell_start, origin, cell, slab, nc, rc, coef, scale, pot, same,
                      fld):  # pragma: no cover - compiled
    # potential and field of targets order[i0:i1] as in _poly_block: with φ_S = 1/r − L(s),
    # −φ_S'(r)/r = 1/r³ + 2 L'(s), L'(s) = scale · P'(t)
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
        a_lo, a_hi, b_lo, b_hi = _target_columns(y0, y1, origin, cell, nc, rc)
        for a in range(a_lo, a_hi + 1):
            dx2 = _x_gap2(y0, a, origin, cell)
            if dx2 >= rc2:
                continue
            for b in range(b_lo, b_hi + 1):
                j0, j1 = _column_run(y0, y1, y2, a, b, dx2, cell_start, origin, cell, slab, nc, rc2)
                if j1 <= j0:
                    continue
                end = np.uint64(j1)
                for j in range(np.uint64(j0), np.uint64(j0 + ((j1 - j0 + LANES - 1) // LANES) * LANES)):
                    d0 = y0 - xs[j]
                    d1 = y1 - ys[j]
                    d2 = y2 - zs[j]
                    r2 = d0 * d0 + d1 * d1 + d2 * d2
                    s = min(max(r2, TINY_R2), rc2)
                    inv_r = 1.0 / math.sqrt(s)
                    p, dp = horner_with_derivative(s * scale - 1.0, coef)
                    run = j < end
                    inside = run & (r2 < rc2) & (r2 > 0.0)
                    acc += q[j] * (inv_r - p) if inside else 0.0
                    w = q[j] * (inv_r * inv_r * inv_r + 2.0 * scale * dp) if inside else 0.0
                    e0 += w * d0
                    e1 += w * d1
                    e2 += w * d2
                    coin += q[j] if run & (r2 == 0.0) else 0.0
        pot[i] = acc
        same[i] = coin
        fld[i, 0] = e0
        fld[i, 1] = e1
        fld[i, 2] = e2


@numba.njit(cache=True, fastmath=True, error_model="numpy")
def _table_block(targets, order, i0, i1, xs, ys, zs, q, cell_start, origin, cell, slab, nc, rc, table, inv_step, want_field,
                 pot, same, fld, buf_r2, buf_j):  # pragma: no cover - compiled
    # potential (and field) of targets order[i0:i1] from the tabulated kernel (splits without a
    # kernel polynomial): the in-range
    # pairs of each run compressed without branches, then evaluated
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
        a_lo, a_hi, b_lo, b_hi = _target_columns(y0, y1, origin, cell, nc, rc)
        for a in range(a_lo, a_hi + 1):
            dx2 = _x_gap2(y0, a, origin, cell)
            if dx2 >= rc2:
                continue
            for b in range(b_lo, b_hi + 1):
                j0, j1 = _column_run(y0, y1, y2, a, b, dx2, cell_start, origin, cell, slab, nc, rc2)
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
        pot[i] = acc
        same[i] = coin
        if want_field:
            fld[i, 0] = e0
            fld[i, 1] = e1
            fld[i, 2] = e2


@numba.njit(cache=True, parallel=True)
def _cell_sum(targets, order, xs, ys, zs, q, cell_start, origin, cell, slab, nc, rc, table, inv_step, coef, scale, use_poly,
              want_field, max_column):  # pragma: no cover
    # blocks of consecutive (cell-ordered) targets; the prange body only calls the serial worker,
    # which Numba optimises better than a loop body outlined by the parallel backend
    n_t = targets.shape[0]
    pot = np.zeros(n_t)
    same = np.zeros(n_t)
    fld = np.zeros((n_t, 3)) if want_field else np.zeros((1, 3))
    n_blocks = (n_t + TARGET_BLOCK - 1) // TARGET_BLOCK
    for blk in numba.prange(n_blocks):
        i0 = blk * TARGET_BLOCK
        i1 = min(n_t, (blk + 1) * TARGET_BLOCK)
        if use_poly and want_field:
            _poly_field_block(targets, order, i0, i1, xs, ys, zs, q, cell_start, origin, cell, slab, nc, rc, coef, scale, pot,
                              same, fld)
        elif use_poly:
            _poly_block(targets, order, i0, i1, xs, ys, zs, q, cell_start, origin, cell, slab, nc, rc, coef, scale, pot,
                        same)
        else:
            buf_r2 = np.empty(max_column)
            buf_j = np.empty(max_column, dtype=np.int64)
            _table_block(targets, order, i0, i1, xs, ys, zs, q, cell_start, origin, cell, slab, nc, rc, table, inv_step,
                         want_field, pot, same, fld, buf_r2, buf_j)
    return pot, same, fld


@numba.njit(cache=True, inline="always")
def _own_columns(y0, y1, origin, cell, nc, rc):  # pragma: no cover - compiled
    # the target's own column row (a·nc_y + b) and the column ranges of the pairs counted from
    # it: rows before its own hold only earlier atoms, so x starts at its own column
    a_i = min(max(int(math.floor((y0 - origin[0]) / cell)), 0), nc[0] - 1)
    b_i = min(max(int(math.floor((y1 - origin[1]) / cell)), 0), nc[1] - 1)
    a_lo, a_hi, b_lo, b_hi = _target_columns(y0, y1, origin, cell, nc, rc)
    return a_i * nc[1] + b_i, max(a_lo, a_i), a_hi, b_lo, b_hi


@numba.njit(cache=True, fastmath=True, error_model="numpy")
def _self_poly_block(xs, ys, zs, q, i0, i1, cell_start, origin, cell, slab, nc, rc, coef, scale,
                     acc_row):  # pragma: no cover - compiled
    # Every pair once: columns before the target's own hold only earlier atoms, columns after
    # it only later ones, and in its own column the pairs with the later atoms are counted
    # (an atom within r_c is in the run of every atom within r_c of it); both ends accumulate
    # into acc_row, the run's entries in one contiguous masked loop (acc_row has LANES
    # padding entries).
    rc2 = rc * rc
    for i in range(i0, i1):
        y0 = xs[i]
        y1 = ys[i]
        y2 = zs[i]
        qi = q[i]
        acc = 0.0
        own_row, a_lo, a_hi, b_lo, b_hi = _own_columns(y0, y1, origin, cell, nc, rc)
        for a in range(a_lo, a_hi + 1):
            dx2 = _x_gap2(y0, a, origin, cell)
            if dx2 >= rc2:
                continue
            for b in range(b_lo, b_hi + 1):
                row = a * nc[1] + b
                if row < own_row:
                    continue
                j0, j1 = _column_run(y0, y1, y2, a, b, dx2, cell_start, origin, cell, slab, nc, rc2)
                if row == own_row:
                    j0 = max(j0, i + 1)
                if j1 <= j0:
                    continue
                end = np.uint64(j1)
                for j in range(np.uint64(j0), np.uint64(j0 + ((j1 - j0 + LANES - 1) // LANES) * LANES)):
                    d0 = y0 - xs[j]
                    d1 = y1 - ys[j]
                    d2 = y2 - zs[j]
                    r2 = d0 * d0 + d1 * d1 + d2 * d2
                    s = min(max(r2, TINY_R2), rc2)
                    v = 1.0 / math.sqrt(s) - horner(s * scale - 1.0, coef)
                    v = v if (j < end) & (r2 < rc2) & (r2 > 0.0) else 0.0
                    acc += q[j] * v
                    acc_row[j] += qi * v
        acc_row[i] += acc


@numba.njit(cache=True, fastmath=True, error_model="numpy")
def _self_table_block(xs, ys, zs, q, i0, i1, cell_start, origin, cell, slab, nc, rc, table, inv_step, acc_row, buf_r2, buf_j,
                      buf_v):  # pragma: no cover - compiled
    # the pairs of _self_poly_block from the tabulated kernel (in-range pairs compressed first)
    rc2 = rc * rc
    for i in range(i0, i1):
        y0 = xs[i]
        y1 = ys[i]
        y2 = zs[i]
        qi = q[i]
        acc = 0.0
        own_row, a_lo, a_hi, b_lo, b_hi = _own_columns(y0, y1, origin, cell, nc, rc)
        for a in range(a_lo, a_hi + 1):
            dx2 = _x_gap2(y0, a, origin, cell)
            if dx2 >= rc2:
                continue
            for b in range(b_lo, b_hi + 1):
                row = a * nc[1] + b
                if row < own_row:
                    continue
                j0, j1 = _column_run(y0, y1, y2, a, b, dx2, cell_start, origin, cell, slab, nc, rc2)
                if row == own_row:
                    j0 = max(j0, i + 1)
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
        acc_row[i] += acc


@numba.njit(cache=True, parallel=True)
def _self_sum(xs, ys, zs, q, n, cell_start, origin, cell, slab, nc, rc, table, inv_step, coef, scale, use_poly, n_blocks,
              max_column):  # pragma: no cover
    # the n atoms in blocks, one accumulation row (n + LANES entries) per block
    buf = np.zeros((n_blocks, n + LANES))
    size = (n + n_blocks - 1) // n_blocks
    for blk in numba.prange(n_blocks):
        i0 = blk * size
        i1 = min(n, (blk + 1) * size)
        if use_poly:
            _self_poly_block(xs, ys, zs, q, i0, i1, cell_start, origin, cell, slab, nc, rc, coef, scale, buf[blk])
        else:
            buf_r2 = np.empty(max_column)
            buf_j = np.empty(max_column, dtype=np.int64)
            buf_v = np.empty(max_column)
            _self_table_block(xs, ys, zs, q, i0, i1, cell_start, origin, cell, slab, nc, rc, table, inv_step, buf[blk],
                              buf_r2, buf_j, buf_v)
    return buf.sum(axis=0)[:n]


@numba.njit(cache=True)
def _cell_keys(points, origin, cell, slab, nc):  # pragma: no cover - compiled
    # flat cell index (a·nc_y + b)·nc_z + c of every point (points outside clipped to the edge cells)
    keys = np.empty(points.shape[0], dtype=np.int64)
    for i in range(points.shape[0]):
        a = min(max(int(math.floor((points[i, 0] - origin[0]) / cell)), 0), nc[0] - 1)
        b = min(max(int(math.floor((points[i, 1] - origin[1]) / cell)), 0), nc[1] - 1)
        c = min(max(int(math.floor((points[i, 2] - origin[2]) / slab)), 0), nc[2] - 1)
        keys[i] = (a * nc[1] + b) * nc[2] + c
    return keys


@numba.njit(cache=True)
def _counting_sort(keys, n_cells):  # pragma: no cover - compiled
    # stable order of keys in [0, n_cells) and start[k], the first sorted entry of key k (O(n))
    start = np.zeros(n_cells + 1, dtype=np.int64)
    for k in keys:
        start[k + 1] += 1
    for k in range(n_cells):
        start[k + 1] += start[k]
    fill = start[:-1].copy()
    order = np.empty(keys.shape[0], dtype=np.int64)
    for i in range(keys.shape[0]):
        order[fill[keys[i]]] = i
        fill[keys[i]] += 1
    return order, start


def _cell_list(positions, charges, cutoff):
    """Sources sorted by column (x, y cells), then slab (z cell), as separate coordinate arrays.

    Returns (xs, ys, zs, q, start, origin, cell, slab, nc, order, max_column): xs, ys, zs, q
    have :data:`LANES` padding entries (zeros) after the n sources; start[k] is the first
    sorted source of cell k (cells numbered (a·nc_y + b)·nc_z + c, so each column's cells are
    consecutive; inside a cell the input order is kept), cell and slab are the cell edges in x,
    y and in z (Å), order maps sorted to input indices, max_column is the largest number of
    sources in one column.
    """
    lo = positions.min(axis=0) - 1e-9
    hi = positions.max(axis=0)
    cell = CELL_FRACTION * float(cutoff)
    slab = SLAB_FRACTION * float(cutoff)

    def counts_for(cell, slab):
        return np.maximum(np.ceil((hi - lo) / np.array([cell, cell, slab])).astype(np.int64), 1)

    nc = counts_for(cell, slab)
    while int(np.prod(nc)) > 8 * positions.shape[0] + 1000:  # very sparse: coarser cells
        cell *= 1.5
        slab *= 1.5
        nc = counts_for(cell, slab)
    order, start = _counting_sort(_cell_keys(positions, lo, cell, slab, nc), int(np.prod(nc)))

    def padded(values):
        out = np.zeros(values.shape[0] + LANES)
        out[: values.shape[0]] = values
        return out

    column_start = start[:: nc[2]]
    return (
        padded(positions[order, 0]),
        padded(positions[order, 1]),
        padded(positions[order, 2]),
        padded(charges[order]),
        start,
        np.ascontiguousarray(lo),
        cell,
        slab,
        nc,
        order,
        int(np.max(np.diff(column_start))),
    )


def _kernels(split, cutoff: float, tolerance: float | None):
    """(table, inv_step, coefficients, scale, use_poly) for the compiled sums; a dummy tuple when no polynomial fits."""
    table, inv_step = kernel_table(split, cutoff)
    coefficients, scale = kernel_polynomial(split, cutoff, kernel_accuracy(tolerance))
    use_poly = coefficients is not None
    return table, inv_step, (coefficients if use_poly else (0.0,) * POLY_TERMS[0]), scale, use_poly


def short_range_sum(targets, positions, charges, split, cutoff: float, *, field: bool = False, coincident: bool = False,
                    tolerance: float | None = None):
    """Short-range potential (and optionally field) at ``targets`` from all atoms within ``cutoff``.

    Parameters
    ----------
    targets : (n_targets, 3) float64, Å
    positions : (n_atoms, 3) float64, Å
    charges : (n_atoms,) float64, e
    split : EwaldSplit, ScreenedEwaldSplit or GaussianSumSplit
    cutoff : float
        r_c in Å; pairs with r ≥ r_c or r = 0 are skipped.
    field : bool
        Also return the short-range field −∇Φ_S, shape (n_targets, 3), e/Å².
    coincident : bool
        Also return Σ q_j over the atoms located exactly at each target, (n_targets,) e.
    tolerance : float or None
        Relative tolerance ε of the caller's result; the kernel is then evaluated to
        :data:`KERNEL_ACCURACY_FRACTION` · ε of g(0) (fewer polynomial terms) instead of
        :data:`TABLE_TOLERANCE` (None).

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
        xs, ys, zs, q, start, origin, cell, slab, nc, _, max_column = _cell_list(positions, np.asarray(charges, dtype=np.float64),
                                                                                cutoff)
        order, _ = _counting_sort(_cell_keys(targets, origin, cell, slab, nc), int(np.prod(nc)))
        table, inv_step, coefficients, scale, use_poly = _kernels(split, cutoff, tolerance)
        pot, same, fld = _cell_sum(targets, order, xs, ys, zs, q, start, origin, cell, slab, nc, float(cutoff), table, inv_step,
                                   coefficients, scale, use_poly, bool(field), max_column)
    else:
        pot, same, fld = cell_short_range_sum(targets, positions, charges, split, cutoff, field=field)
    out = (pot,) + ((fld,) if field else ()) + ((same,) if coincident else ())
    return out if len(out) > 1 else pot


def short_range_at_atoms(positions, charges, split, cutoff: float, *, tolerance: float | None = None):
    """Short-range potential at every atom from all other atoms within ``cutoff``, (n_atoms,) e/Å.

    Same sum as ``short_range_sum(positions, positions, charges, ...)`` (``tolerance`` as
    there), but each pair is evaluated once and credited to both atoms (on the CPU through
    per-thread buffers, on other backends by
    :func:`~.short_range_cells.cell_short_range_at_atoms`), about half the work. Atoms at the
    same site are skipped.
    """
    xp = namespace_of(positions, charges)
    if backend_name(xp) != "numpy":
        return cell_short_range_at_atoms(positions, charges, split, cutoff)
    if positions.shape[0] < 2:
        return short_range_sum(positions, positions, charges, split, cutoff, tolerance=tolerance)
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    n = positions.shape[0]
    xs, ys, zs, q, start, origin, cell, slab, nc, order, max_column = _cell_list(positions, np.asarray(charges, dtype=np.float64),
                                                                                cutoff)
    table, inv_step, coefficients, scale, use_poly = _kernels(split, cutoff, tolerance)
    n_blocks = int(max(1, min(numba.get_num_threads(), SELF_BUFFER_ENTRIES // n)))
    pot_sorted = _self_sum(xs, ys, zs, q, n, start, origin, cell, slab, nc, float(cutoff), table, inv_step, coefficients, scale,
                           use_poly, n_blocks, max_column)
    out = np.empty_like(pot_sorted)
    out[order] = pot_sorted
    return out
