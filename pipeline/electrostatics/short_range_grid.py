"""Short-range sum on a uniform tensor grid of targets (maps), visiting each atom's ball once.

For targets on a grid x_i = x₀ + i·Δx (and likewise y, z), every atom adds
q_j φ_S(|y − x_j|) to the grid points within r_c of it. The compiled loop runs over atoms and,
for each grid row (i, k) that the ball reaches, over exactly the z indices inside the ball, so
no distance is computed for a point outside r_c (a target-centric cell list wastes about half
of its distance evaluations). Atoms are split into contiguous blocks, one per thread, each
accumulating into its own copy of the grid (summed at the end); when the copies would exceed
:data:`BUFFER_ENTRIES` the blocks are fewer. A grid point that coincides with an atom gets
−q_j φ_L(0) instead (the self term that the long range includes). The kernel is the table of
:func:`~pipeline.electrostatics.short_range.kernel_table`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from pipeline.electrostatics.short_range import kernel_table, table_value

#: Largest total size of the per-thread grid copies, entries.
BUFFER_ENTRIES = 150_000_000


def uniform_axis(values) -> tuple[float, float] | None:
    """(start, step) when ``values`` (1-D, Å) is an increasing uniform sequence, else None."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 1:
        return float(v[0]), 1.0
    step = (v[-1] - v[0]) / (v.size - 1)
    if not step > 0 or np.max(np.abs(v - (v[0] + step * np.arange(v.size)))) > 1e-9 * max(1.0, float(np.max(np.abs(v)))):
        return None
    return float(v[0]), float(step)


@numba.njit(cache=True, inline="always")
def _exact_index(axis, x, start, inv_step):  # pragma: no cover - compiled
    """Index of the axis value equal to x, or −1."""
    guess = int(round((x - start) * inv_step))
    for idx in range(max(guess - 1, 0), min(guess + 2, axis.shape[0])):
        if axis[idx] == x:
            return idx
    return -1


@numba.njit(cache=True, fastmath=True)
def _grid_block(pos, q, j0, j1, xs, ys, zs, start, inv_h, rc, table, inv_step, self_value, out):  # pragma: no cover
    # Index ranges come from start/step; distances use the given coordinates. Points that
    # rounding puts just outside r_c are evaluated at r_c (their term is ≈ q ε/r_c, as small
    # as the dropped tail), which keeps the innermost loop free of branches.
    nx, ny, nz = xs.shape[0], ys.shape[0], zs.shape[0]
    rc2 = rc * rc
    rc2_in = rc2 * (1.0 - 1e-12)
    for j in range(j0, j1):
        x0 = pos[j, 0]
        x1 = pos[j, 1]
        x2 = pos[j, 2]
        qj = q[j]
        ci = _exact_index(xs, x0, start[0], inv_h[0])
        ck = _exact_index(ys, x1, start[1], inv_h[1])
        i_lo = max(int(math.ceil((x0 - rc - start[0]) * inv_h[0])), 0)
        i_hi = min(int(math.floor((x0 + rc - start[0]) * inv_h[0])), nx - 1)
        for i in range(i_lo, i_hi + 1):
            d0 = xs[i] - x0
            rem0 = rc2 - d0 * d0
            if rem0 <= 0.0:
                continue
            w1 = math.sqrt(rem0)
            k_lo = max(int(math.ceil((x1 - w1 - start[1]) * inv_h[1])), 0)
            k_hi = min(int(math.floor((x1 + w1 - start[1]) * inv_h[1])), ny - 1)
            for k in range(k_lo, k_hi + 1):
                d1 = ys[k] - x1
                rem1 = rem0 - d1 * d1
                if rem1 <= 0.0:
                    continue
                w2 = math.sqrt(rem1)
                l_lo = max(int(math.ceil((x2 - w2 - start[2]) * inv_h[2])), 0)
                l_hi = min(int(math.floor((x2 + w2 - start[2]) * inv_h[2])), nz - 1)
                dxy2 = d0 * d0 + d1 * d1
                if i == ci and k == ck:  # the row through the atom: a point may coincide with it
                    for l in range(l_lo, l_hi + 1):
                        d2 = zs[l] - x2
                        r2 = dxy2 + d2 * d2
                        if r2 == 0.0:
                            out[i, k, l] -= qj * self_value
                        else:
                            r = math.sqrt(min(r2, rc2_in))
                            out[i, k, l] += qj * table_value(r, table, inv_step) / r
                    continue
                for l in range(l_lo, l_hi + 1):
                    d2 = zs[l] - x2
                    r = math.sqrt(min(dxy2 + d2 * d2, rc2_in))
                    out[i, k, l] += qj * table_value(r, table, inv_step) / r


@numba.njit(cache=True, parallel=True)
def _grid_sum(pos, q, xs, ys, zs, start, inv_h, rc, table, inv_step, self_value, n_blocks):  # pragma: no cover
    n = pos.shape[0]
    buf = np.zeros((n_blocks, xs.shape[0], ys.shape[0], zs.shape[0]))
    size = (n + n_blocks - 1) // n_blocks
    for blk in numba.prange(n_blocks):
        _grid_block(pos, q, blk * size, min(n, (blk + 1) * size), xs, ys, zs, start, inv_h, rc, table, inv_step,
                    self_value, buf[blk])
    total = buf[0]
    for b in range(1, n_blocks):
        total += buf[b]
    return total


def short_range_grid(axes, positions, charges, split, cutoff: float):
    """Σ_j q_j φ_S on the grid ``axes[0] × axes[1] × axes[2]``, minus q_j φ_L(0) where a point is an atom.

    Parameters
    ----------
    axes : three 1-D float64 arrays, Å
        Increasing, uniformly spaced coordinates (see :func:`uniform_axis`).
    positions : (n_atoms, 3) float64, Å
    charges : (n_atoms,) float64, e
    split : EwaldSplit or GaussianSumSplit
    cutoff : float
        r_c in Å.

    Returns
    -------
    (nx, ny, nz) float64, e/Å
    """
    spec = [uniform_axis(a) for a in axes]
    if any(s is None for s in spec):
        raise ValueError("short_range_grid needs increasing, uniformly spaced axes")
    axes = [np.ascontiguousarray(a, dtype=np.float64).reshape(-1) for a in axes]
    size = int(np.prod([a.size for a in axes]))
    pos = np.ascontiguousarray(positions, dtype=np.float64)
    q = np.ascontiguousarray(charges, dtype=np.float64)
    # atoms in x order: each block touches a compact range of grid planes
    order = np.argsort(pos[:, 0], kind="stable")
    table, inv_step = kernel_table(split, cutoff)
    n_blocks = int(max(1, min(numba.get_num_threads(), BUFFER_ENTRIES // max(size, 1))))
    return _grid_sum(np.ascontiguousarray(pos[order]), np.ascontiguousarray(q[order]), *axes,
                     np.array([s[0] for s in spec]), 1.0 / np.array([s[1] for s in spec]), float(cutoff),
                     table, inv_step, float(split.long_at_zero()), n_blocks)
