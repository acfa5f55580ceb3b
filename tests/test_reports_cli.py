"""`python -m pipeline report` and `summary` as the workflow runs them: subprocesses, exit codes, files."""

from __future__ import annotations

import subprocess
import sys

import pytest
import xarray as xr

from pipeline.storage import config_hash, read_netcdf, write_netcdf
from tests.reports_study import make_study


def pipeline(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, timeout=120)


def report_args(study: dict, output, figures=None, **overrides) -> list[str]:
    study = {**study, **overrides}
    args = ["report", "--structures", *study["structures"], "--potentials", *study["potentials"],
            "--tensor-products", study["tensor_products"], "--descriptors", *study["descriptors"],
            "--benchmarks", study["benchmarks_dir"], "-o", str(output)]
    if figures is not None:
        args += ["--figures-dir", str(figures)]
    return args


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return make_study(tmp_path_factory.mktemp("study"))


@pytest.fixture(scope="module")
def built(study, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    config = out / "config.yaml"
    config.write_text("potential:\n  tolerance: 1.0e-4\nstructures: [alpha, beta]\n")
    result = pipeline(*report_args(study, out / "report.nc", out / "figures"), "--config", str(config))
    assert result.returncode == 0, result.stderr
    return out


def test_report_cli_writes_report_and_figures(built):
    report = read_netcdf(built / "report.nc")
    assert list(report["structure"].values) == ["alpha", "beta"]
    assert list(report["n_atoms"].values) == [5, 8]
    assert report.attrs["config_hash"] == config_hash({"potential": {"tolerance": 1e-4}, "structures": ["alpha", "beta"]})
    assert "python -m pipeline report --structures" in report.attrs["history"]
    assert sorted(p.name for p in (built / "figures").iterdir()) == [
        "energy_vs_time.png", "error_vs_tolerance.png", "frame_runtime.png", "ranks_vs_atoms.png",
        "residue_potential.png", "runtime_vs_atoms.png", "runtime_vs_lmax.png",
    ]


def test_summary_prints_ids_and_numbers(built):
    result = pipeline("summary", str(built / "report.nc"))
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for expected in (
        "alpha", "beta", "PQR", "lattice",  # structures and formats
        "3.5e-05", "1.25e-05", "7x8x9", "4x5x6", "53.0 KiB",  # potential errors, ranks, storage (54321 B)
        "4.25", "6.5 / 900",  # potential total time, potential stage wall s / MiB
        "gaunt_fourier", "backward", "0.0054",  # tensor products: cg, L=3, backward
        "1.5e-15", "5.5e-14",  # descriptor equivariance error and Gaunt vs CG
        "Solvent and boundary", "78.5", "0.15", "310", "-0.0625",  # eps_r, I, T, background of alpha 1e-6
        "11.25 11.25 11.25 / 90 90 90",  # box of beta
    ):
        assert expected in text, f"{expected!r} missing from summary:\n{text}"
    section = text.split("Solvent and boundary conditions")[1].split("\n\n")[0]
    rows = [line.split() for line in section.splitlines()[4:]]  # after title rule, header, rule
    assert rows == [
        # structure, tolerance, eps_r, I, kappa, Debye length, T, periodic, background
        ["alpha", "1e-6", "78.5", "0.15", "0.125", "8", "310", "yes", "-0.0625"],
        ["alpha", "1e-4", "1", "0", "0", "inf", "298.15", "no", "0"],  # a file without these attributes
        ["beta", "1e-4", "1", "0", "0", "inf", "298.15", "no", "0"],
    ], section


def _leftovers(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_missing_input_fails_without_report(study, tmp_path):
    gone = str(tmp_path / "potential" / "gone.nc")
    result = pipeline(*report_args(study, tmp_path / "report.nc", potentials=[*study["potentials"], gone]))
    assert result.returncode == 1
    assert "error: missing report input(s)" in result.stderr and gone in result.stderr
    assert not (tmp_path / "report.nc").exists() and _leftovers(tmp_path) == []


def test_partial_input_fails_naming_variable(study, tmp_path):
    with xr.open_dataset(study["descriptors"][0]) as ds:
        broken = write_netcdf(ds.load().drop_vars("equivariance_error"), tmp_path / "inputs" / "alpha.nc")
    out = tmp_path / "out"
    out.mkdir()
    result = pipeline(*report_args(study, out / "report.nc", out / "figures", descriptors=[str(broken)]))
    assert result.returncode == 1
    assert str(broken) in result.stderr and "'equivariance_error'" in result.stderr
    assert _leftovers(out) == []


def test_summary_refuses_a_non_report(study):
    result = pipeline("summary", study["structures"][0])
    assert result.returncode == 1
    assert "not a study report" in result.stderr and study["structures"][0] in result.stderr


def test_help_ends_with_example():
    for stage in ("report", "summary"):
        result = pipeline(stage, "--help")
        assert result.returncode == 0 and "Example: python -m pipeline " + stage in result.stdout


def test_summary_module_imports_stay_light(tmp_path):
    code = (
        "import sys\n"
        "import pipeline.cli.summary\n"
        "print(sorted(m for m in ('numpy', 'xarray', 'scipy', 'numba', 'tabulate') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
