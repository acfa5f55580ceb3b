"""PQR output: what ingest writes reads back through MDAnalysis (the file's own reader) unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import cli
from pipeline.cli import main
from pipeline.structures.ingest import ingest
from pipeline.structures.pqr import pqr_text, write_pqr


@pytest.fixture(autouse=True)
def only_structure_stages(monkeypatch):
    monkeypatch.setattr(cli, "STAGE_MODULES", ("ingest", "lattice"))


def test_pqr_round_trip_keeps_charges_radii_labels_and_far_coordinates(tmp_path):
    structure = ingest("mdanalysistests:PQR_icodes")  # 1A2C: insertion codes, chains
    structure.positions = structure.positions - 150.0  # below −100 Å fixed columns would fuse
    path = write_pqr(structure, tmp_path / "out.pqr")
    again = ingest(path)
    assert again.n_atoms == structure.n_atoms
    np.testing.assert_array_equal(again.charges, structure.charges)
    np.testing.assert_array_equal(again.radii, structure.radii)
    np.testing.assert_allclose(again.positions, structure.positions, rtol=0, atol=2e-5)
    for name in ("atom_names", "residue_names", "residue_ids", "insertion_codes", "chain_ids"):
        np.testing.assert_array_equal(getattr(again, name), getattr(structure, name), err_msg=name)
    assert np.count_nonzero(structure.insertion_codes != "") > 0


def test_pqr_text_fields_are_separated():
    structure = ingest("mdanalysistests:PQR")
    structure.positions[0] = [-123.4567, -200.0, -999.9999]
    first_atom = pqr_text(structure).splitlines()[1].split()
    assert first_atom[:2] == ["ATOM", "1"] and first_atom[-5:-2] == ["-123.4567", "-200.0000", "-999.9999"]


def test_ingest_cli_writes_pqr_after_the_record(tmp_path):
    out, pqr = tmp_path / "adk.nc", tmp_path / "adk.pqr"
    assert main(["ingest", "mdanalysistests:PQR", "-o", str(out), "--pqr", str(pqr)]) == 0
    assert out.is_file() and abs(ingest(pqr).charges.sum() + 4.0) < 1e-9
    bad_out, bad_pqr = tmp_path / "gro.nc", tmp_path / "gro.pqr"
    assert main(["ingest", "mdanalysistests:GRO", "-o", str(bad_out), "--pqr", str(bad_pqr)]) == 1
    assert not bad_out.exists() and not bad_pqr.exists()
