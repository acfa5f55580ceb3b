"""Time and memory of generating ~10⁶-ion lattices and writing them as structure records.

Each case runs in a fresh Python process (so the peak resident set size, from
``resource.getrusage(RUSAGE_SELF).ru_maxrss``, is that case's own) through the same code
path as ``python -m pipeline lattice``: generate the arrays, build the Dataset, write the
netCDF file atomically. Target: < 15 s and < 2 GB per 10⁶ ions.

Usage: python benchmarks/bench_lattice.py results/benchmarks/lattice.json [--workdir DIR] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: (lattice type, cells per axis) giving about 10⁶ ions each.
CASES = (("rocksalt", 50), ("cscl", 80), ("zincblende", 50), ("evjen", 50))
LATTICE_CONSTANT_A = {"rocksalt": 5.64, "cscl": 4.12, "zincblende": 5.41, "evjen": 5.64}


def run_one(lattice_type: str, n_cells: int, output: Path, vacancy_fraction: float) -> dict:
    """Generate, build the Dataset and write; return timings (s), size and peak RSS (MiB)."""
    t0 = time.perf_counter()
    from pipeline.storage import write_netcdf
    from pipeline.structures.lattices import make_lattice
    from pipeline.structures.record import structure_to_dataset

    t1 = time.perf_counter()
    structure = make_lattice(
        lattice_type,
        n_cells,
        LATTICE_CONSTANT_A[lattice_type],
        vacancy_fraction=vacancy_fraction if lattice_type != "evjen" else 0.0,
        seed=1,
    )
    t2 = time.perf_counter()
    dataset = structure_to_dataset(structure)
    t3 = time.perf_counter()
    write_netcdf(dataset, output)
    t4 = time.perf_counter()
    return {
        "lattice_type": lattice_type,
        "n_cells": n_cells,
        "vacancy_fraction": vacancy_fraction if lattice_type != "evjen" else 0.0,
        "n_ions": structure.n_atoms,
        "import_s": t1 - t0,
        "generate_s": t2 - t1,
        "dataset_s": t3 - t2,
        "write_s": t4 - t3,
        "total_s": t4 - t0,
        "file_MiB": output.stat().st_size / 2**20,
        "peak_rss_MiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", help="JSON file for the results")
    parser.add_argument("--workdir", help="folder for the netCDF files (default: a temporary folder)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the ion counts by about this factor")
    parser.add_argument("--one", nargs=3, metavar=("TYPE", "N", "NC"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--vacancy-fraction", type=float, default=0.0, help="vacancy fraction for the periodic lattices"
    )
    args = parser.parse_args()
    if args.one:
        result = run_one(args.one[0], int(args.one[1]), Path(args.one[2]), args.vacancy_fraction)
        Path(args.output).write_text(json.dumps(result))
        return 0
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for lattice_type, n_cells in CASES:
            n_cells = max(1, round(n_cells * args.scale ** (1 / 3)))
            nc_path = workdir / f"{lattice_type}_{n_cells}.nc"
            json_path = workdir / f"{lattice_type}_{n_cells}.json"
            start = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    str(json_path),
                    "--one",
                    lattice_type,
                    str(n_cells),
                    str(nc_path),
                    "--vacancy-fraction",
                    str(args.vacancy_fraction),
                ],
                check=True,
            )
            result = json.loads(json_path.read_text())
            result["process_wall_s"] = time.perf_counter() - start
            results.append(result)
            nc_path.unlink()
    header = (
        f"{'type':<11}{'n':>4}{'ions':>10}{'generate s':>12}{'dataset s':>11}{'write s':>9}{'total s':>9}"
        f"{'process s':>11}{'file MiB':>10}{'peak MiB':>10}"
    )
    print(header)
    for r in results:
        print(
            f"{r['lattice_type']:<11}{r['n_cells']:>4}{r['n_ions']:>10}{r['generate_s']:>12.2f}{r['dataset_s']:>11.2f}"
            f"{r['write_s']:>9.2f}{r['total_s']:>9.2f}{r['process_wall_s']:>11.2f}{r['file_MiB']:>10.1f}{r['peak_rss_MiB']:>10.0f}"
        )
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"cpu_count": os.cpu_count(), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
