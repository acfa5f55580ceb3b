"""Real Snakemake runs of the tiny test study (.test/config/config.yaml), not mocked.

One clean run is shared by the tests of this module; a second clean run checks that results are
reproducible, and a third run is killed mid-way and resumed to check that nothing partial is left.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
#: Names of variables and attributes that hold timings, dates or host facts, not results.
VOLATILE_MARKERS = ("time", "seconds", "rss", "history", "date", "host", "speed", "flops_per")


def _make_study(root: Path) -> Path:
    shutil.copytree(REPO / ".test" / "config", root / "config")
    return root


def _run(workdir: Path, *extra: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SNAKEMAKE, "--cores", "2", "--directory", str(workdir), *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=workdir,
    )


def _is_volatile(name: str) -> bool:
    return any(marker in name.lower() for marker in VOLATILE_MARKERS)


def _stable_part(dataset: xr.Dataset) -> xr.Dataset:
    """The dataset without timing variables and attributes (what must be reproducible)."""
    dataset = dataset.drop_vars([name for name in dataset.variables if _is_volatile(str(name))])
    dataset.attrs = {k: v for k, v in dataset.attrs.items() if not _is_volatile(k)}
    for variable in dataset.variables.values():
        variable.attrs = {k: v for k, v in variable.attrs.items() if not _is_volatile(k)}
    return dataset


def _result_files(workdir: Path) -> list[Path]:
    return sorted(p.relative_to(workdir) for p in (workdir / "results").rglob("*.nc"))


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory) -> Path:
    workdir = _make_study(tmp_path_factory.mktemp("study_a"))
    completed = _run(workdir)
    assert completed.returncode == 0, completed.stderr[-4000:]
    return workdir


def test_dry_run_lists_every_stage(tmp_path):
    workdir = _make_study(tmp_path)
    completed = _run(workdir, "-n")
    assert completed.returncode == 0, completed.stderr[-4000:]
    for rule in ("ingest", "lattice", "potential", "potential_accuracy", "tensor_products", "descriptors", "report"):
        assert rule in completed.stdout
    # the default profile (rerun-incomplete after a kill, rerun triggers) applies from any study folder
    assert f"profile {REPO / 'profiles' / 'default'}" in completed.stderr


def test_clean_run_produces_every_output(clean_run):
    results = clean_run / "results"
    for name in ("adk_pqr", "nacl_small"):
        assert (results / "structures" / f"{name}.nc").is_file()
        assert (results / "potential" / f"{name}.nc").is_file()
        assert (results / "logs" / "potential" / f"{name}.log").is_file()
        assert (results / "benchmarks" / "potential" / f"{name}.tsv").is_file()
    assert (results / "descriptors" / "nacl_small.nc").is_file()
    assert (results / "tensor_products.nc").is_file()
    with xr.open_dataset(results / "structures" / "adk_pqr.nc") as adk:
        assert adk.sizes["atom"] == 3341
        assert abs(float(adk["charge"].sum()) - (-4.0)) < 1e-3
    with xr.open_dataset(results / "structures" / "nacl_small.nc") as nacl:
        assert nacl.sizes["atom"] == 8 * 3**3
    assert (results / "accuracy" / "nacl_small" / "tol_1e-06.nc").is_file()
    with xr.open_dataset(results / "report.nc") as report:
        assert set(report["structure"].values) == {"adk_dcd", "adk_pqr", "nacl_small"}
        assert report["trajectory"].values.tolist() == ["adk_dcd"]
        assert int(report["trajectory_n_frames"].values[0]) == 4
        # main tolerance 1e-4 plus the accuracy sweep's 1e-6 for nacl_small
        assert sorted(report["potential_tolerance"].values.tolist()) == [1e-6, 1e-4]
    assert not list(results.rglob("*.tmp"))


def test_rerun_has_nothing_to_do(clean_run):
    completed = _run(clean_run, "-n")
    assert completed.returncode == 0
    assert "Nothing to be done" in completed.stdout + completed.stderr


def test_html_report(clean_run):
    completed = _run(clean_run, "--report", "report.html")
    assert completed.returncode == 0, completed.stderr[-4000:]
    html = (clean_run / "report.html").read_text(errors="replace")
    assert "<html" in html.lower() and len(html) > 10_000


def _assert_same_results(first: Path, second: Path) -> None:
    files = _result_files(first)
    assert files == _result_files(second)
    for relative in files:
        with xr.open_dataset(first / relative) as a, xr.open_dataset(second / relative) as b:
            xr.testing.assert_identical(_stable_part(a.load()), _stable_part(b.load()))


def test_two_clean_runs_give_identical_results(clean_run, tmp_path):
    second = _make_study(tmp_path)
    completed = _run(second)
    assert completed.returncode == 0, completed.stderr[-4000:]
    _assert_same_results(clean_run, second)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "sigkill"])
def test_killed_run_resumes_without_partial_files(clean_run, tmp_path, sig):
    """Ctrl-C (SIGINT to the process group) or a hard kill mid-run, then the same command again.

    After SIGKILL Snakemake cannot release its lock, so the user runs `--unlock` first (the
    README says so); after Ctrl-C the plain command resumes.
    """
    workdir = _make_study(tmp_path)
    process = subprocess.Popen(
        [*SNAKEMAKE, "--cores", "2", "--directory", str(workdir)],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    first_output = workdir / "results" / "structures"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (first_output.is_dir() and any(first_output.glob("*.nc"))):
        time.sleep(0.2)
    time.sleep(1.0)
    os.killpg(process.pid, sig)
    process.wait(timeout=120)
    assert not (workdir / "results" / "report.nc").exists(), "the run finished before it could be killed"

    if sig == signal.SIGKILL:
        assert _run(workdir, "--unlock").returncode == 0
    completed = _run(workdir)
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert not list((workdir / "results").rglob("*.tmp"))
    _assert_same_results(clean_run, workdir)


def test_bad_config_value_names_the_key(tmp_path):
    workdir = _make_study(tmp_path)
    config = workdir / "config" / "config.yaml"
    config.write_text(config.read_text().replace("tolerance: 1.0e-4", "tolerance: 0.5"))
    completed = _run(workdir, "-n")
    assert completed.returncode != 0
    assert "tolerance" in completed.stderr + completed.stdout
