"""The potential stage end to end, as users run it, against a script that does the same with fmm3dpy.

Both sides are whole processes started the same way (``python ...``) on the same structure
record: ours is ``python -m pipeline potential S.nc -o P.nc --tolerance EPS`` (reading the
record, building, the potential at every atom, the self-check against direct summation and the
file); the peer reads the same record with xarray, calls ``fmm3dpy.lfmm3d`` at the same eps for
the potential at every atom and writes it with xarray. Runs alternate (ours, peer, ours, ...)
and the medians of ``--repeats`` are reported, with both sides' errors against direct
summation at sampled atoms and the ratio. Threads: both use every core the machine has
(fmm3dpy through OpenMP, ours through Numba and BLAS); set OMP_NUM_THREADS etc. to compare
other counts. Also reports ``python -m pipeline potential --help`` start-up.

Example: python benchmarks/bench_cli.py out.json --atoms 100000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

from pipeline.electrostatics import direct_potential
from pipeline.storage import write_netcdf
from pipeline.structures.record import Structure, structure_to_dataset

PEER = """
import math, sys
import numpy as np, xarray as xr, fmm3dpy
eps, src, out = float(sys.argv[1]), sys.argv[2], sys.argv[3]
with xr.open_dataset(src) as s:
    pos, q = s["positions"].values, s["charge"].values
res = fmm3dpy.lfmm3d(eps=eps, sources=np.ascontiguousarray(pos.T), charges=q, pg=1)
xr.Dataset({"potential": (("atom",), 4 * math.pi * res.pot)}).to_netcdf(out)
"""


def protein_cloud(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Uniform cloud at 0.1 atoms/Å³ with protein-like partial charges, neutral."""
    width = (n / 0.1) ** (1 / 3)
    q = rng.choice([-0.5, 0.5], n) + rng.normal(0.0, 0.1, n)
    return rng.uniform(0.0, width, (n, 3)), q - q.mean()


def write_record(path: Path, positions: np.ndarray, charges: np.ndarray, structure_id: str, box=()) -> None:
    """A structure record as the ingest stage writes it (``box``: [a, b, c, α, β, γ] or empty)."""
    attrs = {"structure_id": structure_id, "source": "bench", "box": list(box)}
    write_netcdf(structure_to_dataset(Structure(positions=positions, charges=charges, attrs=attrs)), path)


def timed(cmd: list[str], cwd: Path, env: dict | None = None) -> tuple[float, float]:
    """Wall and CPU (user + system, all threads) seconds of one process; its stderr tail on failure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", help="JSON file of the results")
    parser.add_argument("--atoms", type=int, default=100_000)
    parser.add_argument("--tolerance", type=float, default=1e-6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--check", type=int, default=300, help="atoms compared with direct summation")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    pos, q = protein_cloud(args.atoms, rng)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_record(work / "s.nc", pos, q, "cloud")
        (work / "peer.py").write_text(PEER)
        ours_cmd = [sys.executable, "-m", "pipeline", "potential", "s.nc", "-o", "p.nc", "--tolerance", str(args.tolerance), "-q"]
        peer_cmd = [sys.executable, "peer.py", str(args.tolerance), "s.nc", "f.nc"]
        help_cmd = [sys.executable, "-m", "pipeline", "potential", "--help"]
        timed(ours_cmd, work)  # the first run may compile the kernels into the cache
        ours, peer, start_up = [], [], []
        for _ in range(args.repeats):
            ours.append(timed(ours_cmd, work)[0])
            peer.append(timed(peer_cmd, work)[0])
            start_up.append(timed(help_cmd, work)[0])
        idx = np.sort(rng.choice(args.atoms, size=min(args.check, args.atoms), replace=False))
        ref = direct_potential(pos[idx], pos, q)
        with xr.open_dataset(work / "p.nc") as p, xr.open_dataset(work / "f.nc") as f:
            err_ours = float(np.abs(p["potential"].values[idx] - ref).max() / np.abs(ref).max())
            err_peer = float(np.abs(f["potential"].values[idx] - ref).max() / np.abs(ref).max())
            self_check = float(p.attrs["max_rel_error"])
    result = {
        "atoms": args.atoms, "tolerance": args.tolerance, "cores": os.cpu_count(),
        "ours_s": statistics.median(ours), "peer_s": statistics.median(peer),
        "speed_up": statistics.median(peer) / statistics.median(ours), "ours_runs_s": ours, "peer_runs_s": peer,
        "help_s": statistics.median(start_up), "max_rel_error_ours": err_ours, "max_rel_error_peer": err_peer,
        "self_check_max_rel_error": self_check,
    }
    Path(args.output).write_text(json.dumps(result, indent=2))
    print(f"N={args.atoms} eps={args.tolerance:g} on {os.cpu_count()} cores: potential CLI {result['ours_s']:.2f} s "
          f"(error {err_ours:.1e}), fmm3dpy script {result['peer_s']:.2f} s (error {err_peer:.1e}): "
          f"{result['speed_up']:.2f}x; potential --help {result['help_s']:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
