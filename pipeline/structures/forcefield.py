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
* Residues pdb2pqr cannot parameterise (ligands, modified amino acids such as CSO, waters not
  named HOH, ions) are left out of its output. They are found by matching the residues of
  input and output (chain, number, insertion code; pdb2pqr names a chain without identifier
  ``A``, so chains missing from the output are matched by number and insertion code), listed
  in ``attrs["dropped"]`` as ``{"what": ..., "why": ...}`` together with the residues whose
  alternate locations were discarded, and named in one WARNING line. pdb2pqr's ``--ligand``
  needs the ligand as a MOL2 file with its own charges: to keep ligands, ingest a topology
  with charges (PQR, PSF, TPR, PRMTOP) instead.
* ``ph`` runs PROPKA 3 through pdb2pqr (``--titration-state-method propka --with-ph``);
  ``ffout`` names residues and atoms after another force field (``--ffout``).
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
from collections import Counter
from pathlib import Path

import numpy as np

from pipeline.structures.choices import FFOUT_NAMES, FORCEFIELDS
from pipeline.structures.readers import read_structure
from pipeline.structures.record import Structure
from pipeline.structures.validation import check_file, one_line

log = logging.getLogger(__name__)

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


def check_ph(ph: float | None) -> float | None:
    """``ph`` as a float in [0, 14], or None."""
    if ph is None:
        return None
    value = float(ph)
    if not 0.0 <= value <= 14.0:
        raise ValueError(f"ph must be a number in [0, 14], got {ph!r}")
    return value


def check_ffout(ffout: str | None) -> str | None:
    """Upper-case naming scheme after checking it is one of :data:`FFOUT_NAMES`, or None."""
    if ffout is None:
        return None
    name = str(ffout).strip().upper()
    if name not in FFOUT_NAMES:
        raise ValueError(f"ffout must be one of {', '.join(FFOUT_NAMES)}, got {ffout!r}")
    return name


def pdb2pqr_command(
    input_pdb: Path, output_pqr: Path, forcefield: str, *, ph: float | None = None, ffout: str | None = None
) -> list[str]:
    """Argument list running pdb2pqr of the current interpreter on ``input_pdb``.

    ``ph`` adds ``--titration-state-method propka --with-ph PH`` (PROPKA 3 assigns the
    protonation states of titratable residues at that pH; without it pdb2pqr uses the
    standard states: Asp/Glu charged, Lys/Arg charged, His neutral); ``ffout`` adds
    ``--ffout NAME`` (residue and atom names of that force field in the output).
    """
    command = [sys.executable, "-m", "pdb2pqr", f"--ff={forcefield}", "--whitespace", "--keep-chain"]
    if ph is not None:
        command += ["--titration-state-method", "propka", f"--with-ph={ph:g}"]
    if ffout is not None:
        command.append(f"--ffout={ffout}")
    return [*command, "--log-level=INFO", str(input_pdb), str(output_pqr)]


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


#: Residues of one name dropped more often than this are listed as one group.
GROUP_ABOVE = 10
#: Residue names of water models pdb2pqr does not know (it reads water as HOH or WAT).
_WATER_NAMES = frozenset({"SOL", "TIP3", "TIP3P", "TIP4", "TIP4P", "TIP5", "SPC", "SPCE", "T3P", "T4P", "H2O"})
#: Backbone atoms that make a dropped residue a modified amino acid rather than a ligand.
_BACKBONE = frozenset({"N", "CA", "C"})


def residues(structure: Structure) -> list[tuple[str, int, str, str, int, frozenset]]:
    """Residues in file order: runs of consecutive atoms with the same chain, number and insertion code.

    Returns
    -------
    list of tuple
        ``(chain, residue number, insertion code, residue name, number of atoms, atom names)``.
        Two runs with the same labels (e.g. chains without identifiers numbered from 1 each)
        stay two residues.
    """
    n_atoms = structure.n_atoms
    if n_atoms == 0:
        return []
    chains = np.asarray(structure.chain_ids if structure.chain_ids is not None else [""] * n_atoms).astype(str)
    numbers = np.asarray(structure.residue_ids, dtype=np.int64)
    codes = np.asarray(
        structure.insertion_codes if structure.insertion_codes is not None else [""] * n_atoms
    ).astype(str)
    change = (chains[1:] != chains[:-1]) | (numbers[1:] != numbers[:-1]) | (codes[1:] != codes[:-1])
    starts = np.concatenate([[0], np.flatnonzero(change) + 1])
    ends = np.concatenate([starts[1:], [n_atoms]])
    names = np.asarray(structure.atom_names).astype(str)
    return [
        (
            str(chains[i]).strip(),
            int(numbers[i]),
            str(codes[i]).strip(),
            str(structure.residue_names[i]),
            int(j - i),
            frozenset(str(name).strip() for name in names[i:j]),
        )
        for i, j in zip(starts, ends)
    ]


def missing_residues(before: Structure, after: Structure) -> list[tuple[str, int, str, str, int, frozenset]]:
    """Input residues absent from pdb2pqr's output, in file order (same tuples as :func:`residues`).

    A residue is matched by chain, number and insertion code, each output residue at most once.
    pdb2pqr keeps the numbers and insertion codes but names chains without an identifier
    ``A`` (and may rename others): residues of a chain that does not occur in the output are
    matched by number and insertion code among the output residues left over.
    """
    inputs = residues(before)
    outputs = residues(after)
    output_chains = {chain for chain, *_ in outputs}
    left = Counter((chain, number, code) for chain, number, code, *_ in outputs)
    kept = [False] * len(inputs)
    for k, (chain, number, code, *_) in enumerate(inputs):
        if chain in output_chains and left[(chain, number, code)] > 0:
            left[(chain, number, code)] -= 1
            kept[k] = True
    by_number = Counter()
    for (_, number, code), count in left.items():
        by_number[(number, code)] += count
    for k, (chain, number, code, *_) in enumerate(inputs):
        if not kept[k] and chain not in output_chains and by_number[(number, code)] > 0:
            by_number[(number, code)] -= 1
            kept[k] = True
    return [residue for residue, was_kept in zip(inputs, kept) if not was_kept]


def _label(chain: str, number: int, code: str) -> str:
    return f"{number}{code}" + (f" chain {chain}" if chain else "")


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
        ``{"what": "residue GOL 301 chain A (6 atoms)", "why": "..."}`` entries, one per
        residue; a residue name dropped more than :data:`GROUP_ABOVE` times is one entry
        ``{"what": "4607 residues SOL (13821 atoms): 63-4669", ...}``. Residues with backbone
        atoms N, CA, C are called modified amino acids, others ligands or unknown residues.
    """
    unknown = set(_NO_DEFINITION.findall(log_text))
    missing = missing_residues(before, after)
    by_name: dict[str, list] = {}
    for residue in missing:
        by_name.setdefault(residue[3], []).append(residue)
    dropped = []
    for resname, group in by_name.items():
        modified = all(_BACKBONE <= atoms for *_, atoms in group)
        why = f"pdb2pqr has no {forcefield} parameters for {resname}"
        if resname in unknown:
            why += " (not an amino or nucleic acid it knows)"
        if modified:
            why += "; a modified amino acid, so the chain has a gap there"
        elif resname.upper() in _WATER_NAMES:
            why += "; water under a name pdb2pqr does not read (rename it HOH to keep it)"
        else:
            why += "; a ligand, ion or unknown residue (pdb2pqr's --ligand needs it as a MOL2 file with charges)"
        why += "; to keep it, ingest a topology with charges (PQR, PSF, TPR, PRMTOP)"
        if len(group) > GROUP_ABOVE:
            n_atoms = sum(count for *_, count, _ in group)
            first, last = group[0], group[-1]
            span = f"{_label(first[0], first[1], first[2])} to {_label(last[0], last[1], last[2])}"
            dropped.append({"what": f"{len(group)} residues {resname} ({n_atoms} atoms): {span}", "why": why})
            continue
        for chain, number, code, _, count, _ in group:
            dropped.append({"what": f"residue {resname} {_label(chain, number, code)} ({count} atoms)", "why": why})
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
    path: str | os.PathLike,
    fmt: str,
    forcefield: str = "AMBER",
    *,
    name: str | None = None,
    ph: float | None = None,
    ffout: str | None = None,
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
    ph : float, optional
        pH in [0, 14] at which PROPKA sets the protonation states (default: none, pdb2pqr's
        standard states).
    ffout : {"AMBER", "CHARMM", "PARSE", "TYL06", "PEOEPB", "SWANSON"}, optional
        Naming scheme of the output residues and atoms (default: pdb2pqr's canonical names).

    Returns
    -------
    Structure
        pdb2pqr's output: hydrogens added, one alternate location kept; ``charges`` e and
        ``radii`` Å of the force field; ``attrs`` with ``charge_source`` ``"forcefield:<FF>"``,
        ``dropped``, ``pdb2pqr_seconds``, ``n_atoms_input``, ``ph`` (NaN without titration),
        ``ffout`` ("" for the canonical names), ``pdb2pqr_options``.

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
    ph = check_ph(ph)
    ffout = check_ffout(ffout)
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
        command = pdb2pqr_command(input_pdb, output_pqr, forcefield, ph=ph, ffout=ffout)
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
    options = " ".join(command[3:-3])
    after.attrs.update(
        charge_source=f"forcefield:{forcefield}",
        dropped=dropped,
        pdb2pqr_seconds=round(seconds, 3),
        n_atoms_input=before.n_atoms,
        box=before.attrs.get("box", []),
        ph=float("nan") if ph is None else ph,
        ffout=ffout or "",
        pdb2pqr_options=options,
    )
    if missing:
        counts = Counter(resname for _, _, _, resname, _, _ in missing)
        log.warning(
            "pdb2pqr %s left out %d residue(s) it has no parameters for: %s (see 'dropped' in the record)",
            forcefield,
            len(missing),
            ", ".join(f"{resname} x{count}" if count > 1 else resname for resname, count in counts.items()),
        )
    log.info(
        "pdb2pqr %s: %d atoms in, %d out, %d residue(s) dropped (%d atoms), net charge %+.3f e, %.1fs",
        options,
        before.n_atoms,
        after.n_atoms,
        len(missing),
        sum(count for *_, count, _ in missing),
        float(np.sum(after.charges)),
        seconds,
    )
    return after
