"""Frames per second and memory of potential-frames jobs against one single-structure CLI run per frame.

1. Reuse across frames: the same K frames of the adk DCD (3341 atoms) computed by one
   ``python -m pipeline potential-frames`` job and by K runs of ``python -m pipeline potential``
   on records holding each frame's float64 positions, interleaved (job, CLI runs, job again),
   wall-clock including interpreter start-up, medians; the per-frame arrays are compared bitwise.
2. Flat memory: a synthetic trajectory of --frames frames (default 2000) of the 3341 adk atoms
   (frame 0 of the DCD plus seeded Gaussian displacements of 0.3 Å, written with MDAnalysis'
   DCD writer into a temporary folder, not kept) split into blocks of --block-frames frames;
   the chosen blocks (first, middle, last by default) each run as their own process, reporting
   peak RSS (getrusage of that process) and frames/s. A block's memory is one frame plus its
   block's output, so it does not depend on the trajectory length or the block's position.

Settings: tolerance 1e-6 (the default), self-check on 300 atoms per frame, 2 threads.

Usage: python benchmarks/bench_frames.py results/bench_frames.json [--frames 2000] [--block-frames 20]
[--cli-frames 4] [--blocks first,middle,last]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("bench_frames")

SETTINGS = ["--self-check", "300"]
#: Runs a CLI command in this process and prints its peak RSS (kB) as the last stdout line.
RSS_WRAPPER = ("import resource, sys; from pipeline.cli import main; rc = main(sys.argv[1:]); "
               "print('peak_rss_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)")


def _env() -> dict:
    threads = "2"
    return {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
            "NUMBA_NUM_THREADS": threads, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def _run(args: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (kB) of ``python -m pipeline ARGS`` in a fresh process."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", RSS_WRAPPER, *args], capture_output=True, text=True, env=_env(), check=False)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"pipeline {' '.join(args)} failed: {done.stderr.strip().splitlines()[-1]}")
    rss = int(done.stdout.strip().splitlines()[-1].split()[1])
    return seconds, rss


def reuse_case(work: Path, record: Path, k: int, repeats: int = 2) -> dict:
    """One potential-frames job over frames 0..k-1 vs k potential runs, interleaved ``repeats`` times."""
    from pipeline.storage import read_netcdf, write_netcdf
    from pipeline.structures.record import load_structure, structure_to_dataset
    from pipeline.structures.trajectory import Trajectory

    structure = load_structure(record)
    records = []
    with Trajectory("mdanalysistests:PSF", "mdanalysistests:DCD") as traj:
        for frame in traj.frames(np.arange(k)):
            path = work / f"frame_{frame.index}.nc"
            write_netcdf(structure_to_dataset(dataclasses.replace(structure, positions=frame.positions)), path)
            records.append(path)
    job_s, cli_s = [], []
    for _ in range(repeats):
        seconds, _ = _run(["potential-frames", str(record), "--trajectory", "mdanalysistests:DCD", "--frames", f"0:{k}:1",
                           "-o", str(work / "job.nc"), *SETTINGS])
        job_s.append(seconds)
        t0 = time.perf_counter()
        for i, path in enumerate(records):
            _run(["potential", str(path), "-o", str(work / f"single_{i}.nc"), *SETTINGS])
        cli_s.append(time.perf_counter() - t0)
        log.info("reuse: job %.1fs, %d CLI runs %.1fs", job_s[-1], k, cli_s[-1])
    job = read_netcdf(work / "job.nc")
    identical = all(np.array_equal(job["potential"].values[i], read_netcdf(work / f"single_{i}.nc")["potential"].values)
                    for i in range(k))
    job_median, cli_median = statistics.median(job_s), statistics.median(cli_s)
    return {"frames": k, "job_seconds": job_s, "cli_seconds": cli_s, "job_frames_per_s": k / job_median,
            "cli_frames_per_s": k / cli_median, "speedup": cli_median / job_median, "bitwise_identical": identical}


def write_synthetic(path: Path, n_frames: int, seed: int = 7) -> None:
    """A DCD of ``n_frames`` frames: adk frame 0 plus seeded Gaussian displacements (σ = 0.3 Å)."""
    import warnings

    import MDAnalysis as mda
    from MDAnalysisTests.datafiles import DCD, PSF

    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        universe = mda.Universe(PSF, DCD)
        base = universe.atoms.positions.copy()
        with mda.Writer(str(path), n_atoms=len(universe.atoms)) as writer:
            for _ in range(n_frames):
                universe.atoms.positions = base + rng.normal(scale=0.3, size=base.shape).astype(np.float32)
                writer.write(universe.atoms)


def memory_case(work: Path, record: Path, n_frames: int, block_frames: int, which: list[str]) -> dict:
    """Peak RSS and frames/s of chosen blocks of a synthetic ``n_frames`` trajectory."""
    traj = work / "synthetic.dcd"
    t0 = time.perf_counter()
    write_synthetic(traj, n_frames)
    log.info("synthetic trajectory: %d frames, %.1f MB, written in %.1fs", n_frames, traj.stat().st_size / 1e6,
             time.perf_counter() - t0)
    blocks = -(-n_frames // block_frames)
    chosen = {"first": 0, "middle": blocks // 2, "last": blocks - 1}
    rows = []
    for name in which:
        block = chosen[name]
        seconds, rss = _run(["potential-frames", str(record), "--trajectory", str(traj), "--topology",
                             "mdanalysistests:PSF", "--frames", "::1", "--block", str(block), "--blocks", str(blocks),
                             "-o", str(work / f"block_{block}.nc"), *SETTINGS])
        from pipeline.storage import read_netcdf

        out = read_netcdf(work / f"block_{block}.nc")
        rows.append({"block": block, "blocks": blocks, "frames": int(out.sizes["frame"]),
                     "first_frame": int(out["frame"].values[0]), "peak_rss_MB": rss / 1024, "wall_seconds": seconds,
                     "loop_frames_per_s": float(out.attrs["speed_frames_per_s"]),
                     "median_frame_seconds": float(np.median(out["runtime"].values))})
        log.info("block %d/%d: %s", block, blocks, rows[-1])
    return {"trajectory_frames": n_frames, "trajectory_MB": traj.stat().st_size / 1e6, "block_frames": block_frames,
            "blocks": rows}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", help="JSON file of the results")
    parser.add_argument("--frames", type=int, default=2000, help="frames of the synthetic trajectory")
    parser.add_argument("--block-frames", type=int, default=20, help="frames per block job")
    parser.add_argument("--blocks", default="first,middle,last", help="blocks to run: first, middle, last")
    parser.add_argument("--cli-frames", type=int, default=4, help="frames of the reuse comparison (0: skip)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from pipeline.storage import write_netcdf
    from pipeline.structures.ingest import ingest
    from pipeline.structures.record import structure_to_dataset

    results = {"settings": "tolerance 1e-6, self-check 300 atoms, 2 threads", "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench_frames_") as tmp:
        work = Path(tmp)
        record = work / "adk_psf.nc"
        write_netcdf(structure_to_dataset(ingest("mdanalysistests:PSF", coordinates="mdanalysistests:DCD",
                                                 structure_id="adk_psf")), record)
        if args.cli_frames:
            results["reuse"] = reuse_case(work, record, args.cli_frames)
        results["memory"] = memory_case(work, record, args.frames, args.block_frames, args.blocks.split(","))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
