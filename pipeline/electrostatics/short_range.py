"""Exact short-range sums Σ_{0 < |y − x_j| < r_c} q_j φ_S(|y − x_j|) and their gradients.

On the CPU a compiled cell list (Numba, parallel over targets, cells of edge r_c/2, sources
sorted by cell) evaluates every target's 5×5×5 neighbouring cells; each target accumulates its
own sum, so there are no write conflicts. For device arrays (CuPy) a blocked dense
evaluation over all sources is used (O(n_targets · n_atoms), which a GPU affords for the
sizes of this project). Coincident pairs (r = 0, an atom evaluated at its own site) are
skipped; the matching long-range self term is handled by the caller.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import numba

from pipeline.backend import backend_name, namespace_of

log = logging.getLogger(__name__)

#: Target–source pairs per dense block on a device.
DEVICE_BLOCK_PAIRS = 16_000_000


def _kernel_spec(split):
    """(kind, alpha, t, w) describing φ_S for the compiled kernels: kind 0 Ewald, 1 Gaussian sum."""
    if split.name == "ewald":
        return 0, float(split.alpha), np.zeros(1), np.zeros(1)
    t, w = split._terms()
    return 1, 0.0, np.ascontiguousarray(t, dtype=np.float64), np.ascontiguousarray(w, dtype=np.float64)


@numba.njit(cache=True, inline="always")
def _phi_s(r, kind, alpha, t, w):  # pragma: no cover - compiled
    if kind == 0:
        return math.erfc(alpha * r) / r
    acc = 1.0 / r
    for k in range(t.shape[0]):
        acc -= w[k] * math.exp(-(t[k] * r) ** 2)
    return acc


@numba.njit(cache=True, inline="always")
def _dphi_s(r, kind, alpha, t, w):  # pragma: no cover - compiled
    if kind == 0:
        return -math.erfc(alpha * r) / (r * r) - (2.0 * alpha / math.sqrt(math.pi)) * math.exp(-(alpha * r) ** 2) / r
    acc = -1.0 / (r * r)
    for k in range(t.shape[0]):
        acc += w[k] * 2.0 * t[k] * t[k] * r * math.exp(-(t[k] * r) ** 2)
    return acc


@numba.njit(cache=True, parallel=True)
def _cell_sum(targets, src, q, cell_start, origin, cell, nc, reach, rc, kind, alpha, t, w, want_field):  # pragma: no cover
    n_t = targets.shape[0]
    pot = np.zeros(n_t)
    fld = np.zeros((n_t, 3)) if want_field else np.zeros((1, 3))
    rc2 = rc * rc
    for i in numba.prange(n_t):
        y0 = targets[i, 0]
        y1 = targets[i, 1]
        y2 = targets[i, 2]
        c0 = int(math.floor((y0 - origin[0]) / cell))
        c1 = int(math.floor((y1 - origin[1]) / cell))
        c2 = int(math.floor((y2 - origin[2]) / cell))
        acc = 0.0
        e0 = 0.0
        e1 = 0.0
        e2 = 0.0
        for a in range(max(c0 - reach, 0), min(c0 + reach + 1, nc[0])):
            for b in range(max(c1 - reach, 0), min(c1 + reach + 1, nc[1])):
                base = (a * nc[1] + b) * nc[2]
                lo_c = max(c2 - reach, 0)
                hi_c = min(c2 + reach + 1, nc[2])
                if lo_c >= hi_c:
                    continue
                for j in range(cell_start[base + lo_c], cell_start[base + hi_c]):
                    d0 = y0 - src[j, 0]
                    d1 = y1 - src[j, 1]
                    d2 = y2 - src[j, 2]
                    r2 = d0 * d0 + d1 * d1 + d2 * d2
                    if r2 < rc2 and r2 > 0.0:
                        r = math.sqrt(r2)
                        acc += q[j] * _phi_s(r, kind, alpha, t, w)
                        if want_field:
                            g = -q[j] * _dphi_s(r, kind, alpha, t, w) / r
                            e0 += g * d0
                            e1 += g * d1
                            e2 += g * d2
        pot[i] = acc
        if want_field:
            fld[i, 0] = e0
            fld[i, 1] = e1
            fld[i, 2] = e2
    return pot, fld


def _cell_list(positions, charges, cutoff):
    lo = positions.min(axis=0) - 1e-9
    hi = positions.max(axis=0)
    cell = 0.5 * float(cutoff)
    nc = np.maximum(np.ceil((hi - lo) / cell).astype(np.int64), 1)
    while int(np.prod(nc)) > 8 * positions.shape[0] + 1000:  # very sparse: coarser cells
        cell *= 1.5
        nc = np.maximum(np.ceil((hi - lo) / cell).astype(np.int64), 1)
    idx = np.minimum(np.floor((positions - lo) / cell).astype(np.int64), nc - 1)
    key = (idx[:, 0] * nc[1] + idx[:, 1]) * nc[2] + idx[:, 2]
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


def short_range_sum(targets, positions, charges, split, cutoff: float, *, field: bool = False):
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

    Returns
    -------
    potential : (n_targets,) float64, e/Å
    field : (n_targets, 3) float64, e/Å² (only when ``field`` is true)
    """
    xp = namespace_of(targets, positions, charges)
    if targets.shape[0] == 0 or positions.shape[0] == 0:
        pot = xp.zeros(targets.shape[0])
        return (pot, xp.zeros((targets.shape[0], 3))) if field else pot
    if backend_name(xp) == "numpy":
        src, q, start, origin, cell, nc = _cell_list(positions, charges, cutoff)
        reach = int(math.ceil(float(cutoff) / cell))
        kind, alpha, t, w = _kernel_spec(split)
        pot, fld = _cell_sum(
            np.ascontiguousarray(targets, dtype=np.float64), src, q, start, origin, cell, nc, reach, float(cutoff),
            kind, alpha, t, w, bool(field),
        )
        return (pot, fld) if field else pot
    return _dense_sum(targets, positions, charges, split, cutoff, field)


def _dense_sum(targets, positions, charges, split, cutoff, field):
    """Blocked dense short-range sum for device arrays (any xp)."""
    xp = namespace_of(targets, positions, charges)
    n_t = targets.shape[0]
    pot = xp.zeros(n_t)
    fld = xp.zeros((n_t, 3)) if field else None
    chunk = max(1, DEVICE_BLOCK_PAIRS // positions.shape[0])
    for s in range(0, n_t, chunk):
        d = targets[s : s + chunk, None, :] - positions[None, :, :]
        r = xp.sqrt(xp.sum(d * d, axis=-1))
        mask = (r > 0) & (r < cutoff)
        safe = xp.where(mask, r, 1.0)
        pot[s : s + chunk] = xp.where(mask, split.short(safe), 0.0) @ charges
        if field:
            g = xp.where(mask, -split.short_derivative(safe) / safe, 0.0) * charges[None, :]
            fld[s : s + chunk] = xp.einsum("tj,tjk->tk", g, d)
    return (pot, fld) if field else pot
