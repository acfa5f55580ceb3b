"""Partial charges and radii from a force field, assigned by pdb2pqr.

pdb2pqr (Jurrus et al., Protein Sci. 27, 112 (2018); Dolinsky et al., Nucleic Acids Res. 35,
W522 (2007)) adds missing hydrogens and heavy atoms, picks one alternate location per atom and
assigns charges and radii of the AMBER, CHARMM or PARSE force field to proteins, nucleic acids
and water. It runs here as a subprocess (``python -m pdb2pqr`` of the running interpreter) in
a temporary folder, always with ``--whitespace`` (otherwise coordinates of −100 Å or less fuse
with their neighbours and the PQR cannot be read back) and ``--keep-chain``.

Conventions and caveats:

* The input must be an existing PDB or mmCIF file: pdb2pqr treats a path that does not exist
  as a PDB identifier and downloads it, so the path is checked first and passed absolute.
* mmCIF is converted to PDB with gemmi first (first model, chain names shortened to one
  character): pdb2pqr 3.8's own mmCIF reader misreads some files (3KPR: spurious gaps).
* Residues pdb2pqr cannot parameterise (ligands, unusual residues) are left out of its output.
  They are found by comparing the (chain, residue number) pairs of input and output and
  listed in ``attrs["dropped"]`` as ``{"what": ..., "why": ...}``, together with the residues
  whose alternate locations were discarded.
* Failures (chain gaps, incomplete residues) raise ``RuntimeError`` quoting pdb2pqr's reason.
"""

from __future__ import annotations

import bz2
import gzip
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pipeline.structures.readers import read_structure
from pipeline.structures.record import Structure
from pipeline.structures.validation import check_file, one_line

log = logging.getLogger(__name__)

#: Force fields offered (pdb2pqr ``--ff`` names).
FORCEFIELDS = ("AMBER", "CHARMM", "PARSE")
#: Input formats pdb2pqr is run on.
FORCEFIELD_INPUT_FORMATS = ("PDB", "MMCIF")

_ALTLOC = re.compile(r"Multiple occupancies found in (\S+) (\S?) ?(-?\d+\S*)\. At least one")
_NO_DEFINITION = re.compile(r"Unable to find amino or nucleic acid definition for (\S+?)\.")


def check_forcefield(forcefield: str) -> str:
    """Upper-case ``forcefield`` after checking it is one of :data:`FORCEFIELDS`."""
    name = str(forcefield).strip().upper()
    if name not in FORCEFIELDS:
        raise ValueError(f"forcefield must be one of {', '.join(FORCEFIELDS)}, got {forcefield!r}")
    return name


def pdb2pqr_command(input_pdb: Path, output_pqr: Path, forcefield: str) -> list[str]:
    """Argument list running pdb2pqr of the current interpreter on ``input_pdb``."""
    return [
        sys.executable,
        "-m",
        "pdb2pqr",
        f"--ff={forcefield}",
        "--whitespace",
        "--keep-chain",
        "--log-level=INFO",
        str(input_pdb),
        str(output_pqr),
    ]


def _prepare_input(path: Path, fmt: str, folder: Path) -> Path:
    """A plain PDB file pdb2pqr can read: the file itself, decompressed, or converted from mmCIF."""
    target = folder / "input.pdb"
    if fmt == "MMCIF":
        import gemmi

        structure = gemmi.read_structure(str(path))
        while len(structure) > 1:
            del structure[len(structure) - 1]
        structure.shorten_chain_names()
        structure.write_pdb(str(target))
        return target
    name = path.name.lower()
    if name.endswith(".gz") or name.endswith(".bz2"):
        opener = gzip.open if name.endswith(".gz") else bz2.open
        with opener(path, "rb") as source, open(target, "wb") as sink:
            shutil.copyfileobj(source, sink)
        return target
    return path.resolve()


def failure_reason(log_text: str, n_lines: int = 3) -> str:
    """pdb2pqr's reason for failing: its CRITICAL/ERROR lines, else the last exception or log lines."""
    lines = [line.strip() for line in log_text.splitlines() if line.strip()]
    critical = [
        line.split("CRITICAL:", 1)[1].split(":", 3)[-1] if "main.py" in line else line.split("CRITICAL:", 1)[1]
        for line in lines
        if "CRITICAL:" in line and "Giving up" not in line
    ]
    if not critical:
        critical = [line for line in lines if "ERROR:" in line]
    if not critical:
        critical = [line for line in lines if re.match(r"^[A-Za-z_.]*(Error|Exception):", line)][-1:]
    return one_line(" | ".join((critical or lines)[-n_lines:]) or "no message")


def _residue_table(structure: Structure) -> dict[tuple[str, int], tuple[str, int]]:
    """(chain, residue number) → (residue name, number of atoms)."""
    table: dict[tuple[str, int], tuple[str, int]] = {}
    for chain, resid, resname in zip(structure.chain_ids, structure.residue_ids, structure.residue_names):
        key = (str(chain), int(resid))
        name, count = table.get(key, (str(resname), 0))
        table[key] = (name, count + 1)
    return table


def missing_residues(before: Structure, after: Structure) -> list[tuple[str, int, str, int]]:
    """(chain, residue number, residue name, number of atoms) of input residues absent from the output."""
    kept = set(_residue_table(after))
    return [
        (chain, resid, resname, count)
        for (chain, resid), (resname, count) in _residue_table(before).items()
        if (chain, resid) not in kept
    ]


def dropped_residues(before: Structure, after: Structure, forcefield: str, log_text: str = "") -> list[dict[str, str]]:
    """What pdb2pqr left out: residues absent from its output, residues whose altlocs it discarded.

    Parameters
    ----------
    before, after : Structure
        pdb2pqr's input and output.
    forcefield : str
    log_text : str
        pdb2pqr's log, parsed for discarded alternate locations.

    Returns
    -------
    list of dict
        ``{"what": "residue GOL 301 chain A (6 atoms)", "why": "..."}`` entries.
    """
    unknown = set(_NO_DEFINITION.findall(log_text))
    dropped = []
    for chain, resid, resname, count in missing_residues(before, after):
        why = f"pdb2pqr has no {forcefield} parameters for {resname}"
        if resname in unknown:
            why += " (not an amino or nucleic acid it knows)"
        where = f" chain {chain}" if chain else ""
        dropped.append({"what": f"residue {resname} {resid}{where} ({count} atoms)", "why": why})
    altlocs = sorted({" ".join(part for part in match if part) for match in _ALTLOC.findall(log_text)})
    if altlocs:
        dropped.append(
            {
                "what": f"alternate locations of {len(altlocs)} residue(s): {', '.join(altlocs)}",
                "why": "pdb2pqr keeps one location per atom (the first) and ignores the others",
            }
        )
    return dropped


def assign_charges(
    path: str | os.PathLike, fmt: str, forcefield: str = "AMBER", *, name: str | None = None
) -> Structure:
    """Run pdb2pqr on a PDB or mmCIF file and read back charges, radii and positions.

    Parameters
    ----------
    path : path-like
        Existing PDB or mmCIF file (optionally .gz/.bz2).
    fmt : {"PDB", "MMCIF"}
    forcefield : {"AMBER", "CHARMM", "PARSE"}
    name : str, optional
        How the source is named in messages (default: ``path``).

    Returns
    -------
    Structure
        pdb2pqr's output: hydrogens added, one alternate location kept; ``charges`` e and
        ``radii`` Å of the force field; ``attrs`` with ``charge_source`` ``"forcefield:<FF>"``,
        ``dropped``, ``pdb2pqr_seconds``, ``n_atoms_input``.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist (pdb2pqr would otherwise download a PDB entry).
    ValueError
        For another format or an unknown force field.
    RuntimeError
        When pdb2pqr fails, quoting its reason.
    """
    forcefield = check_forcefield(forcefield)
    path = Path(path)
    name = name or str(path)
    if fmt not in FORCEFIELD_INPUT_FORMATS:
        raise ValueError(
            f"{name}: force-field charges are assigned to PDB or mmCIF files only, got {fmt}; "
            "convert it to PDB or use a topology with charges (PQR, PSF, TPR, PRMTOP)"
        )
    check_file(path)
    with tempfile.TemporaryDirectory(prefix="pdb2pqr-") as tmp:
        folder = Path(tmp)
        input_pdb = _prepare_input(path, fmt, folder)
        output_pqr = folder / "output.pqr"
        command = pdb2pqr_command(input_pdb, output_pqr, forcefield)
        log.debug("running %s", " ".join(command))
        start = time.perf_counter()
        result = subprocess.run(command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        seconds = time.perf_counter() - start
        log_text = result.stdout or ""
        if result.returncode != 0 or not output_pqr.is_file() or output_pqr.stat().st_size == 0:
            reason = failure_reason(log_text)
            raise RuntimeError(f"{name}: pdb2pqr --ff={forcefield} failed (exit status {result.returncode}): {reason}")
        before = read_structure(input_pdb, "PDB")
        after = read_structure(output_pqr, "PQR")
    dropped = dropped_residues(before, after, forcefield, log_text)
    missing = missing_residues(before, after)
    after.attrs.update(
        charge_source=f"forcefield:{forcefield}",
        dropped=dropped,
        pdb2pqr_seconds=round(seconds, 3),
        n_atoms_input=before.n_atoms,
        box=before.attrs.get("box", []),
    )
    log.info(
        "pdb2pqr %s: %d atoms in, %d out, %d residue(s) dropped (%d atoms), net charge %+.3f e, %.1fs",
        forcefield,
        before.n_atoms,
        after.n_atoms,
        len(missing),
        sum(count for *_, count in missing),
        float(np.sum(after.charges)),
        seconds,
    )
    return after
