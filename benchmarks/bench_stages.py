"""The descriptors stage against the potential stage, both as whole processes on the same structure.

A protein-like cloud (:func:`bench_cli.protein_cloud`: 0.1 atoms/Å³, charges ±0.5 plus noise,
neutral) is written as a structure record, ``python -m pipeline potential S.nc -o P.nc
--tolerance EPS -q`` builds its potential, and then the two processes run alternately
(potential, descriptors, potential, ...; one warm-up each first) with the stage defaults
``python -m pipeline descriptors S.nc --potential P.nc -o D.nc -q`` (L = 2, 4 radial functions,
cutoff 6 Å, ρ = 2 Å). Reported: medians of ``--repeats`` wall times (and CPU times, user +
system over all threads, less sensitive to other load on the machine), the ratio descriptors /
potential, the descriptors file size, and the per-step seconds the descriptors file records
(``time_<step>_s``; "rest" is the process wall time minus the stage's own total: interpreter
start-up, imports, building and writing the dataset).

With ``--baseline-src DIR`` (a source tree holding another version of ``pipeline``) its
descriptors process joins the alternation (PYTHONPATH=DIR) and the two files are compared
(largest differences of density, potential expansion and product features).

Accuracy: the stored potential expansion of ``--check`` sampled atoms is recomputed by the
plain quadrature of pointwise potential values (``potential.long_range`` at every grid point,
no ring contraction or local series) at twice the file's band limit (+2), and the largest
relative difference is reported with the stage's own validation errors.

Threads: every process uses every core (Numba, BLAS, the sphere projection's threads); set
NUMBA_NUM_THREADS / OMP_NUM_THREADS to compare other counts.

Example: python benchmarks/bench_stages.py out.json --atoms 100000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench_cli import protein_cloud, timed, write_record
from pipeline.storage import read_netcdf


def product_variables(descriptors) -> list[str]:
    """Names of the per-method product variables of a descriptors file."""
    return [name for name in descriptors.data_vars if name.startswith("product_")]


def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a − b| over the largest |b|, on the finite entries of b."""
    finite = np.isfinite(b)
    if not np.array_equal(finite, np.isfinite(a)):
        return float("inf")
    return float(np.abs(a[finite] - b[finite]).max() / np.abs(b[finite]).max())


def sphere_check(structure: Path, potential: Path, descriptors, n_check: int, rng) -> float:
    """Largest relative difference of the stored potential expansion from pointwise quadrature."""
    from pipeline.descriptors.projection import potential_expansion
    from pipeline.electrostatics.potential_file import potential_from_dataset

    pot = potential_from_dataset(read_netcdf(potential), source=str(potential))
    positions = read_netcdf(structure)["positions"].values
    idx = np.sort(rng.choice(positions.shape[0], size=min(n_check, positions.shape[0]), replace=False))
    p = json.loads(descriptors.attrs["parameters"])
    reference = potential_expansion(lambda x: np.asarray(pot.long_range(x)), positions[idx], lmax=p["lmax"],
                                    sphere_radius_A=p["sphere_radius_A"],
                                    band_limit=2 * int(descriptors.attrs["band_limit"]) + 2)
    return relative_difference(descriptors["potential_expansion"].values[idx], reference)


def step_times(descriptors) -> dict[str, float]:
    """Per-step seconds recorded in a descriptors file (``time_<step>_s`` attributes)."""
    return {k[len("time_"):-len("_s")]: float(v) for k, v in descriptors.attrs.items() if k.startswith("time_") and k.endswith("_s")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", help="JSON file of the results")
    parser.add_argument("--atoms", type=int, default=100_000)
    parser.add_argument("--tolerance", type=float, default=1e-6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--check", type=int, default=200, help="atoms of the pointwise sphere-potential check")
    parser.add_argument("--baseline-src", type=Path, help="source tree of another pipeline version to time alongside")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    pos, q = protein_cloud(args.atoms, rng)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_record(work / "s.nc", pos, q, "cloud")
        potential_cmd = [sys.executable, "-m", "pipeline", "potential", "s.nc", "-o", "p.nc", "--tolerance",
                         str(args.tolerance), "-q"]
        runs: dict[str, tuple[list[str], dict | None]] = {
            "potential": (potential_cmd, None),
            "descriptors": ([sys.executable, "-m", "pipeline", "descriptors", "s.nc", "--potential", "p.nc", "-o", "d.nc", "-q"], None),
        }
        if args.baseline_src is not None:
            env = {**os.environ, "PYTHONPATH": str(args.baseline_src.resolve())}
            runs["descriptors_baseline"] = ([sys.executable, "-m", "pipeline", "descriptors", "s.nc", "--potential", "p.nc",
                                             "-o", "d_base.nc", "-q"], env)
        times: dict[str, list[float]] = {name: [] for name in runs}
        cpu: dict[str, list[float]] = {name: [] for name in runs}
        for cmd, env in runs.values():  # warm-up: kernels compiled into the cache, files in the page cache
            timed(cmd, work, env)
        for _ in range(args.repeats):
            for name, (cmd, env) in runs.items():
                wall, used = timed(cmd, work, env)
                times[name].append(wall)
                cpu[name].append(used)
        desc = read_netcdf(work / "d.nc")
        medians = {name: statistics.median(t) for name, t in times.items()}
        cpu_medians = {name: statistics.median(t) for name, t in cpu.items()}
        steps = step_times(desc)
        result = {
            "atoms": args.atoms, "tolerance": args.tolerance, "cores": os.cpu_count(), "repeats": args.repeats,
            "median_s": medians, "runs_s": times, "ratio": medians["descriptors"] / medians["potential"],
            "cpu_median_s": cpu_medians, "cpu_runs_s": cpu,
            "descriptors_file_bytes": (work / "d.nc").stat().st_size, "steps_s": steps,
            "stage_total_s": float(desc["time_total_s"]),
            "rest_s": medians["descriptors"] - float(desc["time_total_s"]),
            "sphere_potential_vs_pointwise": sphere_check(work / "s.nc", work / "p.nc", desc, args.check, rng),
            "validation": {name: float(np.nanmax(desc[name].values)) for name in (
                "equivariance_error", "equivariance_error_density", "equivariance_error_potential",
                "potential_projection_error", "fourier_grid_difference", "gaunt_cg_difference")},
        }
        if args.baseline_src is not None:
            base = read_netcdf(work / "d_base.nc")
            result["baseline_file_bytes"] = (work / "d_base.nc").stat().st_size
            result["baseline_steps_s"] = step_times(base)
            result["baseline_rest_s"] = medians["descriptors_baseline"] - float(base["time_total_s"])
            result["ratio_baseline"] = medians["descriptors_baseline"] / medians["potential"]
            result["difference_from_baseline"] = {
                name: relative_difference(desc[name].values.astype(np.float64), base[name].values)
                for name in ("density", "potential_expansion", *product_variables(desc)) if name in base}
            result["n_neighbours_equal"] = bool(np.array_equal(desc["n_neighbours"].values, base["n_neighbours"].values))
    Path(args.output).write_text(json.dumps(result, indent=2))
    print(f"N={args.atoms} eps={args.tolerance:g}, {os.cpu_count()} cores, median of {args.repeats}:")
    for name, t in medians.items():
        print(f"  {name:<22} {t:7.2f} s  ({t / medians['potential']:.2f}x potential); CPU {cpu_medians[name]:6.2f} s "
              f"({cpu_medians[name] / cpu_medians['potential']:.2f}x)")
    print(f"  descriptors file {result['descriptors_file_bytes'] / 1e6:.0f} MB"
          + (f" (baseline {result['baseline_file_bytes'] / 1e6:.0f} MB)" if args.baseline_src else ""))
    print("  steps of the last descriptors run: " + ", ".join(f"{k} {v:.2f}" for k, v in steps.items())
          + f"; rest (start-up, dataset, write) {result['rest_s']:.2f} s")
    print(f"  sphere potential vs pointwise quadrature: {result['sphere_potential_vs_pointwise']:.1e}; validation "
          + ", ".join(f"{k} {v:.1e}" for k, v in result["validation"].items()))
    if args.baseline_src is not None:
        print("  steps of the last baseline run: " + ", ".join(f"{k} {v:.2f}" for k, v in result["baseline_steps_s"].items())
              + f"; rest {result['baseline_rest_s']:.2f} s")
        print("  difference from baseline: " + ", ".join(f"{k} {v:.1e}" for k, v in result["difference_from_baseline"].items())
              + f"; n_neighbours equal: {result['n_neighbours_equal']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
