"""Neighbour search and density-expansion scaling of the descriptors stage (N = 10³ … 10⁵).

Random atoms at protein-like density (0.1 Å⁻³) in a cube, random charges. For each N:

* KD-tree neighbour search, both routes of :func:`pipeline.descriptors.neighbours.neighbour_pairs`
  (``query_pairs``: half list, single thread; ``ball_point``: ``workers=-1``) and, as the peer,
  ``cKDTree.sparse_distance_matrix`` (pairs with distances, single thread);
* the per-pair spherical harmonics + radial basis + scatter of
  :func:`pipeline.descriptors.density.neighbour_density`;
* the stage's default route, :func:`pipeline.descriptors.density_cells.atom_density_from_cells`
  (cell list and compiled kernel, search and density in one; Numba's threads), checked against
  the pair-list density (relative difference must stay below 1e-13);
* with ``--potential``: a Chebyshev–Tucker potential of the same atoms (tolerance 1e-6) and the
  sphere projection of ``--sphere-atoms`` atoms through
  :meth:`pipeline.descriptors.sphere_potential.TuckerSphereEvaluator.sphere_projection` (local
  Chebyshev series, no grid values) against the peer, the
  potential's own pointwise ``long_range`` at the same points (values must agree to 1e-12);
* with ``--full-stage``: :func:`pipeline.descriptors.compute.compute_descriptors` on all atoms
  (one run, per-step seconds).

Median of ``--repeats`` runs after one warm-up. Prints a table and writes JSON to ``--output``.

Example: python benchmarks/bench_descriptors.py --output results/benchmarks/descriptors_scaling.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from pipeline.descriptors.compute import DescriptorParameters, compute_descriptors
from pipeline.descriptors.density import neighbour_density
from pipeline.descriptors.density_cells import atom_density_from_cells
from pipeline.descriptors.neighbours import neighbour_pairs


def median_time(func, repeats: int) -> tuple[float, object]:
    result = func()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def sphere_projection(positions: np.ndarray, charges: np.ndarray, args: argparse.Namespace) -> dict:
    """Build the potential, time the two sphere-evaluation routes (and optionally the whole stage)."""
    from pipeline.descriptors.projection import potential_expansion
    from pipeline.descriptors.sphere_potential import TuckerSphereEvaluator
    from pipeline.electrostatics.build import build_potential

    start = time.perf_counter()
    potential, _ = build_potential(positions, charges, tolerance=1e-6)
    t_build = time.perf_counter() - start
    evaluator = TuckerSphereEvaluator(potential)
    centres = positions[: args.sphere_atoms]
    kw = dict(lmax=args.lmax, sphere_radius_A=args.sphere_radius)
    t_ring, ring = median_time(lambda: potential_expansion(evaluator, centres, **kw), args.repeats)
    t_point, point = median_time(lambda: potential_expansion(lambda p: evaluator(p), centres, **kw), 1)
    diff = float(np.abs(ring - point).max() / np.abs(point).max())
    if diff > 1e-12:
        raise RuntimeError(f"ring and pointwise sphere evaluation differ by {diff:.2e}")
    out = {
        "potential_build_s": t_build, "tucker_ranks": list(potential.ranks), "sphere_atoms": int(centres.shape[0]),
        "sphere_ring_s": t_ring, "sphere_pointwise_s": t_point, "sphere_rel_difference": diff,
    }
    print(f"{'':>8} potential ranks {potential.ranks}: sphere projection of {centres.shape[0]} atoms "
          f"projected {t_ring:.3f} s, pointwise (peer) {t_point:.3f} s, rel. difference {diff:.1e}")
    if args.full_stage:
        params = DescriptorParameters(lmax=args.lmax, cutoff_A=args.cutoff, n_radial=args.n_radial, sphere_radius_A=args.sphere_radius)
        result = compute_descriptors(positions, charges, evaluator, params)
        out["stage_total_s"] = result.total_s
        out["stage_steps_s"] = result.timings_s
        out["stage_equivariance_error"] = result.validation.equivariance_error
        steps = ", ".join(f"{k} {v:.2f}" for k, v in result.timings_s.items())
        print(f"{'':>8} whole stage {result.total_s:.2f} s ({steps})")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, help="JSON file for the results")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--cutoff", type=float, default=6.0, help="Å")
    parser.add_argument("--density", type=float, default=0.1, help="atoms per Å³")
    parser.add_argument("--lmax", type=int, default=2)
    parser.add_argument("--n-radial", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sphere-radius", type=float, default=2.0, help="Å")
    parser.add_argument("--potential", action="store_true", help="also time the sphere projection")
    parser.add_argument("--sphere-atoms", type=int, default=1000, help="atoms timed in the sphere projection")
    parser.add_argument("--full-stage", action="store_true", help="also run the whole stage once (needs --potential)")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    rows = []
    header = (f"{'N':>8} {'pairs':>10} {'query_pairs s':>14} {'ball_point s':>13} {'sdm (peer) s':>13} {'density s':>10} "
              f"{'cells s':>8}")
    print(header)
    for n in args.sizes:
        side = (n / args.density) ** (1.0 / 3.0)
        positions = rng.uniform(0.0, side, size=(n, 3))
        charges = rng.normal(scale=0.5, size=n)
        t_qp, pairs = median_time(lambda: neighbour_pairs(positions, args.cutoff, method="query_pairs"), args.repeats)
        t_bp, pairs_bp = median_time(lambda: neighbour_pairs(positions, args.cutoff, method="ball_point"), args.repeats)
        if not (np.array_equal(pairs.first, pairs_bp.first) and np.array_equal(pairs.second, pairs_bp.second)):
            raise RuntimeError(f"N={n}: the two neighbour-search routes disagree")
        t_sdm, sdm = median_time(
            lambda: cKDTree(positions).sparse_distance_matrix(cKDTree(positions), args.cutoff, output_type="ndarray"),
            args.repeats,
        )
        n_sdm = int(np.count_nonzero(sdm["i"] < sdm["j"]))
        if n_sdm != pairs.n_pairs:
            raise RuntimeError(f"N={n}: sparse_distance_matrix found {n_sdm} pairs, neighbour_pairs {pairs.n_pairs}")
        t_dens, density = median_time(
            lambda: neighbour_density(charges, pairs, n, lmax=args.lmax, cutoff_A=args.cutoff, n_radial=args.n_radial),
            args.repeats,
        )
        t_cells, (cells, _, _) = median_time(
            lambda: atom_density_from_cells(positions, charges, n_centres=n, lmax=args.lmax, cutoff_A=args.cutoff,
                                            n_radial=args.n_radial),
            args.repeats,
        )
        diff = float(np.abs(cells - density).max() / np.abs(density).max())
        if diff > 1e-13:
            raise RuntimeError(f"N={n}: cell-list and pair-list densities differ by {diff:.2e}")
        row = {
            "n_atoms": n, "n_pairs": pairs.n_pairs, "query_pairs_s": t_qp, "ball_point_s": t_bp,
            "sparse_distance_matrix_s": t_sdm, "density_s": t_dens, "cells_s": t_cells, "cells_rel_difference": diff,
        }
        print(f"{n:>8} {pairs.n_pairs:>10} {t_qp:>14.3f} {t_bp:>13.3f} {t_sdm:>13.3f} {t_dens:>10.3f} {t_cells:>8.3f}")
        if args.potential:
            row.update(sphere_projection(positions, charges, args))
        rows.append(row)
    meta = {
        "cutoff_A": args.cutoff, "density_per_A3": args.density, "lmax": args.lmax, "n_radial": args.n_radial,
        "repeats": args.repeats, "seed": args.seed, "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine(),
        "statistic": "median wall time, seconds, after one warm-up",
    }
    path = Path(args.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
