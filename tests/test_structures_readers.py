"""Readers and the ingest of files with charges, checked against plain-text parses of the same files.

Reference values: atom counts and net charges of the MDAnalysisTests files (adk_open.pqr 3341
atoms, −4 e; adk.psf 3341, −4 e; adk_oplsaa.tpr/.gro 47681, 0 e; bala.prmtop 2661, 0 e) are
the published contents of those files; every array is compared with an independent parse of
the text (fixed columns or whitespace fields) rather than with MDAnalysis.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from MDAnalysisTests import datafiles

from pipeline.structures.ingest import default_structure_id, ingest
from pipeline.structures.readers import decimal_float64, detect_format, mdanalysistests_names, resolve_source

#: Coordinates pass through float32 in MDAnalysis: relative error below 2^-23 ≈ 1.2e-7.
FLOAT32_RTOL = 2e-7
#: AMBER prmtop charges are stored multiplied by 18.2223 (sqrt of 332.0522... kcal Å/mol/e²).
AMBER_CHARGE_SCALE = 18.2223


def parse_pqr(path):
    """(positions, charges, radii) from the whitespace fields of ATOM/HETATM lines."""
    rows = [line.split()[-5:] for line in open(path) if line.startswith(("ATOM", "HETATM"))]
    values = np.array(rows, dtype=np.float64)
    return values[:, :3], values[:, 3], values[:, 4]


def parse_pdb_positions(path):
    rows = [(line[30:38], line[38:46], line[46:54]) for line in open(path) if line.startswith(("ATOM", "HETATM"))]
    return np.array(rows, dtype=np.float64)


def parse_psf_charges(path):
    lines = open(path).read().splitlines()
    start = next(i for i, line in enumerate(lines) if "!NATOM" in line)
    n_atoms = int(lines[start].split()[0])
    return np.array([float(lines[start + 1 + i].split()[6]) for i in range(n_atoms)])


def parse_gro(path):
    """Positions (Å) and box vectors (Å, rows v1 v2 v3) from a GRO file."""
    lines = open(path).read().splitlines()
    n_atoms = int(lines[1])
    positions = np.array([(t[20:28], t[28:36], t[36:44]) for t in lines[2 : 2 + n_atoms]], dtype=np.float64) * 10
    box = [float(v) * 10 for v in lines[2 + n_atoms].split()]
    v1x, v2y, v3z, v1y, v1z, v2x, v2z, v3x, v3y = box
    return positions, np.array([[v1x, v1y, v1z], [v2x, v2y, v2z], [v3x, v3y, v3z]])


def parse_prmtop_charges(path):
    lines = open(path).read().splitlines()
    start = lines.index(next(t for t in lines if t.startswith("%FLAG CHARGE"))) + 2
    values = []
    for line in lines[start:]:
        if line.startswith("%"):
            break
        values.extend(float(line[i : i + 16]) for i in range(0, len(line.rstrip()), 16))
    return np.array(values) / AMBER_CHARGE_SCALE


def test_resolve_mdanalysistests_names_and_folders():
    assert resolve_source("mdanalysistests:PQR") == __import__("pathlib").Path(datafiles.PQR)
    assert resolve_source("mdanalysistests:MMCIF/1YJP.cif").name == "1YJP.cif"
    assert "PDB_full" in mdanalysistests_names()
    with pytest.raises(ValueError, match=r"mdanalysistests:PQRR: unknown .*did you mean PQR.*valid names include"):
        resolve_source("mdanalysistests:PQRR")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.pqr", "PQR"),
        ("a.PDB.gz", "PDB"),
        ("x.ent.bz2", "PDB"),
        ("a.cif.gz", "MMCIF"),
        ("t.parm7", "PRMTOP"),
        ("t.rst7", "INPCRD"),
        ("a.nc", "NCDF"),
        ("a.gro", "GRO"),
        ("a.tpr", "TPR"),
        ("a.psf", "PSF"),
        ("system.data", "DATA"),  # MDAnalysis topology formats beyond the table
        ("system.data.bz2", "DATA"),
        ("ligand.mol2", "MOL2"),
    ],
)
def test_detect_format_from_extension(name, expected):
    assert detect_format(name) == expected


def test_detect_format_explicit_and_unknown():
    assert detect_format("whatever.txt", "cif") == "MMCIF"
    assert detect_format("whatever.txt", "pdb") == "PDB"
    with pytest.raises(ValueError, match=r"whatever.txt: cannot tell the format .*\.txt.*--format"):
        detect_format("whatever.txt")
    with pytest.raises(ValueError, match=r"unknown format 'xyzzy'"):
        detect_format("a.pdb", "xyzzy")


def test_pqr_charges_radii_positions_match_text():
    structure = ingest("mdanalysistests:PQR")
    positions, charges, radii = parse_pqr(datafiles.PQR)
    assert structure.n_atoms == 3341
    assert abs(structure.charges.sum() - (-4.0)) < 1e-12  # float32 rounding alone gives 3e-6
    np.testing.assert_array_equal(structure.charges, charges)  # decimal values recovered exactly
    np.testing.assert_array_equal(structure.radii, radii)
    np.testing.assert_allclose(structure.positions, positions, rtol=FLOAT32_RTOL, atol=1e-6)
    assert structure.attrs["charge_source"] == "file"
    assert structure.attrs["format"] == "PQR"
    assert structure.attrs["box"] == []
    assert structure.attrs["structure_id"] == "adk_open"
    assert set(structure.elements) == {"C", "H", "N", "O", "S"}
    assert structure.atom_names[0] == "N" and structure.residue_names[0] == "MET" and structure.residue_ids[0] == 1


def test_psf_dcd_and_psf_pdb():
    with_dcd = ingest("mdanalysistests:PSF", coordinates="mdanalysistests:DCD")
    psf_charges = parse_psf_charges(datafiles.PSF)
    assert with_dcd.n_atoms == 3341 and with_dcd.attrs["n_frames"] == 98
    assert with_dcd.attrs["format"] == "PSF+DCD"
    np.testing.assert_array_equal(with_dcd.charges, psf_charges)
    assert abs(with_dcd.charges.sum() + 4.0) < 1e-12
    assert with_dcd.chain_ids[0] == "4AKE"
    with_pdb = ingest("mdanalysistests:PSF", coordinates="mdanalysistests:PDB_small")
    np.testing.assert_allclose(
        with_pdb.positions, parse_pdb_positions(datafiles.PDB_small), rtol=FLOAT32_RTOL, atol=1e-6
    )
    assert with_pdb.elements[0] == "N" and with_pdb.elements[1] == "H"  # guessed from names N, HT1


def test_tpr_gro_charges_positions_box():
    structure = ingest("mdanalysistests:TPR", coordinates="mdanalysistests:GRO")
    positions, vectors = parse_gro(datafiles.GRO)
    assert structure.n_atoms == 47681
    assert abs(structure.charges.sum()) < 1e-9  # exactly neutral system
    np.testing.assert_allclose(structure.positions, positions, rtol=FLOAT32_RTOL, atol=1e-5)
    lengths = np.linalg.norm(vectors, axis=1)
    angle = lambda u, v: np.degrees(np.arccos(u @ v / np.linalg.norm(u) / np.linalg.norm(v)))  # noqa: E731
    expected_box = [
        *lengths,
        angle(vectors[1], vectors[2]),
        angle(vectors[0], vectors[2]),
        angle(vectors[0], vectors[1]),
    ]
    np.testing.assert_allclose(structure.attrs["box"], expected_box, rtol=1e-5)
    assert structure.attrs["format"] == "TPR+GRO"
    # TPR alone carries the same atoms, charges and (to the GRO's 3 decimals of nm) positions
    alone = ingest("mdanalysistests:TPR")
    np.testing.assert_array_equal(alone.charges, structure.charges)
    assert np.max(np.abs(alone.positions - structure.positions)) < 5e-3 + 1e-5  # GRO: 0.01 Å steps
    # the tip4p virtual sites have no element; nothing else is unknown
    assert set(structure.elements) == {"", "C", "H", "N", "Na", "O", "S"}


def test_prmtop_ncdf_charges():
    structure = ingest("mdanalysistests:PRMncdf", coordinates="mdanalysistests:NCDF")
    expected = parse_prmtop_charges(datafiles.PRMncdf)
    assert structure.n_atoms == 2661
    np.testing.assert_allclose(structure.charges, expected, rtol=0, atol=1e-6)  # prmtop: 8 digits × 18.2223
    assert abs(structure.charges.sum()) < 1e-4
    assert structure.attrs["format"] == "PRMTOP+NCDF"
    assert len(structure.attrs["box"]) == 6


def test_forcefield_ignored_for_files_with_charges(caplog):
    with caplog.at_level(logging.INFO, logger="pipeline.structures.ingest"):
        structure = ingest("mdanalysistests:PQR", forcefield="AMBER", structure_id="adk")
    assert structure.attrs["charge_source"] == "file" and structure.attrs["structure_id"] == "adk"
    assert "ignored" in caplog.text


def test_default_structure_id():
    assert default_structure_id("data/adk_open.pqr.gz") == "adk_open"
    assert default_structure_id(resolve_source("mdanalysistests:MMCIF/1YJP.cif")) == "1YJP"


def test_decimal_float64_recovers_file_decimals_and_keeps_float64_values():
    from_reader = np.array([-0.3, 0.33, 1.2345678], dtype=np.float32).astype(np.float64)  # as MDAnalysis returns
    np.testing.assert_array_equal(decimal_float64(from_reader), [-0.3, 0.33, 1.2345678])
    genuine = np.array([-0.3, 1 / 3, 0.1 / 18.2223])  # not float32 values: untouched
    np.testing.assert_array_equal(decimal_float64(genuine), genuine)


def lammps_atoms(path):
    """{atom id: (charge, x, y, z)} from the Atoms section of a LAMMPS data file (atom style full)."""
    import bz2

    lines = bz2.open(path, "rt").read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "Atoms") + 2
    atoms = {}
    for line in lines[start:]:
        fields = line.split()
        if not fields:
            break
        atoms[int(fields[0])] = tuple(float(v) for v in fields[3:7])
    lengths = {}
    for line in lines[:start]:
        fields = line.split()
        if len(fields) == 4 and fields[2].endswith("lo") and fields[3].endswith("hi"):
            lengths[fields[2][0]] = float(fields[1]) - float(fields[0])
    return atoms, [lengths[axis] for axis in "xyz"]


def test_lammps_data_file_with_charges(tmp_path):
    # ifabp_apo_100mM.data.bz2: atom style full (id, molecule, type, q, x, y, z), units real (Å)
    structure = ingest("mdanalysistests:LAMMPSdata2")
    atoms, lengths = lammps_atoms(datafiles.LAMMPSdata2)
    ordered = np.array([atoms[k] for k in sorted(atoms)])
    assert structure.n_atoms == len(atoms) == 12421 and structure.attrs["format"] == "DATA"
    np.testing.assert_array_equal(structure.charges, ordered[:, 0])  # file decimals, exactly
    np.testing.assert_allclose(structure.positions, ordered[:, 1:], rtol=0, atol=1e-5)
    np.testing.assert_allclose(structure.attrs["box"][:3], lengths, rtol=1e-6)
    assert structure.attrs["charge_source"] == "file" and abs(structure.charges.sum()) < 1e-9
    # a name MDAnalysis knows, given explicitly for an extension it does not
    renamed = tmp_path / "ifabp.lmp.bz2"
    renamed.write_bytes(open(datafiles.LAMMPSdata2, "rb").read())
    with pytest.raises(ValueError, match=r"ifabp.lmp.bz2: cannot tell the format from the extension \.lmp"):
        ingest(renamed)
    np.testing.assert_array_equal(ingest(renamed, fmt="data").charges, structure.charges)


def test_mdanalysis_formats_without_charges_or_with_overlaps_are_refused():
    with pytest.raises(ValueError, match="mdanalysistests:XYZ_mini: XYZ has no partial charges"):
        ingest("mdanalysistests:XYZ_mini")
    # datatest.data places pairs of atoms at the same point: refused, naming 0-based indices as such
    with pytest.raises(ValueError, match=r"LAMMPSdata: atom index \d+ .* and atom index \d+ .* sit at the same position"):
        ingest("mdanalysistests:LAMMPSdata")
