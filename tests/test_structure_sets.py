"""structure_sets: one structure per file, ids from file names, clashes and empty globs as one-line errors,
failed members left out and reported as missing with their error."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.structures.sets import (
    expand_structure_sets,
    failed_members,
    structure_id_of,
)


def _files(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("ATOM\n")


def test_ids_from_file_names_with_prefix_and_copied_keys(tmp_path):
    _files(tmp_path, "data/1abc.pdb", "data/2xyz.pdb.gz", "data/odd name.pdb", "data/notes.txt")
    members = expand_structure_sets({"pdbs": {"glob": "data/*.pdb*", "forcefield": "AMBER", "prefix": "s_"}}, {},
                                    root=tmp_path)
    assert sorted(members) == ["s_1abc", "s_2xyz", "s_odd_name"]
    assert members["s_1abc"] == {"source": "data/1abc.pdb", "structure_set": "pdbs", "forcefield": "AMBER"}
    assert structure_id_of("x/y/model.v2.cif") == "model"


def test_glob_matching_nothing_names_the_key(tmp_path):
    with pytest.raises(ValueError, match=r"^config: structure_sets.pdbs.glob 'data/\*.pdb' matches no file"):
        expand_structure_sets({"pdbs": {"glob": "data/*.pdb"}}, {}, root=tmp_path)


def test_two_files_with_one_id_name_both(tmp_path):
    _files(tmp_path, "a/1abc.pdb", "b/1abc.pqr")
    with pytest.raises(ValueError, match=r"structure_sets.two: b/1abc.pqr and a/1abc.pdb \(structure_sets.one\) "
                                         r"both map to id '1abc'"):
        expand_structure_sets({"one": {"glob": "a/*.pdb"}, "two": {"glob": "b/*"}}, {}, root=tmp_path)
    with pytest.raises(ValueError, match=r"structure_sets.one: a/1abc.pdb maps to id '1abc', which is already a structure"):
        expand_structure_sets({"one": {"glob": "a/*.pdb"}}, {"1abc": {"source": "x.pqr"}}, root=tmp_path)


def test_failed_members_are_those_whose_log_is_newer_than_the_file(tmp_path):
    _files(tmp_path, "data/good.pqr", "data/bad.pqr", "data/new.pqr")
    members = expand_structure_sets({"set": {"glob": "data/*.pqr"}}, {}, root=tmp_path)
    (tmp_path / "results/structures").mkdir(parents=True)
    (tmp_path / "results/structures/good.nc").write_text("")
    logs = tmp_path / "results/logs/ingest"
    logs.mkdir(parents=True)
    (logs / "bad.log").write_text("INFO reading\nerror: data/bad.pqr: line 1: malformed ATOM record\n")
    old = time.time() - 100
    os.utime(tmp_path / "data/bad.pqr", (old, old))
    args = {"record_path": lambda s: f"results/structures/{s}.nc", "log_path": lambda s: f"results/logs/ingest/{s}.log"}
    assert failed_members(members, root=tmp_path, **args) == {"bad": "error: data/bad.pqr: line 1: malformed ATOM record"}
    os.utime(tmp_path / "data/bad.pqr")  # the file was fixed after the failure: retried
    os.utime(logs / "bad.log", (old, old))
    assert failed_members(members, root=tmp_path, **args) == {}


def test_report_lists_missing_structures_with_reasons(tmp_path):
    """The report stage takes expected ids and present files: ids without a record are listed with the failure line."""
    from pipeline.cli import main
    from pipeline.storage import write_netcdf
    from pipeline.structures.record import Structure, structure_to_dataset

    record = tmp_path / "good.nc"
    pair = Structure(positions=np.array([[0.0, 0.0, 0.0], [2.8, 0.0, 0.0]]), charges=np.array([1.0, -1.0]),
                     attrs={"structure_id": "good", "source": "pair", "format": "test", "charge_source": "test"})
    write_netcdf(structure_to_dataset(pair), record)
    failure = tmp_path / "bad.log"
    failure.write_text("error: data/bad.pqr: line 3: malformed ATOM record\n")
    out = tmp_path / "report.nc"
    assert main(["report", "--structures", str(record), "--expected-structures", "bad", "good", "ghost",
                 "--failures", str(failure), "-o", str(out)]) == 0
    from pipeline.storage import read_netcdf

    report = read_netcdf(out)
    assert report["missing_structure"].values.tolist() == ["bad", "ghost"]
    assert report["missing_reason"].values.tolist() == ["error: data/bad.pqr: line 3: malformed ATOM record",
                                                        "no result (the job failed or did not run)"]
    from pipeline.reports.tables import format_summary

    text = format_summary(report)
    assert "Missing structures" in text and "malformed ATOM record" in text


@pytest.mark.workflow
def test_keep_going_then_rerun_reports_the_broken_member(tmp_path):
    """`snakemake --keep-going` builds the good member; the next run leaves the broken one out and names it."""
    pytest.importorskip("MDAnalysisTests")
    from MDAnalysisTests.datafiles import PQR

    repo = Path(__file__).resolve().parents[1]
    shutil.copytree(repo / ".test" / "config", tmp_path / "config")
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(PQR, data / "good.pqr")
    (data / "broken.pqr").write_text("ATOM      1  N   MET     1   not numbers here\n")
    config = (tmp_path / "config/config.yaml").read_text()
    (tmp_path / "config/config.yaml").write_text(config + '\nstructure_sets:\n  mine:\n    glob: "data/*.pqr"\n')
    snakemake = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "--cores", "2",
                 "--directory", str(tmp_path)]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    first = subprocess.run([*snakemake, "--keep-going", "results/structures/good.nc", "results/structures/broken.nc"],
                           capture_output=True, text=True, cwd=tmp_path, env=env, check=False)
    assert first.returncode != 0
    assert (tmp_path / "results/structures/good.nc").exists()
    assert not (tmp_path / "results/structures/broken.nc").exists()
    log = (tmp_path / "results/logs/ingest/broken.log").read_text().strip().splitlines()[-1]
    assert log.startswith("error:") and "broken.pqr" in log
    second = subprocess.run([*snakemake, "-n", "-p"], capture_output=True, text=True, cwd=tmp_path, env=env, check=False)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "results/structures/broken.nc" not in second.stdout  # no job for the broken member
    assert "results/potential/good.nc" in second.stdout  # the good member goes through the same rules
    report_command = next(line for line in second.stdout.splitlines() if "python -m pipeline report" in line)
    assert "--expected-structures adk_dcd adk_pqr broken good nacl_small" in report_command
    assert "--failures results/logs/ingest/broken.log" in report_command
