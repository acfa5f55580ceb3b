"""Range-separated Chebyshev–Tucker potential vs FMM3D (fmm3dpy) on the same inputs, same process.

Cases: a protein-like random cloud (density 0.1 atoms/Å³, charges ±0.5 + noise, net ≈ 0) and a
rock-salt lattice (spacing 2.82 Å, ±1) at the requested sizes. Reports per case: our time for
build + potential at every atom vs fmm3dpy (eps = tolerance, potential at sources; fmm3dpy
computes Σq/(4πr), multiplied by 4π here) in wall-clock and CPU seconds (all threads), max relative error (normalised by max |Φ|) against
direct summation on a sample and against fmm3d, the stored representation evaluated at sampled
atoms (the path of a reloaded potential) against direct summation, peak memory of our build (traced allocations and the process's peak
RSS before fmm3dpy runs; every case runs in its own forked process, after a warm-up on 300 atoms
that loads the compiled kernels), the build-time scaling
exponent in N, the time of a 129³ map (long range only, and full vs fmm3dpy with those targets
up to --full-map-max atoms), the storage of the representation vs the 129³ map and the α it is
stored at (smaller than the atoms' α when the default storage limit applies).

With ``--device cuda`` our build, atom values and long-range map run on CuPy (timed with a device
synchronisation; fmm3dpy and the direct reference stay on the CPU) and the full map is skipped.

Usage: python benchmarks/bench_potential.py results/bench_potential.json [--sizes 10000 100000 1000000]
[--device cpu|cuda] (the output path may also come last, after the sizes).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing
import resource
import time
import tracemalloc
from pathlib import Path

import numpy as np

from pipeline.backend import synchronize, to_host, xp_for_device
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


MAKERS = {"protein_cloud": protein_cloud, "lattice": lattice}


def fmm_potential(pos, q, eps, targets=None):
    import fmm3dpy

    kw = {"eps": eps, "sources": np.ascontiguousarray(pos.T), "charges": q.astype(np.float64), "pg": 1}
    if targets is not None:
        kw.update(targets=np.ascontiguousarray(targets.T), pgt=1, pg=0)
    out = fmm3dpy.lfmm3d(**kw)
    return 4 * math.pi * (out.pottarg if targets is not None else out.pot)


def max_rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def warm_up(tol, xp):
    """Load the compiled kernels (Numba cache, CUDA kernels) and fmm3dpy once, outside the timings."""
    rng = np.random.default_rng(0)
    pos, q = protein_cloud(300, rng)
    pot, _ = build_potential(xp.asarray(pos), xp.asarray(q), tolerance=tol)
    pot.at_atoms()
    axes = [xp.linspace(pot.box_lo[k], pot.box_hi[k], 5) for k in range(3)]
    pot.grid(*axes)
    pot.potential(xp.asarray(pos[:3] + 0.1))
    synchronize(xp)
    direct_potential(pos[:3], pos, q)
    fmm_potential(pos, q, tol)


def run_case(name, n, tol, seed, map_size, full_map_max, device):
    xp = xp_for_device(device)
    warm_up(tol, xp)
    rng = np.random.default_rng(seed)
    pos, q = MAKERS[name](n, rng)
    n = pos.shape[0]
    row = {"case": name, "n_atoms": n, "tolerance": tol, "device": device, "rss_before_MB": peak_rss_mb()}
    pos_x, q_x = xp.asarray(pos), xp.asarray(q)
    synchronize(xp)
    tracemalloc.start()
    c0 = time.process_time()
    t0 = time.perf_counter()
    pot, info = build_potential(pos_x, q_x, tolerance=tol)
    synchronize(xp)
    t1 = time.perf_counter()
    total = pot.at_atoms()[0]
    synchronize(xp)
    t2 = time.perf_counter()
    total = to_host(total)
    row["ours_cpu_s"] = time.process_time() - c0
    row["peak_traced_MB"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    row["peak_rss_MB"] = peak_rss_mb()
    row.update(build_s=t1 - t0, atoms_s=t2 - t1, ours_s=t2 - t0, ranks=list(pot.ranks), degree=list(pot.degree),
               alpha=pot.params["alpha"], cutoff=pot.params["cutoff"], stored_alpha=pot.params["stored_alpha"],
               grid=list(pot.params["grid"]["shape"]),
               **{f"t_{k}": v for k, v in info["timings"].items()})
    c0 = time.process_time()
    t0 = time.perf_counter()
    ref_fmm = fmm_potential(pos, q, tol)
    row["fmm_s"] = time.perf_counter() - t0
    row["fmm_cpu_s"] = time.process_time() - c0
    row["speedup_vs_fmm"] = row["fmm_s"] / row["ours_s"]
    sample = rng.choice(n, size=min(n, 400), replace=False)
    ref = direct_potential(pos[sample], pos, q)
    row["max_rel_err_direct"] = max_rel(total[sample], ref)
    row["fmm_max_rel_err_direct"] = max_rel(ref_fmm[sample], ref)
    row["max_rel_err_vs_fmm"] = max_rel(total, ref_fmm)
    row["representation_max_rel_err_direct"] = max_rel(to_host(pot.potential(pos_x[xp.asarray(sample)])), ref)
    axes = [np.linspace(pot.box_lo[k], pot.box_hi[k], map_size) for k in range(3)]
    t0 = time.perf_counter()
    long_map = pot.grid(*(xp.asarray(a) for a in axes), long_only=True)
    synchronize(xp)
    row["map_long_s"] = time.perf_counter() - t0
    long_map = to_host(long_map)
    row["map_bytes"] = int(long_map.nbytes)
    row["storage_bytes"] = int(pot.storage_bytes)
    row["storage_fraction_of_map"] = pot.storage_bytes / long_map.nbytes
    if n <= full_map_max and device == "cpu":
        t0 = time.perf_counter()
        full_map = pot.grid(*axes)
        row["map_full_s"] = time.perf_counter() - t0
        gx, gy, gz = np.meshgrid(*axes, indexing="ij")
        targets = np.stack([gx.ravel(), gy.ravel(), gz.ravel()], axis=1)
        t0 = time.perf_counter()
        fmm_map = fmm_potential(pos, q, tol, targets=targets)
        row["map_fmm_s"] = time.perf_counter() - t0
        row["map_speedup_vs_fmm"] = row["map_fmm_s"] / row["map_full_s"]
        finite = np.isfinite(fmm_map)
        row["map_max_rel_err_vs_fmm"] = max_rel(full_map.ravel()[finite], fmm_map[finite])
        pick = rng.choice(targets.shape[0], size=300, replace=False)
        row["map_max_rel_err_direct"] = max_rel(full_map.ravel()[pick], direct_potential(targets[pick], pos, q))
    return row


def _child(conn, *args):
    try:
        conn.send(run_case(*args))
    except BaseException as exc:  # noqa: BLE001 - reported by the parent
        conn.send({"error": repr(exc)})
    conn.close()


def run_isolated(*args):
    """run_case in a forked process, so the peak RSS is this case's own."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, *args))
    proc.start()
    row = parent.recv()
    proc.join()
    if "error" in row:
        raise RuntimeError(f"case {args[:2]} failed: {row['error']}")
    return row


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", nargs="?", help="JSON file for the results")
    parser.add_argument("--sizes", nargs="+", default=["10000", "100000"])
    parser.add_argument("--tolerance", type=float, default=1e-6)
    parser.add_argument("--map-size", type=int, default=129)
    parser.add_argument("--full-map-max", type=int, default=100_000, help="largest N for the full (short+long) map")
    parser.add_argument("--cases", nargs="+", default=list(MAKERS), choices=list(MAKERS))
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="array backend of our build (default cpu; cuda skips the full map)")
    args = parser.parse_args()
    sizes = []
    for item in args.sizes:
        if item.lstrip("+").isdigit():
            sizes.append(int(item))
        elif args.output is None:
            args.output = item
        else:
            parser.error(f"--sizes: not an integer: {item!r}")
    if args.output is None:
        parser.error("the output JSON path is required")
    args.sizes = sizes
    return args


def main() -> int:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = []
    header = (f"{'case':13s} {'N':>8s} {'ours s':>7s} {'build':>6s} {'atoms':>6s} {'fmm s':>7s} {'x fmm':>6s} {'x cpu':>6s} "
              f"{'err':>8s} {'fmm err':>8s} {'alpha':>6s} {'r_c':>5s} {'ranks':>14s} {'m':>4s} {'RSS MB':>7s} {'alp st':>6s} "
              f"{'map L s':>7s} {'map s':>6s} {'fmm map':>7s} {'x fmm':>6s} {'store %':>7s}")
    print(header, flush=True)
    for case in args.cases:
        for n in args.sizes:
            r = run_isolated(case, n, args.tolerance, 7, args.map_size, args.full_map_max, args.device)
            rows.append(r)
            print(
                f"{case:13s} {r['n_atoms']:8d} {r['ours_s']:7.2f} {r['build_s']:6.2f} {r['atoms_s']:6.2f} "
                f"{r['fmm_s']:7.2f} {r['speedup_vs_fmm']:6.2f} {r['fmm_cpu_s'] / r['ours_cpu_s']:6.2f} {r['max_rel_err_direct']:8.1e} "
                f"{r['fmm_max_rel_err_direct']:8.1e} {r['alpha']:6.3f} {r['cutoff']:5.1f} {str(r['ranks']):>14s} "
                f"{r['degree'][0]:4d} {r['peak_rss_MB']:7.0f} {r['map_long_s']:7.2f} {r.get('map_full_s', float('nan')):6.2f} "
                f"{r.get('map_fmm_s', float('nan')):7.2f} {r.get('map_speedup_vs_fmm', float('nan')):6.2f} "
                f"{100 * r['storage_fraction_of_map']:7.3f}",
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
