"""``python -m pipeline ingest`` and ``lattice``: round trips through netCDF, exit codes, no output on error."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from MDAnalysisTests import datafiles

from pipeline import cli
from pipeline.cli import main
from pipeline.structures.record import load_structure

PQR_LINES = open(datafiles.PQR).read().splitlines()
PQR_FIRST_ATOM = next(i for i, line in enumerate(PQR_LINES) if line.startswith("ATOM"))


@pytest.fixture(autouse=True)
def only_structure_stages(monkeypatch):
    """Register only the stages under test, so another stage's import problem cannot mask these tests."""
    monkeypatch.setattr(cli, "STAGE_MODULES", ("ingest", "lattice"))


def parse_pqr(path):
    rows = [line.split()[-5:] for line in open(path) if line.startswith(("ATOM", "HETATM"))]
    values = np.array(rows, dtype=np.float64)
    return values[:, :3], values[:, 3], values[:, 4]


def test_ingest_pqr_round_trip(tmp_path):
    out = tmp_path / "adk.nc"
    assert main(["ingest", "mdanalysistests:PQR", "-o", str(out), "--id", "adk"]) == 0
    structure = load_structure(out)
    positions, charges, radii = parse_pqr(datafiles.PQR)
    assert structure.n_atoms == 3341
    np.testing.assert_allclose(structure.positions, positions, rtol=2e-7, atol=1e-6)
    np.testing.assert_array_equal(structure.charges, charges)
    np.testing.assert_array_equal(structure.radii, radii)
    assert structure.atom_names[0] == "N" and structure.residue_names[0] == "MET" and structure.residue_ids[0] == 1
    attrs = structure.attrs
    assert attrs["structure_id"] == "adk" and attrs["source"] == "mdanalysistests:PQR"
    assert attrs["charge_source"] == "file" and attrs["format"] == "PQR"
    assert attrs["dropped"] == [] and attrs["n_atoms"] == 3341
    assert abs(attrs["net_charge"] + 4.0) < 1e-12


def test_ingest_tpr_gro_round_trip_keeps_box(tmp_path):
    out = tmp_path / "adk_solvated.nc"
    assert main(["ingest", "mdanalysistests:TPR", "--coordinates", "mdanalysistests:GRO", "-o", str(out)]) == 0
    structure = load_structure(out)
    assert structure.n_atoms == 47681 and abs(structure.charges.sum()) < 1e-9
    np.testing.assert_allclose(np.asarray(structure.attrs["box"])[3:], [60.0, 60.0, 90.0], atol=1e-4)
    assert (
        structure.attrs["structure_id"] == "adk_oplsaa"
        and structure.attrs["coordinate_source"] == "mdanalysistests:GRO"
    )
    # what the potential stages read: the same arrays and attributes, no per-atom text
    light = load_structure(out, annotations=False)
    np.testing.assert_array_equal(light.positions, structure.positions)
    np.testing.assert_array_equal(light.charges, structure.charges)
    assert light.attrs.keys() == structure.attrs.keys() and light.attrs["box"] == structure.attrs["box"]
    assert structure.atom_names is not None
    assert light.atom_names is None and light.residue_ids is None and light.elements is None


@pytest.mark.parametrize(
    ("args", "n_atoms"),
    [
        (["--type", "rocksalt", "--cells", "2"], 64),
        (["--type", "cscl", "--cells", "3"], 54),
        (["--type", "zincblende", "--cells", "2"], 64),
        (["--type", "evjen", "--cells", "2"], 125),
        (["--type", "evjen_cscl", "--cells", "2", "--termination", "anion"], 341),
        (["--type", "evjen_zincblende", "--cells", "1"], 171),
    ],
)
def test_lattice_cli_round_trip(tmp_path, args, n_atoms):
    out = tmp_path / "lattice.nc"
    assert main(["lattice", *args, "--lattice-constant", "5.64", "-o", str(out)]) == 0
    structure = load_structure(out)
    assert structure.n_atoms == n_atoms
    assert abs(structure.charges.sum()) < 1e-12
    assert structure.attrs["charge_source"] == "lattice" and structure.attrs["lattice_type"] == args[1]
    assert structure.attrs["structure_id"] == f"{args[1]}_n{args[3]}"


def test_lattice_cli_periodic_writes_the_box(tmp_path):
    out = tmp_path / "periodic.nc"
    common = ["lattice", "--type", "rocksalt", "--cells", "2", "--lattice-constant", "5.64"]
    assert main([*common, "--periodic", "-o", str(out)]) == 0
    structure = load_structure(out)
    np.testing.assert_allclose(structure.attrs["box"], [11.28, 11.28, 11.28, 90, 90, 90], rtol=1e-15)
    assert structure.attrs["periodic"] == 1 and structure.n_atoms == 64
    assert main([*common, "--periodic", "--cell", "primitive", "-o", str(out)]) == 0
    structure = load_structure(out)
    length = 2 * 5.64 / np.sqrt(2)
    np.testing.assert_allclose(structure.attrs["box"], [length, length, length, 60, 60, 60], rtol=1e-15)
    assert structure.n_atoms == 16 and structure.attrs["cell"] == "primitive"
    assert main([*common, "-o", str(out)]) == 0
    assert len(load_structure(out).attrs["box"]) == 0


def test_lattice_cli_vacancies_and_impurities(tmp_path):
    out = tmp_path / "doped.nc"
    argv = [
        "lattice",
        "--type",
        "rocksalt",
        "--cells",
        "3",
        "--lattice-constant",
        "5.64",
        "--vacancy-fraction",
        "0.1",
        "--impurity-fraction",
        "0.05",
        "--impurity-charge",
        "2",
        "--seed",
        "5",
        "-o",
        str(out),
        "--id",
        "doped",
    ]
    assert main(argv) == 0
    structure = load_structure(out)
    k = round(0.1 * 108)
    m = round(0.05 * (108 - k))
    assert structure.n_atoms == 216 - 2 * k
    assert structure.attrs["n_impurities"] == m and structure.attrs["seed"] == 5
    assert abs(structure.charges.sum() - m * (2 - 1)) < 1e-12


def bad_inputs(tmp_path):
    fields = PQR_LINES[PQR_FIRST_ATOM + 4].split()
    malformed = tmp_path / "malformed.pqr"
    malformed.write_text(
        "\n".join(PQR_LINES[: PQR_FIRST_ATOM + 4] + [" ".join(fields[:5] + ["1..2"] + fields[6:])]) + "\n"
    )
    empty = tmp_path / "empty.pdb"
    empty.write_text("REMARK only\nEND\n")
    unknown = tmp_path / "structure.txt"
    unknown.write_text(open(datafiles.PQR).read())
    return {
        "missing": (["ingest", str(tmp_path / "nope.pdb")], "nope.pdb: no such structure file"),
        "extension": (["ingest", str(unknown)], "structure.txt: cannot tell the format from the extension .txt"),
        "format": (["ingest", "mdanalysistests:GRO", "--format", "pdb"], "looks like GRO"),
        "mismatch": (
            ["ingest", "mdanalysistests:PRM", "--coordinates", "mdanalysistests:INPCRD"],
            "test.inpcrd: coordinate file has 5 atoms",
        ),
        "malformed": (["ingest", str(malformed)], f"malformed.pqr: line {PQR_FIRST_ATOM + 5}: field x is '1..2'"),
        "zero": (["ingest", str(empty), "--forcefield", "AMBER"], "empty.pdb: zero atoms"),
        "charges": (["ingest", "mdanalysistests:GRO"], "pass --forcefield AMBER|CHARMM|PARSE"),
        "pdb2pqr": (
            ["ingest", "mdanalysistests:MMCIF/5PTI.cif.gz", "--forcefield", "AMBER"],
            "5PTI.cif.gz: pdb2pqr --ff=AMBER failed",
        ),
        "name": (["ingest", "mdanalysistests:NOPE"], "mdanalysistests:NOPE: unknown MDAnalysisTests data file"),
        "lattice": (
            ["lattice", "--type", "cscl", "--cells", "2", "--lattice-constant", "4", "--impurity-fraction", "0.1"],
            "impurity_charge is required",
        ),
        "cells": (
            ["lattice", "--type", "evjen", "--cells", "0", "--lattice-constant", "4"],
            "n must be an integer >= 1",
        ),
        "termination": (
            ["lattice", "--type", "evjen", "--cells", "2", "--lattice-constant", "4", "--termination", "anion"],
            "termination does not apply to the rock-salt Evjen cube",
        ),
        "primitive": (
            ["lattice", "--type", "rocksalt", "--cells", "2", "--lattice-constant", "4", "--cell", "primitive"],
            "the primitive cell is a periodic cell",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "extension",
        "format",
        "mismatch",
        "malformed",
        "zero",
        "charges",
        "pdb2pqr",
        "name",
        "lattice",
        "cells",
        "termination",
        "primitive",
    ],
)
def test_cli_bad_input_exit_status_message_and_no_output(tmp_path, capsys, case):
    argv, expected = bad_inputs(tmp_path)[case]
    out = tmp_path / "out" / "structure.nc"
    assert main([*argv, "-o", str(out)]) == 1
    error_lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and expected in error_lines[0], error_lines
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())  # no temporary file left either


def test_cli_subprocess_stderr_is_one_line(tmp_path):
    out = tmp_path / "gro.nc"
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "ingest", "mdanalysistests:GRO", "-o", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: mdanalysistests:GRO: GRO has no partial charges")
    assert not out.exists()


def test_cli_modules_import_no_numerical_packages():
    # `python -m pipeline ingest --help` must stay fast: parsers only, heavy imports inside run()
    code = (
        "import sys, pipeline.cli.ingest, pipeline.cli.lattice; "
        "print(sorted(m for m in ('numpy', 'xarray', 'MDAnalysis', 'scipy') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
