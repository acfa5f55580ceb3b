"""Short-range kernel per pair: the compiled cell list of :mod:`pipeline.electrostatics.short_range`
against a copy of its previous version, in the same process.

Cloud: ``--atoms`` random positions at protein-like density (0.1 Å⁻³) in a cube, random
charges; α from :func:`pipeline.electrostatics.parameters.choose_alpha` and r_c from
:func:`pipeline.electrostatics.parameters.ewald_cutoff` at ``--tolerance`` (Ewald split).
For each Numba thread count in ``--threads``: the at-atom sum (each pair once, credited to
both atoms) of the old kernel and of the new one at full accuracy ("new") and at
``--tolerance`` ("new_tol"), interleaved over ``--repeats`` rounds after a warm-up; medians
of wall time and of process CPU time. Reported: pairs inside the cutoff (each unordered pair
once), pairs visited (distance computed, runs rounded up to whole steps) by each kernel, ns
per pair inside the cutoff per core (wall × threads / pairs) old and new and their ratio, the
largest difference between old and new relative to the largest value, and the largest error
of the new sums against direct summation at ``--check`` sampled atoms.

The previous kernel (sources as an (n, 3) array sorted by cell, cells of r_c/3 trimmed to the
cells the sphere crosses, one branch per visited pair) is kept below verbatim, so the
comparison survives further changes of the package.

Example: python benchmarks/bench_short_range.py --atoms 100000 --threads 1 2 --output results/benchmarks/short_range.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import numba
import numpy as np
from scipy import special

from pipeline.electrostatics import short_range as new
from pipeline.electrostatics.parameters import choose_alpha, default_box, ewald_cutoff
from pipeline.electrostatics.short_range import kernel_table, table_value
from pipeline.electrostatics.splitting import EwaldSplit

CELL_FRACTION = 1.0 / 3.0
SELF_BUFFER_ENTRIES = 200_000_000
TARGET_BLOCK = 256


# ---- previous kernel (verbatim apart from names of shared helpers) ----------------------------

@numba.njit
def old_self_block(src, q, i0, i1, cell_start, origin, cell, nc, rc, table, inv_step, acc_row):  # pragma: no cover
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
                        v = table_value(r, table, inv_step) / r
                        acc += q[j] * v
                        acc_row[j] += qi * v
        acc_row[i] += acc


@numba.njit(parallel=True)
def old_self_sum(src, q, cell_start, origin, cell, nc, rc, table, inv_step, n_blocks):  # pragma: no cover
    n = src.shape[0]
    buf = np.zeros((n_blocks, n))
    size = (n + n_blocks - 1) // n_blocks
    for blk in numba.prange(n_blocks):
        old_self_block(src, q, blk * size, min(n, (blk + 1) * size), cell_start, origin, cell, nc, rc, table, inv_step,
                    buf[blk])
    return buf.sum(axis=0)


def old_cell_index(points, lo, cell, nc):
    idx = np.clip(np.floor((points - lo) / cell).astype(np.int64), 0, nc - 1)
    return (idx[:, 0] * nc[1] + idx[:, 1]) * nc[2] + idx[:, 2]


def old_cell_list(positions, charges, cutoff):
    lo = positions.min(axis=0) - 1e-9
    hi = positions.max(axis=0)
    cell = CELL_FRACTION * float(cutoff)
    nc = np.maximum(np.ceil((hi - lo) / cell).astype(np.int64), 1)
    while int(np.prod(nc)) > 8 * positions.shape[0] + 1000:  # very sparse: coarser cells
        cell *= 1.5
        nc = np.maximum(np.ceil((hi - lo) / cell).astype(np.int64), 1)
    key = old_cell_index(positions, lo, cell, nc)
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




def old_at_atoms(positions, charges, split, cutoff):
    """The previous ``short_range_at_atoms`` (NumPy branch)."""
    src, q, start, origin, cell, nc = old_cell_list(positions, charges, cutoff)
    order = np.argsort(old_cell_index(positions, origin, cell, nc), kind="stable")
    table, inv_step = kernel_table(split, cutoff)
    n_blocks = int(max(1, min(numba.get_num_threads(), SELF_BUFFER_ENTRIES // positions.shape[0])))
    pot_sorted = old_self_sum(src, q, start, origin, cell, nc, float(cutoff), table, inv_step, n_blocks)
    out = np.empty_like(pot_sorted)
    out[order] = pot_sorted
    return out


# ---- pair counts ------------------------------------------------------------------------------

@numba.njit
def visited_pairs(xs, ys, zs, n, cell_start, origin, cell, slab, nc, rc, lanes):
    """Pairs whose distance a kernel computes, each run rounded up to a multiple of ``lanes``.

    Each of the n atoms against the later atoms of the columns it scans (cells of edge
    ``cell`` in x, y and ``slab`` in z, trimmed to the sphere).
    """
    rc2 = rc * rc
    total = 0
    for i in range(n):
        y0, y1, y2 = xs[i], ys[i], zs[i]
        a_i = min(max(int(math.floor((y0 - origin[0]) / cell)), 0), nc[0] - 1)
        b_i = min(max(int(math.floor((y1 - origin[1]) / cell)), 0), nc[1] - 1)
        own_row = a_i * nc[1] + b_i
        a_lo = max(int(math.floor((y0 - rc - origin[0]) / cell)), a_i)
        a_hi = min(int(math.floor((y0 + rc - origin[0]) / cell)), nc[0] - 1)
        b_lo = max(int(math.floor((y1 - rc - origin[1]) / cell)), 0)
        b_hi = min(int(math.floor((y1 + rc - origin[1]) / cell)), nc[1] - 1)
        for a in range(a_lo, a_hi + 1):
            xa = origin[0] + a * cell
            dx = max(xa - y0, y0 - xa - cell, 0.0)
            if dx * dx >= rc2:
                continue
            for b in range(b_lo, b_hi + 1):
                row = a * nc[1] + b
                if row < own_row:
                    continue
                yb = origin[1] + b * cell
                dy = max(yb - y1, y1 - yb - cell, 0.0)
                dxy2 = dx * dx + dy * dy
                if dxy2 >= rc2:
                    continue
                dz = math.sqrt(rc2 - dxy2)
                c_lo = max(int(math.floor((y2 - dz - origin[2]) / slab)), 0)
                c_hi = min(int(math.floor((y2 + dz - origin[2]) / slab)), nc[2] - 1)
                if c_lo > c_hi:
                    continue
                j0 = cell_start[row * nc[2] + c_lo]
                j1 = cell_start[row * nc[2] + c_hi + 1]
                if row == own_row:
                    j0 = max(j0, i + 1)
                total += ((max(j1 - j0, 0) + lanes - 1) // lanes) * lanes
    return total


def pair_counts(positions, charges, cutoff):
    """(pairs inside the cutoff, visited by the old kernel, visited by the new kernel)."""
    from scipy.spatial import cKDTree

    tree = cKDTree(positions)
    inside = (int(tree.count_neighbors(tree, np.nextafter(cutoff, 0.0))) - positions.shape[0]) // 2
    src, _, start, origin, cell, nc = old_cell_list(positions, charges, cutoff)
    order = np.argsort(old_cell_index(src, origin, cell, nc), kind="stable")
    assert np.array_equal(order, np.arange(src.shape[0]))
    old = visited_pairs(src[:, 0].copy(), src[:, 1].copy(), src[:, 2].copy(), src.shape[0], start, origin, cell, cell, nc,
                        float(cutoff), 1)
    xs, ys, zs, _, start, origin, cell, slab, nc, _, _ = new._cell_list(positions, charges, cutoff)
    visited_new = visited_pairs(xs, ys, zs, positions.shape[0], start, origin, cell, slab, nc, float(cutoff), new.LANES)
    return inside, int(old), int(visited_new)


# ---- measurement ------------------------------------------------------------------------------

def protein_cloud(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    width = (n / 0.1) ** (1 / 3)
    pos = rng.uniform(0.0, width, (n, 3))
    q = rng.choice([-0.5, 0.5], n) + rng.normal(0.0, 0.1, n)
    return pos, q - q.mean()


def direct_short(positions, charges, split, cutoff, sample):
    """Σ_{0<r<r_c} q_j erfc(αr)/r at the sampled atoms by plain NumPy (float64, erfc from SciPy)."""
    out = np.empty(sample.size)
    for k, i in enumerate(sample):
        r = np.linalg.norm(positions - positions[i], axis=1)
        ok = (r > 0) & (r < cutoff)
        out[k] = np.sum(charges[ok] * special.erfc(split.alpha * r[ok]) / r[ok])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--atoms", type=int, default=100_000)
    parser.add_argument("--tolerance", type=float, default=1e-6)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--check", type=int, default=200, help="atoms compared with direct summation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", help="JSON file for the results")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    pos, q = protein_cloud(args.atoms, rng)
    lo, hi = default_box(pos)
    alpha = choose_alpha(lo, hi, args.tolerance, n_atoms=args.atoms)
    cutoff = ewald_cutoff(alpha, args.tolerance)
    split = EwaldSplit(alpha)
    inside, visited_old, visited_new = pair_counts(pos, q, cutoff)
    print(f"{args.atoms} atoms, alpha {alpha:.4f} 1/A, r_c {cutoff:.2f} A; pairs inside the cutoff {inside:.3e}, "
          f"visited: old {visited_old:.3e} ({visited_old / inside:.2f}x), new {visited_new:.3e} ({visited_new / inside:.2f}x)")
    print(f"load average at start {os.getloadavg()}, {os.cpu_count()} CPUs")
    kernels = {"old": old_at_atoms, "new": new.short_range_at_atoms,
               "new_tol": lambda *a: new.short_range_at_atoms(*a, tolerance=args.tolerance)}
    results = {}
    for kernel in kernels.values():  # compile
        kernel(pos[:2000], q[:2000], split, cutoff)
    rows = []
    for threads in args.threads:
        numba.set_num_threads(threads)
        wall = {k: [] for k in kernels}
        cpu = {k: [] for k in kernels}
        for r in range(args.repeats + 1):
            names = list(kernels) if r % 2 == 0 else list(kernels)[::-1]
            for name in names:
                t0, c0 = time.perf_counter(), time.process_time()
                results[name] = kernels[name](pos, q, split, cutoff)
                if r > 0:  # the first round warms up
                    wall[name].append(time.perf_counter() - t0)
                    cpu[name].append(time.process_time() - c0)
        med = {k: float(np.median(v)) for k, v in wall.items()}
        med_cpu = {k: float(np.median(v)) for k, v in cpu.items()}
        ns = {k: 1e9 * med[k] * threads / inside for k in kernels}
        ns_cpu = {k: 1e9 * med_cpu[k] / inside for k in kernels}
        rows.append({"threads": threads, "wall_s": med, "cpu_s": med_cpu, "ns_per_pair_core": ns, "ns_per_pair_cpu": ns_cpu,
                     "wall_all_s": wall})
        for name in ("new", "new_tol"):
            print(f"threads {threads}: {name}: wall old {med['old']:.3f} s new {med[name]:.3f} s; ns/pair/core old "
                  f"{ns['old']:.2f} new {ns[name]:.2f} ratio {ns['old'] / ns[name]:.2f}; by CPU time old {ns_cpu['old']:.2f} "
                  f"new {ns_cpu[name]:.2f} ratio {ns_cpu['old'] / ns_cpu[name]:.2f}")
    scale = np.abs(results["old"]).max()
    diff = float(np.abs(results["new"] - results["old"]).max() / scale)
    sample = rng.choice(args.atoms, size=min(args.check, args.atoms), replace=False)
    ref = direct_short(pos, q, split, cutoff, sample)
    err = float(np.abs(results["new"][sample] - ref).max() / np.abs(ref).max())
    diff_tol = float(np.abs(results["new_tol"] - results["old"]).max() / scale)
    err_tol = float(np.abs(results["new_tol"][sample] - ref).max() / np.abs(ref).max())
    print(f"new vs old: max |diff| / max |old| = {diff:.2e}; new vs direct summation at {sample.size} atoms: {err:.2e} "
          f"(table tolerance {new.TABLE_TOLERANCE:g}); new at tolerance {args.tolerance:g}: {diff_tol:.2e} vs old, "
          f"{err_tol:.2e} vs direct; load average at end {os.getloadavg()}")
    if args.output:
        with open(args.output, "w") as fh:
            json.dump({"atoms": args.atoms, "alpha": alpha, "cutoff": cutoff, "pairs_inside": inside,
                       "pairs_visited_old": visited_old, "pairs_visited_new": visited_new, "rows": rows,
                       "rel_diff_old_new": diff, "rel_error_direct": err,
                       "rel_diff_old_new_tol": diff_tol, "rel_error_direct_tol": err_tol}, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
