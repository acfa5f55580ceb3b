"""Force-field charges through pdb2pqr (a few seconds: one module-scoped AMBER run on 4E43).

References: AMBER ff94/ff99 alanine charges (Cornell et al., JACS 117, 5179 (1995)):
N −0.4157, H 0.2719, CA 0.0337, HA 0.0823, CB −0.1825, HB* 0.0603, C 0.5973, O −0.5679.
Backbone charges of a non-terminal residue (ASN here): AMBER (Cornell 1995) N −0.4157, H 0.2719,
C 0.5973, O −0.5679; CHARMM22 (MacKerell et al., J. Phys. Chem. B 102, 3586 (1998)) N −0.47,
H 0.31, C 0.51, O −0.51; PARSE (Sitkoff, Sharp & Honig, J. Phys. Chem. 98, 1978 (1994))
N −0.40, H 0.40, C 0.55, O −0.55. The ligands of 4E43.pdb (DMS, ACT, GOL, BME) are read
from its HETATM records here; pdb2pqr has no parameters for them.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from MDAnalysisTests import datafiles

from pipeline.storage import write_netcdf
from pipeline.structures.forcefield import (
    GROUP_ABOVE,
    assign_charges,
    dropped_residues,
    failure_reason,
    missing_residues,
    pdb2pqr_command,
)
from pipeline.structures.ingest import ingest
from pipeline.structures.record import Structure, load_structure, structure_to_dataset

AMBER_ALA = {
    "N": -0.4157,
    "H": 0.2719,
    "CA": 0.0337,
    "HA": 0.0823,
    "CB": -0.1825,
    "HB1": 0.0603,
    "HB2": 0.0603,
    "HB3": 0.0603,
    "C": 0.5973,
    "O": -0.5679,
}
BACKBONE = {
    "AMBER": {"N": -0.4157, "H": 0.2719, "C": 0.5973, "O": -0.5679},
    "CHARMM": {"N": -0.47, "H": 0.31, "C": 0.51, "O": -0.51},
    "PARSE": {"N": -0.40, "H": 0.40, "C": 0.55, "O": -0.55},
}


@pytest.fixture(scope="module")
def pdb_full_amber():
    return ingest("mdanalysistests:PDB_full", forcefield="AMBER")


def hetero_residues(path):
    """{(resname, chain, resid): n_atoms} of HETATM residues other than water, from the PDB text."""
    residues = {}
    for line in open(path):
        if line.startswith("HETATM") and line[17:20].strip() != "HOH":
            key = (line[17:20].strip(), line[21].strip(), int(line[22:26]))
            residues[key] = residues.get(key, 0) + 1
    return residues


def test_pdb_full_amber_charges_and_dropped_ligands(pdb_full_amber):
    structure = pdb_full_amber
    assert structure.attrs["charge_source"] == "forcefield:AMBER"
    assert structure.attrs["n_atoms_input"] == 1877
    assert structure.n_atoms > 1877  # hydrogens added
    assert abs(structure.charges.sum() - round(structure.charges.sum())) < 1e-3
    ligands = hetero_residues(datafiles.PDB_full)
    assert {name for name, _, _ in ligands} == {"DMS", "ACT", "GOL", "BME"}
    reported = {}
    for item in structure.attrs["dropped"]:
        if item["what"].startswith("residue "):
            _, name, resid, _, chain, count = item["what"].replace("(", "").split()[:6]
            reported[(name, chain, int(resid))] = int(count)
            assert "no AMBER parameters" in item["why"]
    assert reported == ligands  # every ligand residue, with its atom count, and nothing else
    altloc = [d for d in structure.attrs["dropped"] if d["what"].startswith("alternate locations")]
    assert altloc and "ILE A 84" in altloc[0]["what"]
    assert not np.isin(structure.residue_names, ["DMS", "ACT", "GOL", "BME"]).any()


def test_pdb_full_amber_alanine_matches_cornell(pdb_full_amber):
    s = pdb_full_amber
    residue = (s.chain_ids == "A") & (s.residue_ids == 22)
    assert set(s.residue_names[residue]) == {"ALA"}
    charges = dict(zip(s.atom_names[residue], s.charges[residue]))
    assert charges.keys() == AMBER_ALA.keys()
    for name, value in AMBER_ALA.items():
        assert abs(charges[name] - value) < 1e-9, name
    assert np.all(s.radii[residue] > 0)


def test_pdb_full_heavy_atoms_stay_where_the_file_put_them(pdb_full_amber):
    s = pdb_full_amber
    text = [(t[30:38], t[38:46], t[46:54]) for t in open(datafiles.PDB_full) if t.startswith(("ATOM", "HETATM"))]
    file_positions = np.array(text, dtype=np.float64)
    # pdb2pqr adds missing OXT and may flip ASN/GLN amides and HIS rings to optimise hydrogen bonds
    movable = np.isin(s.atom_names, ["OXT", "OD1", "ND2", "OE1", "NE2", "ND1", "CD2", "CE1"])
    heavy = (s.elements != "H") & ~movable
    assert np.count_nonzero(heavy) > 1600
    distance = np.min(np.linalg.norm(s.positions[heavy, None, :] - file_positions[None, :, :], axis=2), axis=1)
    assert distance.max() < 1e-3


def test_dropped_list_survives_netcdf(pdb_full_amber, tmp_path):
    path = write_netcdf(structure_to_dataset(pdb_full_amber), tmp_path / "4e43.nc")
    loaded = load_structure(path)
    assert loaded.attrs["dropped"] == pdb_full_amber.attrs["dropped"]
    assert loaded.attrs["charge_source"] == "forcefield:AMBER"
    np.testing.assert_array_equal(loaded.charges, pdb_full_amber.charges)


@pytest.mark.parametrize("forcefield", ["AMBER", "CHARMM", "parse"])
def test_mmcif_with_each_forcefield(forcefield):
    structure = ingest("mdanalysistests:MMCIF/1YJP.cif", forcefield=forcefield)
    assert structure.attrs["charge_source"] == f"forcefield:{forcefield.upper()}"
    assert structure.attrs["format"] == "MMCIF"
    residue = structure.residue_ids == 3
    assert set(structure.residue_names[residue]) == {"ASN"}
    charges = dict(zip(structure.atom_names[residue], structure.charges[residue]))
    for name, value in BACKBONE[forcefield.upper()].items():
        assert abs(charges[name] - value) < 1e-9, name
    assert abs(structure.charges.sum() - round(structure.charges.sum())) < 1e-6


def test_pdb2pqr_failure_quotes_its_reason():
    # 5PTI is a neutron structure with deuterium names: pdb2pqr stops at a "gap"
    with pytest.raises(RuntimeError, match=r"5PTI\.cif\.gz: pdb2pqr --ff=AMBER failed .*gap in biomolecule"):
        ingest("mdanalysistests:MMCIF/5PTI.cif.gz", forcefield="AMBER")


def test_missing_file_never_reaches_pdb2pqr(monkeypatch, tmp_path):
    def forbidden(*args, **kwargs):
        raise AssertionError("pdb2pqr must not run on a missing path (it would download a PDB entry)")

    monkeypatch.setattr(subprocess, "run", forbidden)
    with pytest.raises(FileNotFoundError, match="1abc.pdb: no such"):
        assign_charges(tmp_path / "1abc.pdb", "PDB", "AMBER")


def test_forcefield_rejects_other_formats_and_names(tmp_path):
    with pytest.raises(ValueError, match="PDB or mmCIF files only, got GRO"):
        assign_charges(datafiles.GRO, "GRO", "AMBER")
    with pytest.raises(ValueError, match="forcefield must be one of AMBER, CHARMM, PARSE, got 'OPLS'"):
        assign_charges(datafiles.PDB_full, "PDB", "OPLS")


def test_failure_reason_picks_critical_lines():
    text = (
        "INFO:Loading molecule\nWARNING:Gap in backbone detected between ASP D 30 and TYR D 31!\n"
        "CRITICAL:Unable to debump biomolecule. Found gap\nCRITICAL:Giving up.\nTraceback (most recent call last):\n"
        "RuntimeError\n"
    )
    assert failure_reason(text) == "Unable to debump biomolecule. Found gap"
    dated = "2026-01-01 10:00:00,000 CRITICAL:main.py:850:main_driver:Something: broke\n"
    assert failure_reason(dated) == "Something: broke"
    assert failure_reason("Traceback\nValueError: bad input\n") == "ValueError: bad input"


def hiv_protease_variant(path, *, chain_ids=True):
    """Chain A of 4E43 with CYS 67 as S-hydroxycysteine CSO (HETATM, with its OD) and GOL 104 renamed XK2.

    CSO and XK2 are the modified residue and the inhibitor of 1HVR (HIV-1 protease), placed
    here at 4E43's coordinates. Without ``chain_ids`` the chain column is blank.
    """
    lines = []
    for line in open(datafiles.PDB_full):
        if not line.startswith(("ATOM", "HETATM")) or line[21] != "A":
            continue
        name, resname, resid = line[12:16].strip(), line[17:20], int(line[22:26])
        if line.startswith("HETATM") and not (resname == "GOL" and resid == 104):
            continue
        if resname == "GOL":
            line = "HETATM" + line[6:17] + "XK2" + line[20:]
        if resname == "CYS" and resid == 67:
            line = "HETATM" + line[6:17] + "CSO" + line[20:]
        new = [line]
        if resname == "CYS" and resid == 67 and name == "SG":
            x, y, z = (float(line[i : i + 8]) for i in (30, 38, 46))
            new.append(line[:12] + " OD " + line[16:30] + f"{x + 1.2:8.3f}{y + 0.8:8.3f}{z:8.3f}" + line[54:76] + " O\n")
        lines += [item if chain_ids else item[:21] + " " + item[22:] for item in new]
    path.write_text("".join(lines) + "END\n")
    return path


@pytest.fixture(scope="module")
def chainless_variant(tmp_path_factory):
    return hiv_protease_variant(tmp_path_factory.mktemp("pdb") / "hiv_protease.pdb", chain_ids=False)


def test_chainless_pdb_reports_only_what_pdb2pqr_left_out(chainless_variant, caplog):
    # before the fix every residue counted as dropped: the input chain '' never matched pdb2pqr's 'A'
    with caplog.at_level("INFO", logger="pipeline.structures.forcefield"):
        structure = ingest(chainless_variant, forcefield="CHARMM")
    dropped = [item for item in structure.attrs["dropped"] if not item["what"].startswith("alternate")]
    assert [item["what"] for item in dropped] == ["residue CSO 67 (7 atoms)", "residue XK2 104 (6 atoms)"]
    assert "modified amino acid" in dropped[0]["why"] and "no CHARMM parameters for CSO" in dropped[0]["why"]
    assert "ligand" in dropped[1]["why"] and "MOL2" in dropped[1]["why"]
    warnings = [record for record in caplog.records if record.levelname == "WARNING"]
    assert len(warnings) == 1 and "CSO, XK2" in warnings[0].getMessage()
    # every other residue of the input is in the output: 99 residues of chain A minus CSO 67
    kept = set(zip(structure.chain_ids, structure.residue_ids))
    assert kept == {("A", number) for number in range(1, 100) if number != 67}


def test_ph_and_naming_scheme_reach_pdb2pqr(chainless_variant):
    standard = ingest(chainless_variant, forcefield="AMBER")
    acidic = ingest(chainless_variant, forcefield="AMBER", ph=2.0, ffout="CHARMM")
    assert "--titration-state-method propka --with-ph=2 --ffout=CHARMM" in acidic.attrs["pdb2pqr_options"]
    assert acidic.attrs["ph"] == 2.0 and acidic.attrs["ffout"] == "CHARMM" and np.isnan(standard.attrs["ph"])
    # pH 2: PROPKA protonates the carboxylates and histidines; measured +3 e → +12 e for this chain
    assert round(standard.charges.sum(), 6) == 3.0 and round(acidic.charges.sum(), 6) == 12.0
    assert {"ASPP", "GLUP", "HSP"} <= set(acidic.residue_names) and "ASPP" not in set(standard.residue_names)
    assert [d["what"] for d in acidic.attrs["dropped"] if d["what"].startswith("residue")] == [
        "residue CSO 67 (7 atoms)",
        "residue XK2 104 (6 atoms)",
    ]


def test_pdb2pqr_command_options(tmp_path):
    command = pdb2pqr_command(tmp_path / "in.pdb", tmp_path / "out.pqr", "PARSE", ph=7.4, ffout="AMBER")
    assert command[3:] == [
        "--ff=PARSE",
        "--whitespace",
        "--keep-chain",
        "--titration-state-method",
        "propka",
        "--with-ph=7.4",
        "--ffout=AMBER",
        "--log-level=INFO",
        str(tmp_path / "in.pdb"),
        str(tmp_path / "out.pqr"),
    ]


@pytest.mark.parametrize(("kwargs", "message"), [({"ph": 15}, r"ph must be a number in \[0, 14\]"), ({"ffout": "OPLS"}, "ffout must be one of")])
def test_pdb2pqr_option_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        assign_charges(datafiles.PDB_full, "PDB", "AMBER", **kwargs)


def test_pdb2pqr_options_need_a_forcefield():
    with pytest.raises(ValueError, match="'ph' is a pdb2pqr option and needs a force field"):
        ingest("mdanalysistests:PDB_full", ph=7.0)


def residue_structure(rows):
    """A Structure with one atom per (chain, number, code, name) row."""
    chains, numbers, codes, names = (np.array(column, dtype=object) for column in zip(*rows))
    n = len(rows)
    return Structure(
        positions=np.zeros((n, 3)),
        charges=np.zeros(n),
        atom_names=np.full(n, "CA", dtype=object),
        residue_names=names,
        residue_ids=np.asarray(numbers, dtype=np.int64),
        chain_ids=chains,
        insertion_codes=codes,
    )


def test_residue_matching_chains_insertion_codes_and_repeats():
    before = residue_structure(
        [("", 1, "", "ALA"), ("", 2, "", "GLY"), ("", 2, "A", "SER"), ("", 3, "", "LIG"), ("", 1, "", "ALA")]
        + [("B", 5, "", "HOH"), ("B", 6, "", "XK2")]
    )
    # pdb2pqr: the blank chain became 'A', insertion code kept, the second residue 1 kept, LIG and XK2 gone
    after = residue_structure(
        [("A", 1, "", "ALA"), ("A", 2, "", "GLY"), ("A", 2, "A", "SER"), ("A", 1, "", "ALA"), ("B", 5, "", "HOH")]
    )
    assert [(chain, number, code, name) for chain, number, code, name, *_ in missing_residues(before, after)] == [
        ("", 3, "", "LIG"),
        ("B", 6, "", "XK2"),
    ]
    # an insertion code is part of the residue: 2A missing is reported even though 2 is present
    without_2a = residue_structure([("A", 1, "", "ALA"), ("A", 2, "", "GLY"), ("A", 1, "", "ALA"), ("B", 5, "", "HOH")])
    assert [(number, code) for _, number, code, *_ in missing_residues(before, without_2a)] == [(2, "A"), (3, ""), (6, "")]


def test_many_dropped_residues_of_one_name_form_one_entry():
    waters = [("", 100 + k, "", "SOL") for k in range(GROUP_ABOVE + 1)]
    before = residue_structure([("", 1, "", "ALA"), *waters, ("", 200, "", "NA")])
    after = residue_structure([("A", 1, "", "ALA")])
    dropped = dropped_residues(before, after, "AMBER")
    assert [item["what"] for item in dropped] == [
        f"{GROUP_ABOVE + 1} residues SOL ({GROUP_ABOVE + 1} atoms): 100 to {100 + GROUP_ABOVE}",
        "residue NA 200 (1 atoms)",
    ]
    assert "rename it HOH" in dropped[0]["why"]
