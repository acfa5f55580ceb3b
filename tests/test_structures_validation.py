"""Bad inputs: each check fails with one line naming the file, the line or the atom.

Malformed files are small edits of real MDAnalysisTests files written to ``tmp_path``.
"""

from __future__ import annotations

import numpy as np
import pytest
from MDAnalysisTests import datafiles

from pipeline.structures.ingest import ingest
from pipeline.structures.record import Structure
from pipeline.structures.validation import check_positions, find_malformed_line, one_line, sniff_format

# line numbers below are 1-based numbers of lines in the edited files
PQR_LINES = open(datafiles.PQR).read().splitlines()
PQR_FIRST_ATOM = next(i for i, line in enumerate(PQR_LINES) if line.startswith("ATOM"))
PDB_LINES = open(datafiles.PDB_small).read().splitlines()
PDB_FIRST_ATOM = next(i for i, line in enumerate(PDB_LINES) if line.startswith("ATOM"))
GRO_LINES = open(datafiles.GRO).read().splitlines()


def write(tmp_path, name, lines):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def edited(lines, index, new_line):
    lines = list(lines)
    lines[index] = new_line
    return lines


def assert_one_line(message, *parts):
    assert "\n" not in message
    for part in parts:
        assert part in message, (part, message)


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        (datafiles.PDB_full, "PDB/PQR"),
        (datafiles.PQR, "PDB/PQR"),
        (datafiles.GRO, "GRO"),
        (datafiles.PSF, "PSF"),
        (datafiles.PRMncdf, "PRMTOP"),
        (f"{datafiles.MMCIF}/3KPR.cif.gz", "MMCIF"),
        (datafiles.GRO_large, "GRO"),
    ],
)
def test_sniff_format_of_real_files(name, fmt):
    assert sniff_format(name)[0] == fmt


def test_sniff_format_binary_is_none():
    assert sniff_format(datafiles.TPR) is None
    assert sniff_format(datafiles.DCD) is None


def test_missing_file():
    with pytest.raises(FileNotFoundError, match=r"^nowhere/x\.pqr: no such structure file$"):
        ingest("nowhere/x.pqr")
    with pytest.raises(FileNotFoundError, match="nowhere.dcd: no such coordinate file"):
        ingest("mdanalysistests:PSF", coordinates="nowhere.dcd")


def test_gro_read_as_pdb_and_pdb_named_gro(tmp_path):
    with pytest.raises(ValueError) as info:
        ingest("mdanalysistests:GRO", fmt="pdb")
    assert_one_line(str(info.value), "adk_oplsaa.gro", "read as PDB", "looks like GRO", "--format gro")
    renamed = write(tmp_path, "protein.gro", PDB_LINES)
    with pytest.raises(ValueError) as info:
        ingest(renamed)
    assert_one_line(str(info.value), "protein.gro", "read as GRO", "looks like PDB/PQR")


def test_topology_coordinate_atom_count_mismatch():
    with pytest.raises(ValueError) as info:
        ingest("mdanalysistests:PRM", coordinates="mdanalysistests:INPCRD")
    assert_one_line(str(info.value), "test.inpcrd", "has 5 atoms", "ache.prmtop has 252")
    with pytest.raises(ValueError) as info:
        ingest("mdanalysistests:TPR", coordinates="mdanalysistests:PDB_small")
    assert_one_line(str(info.value), "adk_open.pdb", "has 3341 atoms", "adk_oplsaa.tpr has 47681")


def test_topology_without_coordinates():
    with pytest.raises(ValueError, match=r"adk.psf: a PSF topology has no coordinates; pass --coordinates"):
        ingest("mdanalysistests:PSF")


def test_malformed_pqr_lines(tmp_path):
    fields = PQR_LINES[PQR_FIRST_ATOM + 5].split()
    bad_number = write(
        tmp_path, "bad.pqr", edited(PQR_LINES, PQR_FIRST_ATOM + 5, " ".join(fields[:6] + ["abc"] + fields[7:]))
    )
    with pytest.raises(ValueError) as info:
        ingest(bad_number)
    assert_one_line(str(info.value), "bad.pqr", f"line {PQR_FIRST_ATOM + 6}", "field y is 'abc'")
    short = write(tmp_path, "short.pqr", edited(PQR_LINES, PQR_FIRST_ATOM + 2, " ".join(fields[:7])))
    with pytest.raises(ValueError) as info:
        ingest(short)
    assert_one_line(str(info.value), "short.pqr", f"line {PQR_FIRST_ATOM + 3}", "7 fields")


def test_malformed_pdb_and_gro_lines(tmp_path):
    line = PDB_LINES[PDB_FIRST_ATOM + 1]
    pdb = write(tmp_path, "bad.pdb", edited(PDB_LINES, PDB_FIRST_ATOM + 1, line[:38] + "  12x.45" + line[46:]))
    with pytest.raises(ValueError) as info:
        ingest(pdb, forcefield="AMBER")
    assert_one_line(str(info.value), "bad.pdb", f"line {PDB_FIRST_ATOM + 2}", "y coordinate", "'12x.45'")
    gro = write(tmp_path, "bad.gro", edited(GRO_LINES, 6, GRO_LINES[6][:28] + "   x.yzw" + GRO_LINES[6][36:]))
    with pytest.raises(ValueError) as info:
        ingest(gro)
    assert_one_line(str(info.value), "bad.gro", "line 7", "y coordinate", "'x.yzw'")
    truncated = write(tmp_path, "truncated.gro", GRO_LINES[:100])
    with pytest.raises(ValueError) as info:
        ingest(truncated)
    assert_one_line(str(info.value), "truncated.gro", "47681 atoms", "ends at line 100")


def test_zero_atoms(tmp_path):
    with pytest.raises(ValueError) as info:
        ingest(write(tmp_path, "empty.pdb", ["REMARK nothing here", "END"]), forcefield="AMBER")
    assert_one_line(str(info.value), "empty.pdb", "zero atoms")
    (tmp_path / "blank.pqr").write_text("")
    with pytest.raises(ValueError) as info:
        ingest(tmp_path / "blank.pqr")
    assert_one_line(str(info.value), "blank.pqr", "empty (zero atoms)")


def test_nan_coordinate_names_the_atom(tmp_path):
    fields = PQR_LINES[PQR_FIRST_ATOM + 5].split()
    path = write(
        tmp_path, "nan.pqr", edited(PQR_LINES, PQR_FIRST_ATOM + 5, " ".join(fields[:7] + ["nan"] + fields[8:]))
    )
    with pytest.raises(ValueError) as info:
        ingest(path)
    assert_one_line(str(info.value), "nan.pqr", "atom index 5 (HA MET 1)", "non-finite z coordinate")


def test_two_atoms_at_one_position_names_the_pair(tmp_path):
    lines = PQR_LINES[: PQR_FIRST_ATOM + 10]
    fields = lines[PQR_FIRST_ATOM + 7].split()
    copy = lines[PQR_FIRST_ATOM + 2].split()
    lines[PQR_FIRST_ATOM + 7] = " ".join(fields[:5] + copy[5:8] + fields[8:])  # x y z of atom 2
    with pytest.raises(ValueError) as info:
        ingest(write(tmp_path, "dup.pqr", lines))
    assert_one_line(str(info.value), "dup.pqr", "atom index 2 (", "atom index 7 (", "same position")


def test_charges_absent_without_forcefield():
    with pytest.raises(ValueError) as info:
        ingest("mdanalysistests:GRO")
    assert_one_line(
        str(info.value), "mdanalysistests:GRO", "GRO has no partial charges", "--forcefield AMBER|CHARMM|PARSE"
    )
    with pytest.raises(ValueError, match="PDB has no partial charges"):
        ingest("mdanalysistests:PDB_full")
    with pytest.raises(ValueError, match="PDB or mmCIF files only, got GRO"):
        ingest("mdanalysistests:GRO", forcefield="AMBER")


def test_check_positions_direct():
    positions = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 5e-4]])
    structure = Structure(positions=positions, charges=np.zeros(3))
    with pytest.raises(ValueError, match=r"s: atom index 1 and atom index 2 sit at the same position \(distance 5.0e-04"):
        check_positions(structure, "s")
    check_positions(Structure(positions=positions[:2], charges=np.zeros(2)), "s")
    with pytest.raises(ValueError, match="s: zero atoms"):
        check_positions(Structure(positions=np.zeros((0, 3)), charges=np.zeros(0)), "s")


def test_find_malformed_line_ignores_formats_without_scanner(tmp_path):
    assert find_malformed_line(datafiles.PSF, "PSF") is None
    assert find_malformed_line(datafiles.PQR, "PQR") is None
    assert find_malformed_line(datafiles.GRO, "GRO") is None
    assert one_line("a\n  b\tc") == "a b c"
