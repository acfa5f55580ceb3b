"""Range-separated Chebyshev–Tucker potential vs FMM3D (fmm3dpy) on the same inputs, same process.

Cases: a protein-like random cloud (density 0.1 atoms/Å³, charges ±0.5 + noise, net ≈ 0) and a
rock-salt lattice (spacing 2.82 Å, ±1) at the requested sizes. Reports per case: our time for
build + potential at every atom vs fmm3dpy (eps = tolerance, potential at sources; fmm3dpy
computes Σq/(4πr), multiplied by 4π here), max relative error (normalised by max |Φ|) against
direct summation on a sample and against fmm3d, peak traced memory of our build, the build-time
scaling exponent in N, the time of a 129³ map (long range only and full) vs fmm3dpy with those
targets, and the storage of the representation vs the 129³ map.

Usage: python benchmarks/bench_potential.py results/bench_potential.json [--sizes 10000 100000 1000000]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
import tracemalloc
from pathlib import Path

import numpy as np

from pipeline.electrostatics import build_potential, direct_potential


def protein_cloud(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    width = (n / 0.1) ** (1 / 3)
    pos = rng.uniform(0.0, width, (n, 3))
    q = rng.choice([-0.5, 0.5], n) + rng.normal(0.0, 0.1, n)
    q -= q.mean()
    return pos, q


def lattice(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    side = int(round(n ** (1 / 3)))
    g = np.arange(side)
    i, j, k = np.meshgrid(g, g, g, indexing="ij")
    pos = 2.82 * np.stack([i, j, k], axis=-1).reshape(-1, 3).astype(float)
    q = ((-1.0) ** (i + j + k)).reshape(-1)
    return pos, q


def fmm_potential(pos, q, eps, targets=None):
    import fmm3dpy

    kw = {"eps": eps, "sources": np.ascontiguousarray(pos.T), "charges": q.astype(np.float64), "pg": 1}
    if targets is not None:
        kw.update(targets=np.ascontiguousarray(targets.T), pgt=1, pg=0)
    out = fmm3dpy.lfmm3d(**kw)
    return 4 * math.pi * (out.pottarg if targets is not None else out.pot)


def max_rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def run_case(name, pos, q, tol, rng, map_size, full_map_max):
    n = pos.shape[0]
    row = {"case": name, "n_atoms": n, "tolerance": tol}
    tracemalloc.start()
    t0 = time.perf_counter()
    pot, info = build_potential(pos, q, tolerance=tol)
    t1 = time.perf_counter()
    total, _, _ = pot.at_atoms()
    t2 = time.perf_counter()
    row["peak_traced_MB"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    row.update(build_s=t1 - t0, atoms_s=t2 - t1, ours_s=t2 - t0, ranks=list(pot.ranks), degree=list(pot.degree),
               alpha=pot.params["alpha"], cutoff=pot.cutoff, **{f"t_{k}": v for k, v in info["timings"].items()})
    t0 = time.perf_counter()
    ref_fmm = fmm_potential(pos, q, tol)
    row["fmm_s"] = time.perf_counter() - t0
    row["speedup_vs_fmm"] = row["fmm_s"] / row["ours_s"]
    sample = rng.choice(n, size=min(n, 400), replace=False)
    ref = direct_potential(pos[sample], pos, q)
    row["max_rel_err_direct"] = max_rel(total[sample], ref)
    row["fmm_max_rel_err_direct"] = max_rel(ref_fmm[sample], ref)
    row["max_rel_err_vs_fmm"] = max_rel(total, ref_fmm)
    axes = [np.linspace(pot.box_lo[k], pot.box_hi[k], map_size) for k in range(3)]
    t0 = time.perf_counter()
    long_map = pot.grid(*axes, long_only=True)
    row["map_long_s"] = time.perf_counter() - t0
    row["map_bytes"] = int(long_map.nbytes)
    row["storage_bytes"] = int(pot.storage_bytes)
    row["storage_ratio_map_over_ours"] = long_map.nbytes / pot.storage_bytes
    if n <= full_map_max:
        t0 = time.perf_counter()
        full_map = pot.grid(*axes)
        row["map_full_s"] = time.perf_counter() - t0
        gx, gy, gz = np.meshgrid(*axes, indexing="ij")
        targets = np.stack([gx.ravel(), gy.ravel(), gz.ravel()], axis=1)
        t0 = time.perf_counter()
        fmm_map = fmm_potential(pos, q, tol, targets=targets)
        row["map_fmm_s"] = time.perf_counter() - t0
        finite = np.isfinite(fmm_map)
        row["map_max_rel_err_vs_fmm"] = max_rel(full_map.ravel()[finite], fmm_map[finite])
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", help="JSON file for the results")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--tolerance", type=float, default=1e-6)
    parser.add_argument("--map-size", type=int, default=129)
    parser.add_argument("--full-map-max", type=int, default=10_000, help="largest N for the full (short+long) map")
    parser.add_argument("--cases", nargs="+", default=["protein_cloud", "lattice"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rng = np.random.default_rng(7)
    makers = {"protein_cloud": protein_cloud, "lattice": lattice}
    rows = []
    for case in args.cases:
        for n in args.sizes:
            pos, q = makers[case](n, rng)
            rows.append(run_case(case, pos, q, args.tolerance, rng, args.map_size, args.full_map_max))
            r = rows[-1]
            print(
                f"{case:13s} N={r['n_atoms']:8d} ours {r['ours_s']:6.2f}s (build {r['build_s']:5.2f} atoms {r['atoms_s']:5.2f}) "
                f"fmm {r['fmm_s']:6.2f}s x{r['speedup_vs_fmm']:4.2f} err {r['max_rel_err_direct']:.1e} "
                f"(fmm {r['fmm_max_rel_err_direct']:.1e}) ranks {r['ranks']} m {r['degree']} mem {r['peak_traced_MB']:.0f}MB "
                f"map129 long {r['map_long_s']:.2f}s full {r.get('map_full_s', float('nan')):.2f}s "
                f"fmm {r.get('map_fmm_s', float('nan')):.2f}s storage {r['storage_bytes'] / 2**20:.2f}MB vs map "
                f"{r['map_bytes'] / 2**20:.1f}MB",
                flush=True,
            )
    summary = {}
    for case in args.cases:
        sub = [r for r in rows if r["case"] == case]
        if len(sub) >= 2:
            slope = np.polyfit(np.log([r["n_atoms"] for r in sub]), np.log([r["build_s"] for r in sub]), 1)[0]
            slope_all = np.polyfit(np.log([r["n_atoms"] for r in sub]), np.log([r["ours_s"] for r in sub]), 1)[0]
            summary[case] = {"build_scaling_exponent": float(slope), "total_scaling_exponent": float(slope_all)}
            print(f"{case}: build time ~ N^{slope:.2f}, build+atoms ~ N^{slope_all:.2f}")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"rows": rows, "summary": summary}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
