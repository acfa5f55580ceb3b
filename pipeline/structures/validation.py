"""Checks on structure inputs and records, each failing with a one-line message naming the file.

The checks run at the ingest boundary: the file exists; its content matches the format it is
read as; a reader failure is located to the first malformed line (PDB, PQR, GRO); the
record has atoms, finite coordinates, no two atoms at the same position and charges.
Every error is a ``ValueError`` (``FileNotFoundError`` for a missing file) whose message
starts with the file name and fits on one line.
"""

from __future__ import annotations

import bz2
import gzip
import logging
import os
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from pipeline.structures.record import Structure

log = logging.getLogger(__name__)

#: Two atoms closer than this (Å) are reported as sitting at the same position.
DUPLICATE_DISTANCE_A = 1e-3
#: Record names that start lines of PDB and PQR files.
PDB_RECORDS = (
    "ATOM",
    "HETATM",
    "HEADER",
    "REMARK",
    "CRYST1",
    "TITLE",
    "COMPND",
    "SOURCE",
    "MODEL",
    "ENDMDL",
    "END",
    "TER",
    "SEQRES",
    "EXPDTA",
    "AUTHOR",
    "KEYWDS",
    "JRNL",
    "HELIX",
    "SHEET",
    "CONECT",
    "ANISOU",
    "REVDAT",
    "DBREF",
    "SEQADV",
    "HET",
    "HETNAM",
    "HETSYN",
    "FORMUL",
    "SITE",
    "SSBOND",
    "LINK",
    "CISPEP",
    "ORIGX1",
    "SCALE1",
    "MTRIX1",
    "NUMMDL",
    "MDLTYP",
    "SPLIT",
    "CAVEAT",
    "OBSLTE",
    "SPRSDE",
    "MASTER",
)
#: Formats whose content :func:`sniff_format` recognises.
SNIFFABLE_FORMATS = ("PDB", "PQR", "GRO", "MMCIF", "PSF", "PRMTOP")
_MESSAGE_LIMIT = 400


def one_line(text: object, limit: int = _MESSAGE_LIMIT) -> str:
    """``text`` with all whitespace runs (newlines included) collapsed to one space, shortened."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _open_text(path: Path):
    name = path.name.lower()
    if name.endswith(".gz"):
        return gzip.open(path, "rt", errors="replace")
    if name.endswith(".bz2"):
        return bz2.open(path, "rt", errors="replace")
    return open(path, "r", errors="replace")


def check_file(path: str | os.PathLike, role: str = "structure file") -> Path:
    """Check that ``path`` is an existing, non-empty file.

    Raises
    ------
    FileNotFoundError
        ``"<path>: no such <role>"``.
    ValueError
        When ``path`` is a folder or an empty file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such {role}")
    if not path.is_file():
        raise ValueError(f"{path}: {role} is not a regular file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: {role} is empty (zero atoms)")
    return path


def _head(path: Path, n_lines: int = 60) -> list[str] | None:
    """First lines of a text file, or None when it looks binary."""
    try:
        with _open_text(path) as stream:
            lines = []
            for line in stream:
                lines.append(line.rstrip("\n"))
                if len(lines) >= n_lines:
                    break
    except (OSError, EOFError, UnicodeDecodeError):
        return None
    text = "\n".join(lines)
    if "\x00" in text or "\ufffd" in text:
        return None
    return lines


def sniff_format(path: str | os.PathLike) -> tuple[str, str] | None:
    """Guess a text file's format family from its first lines.

    Returns
    -------
    (family, reason) or None
        ``family`` is ``"PDB/PQR"``, ``"GRO"``, ``"MMCIF"``, ``"PSF"`` or ``"PRMTOP"``; ``reason``
        says what gave it away. None for binary files or content not recognised.
    """
    lines = _head(Path(path))
    if not lines:
        return None
    content = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not content:
        return None
    first = content[0].strip()
    if first.startswith("data_"):
        return "MMCIF", "line 1 starts with data_"
    if first.split()[0] == "PSF":
        return "PSF", "line 1 is PSF"
    if first.startswith(("%VERSION", "%FLAG")):
        return "PRMTOP", "line 1 is an AMBER %VERSION/%FLAG line"
    records = [line for line in content if line[:6].strip() in PDB_RECORDS]
    if content[0][:6].strip() in PDB_RECORDS or 2 * len(records) >= len(content):
        return "PDB/PQR", f"line 1 is a {content[0][:6].strip()} record" if records[:1] == content[
            :1
        ] else "PDB records"
    if len(lines) >= 2 and lines[1].strip().isdigit() and lines[0][:6].strip() not in PDB_RECORDS:
        return "GRO", "line 2 is an atom count"
    return None


def check_format(path: str | os.PathLike, fmt: str) -> None:
    """Fail when a text file's content contradicts the format it is about to be read as.

    PDB and PQR files share record names, so either format accepts the other's content.

    Raises
    ------
    ValueError
        e.g. ``"x.gro: read as PDB but the content looks like GRO (line 2 is an atom count)"``.
    """
    if fmt not in SNIFFABLE_FORMATS:
        return
    sniffed = sniff_format(path)
    if sniffed is None:
        return
    family, reason = sniffed
    if fmt in family.split("/"):
        return
    suggestion = family.split("/")[0].lower()
    raise ValueError(
        f"{path}: read as {fmt} but the content looks like {family} ({reason}); "
        f"pass --format {suggestion} or fix the file name"
    )


def _float_field(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _scan_pdb(lines) -> str | None:
    n_atoms = 0
    for number, line in enumerate(lines, start=1):
        if not line.startswith(("ATOM", "HETATM")):
            continue
        n_atoms += 1
        for axis, (start, stop) in zip("xyz", ((30, 38), (38, 46), (46, 54))):
            field = line[start:stop]
            if not _float_field(field):
                return (
                    f"line {number}: {axis} coordinate (columns {start + 1}-{stop}) is {field.strip()!r}, not a number"
                )
    return None if n_atoms else "zero atoms (no ATOM/HETATM records)"


def _scan_pqr(lines) -> str | None:
    n_atoms = 0
    for number, line in enumerate(lines, start=1):
        if not line.startswith(("ATOM", "HETATM")):
            continue
        n_atoms += 1
        fields = line.split()
        if len(fields) < 10:
            return (
                f"line {number}: {len(fields)} fields, a PQR atom line needs 10 or 11 "
                "(record serial name resname [chain] resid x y z charge radius)"
            )
        for label, field in zip(("x", "y", "z", "charge", "radius"), fields[-5:]):
            if not _float_field(field):
                return f"line {number}: field {label} is {field!r}, not a number"
    return None if n_atoms else "zero atoms (no ATOM/HETATM records)"


def _scan_gro(lines) -> str | None:
    lines = list(lines)
    if len(lines) < 2 or not lines[1].strip().isdigit():
        return "line 2: expected the number of atoms"
    n_atoms = int(lines[1])
    if n_atoms == 0:
        return "zero atoms (line 2 says 0)"
    if len(lines) < n_atoms + 3:
        return (
            f"line 2 announces {n_atoms} atoms, but the file ends at line {len(lines)} (expected {n_atoms + 3} lines)"
        )
    for number in range(3, n_atoms + 3):
        line = lines[number - 1]
        for axis, (start, stop) in zip("xyz", ((20, 28), (28, 36), (36, 44))):
            field = line[start:stop]
            if not _float_field(field):
                return (
                    f"line {number}: {axis} coordinate (columns {start + 1}-{stop}) is {field.strip()!r}, not a number"
                )
    box = lines[n_atoms + 2].split()
    if len(box) not in (3, 9) or not all(_float_field(v) for v in box):
        return f"line {n_atoms + 3}: box line needs 3 or 9 numbers, got {lines[n_atoms + 2].strip()!r}"
    return None


_SCANNERS = {"PDB": _scan_pdb, "PQR": _scan_pqr, "GRO": _scan_gro}


def find_malformed_line(path: str | os.PathLike, fmt: str) -> str | None:
    """Locate the first line a reader of ``fmt`` cannot parse (PDB, PQR, GRO only).

    Returns
    -------
    str or None
        ``"line N: <what is wrong>"`` (or ``"zero atoms ..."``); None when nothing is found or
        the format has no scanner.
    """
    scanner = _SCANNERS.get(fmt)
    if scanner is None:
        return None
    try:
        with _open_text(Path(path)) as stream:
            return scanner(line.rstrip("\n") for line in stream)
    except (OSError, EOFError) as exc:
        return f"cannot be read as text ({one_line(exc)})"


def explain_reader_failure(
    path: Path, fmt: str, exc: BaseException, coordinates: Path | None = None, coordinates_fmt: str | None = None
) -> ValueError:
    """One-line error for a reader exception: the malformed line when one is found.

    Parameters
    ----------
    path, fmt : the structure (or topology) file and its format
    exc : the reader's exception
    coordinates, coordinates_fmt : the coordinate file and its format, when there is one

    Returns
    -------
    ValueError
        To be raised by the caller (``raise explain_reader_failure(...) from exc``).
    """
    for file, file_fmt in ((path, fmt), (coordinates, coordinates_fmt)):
        if file is None:
            continue
        where = find_malformed_line(file, file_fmt)
        if where is not None:
            return ValueError(f"{file}: {where}")
    names = str(path) if coordinates is None else f"{path} with {coordinates}"
    kind = fmt if coordinates is None else f"{fmt}+{coordinates_fmt}"
    return ValueError(f"{names}: cannot be read as {kind}: {type(exc).__name__}: {one_line(exc)}")


def describe_atom(structure: Structure, index: int) -> str:
    """``"atom index 12 (CA LYS 3 chain A)"`` for the 0-based ``index``, with whatever labels exist.

    The index counts atoms of the record from 0 (serial numbers in files count from 1 and may
    wrap); the labels in parentheses are the atom name, residue name and number from the file.
    """
    parts = []
    for values in (structure.atom_names, structure.residue_names, structure.residue_ids):
        if values is not None and str(values[index]).strip():
            parts.append(str(values[index]).strip())
    if structure.chain_ids is not None and str(structure.chain_ids[index]).strip():
        parts.append(f"chain {str(structure.chain_ids[index]).strip()}")
    return f"atom index {index}" + (f" ({' '.join(parts)})" if parts else "")


def check_positions(structure: Structure, name: str, *, duplicate_distance_A: float = DUPLICATE_DISTANCE_A) -> None:
    """Fail on zero atoms, non-finite coordinates or two atoms at the same position.

    Parameters
    ----------
    structure : Structure
    name : str
        File name or source used in the message.
    duplicate_distance_A : float
        Pairs closer than this (Å) count as the same position (default 1e-3 Å).

    Raises
    ------
    ValueError
        Naming the first non-finite atom (0-based index) or the first coincident pair.
    """
    positions = np.asarray(structure.positions)
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise ValueError(f"{name}: positions must have shape (n_atoms, 3), got {positions.shape}")
    if positions.shape[0] == 0:
        raise ValueError(f"{name}: zero atoms")
    finite = np.isfinite(positions)
    if not finite.all():
        index, axis = np.argwhere(~finite)[0]
        raise ValueError(
            f"{name}: {describe_atom(structure, int(index))} has a non-finite "
            f"{'xyz'[axis]} coordinate ({positions[index, axis]})"
        )
    pairs = cKDTree(positions).query_pairs(r=duplicate_distance_A, output_type="ndarray")
    if len(pairs):
        pairs = np.sort(pairs, axis=1)
        i, j = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))[0]]
        distance = float(np.linalg.norm(positions[i] - positions[j]))
        raise ValueError(
            f"{name}: {describe_atom(structure, int(i))} and {describe_atom(structure, int(j))} sit at the same "
            f"position (distance {distance:.1e} Å < {duplicate_distance_A} Å; {len(pairs)} such pair(s))"
        )


def check_charges(structure: Structure, name: str, fmt: str) -> None:
    """Fail when the record has no partial charges or non-finite ones.

    Raises
    ------
    ValueError
        ``"<name>: <fmt> has no partial charges; pass --forcefield AMBER|CHARMM|PARSE or use a
        format with charges (PQR, PSF, TPR, PRMTOP)"``, or naming the first non-finite charge.
    """
    charges = np.asarray(structure.charges, dtype=np.float64)
    if not structure.attrs.get("charge_source") or np.isnan(charges).all():
        raise ValueError(
            f"{name}: {fmt} has no partial charges; pass --forcefield AMBER|CHARMM|PARSE "
            "or use a format with charges (PQR, PSF, TPR, PRMTOP)"
        )
    bad = np.flatnonzero(~np.isfinite(charges))
    if len(bad):
        raise ValueError(f"{name}: {describe_atom(structure, int(bad[0]))} has a non-finite charge ({charges[bad[0]]})")
    if not np.any(charges):
        log.warning("%s: every partial charge in the file is 0: the potential will be 0 everywhere", name)
