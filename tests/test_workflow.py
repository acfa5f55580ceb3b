"""Real Snakemake runs of the tiny test studies (.test/config/ and .test/chunked/config/), not mocked.

One clean run is shared by the tests of this module; a second clean run checks that results are
reproducible, and a third run is killed mid-way and resumed to check that nothing partial is left.
The chunked study (scatter-gather build, Gaussian-sum split) runs once, with its HTML report.
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
import yaml

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
#: Names of variables and attributes that hold timings, dates or host facts, not results.
VOLATILE_MARKERS = ("time", "seconds", "rss", "history", "date", "host", "speed", "flops_per")


def _make_study(root: Path, name: str = "") -> Path:
    """A study folder holding a copy of `.test/<name>/config`."""
    shutil.copytree(REPO / ".test" / name / "config", root / "config")
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


@pytest.fixture(scope="module")
def chunked_run(tmp_path_factory) -> Path:
    workdir = _make_study(tmp_path_factory.mktemp("study_chunked"), "chunked")
    completed = _run(workdir)
    assert completed.returncode == 0, completed.stderr[-4000:]
    return workdir


def test_dry_run_lists_every_stage(tmp_path):
    workdir = _make_study(tmp_path)
    completed = _run(workdir, "-n")
    assert completed.returncode == 0, completed.stderr[-4000:]
    for rule in ("ingest", "lattice", "potential", "potential_accuracy", "tensor_products", "descriptors", "map", "report"):
        assert rule in completed.stdout
    # the default profile (rerun-incomplete after a kill, rerun triggers) applies from any study folder
    assert f"profile {REPO / 'profiles' / 'default'}" in completed.stderr


def test_jobs_run_the_workflow_package_whatever_comes_first(tmp_path):
    """Jobs import the `pipeline` package next to the Snakefile, not the first one on PYTHONPATH.

    The conda route relies on this (its envs hold the dependencies only), as does a study folder
    anywhere on disk. A decoy package first on PYTHONPATH would make any job that does not put the
    workflow's folder in front fail.
    """
    decoy = tmp_path / "decoy" / "pipeline"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("")
    (decoy / "__main__.py").write_text("raise SystemExit('the decoy pipeline package ran')\n")
    workdir = _make_study(tmp_path / "study")
    completed = subprocess.run(
        [*SNAKEMAKE, "--cores", "1", "--directory", str(workdir), "results/structures/nacl_small.nc"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=workdir,
        env={**os.environ, "PYTHONPATH": str(decoy.parent)},
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    with xr.open_dataset(workdir / "results" / "structures" / "nacl_small.nc") as nacl:
        assert nacl.sizes["atom"] == 8 * 3**3


def _potential_commands(text: str) -> dict[str, str]:
    """Shell commands of `pipeline potential` jobs in a dry run's output, keyed by output file."""
    commands = {}
    for line in text.splitlines():
        if "python -m pipeline potential " in line:
            command = line.split("Shell command:", 1)[-1].strip()
            commands[command.split(" -o ", 1)[1].split()[0]] = command
    return commands


def test_potential_options_merge_study_and_structure_settings(tmp_path):
    """Each job gets the study-wide `potential:` settings with its structure's own on top; the
    accuracy sweep's tolerance replaces both and skips the structure's own tolerance."""
    workdir = _make_study(tmp_path)
    path = workdir / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["structures"]["nacl_small"]["potential"] = {"periodic": True, "tolerance": 1e-3, "alpha": 0.4}
    config["accuracy"]["tolerances"] = [1e-6, 1e-3]
    path.write_text(yaml.safe_dump(config))
    completed = _run(workdir, "-n", "-p")
    assert completed.returncode == 0, completed.stderr[-4000:]
    commands = _potential_commands(completed.stdout + completed.stderr)
    assert set(commands) == {"results/potential/adk_pqr.nc", "results/potential/adk_dcd.nc",
                             "results/potential/nacl_small.nc",
                             "results/accuracy/nacl_small/tol_1e-06.nc"}  # tol 1e-3 is nacl_small's own
    expected = {
        # .test: adk_pqr in salt water, study-wide tolerance
        "results/potential/adk_pqr.nc": "--tolerance 0.0001 --device cpu --split ewald --dielectric 78.5 "
                                        "--ionic-strength 0.15 --temperature 298.15 --periodic auto --self-check 300",
        "results/potential/nacl_small.nc": "--tolerance 0.001 --device cpu --split ewald --alpha 0.4 --dielectric 1.0 "
                                           "--ionic-strength 0.0 --temperature 298.15 --periodic on --self-check 300",
        "results/accuracy/nacl_small/tol_1e-06.nc": "--tolerance 1e-06 --device cpu --split ewald --alpha 0.4 "
                                                    "--dielectric 1.0 --ionic-strength 0.0 --temperature 298.15 "
                                                    "--periodic on --self-check 300",
    }
    for output, options in expected.items():
        assert options in commands[output], f"{output}: {commands[output]}"
        assert commands[output].startswith("NUMBA_NUM_THREADS=1 python -m pipeline potential ")


def test_clean_run_produces_every_output(clean_run):
    results = clean_run / "results"
    for name in ("adk_pqr", "nacl_small"):
        assert (results / "structures" / f"{name}.nc").is_file()
        assert (results / "potential" / f"{name}.nc").is_file()
        assert (results / "logs" / "potential" / f"{name}.log").is_file()
        assert (results / "benchmarks" / "potential" / f"{name}.tsv").is_file()
    assert (results / "descriptors" / "nacl_small.nc").is_file()
    assert (results / "tensor_products.nc").is_file()
    assert sorted(p.name for p in (results / "maps").iterdir()) == ["nacl_small.dx", "nacl_small.nc"]
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
        # adk_pqr in 150 mM salt at eps_r 78.5 (.test config); Debye length 7.8546 A (CODATA 2018)
        adk = report.sel({"structure": "adk_pqr", "potential_tolerance": 1e-4})
        assert float(adk["potential_dielectric"]) == 78.5 and float(adk["potential_ionic_strength"]) == 0.15
        assert float(adk["potential_temperature"]) == 298.15 and float(adk["potential_periodic"]) == 0
        assert abs(float(adk["potential_debye_length"]) - 7.8546) < 1e-3
        assert abs(float(adk["potential_kappa"]) * float(adk["potential_debye_length"]) - 1.0) < 1e-12
        assert np.isnan(adk["box_length"].values).all() and np.isnan(adk["potential_cell"].values).all()
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

    The run is frozen (SIGSTOP) as soon as its first output exists and killed in that state, so
    no timing decides whether the kill lands mid-run.

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
        if process.poll() is not None:
            break
        time.sleep(0.05)
    # Freeze the whole run the moment its first output exists (SIGSTOP cannot be handled), so the
    # state it is killed in is known: the structures stage has written, the report has not. Then
    # deliver the signal and let the frozen processes handle it (SIGCONT).
    os.killpg(process.pid, signal.SIGSTOP)
    assert any(first_output.glob("*.nc")), "no output appeared before the deadline"
    assert not (workdir / "results" / "report.nc").exists(), "the run finished before it could be killed"
    os.killpg(process.pid, sig)
    os.killpg(process.pid, signal.SIGCONT)
    process.wait(timeout=120)

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


def test_map_dx_holds_the_netcdf_map(clean_run):
    """The OpenDX map, read back by GridDataFormats as VMD or PyMOL would, equals the netCDF map."""
    from gridData import Grid

    maps = clean_run / "results" / "maps"
    grid = Grid(str(maps / "nacl_small.dx"))
    with xr.open_dataset(maps / "nacl_small.nc") as nc:
        assert nc["potential"].attrs["units"] == "kT/e"
        assert nc["potential"].shape == (17, 17, 17) == grid.grid.shape
        values = nc["potential"].values
        np.testing.assert_allclose(grid.origin, [float(nc[a][0]) for a in "xyz"], atol=1e-6)
        np.testing.assert_allclose(grid.delta, [float(nc[a][1] - nc[a][0]) for a in "xyz"], rtol=1e-6)
    np.testing.assert_allclose(grid.grid, values, rtol=1e-5, atol=1e-6 * np.abs(values).max())


def test_chunked_gaussian_sum_study_matches_the_one_job_ewald_build(clean_run, chunked_run):
    """Two atom chunks in separate jobs with the Gaussian-sum split give the one-job Ewald potential.

    Both builds are within their requested relative tolerance 1e-4 of the exact potential at the
    atoms, so they differ by at most 2e-4 (relative to the largest value).
    """
    results = chunked_run / "results"
    assert sorted(p.name for p in (results / "benchmarks" / "potential_chunk" / "nacl_small").iterdir()) == ["chunk_0.tsv", "chunk_1.tsv"]
    assert not (results / "potential" / "chunks").exists() or not list((results / "potential" / "chunks").rglob("*.nc"))
    with (
        xr.open_dataset(results / "potential" / "nacl_small.nc") as chunked,
        xr.open_dataset(clean_run / "results" / "potential" / "nacl_small.nc") as one_job,
    ):
        assert (chunked.attrs["split"], one_job.attrs["split"]) == ("gaussian-sum", "ewald")
        reference = one_job["potential"].values
        difference = np.max(np.abs(chunked["potential"].values - reference)) / np.max(np.abs(reference))
    assert difference < 2e-4
    with xr.open_dataset(results / "maps" / "nacl_small.nc") as nc:
        assert nc["potential"].attrs["units"] == "e/A" and nc["potential"].shape == (9, 9, 9)
    assert not (results / "maps" / "nacl_small.dx").exists()  # maps.dx: false


def test_chunked_study_html_report(chunked_run):
    completed = _run(chunked_run, "--report", "report.html")
    assert completed.returncode == 0, completed.stderr[-4000:]
    html = (chunked_run / "report.html").read_text(errors="replace")
    assert "<html" in html.lower() and "ranks_vs_atoms" in html
