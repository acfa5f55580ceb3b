"""Write a structure as a PQR file (positions, charges, radii) for APBS, PDB2PKA, VMD or PyMOL.

Whitespace-separated ATOM records, as pdb2pqr writes them with ``--whitespace``::

    ATOM  <serial> <name> <resName> <chain> <resSeq><iCode> <x> <y> <z> <charge> <radius>

Fixed-width PQR/PDB columns fuse neighbouring coordinates at −100 Å or less (MDAnalysis'
PQRWriter writes ``%8.3f`` without separators), so every field here is separated by a space:
MDAnalysis, APBS and pdb2pqr read them by splitting on whitespace. Coordinates are written with
4 decimals (Å), charges with up to 9 significant digits (e), radii with 4 decimals (Å; 0 when
unknown); serials count from 1 and do not wrap. A chain identifier is written only when every
atom has a one-character one (the chain field is optional in whitespace PQR).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from pipeline.storage import atomic_write_bytes
from pipeline.structures.record import Structure

log = logging.getLogger(__name__)


def _column(values, n_atoms: int, default: str) -> np.ndarray:
    if values is None:
        return np.full(n_atoms, default, dtype=object)
    text = np.asarray(values).astype(str)
    return np.where(np.char.str_len(np.char.strip(text)) > 0, np.char.strip(text), default).astype(object)


def pqr_text(structure: Structure) -> str:
    """The PQR file of ``structure`` as text (see the module docstring)."""
    n = structure.n_atoms
    names = _column(structure.atom_names, n, "X")
    resnames = _column(structure.residue_names, n, "UNK")
    resids = np.zeros(n, dtype=np.int64) if structure.residue_ids is None else np.asarray(structure.residue_ids)
    codes = _column(structure.insertion_codes, n, "")
    chains = _column(structure.chain_ids, n, "")
    with_chain = bool(n) and all(len(str(c)) == 1 for c in chains)
    radii = np.zeros(n) if structure.radii is None else np.nan_to_num(np.asarray(structure.radii, dtype=np.float64))
    lines = [f"REMARK   1 {structure.attrs.get('structure_id', '')} charges from {structure.attrs.get('charge_source', '')}"]
    for i in range(n):
        x, y, z = structure.positions[i]
        chain = f" {chains[i]}" if with_chain else ""
        lines.append(
            f"ATOM {i + 1} {names[i]} {resnames[i]}{chain} {resids[i]}{codes[i]} {x:.4f} {y:.4f} {z:.4f} "
            f"{structure.charges[i]:.9g} {radii[i]:.4f}"
        )
    lines.append("END")
    return "\n".join(lines) + "\n"


def write_pqr(structure: Structure, path: str | os.PathLike) -> Path:
    """Write ``structure`` as PQR to ``path`` atomically (temporary file, then rename)."""
    path = atomic_write_bytes(path, pqr_text(structure).encode())
    log.info("wrote %s: %d atoms", path, structure.n_atoms)
    return path
