"""The potential stage from 10⁴ to 10⁷ atoms, as whole processes: wall time, peak memory, error.

Two systems per size: periodic rock salt (±1 e on an fcc/fcc lattice of constant 5.64 Å,
cubic box, exact per-ion potential −q·M/(a/2) with the Madelung constant M) and a
protein-like cloud in free space (:func:`bench_cli.protein_cloud`: 0.1 atoms/Å³, charges ±0.5 e with 0.1 e noise, neutral;
reference: direct summation at ``--check`` sampled atoms). Each run is
``python -m pipeline potential S.nc -o P.nc --tolerance EPS --self-check 0`` (the stage's own
self-check is replaced by the references above, which cost O(N) instead of O(N·sample); with
``--self-check K`` the stage checks K atoms, K points and a 6³ map itself and its errors are
reported too);
its wall time and peak resident memory (ru_maxrss, measured by a small launcher process) are
recorded. The scaling
exponent is the least-squares slope of log(time) against log(N) over the sizes run.

Example: python benchmarks/bench_scaling.py out.json --sizes 10000 100000 1000000 10000000
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr
from bench_cli import protein_cloud, write_record

from pipeline.electrostatics import direct_potential

#: Rock-salt lattice constant, Å.
LATTICE_A = 5.64
#: Madelung constant of rock salt (nearest-neighbour distance a/2).
MADELUNG_NACL = 1.747564594633182


def rocksalt(n_ions: int):
    """(positions Å, charges e, box [a, b, c, α, β, γ]) of about ``n_ions`` ions (8·cells³)."""
    cells = math.ceil((n_ions / 8.0) ** (1.0 / 3.0) - 1e-9)
    fcc = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5]])
    origins = np.stack(np.meshgrid(*[np.arange(cells)] * 3, indexing="ij"), axis=-1).reshape(-1, 1, 3)
    na = (origins + fcc[None]).reshape(-1, 3)
    cl = na + np.array([0.5, 0.0, 0.0])
    positions = np.concatenate([na, cl]) * LATTICE_A
    charges = np.concatenate([np.ones(len(na)), -np.ones(len(cl))])
    side = cells * LATTICE_A
    return positions, charges, [side, side, side, 90.0, 90.0, 90.0]


#: Runs the stage and prints its wall seconds and peak resident KiB. Started from this (small)
#: launcher, the stage's peak excludes the benchmark process's own memory, which Linux would
#: otherwise count in a child's ru_maxrss (the parent's pages at fork survive into it).
LAUNCHER = """
import resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], stderr=subprocess.PIPE, text=True)
seconds = time.perf_counter() - start
if done.returncode:
    sys.exit(done.stderr[-3000:])
print(seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def run_stage(work: Path, tolerance: float, self_check: int) -> tuple[float, float]:
    """Run the potential stage on work/s.nc: (wall seconds, peak resident MiB of the stage process)."""
    cmd = [sys.executable, "-m", "pipeline", "potential", "s.nc", "-o", "p.nc", "--tolerance", str(tolerance),
           "--self-check", str(self_check), "-q"]
    done = subprocess.run([sys.executable, "-c", LAUNCHER, *cmd], cwd=work, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    seconds, peak_kib = done.stdout.split()
    return float(seconds), float(peak_kib) / 1024.0


def one(system: str, n: int, tolerance: float, check: int, self_check: int, rng) -> dict:
    positions, charges, box = rocksalt(n) if system == "rocksalt" else (*protein_cloud(n, rng), [])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_record(work / "s.nc", positions, charges, system, box)
        seconds, peak_mib = run_stage(work, tolerance, self_check)
        with xr.open_dataset(work / "p.nc") as p:
            phi = p["potential"].values
            stage_check = {key: float(p.attrs[key]) for key in ("max_rel_error_atoms", "max_rel_error_points",
                                                                "max_rel_error_map") if self_check and key in p.attrs}
    if system == "rocksalt":
        reference = -charges * MADELUNG_NACL / (LATTICE_A / 2.0)
        error = float(np.max(np.abs(phi - reference)) / np.max(np.abs(reference)))
    else:
        idx = np.sort(rng.choice(n, size=min(check, n), replace=False))
        reference = direct_potential(positions[idx], positions, charges)
        error = float(np.max(np.abs(phi[idx] - reference)) / np.max(np.abs(reference)))
    row = {"system": system, "atoms": int(charges.size), "seconds": seconds, "peak_MiB": peak_mib, "max_rel_error": error,
           **stage_check}
    checked = "".join(f"  {key[14:]} {value:.1e}" for key, value in stage_check.items())
    print(f"{system:9s} N={row['atoms']:>9d}  {seconds:8.2f} s  {peak_mib:9.0f} MiB  error {error:.1e}{checked}", flush=True)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", help="JSON file of the results")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--systems", nargs="+", choices=("rocksalt", "cloud"), default=["rocksalt", "cloud"])
    parser.add_argument("--tolerance", type=float, default=1e-6)
    parser.add_argument("--check", type=int, default=30, help="cloud atoms compared with direct summation")
    parser.add_argument("--self-check", type=int, default=0,
                        help="the stage's own self-check sample (atoms, points, a 6^3 map; its errors are reported)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    rows = [one(system, n, args.tolerance, args.check, args.self_check, rng) for system in args.systems for n in args.sizes]
    exponents = {}
    for system in args.systems:
        mine = [r for r in rows if r["system"] == system]
        if len(mine) > 1:
            slope = np.polyfit(np.log([r["atoms"] for r in mine]), np.log([r["seconds"] for r in mine]), 1)[0]
            exponents[system] = float(slope)
            print(f"{system}: time ∝ N^{slope:.2f} over {mine[0]['atoms']}–{mine[-1]['atoms']} atoms")
    result = {"cores": os.cpu_count(), "tolerance": args.tolerance, "rows": rows, "exponents": exponents}
    Path(args.output).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
