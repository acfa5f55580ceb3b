"""Ingest one structure: resolve the source, read it, assign charges if needed, validate.

Order of operations: resolve ``mdanalysistests:NAME`` → check the file(s) exist → decide the
format (explicit, else extension) and check the content matches it → read the first frame
(:mod:`pipeline.structures.readers`) → if the file has no partial charges, run pdb2pqr with
the requested force field (:mod:`pipeline.structures.forcefield`), else fail saying how to get
charges → check coordinates are finite and no two atoms coincide
(:mod:`pipeline.structures.validation`).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from pipeline.structures.forcefield import assign_charges, check_ffout, check_forcefield, check_ph
from pipeline.structures.readers import detect_format, read_structure, resolve_source
from pipeline.structures.record import Structure
from pipeline.structures.validation import check_charges, check_file, check_format, check_positions

log = logging.getLogger(__name__)


def default_structure_id(path: str | os.PathLike) -> str:
    """Identifier from a file name without its extensions (``adk_open`` for adk_open.pqr.gz)."""
    return Path(path).name.split(".")[0] or "structure"


def ingest(
    source: str | os.PathLike,
    *,
    coordinates: str | os.PathLike | None = None,
    forcefield: str | None = None,
    fmt: str | None = None,
    structure_id: str | None = None,
    ph: float | None = None,
    ffout: str | None = None,
) -> Structure:
    """Read a structure file into the normalised record with charges and provenance.

    Parameters
    ----------
    source : str or path-like
        Structure or topology file, or ``mdanalysistests:NAME`` (see
        :func:`pipeline.structures.readers.resolve_source`).
    coordinates : str or path-like, optional
        Coordinate file for a topology (PSF, PRMTOP: required; TPR: optional), same naming.
    forcefield : {"AMBER", "CHARMM", "PARSE"}, optional
        Force field for files without partial charges (PDB, mmCIF). Ignored, with a log
        line, when the file has charges.
    fmt : str, optional
        Format of ``source`` (e.g. ``"pdb"``); default from the extension.
    structure_id : str, optional
        Identifier stored in the record (default: the file name without extensions, also for
        ``mdanalysistests:PQR`` → ``adk_open``).
    ph : float, optional
        pH of the PROPKA protonation states pdb2pqr assigns (needs ``forcefield``).
    ffout : str, optional
        pdb2pqr naming scheme of the output (needs ``forcefield``).

    Returns
    -------
    Structure
        positions (n_atoms, 3) Å, charges (n_atoms,) e, radii Å; ``attrs`` ``structure_id``,
        ``source``, ``coordinate_source`` (named so: xarray reserves the global attribute
        ``coordinates``), ``format``, ``charge_source`` (``"file"`` or
        ``"forcefield:<FF>"``), ``dropped``, ``box``, ``n_frames``.

    Raises
    ------
    FileNotFoundError
        Missing file.
    ValueError
        Unknown or mismatched format, malformed line, zero atoms, non-finite or coincident
        coordinates, no charges and no force field; message on one line naming the file.
    RuntimeError
        pdb2pqr failed (its reason quoted).
    """
    start = time.perf_counter()
    label = os.fspath(source)
    path = check_file(resolve_source(source))
    fmt = detect_format(path, fmt)
    check_format(path, fmt)
    coord_path = coord_fmt = None
    if coordinates is not None:
        coord_path = check_file(resolve_source(coordinates), "coordinate file")
        coord_fmt = detect_format(coord_path)
        check_format(coord_path, coord_fmt)
    if forcefield is not None:
        forcefield = check_forcefield(forcefield)
    ph, ffout = check_ph(ph), check_ffout(ffout)
    if forcefield is None and (ph is not None or ffout is not None):
        option = "ph" if ph is not None else "ffout"
        raise ValueError(f"{label}: '{option}' is a pdb2pqr option and needs a force field (--forcefield)")
    structure = read_structure(path, fmt, coordinates=coord_path, coordinates_fmt=coord_fmt)
    check_positions(structure, label)
    if structure.attrs.get("charge_source") == "file":
        if forcefield is not None:
            ignored = " ".join(
                f"--{flag} {value}" for flag, value in (("forcefield", forcefield), ("ph", ph), ("ffout", ffout)) if value
            )
            log.warning("%s has partial charges: %s ignored", label, ignored)
    elif forcefield is not None:
        if coord_path is not None:
            raise ValueError(
                f"{label}: force-field charges are assigned to a single PDB or mmCIF file, not with --coordinates"
            )
        read_attrs = structure.attrs
        structure = assign_charges(path, fmt, forcefield, name=label, ph=ph, ffout=ffout)
        structure.attrs.update(format=read_attrs["format"], n_frames=read_attrs["n_frames"])
        check_positions(structure, f"{label} (pdb2pqr output)")
    check_charges(structure, label, fmt)
    structure.attrs.update(
        structure_id=structure_id or default_structure_id(path),
        source=label,
        coordinate_source="" if coordinates is None else os.fspath(coordinates),
    )
    structure.attrs.setdefault("dropped", [])
    log.debug(
        "ingest %s: %d atoms, net charge %+.4f e, charges from %s, %d dropped item(s), %.2fs",
        label,
        structure.n_atoms,
        float(np.sum(structure.charges)),
        structure.attrs["charge_source"],
        len(structure.attrs["dropped"]),
        time.perf_counter() - start,
    )
    return structure
