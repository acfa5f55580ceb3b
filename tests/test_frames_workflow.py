"""Frame blocks as Snakemake jobs: finished blocks survive an interrupted run and are not rerun."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]


def _snakemake(workdir: Path, *targets: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "2",
                           "--directory", str(workdir), *targets], capture_output=True, text=True, cwd=workdir,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=900, check=False)


def test_finished_blocks_are_kept_and_not_rerun(tmp_path):
    pytest.importorskip("MDAnalysisTests")
    shutil.copytree(REPO / ".test" / "config", tmp_path / "config")  # adk_dcd: frames 0:8:2 in 2 blocks
    block0 = "results/frames/blocks/adk_dcd/block_0.nc"
    first = _snakemake(tmp_path, block0)  # a run that stopped after the first block
    assert first.returncode == 0, first.stderr[-3000:]
    log0 = tmp_path / "results/logs/potential_frames_block/adk_dcd/block_0.log"
    stamp = (log0.stat().st_mtime_ns, (tmp_path / block0).stat().st_mtime_ns)
    assert not (tmp_path / "results/logs/potential_frames_block/adk_dcd/block_1.log").exists()

    second = _snakemake(tmp_path, "results/frames/adk_dcd.nc")
    assert second.returncode == 0, second.stderr[-3000:]
    stats = second.stdout + second.stderr
    job_counts = dict(line.split()[:2] for line in stats.splitlines()
                      if line.split()[:1] in (["potential_frames_block"], ["potential_frames_gather"], ["ingest"]))
    assert job_counts == {"potential_frames_block": "1", "potential_frames_gather": "1"}
    assert log0.stat().st_mtime_ns == stamp[0]  # block 0 did not run again

    import xarray as xr

    with xr.open_dataset(tmp_path / "results/frames/adk_dcd.nc") as ds:
        assert ds["frame"].values.tolist() == [0, 2, 4, 6]
        assert np.all(np.isfinite(ds["potential"].values))
        assert int(ds.attrs["blocks"]) == 2


def test_descriptor_frames_are_scheduled_from_the_config(tmp_path):
    """`descriptors.frames` adds one descriptors-frames job per listed trajectory, read by the report (dry run)."""
    shutil.copytree(REPO / ".test" / "config", tmp_path / "config")
    config = tmp_path / "config" / "config.yaml"
    config.write_text(config.read_text() + "  frames: {structures: [adk_dcd], start: 0, stop: 8, step: 4}\n")
    completed = _snakemake(tmp_path, "-n", "-p")
    assert completed.returncode == 0, completed.stderr[-3000:]
    commands = [line for line in completed.stdout.splitlines() if "python -m pipeline" in line]
    job = next(line for line in commands if "descriptors-frames" in line)
    assert "--trajectory mdanalysistests:DCD --topology mdanalysistests:PSF --frames 0:8:4 --lmax 1" in job
    report = next(line for line in commands if "pipeline report" in line)
    assert "--descriptors-frames results/descriptors/frames/adk_dcd.nc" in report
    assert sum("potential-frames results/structures/adk_dcd.nc" in line and "--blocks 2" in line for line in commands) == 2

    config.write_text(config.read_text().replace("frames_per_job: 2", "frames_per_job: 0"))  # one job, no gather
    completed = _snakemake(tmp_path, "-n", "-p")
    assert completed.returncode == 0, completed.stderr[-3000:]
    frames_jobs = [line for line in completed.stdout.splitlines() if "pipeline potential-frames" in line]
    assert len(frames_jobs) == 1 and "-o results/frames/adk_dcd.nc" in frames_jobs[0] and "--block" not in frames_jobs[0]
    config.write_text(config.read_text().replace("structures: [adk_dcd], start", "structures: [adk_pqr], start"))
    completed = _snakemake(tmp_path, "-n")
    assert completed.returncode != 0
    assert "descriptors.frames.structures names structure(s) without a trajectory: adk_pqr" in completed.stdout + completed.stderr
