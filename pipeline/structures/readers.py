"""Read molecular structure files into a :class:`~pipeline.structures.record.Structure`.

This is the only module of the package that imports MDAnalysis. It resolves sources
(a path, or ``mdanalysistests:NAME`` for a data file of the MDAnalysisTests package), decides
the file format, reads the first frame and returns positions, charges (when the file has
partial charges), radii, elements and residue/chain labels.

Formats (canonical names, decided from the extension after stripping ``.gz``/``.bz2``, or
given explicitly):

=========  ===========================  ==============  ==========================
format     extensions                   charges         coordinates
=========  ===========================  ==============  ==========================
PQR        .pqr                         yes (+ radii)   in file
PDB        .pdb .ent                    no              in file
GRO        .gro                         no              in file
MMCIF      .cif .mmcif                  no (formal)     in file (read through gemmi)
TPR        .tpr                         yes             in file, or ``coordinates``
PSF        .psf                         yes             ``coordinates`` required
PRMTOP     .prmtop .parm7 .top (AMBER)  yes             ``coordinates`` required
=========  ===========================  ==============  ==========================

Coordinate files for a topology: DCD, PDB, GRO, PQR, INPCRD (.inpcrd .rst7 .restrt), TRR,
XTC, NCDF (.nc .ncdf), TRJ (.mdcrd .trj .crdbox), CRD. Only the first frame is used; the
number of frames is kept in ``attrs["n_frames"]``.

Any other file-based topology format of MDAnalysis (its parser names: ``DATA`` for LAMMPS data
files, ``MOL2``, ``TXYZ``, ``DMS``, ``GSD``, ``CONFIG``...) is read too, from its extension or
named with ``fmt``, and passed to MDAnalysis as ``topology_format`` (and ``format`` when
MDAnalysis has a coordinate reader of that name). Such files count as having charges when
MDAnalysis gives them a ``charges`` attribute; positions are taken as Å (MDAnalysis' unit: a
LAMMPS data file must use ``units real`` or ``metal``). Missing names become atom types,
missing residue names ``""`` and missing residue numbers 1.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import warnings
from pathlib import Path

import numpy as np

from pipeline.structures.record import Structure
from pipeline.structures.validation import explain_reader_failure

log = logging.getLogger(__name__)

#: Prefix of sources naming a data file of the MDAnalysisTests package.
MDANALYSISTESTS_PREFIX = "mdanalysistests:"

#: Extension (lower case, compression suffix stripped) → canonical format.
EXTENSION_FORMATS = {
    "pqr": "PQR",
    "pdb": "PDB",
    "ent": "PDB",
    "gro": "GRO",
    "cif": "MMCIF",
    "mmcif": "MMCIF",
    "tpr": "TPR",
    "psf": "PSF",
    "prmtop": "PRMTOP",
    "parm7": "PRMTOP",
    "top": "PRMTOP",
    "dcd": "DCD",
    "inpcrd": "INPCRD",
    "rst7": "INPCRD",
    "restrt": "INPCRD",
    "trr": "TRR",
    "xtc": "XTC",
    "nc": "NCDF",
    "ncdf": "NCDF",
    "mdcrd": "TRJ",
    "trj": "TRJ",
    "crdbox": "TRJ",
    "crd": "CRD",
}

#: Formats that describe a whole structure (atoms and, except PSF/PRMTOP, coordinates).
STRUCTURE_FORMATS = ("PQR", "PDB", "GRO", "MMCIF", "TPR", "PSF", "PRMTOP")
#: Structure formats without coordinates: a coordinate file must come with them.
TOPOLOGY_ONLY_FORMATS = ("PSF", "PRMTOP")
#: Formats accepted for ``coordinates``.
COORDINATE_FORMATS = ("DCD", "PDB", "GRO", "PQR", "INPCRD", "TRR", "XTC", "NCDF", "TRJ", "CRD", "MMCIF", "TPR")
#: Binary formats: MDAnalysis cannot read them compressed.
BINARY_FORMATS = ("TPR", "DCD", "TRR", "XTC", "NCDF")
#: Compression suffixes handled for text formats.
COMPRESSION_SUFFIXES = (".gz", ".bz2")

#: MDAnalysis topology formats that are not files, or carry nothing but coordinates.
_NOT_FILE_FORMATS = ("MINIMAL", "PARMED", "RDKIT", "OPENMMTOPOLOGY", "OPENMMAPP")

#: Placeholder segment identifier MDAnalysis invents when a file has none.
_PLACEHOLDER_SEGID = "SYSTEM"


def mdanalysistests_names() -> list[str]:
    """Names of the MDAnalysisTests data files usable as ``mdanalysistests:NAME``, sorted."""
    from MDAnalysisTests import datafiles

    names = getattr(datafiles, "__all__", None) or [n for n in dir(datafiles) if n.isupper() or "_" in n]
    return sorted(n for n in names if isinstance(getattr(datafiles, n, None), str))


def resolve_source(source: str | os.PathLike) -> Path:
    """Turn a source into a path.

    Parameters
    ----------
    source : str or path-like
        A file path, or ``mdanalysistests:NAME`` where NAME is a constant of
        ``MDAnalysisTests.datafiles`` (``PQR``, ``TPR``, ``GRO``, ``PDB_full``...). A constant
        naming a folder may be followed by a file inside it: ``mdanalysistests:MMCIF/1YJP.cif``.

    Returns
    -------
    pathlib.Path
        The path (not checked for existence when ``source`` is a plain path).

    Raises
    ------
    ValueError
        For an unknown NAME, listing close or example names.
    """
    text = os.fspath(source)
    if not text.lower().startswith(MDANALYSISTESTS_PREFIX):
        return Path(text)
    name = text[len(MDANALYSISTESTS_PREFIX) :]
    constant, _, inside = name.partition("/")
    try:
        from MDAnalysisTests import datafiles
    except ImportError as exc:  # pragma: no cover - installed with the package
        raise ValueError(f"{text}: the MDAnalysisTests package is not installed (pip install MDAnalysisTests)") from exc
    value = getattr(datafiles, constant, None)
    if not constant or not isinstance(value, str):
        valid = mdanalysistests_names()
        close = difflib.get_close_matches(constant, valid, n=3)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        examples = ", ".join(["PQR", "PSF", "DCD", "TPR", "GRO", "PDB_full", "MMCIF/1YJP.cif"])
        raise ValueError(
            f"{text}: unknown MDAnalysisTests data file {constant!r}{hint}; "
            f"valid names include {examples} ({len(valid)} in all)"
        )
    path = Path(value)
    if inside:
        path = path / inside
    return path


def _strip_compression(path: Path) -> tuple[str, str]:
    name = path.name
    for suffix in COMPRESSION_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)], suffix
    return name, ""


def mdanalysis_format(path: str | os.PathLike, fmt: str | None = None) -> str | None:
    """Name of the MDAnalysis topology parser for ``path`` (from ``fmt`` or the extension), or None."""
    from MDAnalysis.topology.core import get_parser_for

    try:
        parser = get_parser_for(str(path), format=None if fmt is None else str(fmt).strip().upper())
    except (ValueError, TypeError):
        return None
    names = parser.format if isinstance(parser.format, (list, tuple)) else [parser.format]
    if not names or str(names[0]).upper() in _NOT_FILE_FORMATS:
        return None
    return str(fmt).strip().upper() if fmt is not None else str(names[0]).upper()


def detect_format(path: str | os.PathLike, fmt: str | None = None) -> str:
    """Canonical format of ``path`` from its extension, or ``fmt`` normalised.

    Parameters
    ----------
    path : path-like
        File name; ``.gz``/``.bz2`` suffixes are stripped before looking at the extension.
    fmt : str, optional
        Explicit format (any case, e.g. ``"pdb"``, ``"cif"``): overrides the extension.

    Returns
    -------
    str
        One of the values of :data:`EXTENSION_FORMATS`, else the name of an MDAnalysis
        topology format (e.g. ``"DATA"`` for a LAMMPS data file).

    Raises
    ------
    ValueError
        Unknown extension or format, listing the known ones.
    """
    path = Path(path)
    if fmt is not None:
        key = str(fmt).strip().lower().lstrip(".")
        canonical = EXTENSION_FORMATS.get(key) or (key.upper() if key.upper() in EXTENSION_FORMATS.values() else None)
        canonical = canonical or mdanalysis_format(path, key)
        if canonical is None:
            known = sorted(set(EXTENSION_FORMATS.values()))
            raise ValueError(
                f"{path}: unknown format {fmt!r}; expected one of {', '.join(known)} "
                "or an MDAnalysis topology format (e.g. DATA, MOL2, TXYZ)"
            )
        return canonical
    stem, _ = _strip_compression(path)
    extension = stem.rsplit(".", 1)[-1].lower() if "." in stem else ""
    if extension in EXTENSION_FORMATS:
        return EXTENSION_FORMATS[extension]
    canonical = mdanalysis_format(path) if extension else None
    if canonical is None:
        known = " ".join(f".{e}" for e in sorted(EXTENSION_FORMATS))
        raise ValueError(
            f"{path}: cannot tell the format from the extension {('.' + extension) if extension else '(none)'}; "
            f"pass --format (known extensions: {known}, and those of MDAnalysis' topology formats)"
        )
    return canonical


def decimal_float64(values) -> np.ndarray:
    """float32 values as float64 through their shortest decimal representation.

    MDAnalysis parses charges and radii as float32, so ``-0.3`` read from a file becomes
    -0.30000001192... and the net charge of an adk PQR comes out −3.9999969 instead of −4.
    The shortest decimal string that identifies a float32 is the file's value whenever the
    file wrote at most 7 significant digits (PQR, PSF, PRMTOP, TPR charges all do), so it is
    recovered exactly; other values move by less than the float32 rounding. Arrays that are
    not float32 values (e.g. PRMTOP charges divided by 18.2223 in float64) are kept as they are.
    Done on the distinct values only (force fields have few).
    """
    values = np.asarray(values)
    single = values.astype(np.float32)
    if values.dtype != np.float32 and not np.array_equal(single.astype(values.dtype), values, equal_nan=True):
        return values.astype(np.float64)  # not float32 values: keep them
    unique, inverse = np.unique(single, return_inverse=True)
    return unique.astype(str).astype(np.float64)[inverse.reshape(values.shape)]


def _normalise_element(symbol: str) -> str:
    symbol = str(symbol).strip()
    if not symbol or not symbol[0].isalpha() or symbol.upper() == "DUMMY":
        return ""
    return symbol[0].upper() + symbol[1:].lower()


def _elements(atoms) -> np.ndarray:
    """Element symbols from the file, guessed from atom names where missing."""
    from MDAnalysis.guesser.default_guesser import DefaultGuesser

    n_atoms = len(atoms)
    if hasattr(atoms, "elements"):
        elements = np.array([_normalise_element(e) for e in atoms.elements], dtype=object)
    else:
        elements = np.full(n_atoms, "", dtype=object)
    missing = elements == ""
    if missing.any():
        names = atoms.names if hasattr(atoms, "names") else atoms.types
        guessed = DefaultGuesser(None).guess_types(np.asarray(names)[missing])
        elements[missing] = [_normalise_element(e) for e in guessed]
        log.debug("guessed %d element(s) from atom names", int(missing.sum()))
    return elements


def _labels_or(atoms, attributes: tuple[str, ...], n_atoms: int) -> np.ndarray:
    """The first of ``attributes`` the atoms have, as str objects; "" for every atom when none."""
    for attribute in attributes:
        if hasattr(atoms, attribute):
            return np.asarray(getattr(atoms, attribute)).astype(str).astype(object)
    return np.full(n_atoms, "", dtype=object)


def _chain_ids(atoms) -> np.ndarray:
    """Chain identifiers, else segment identifiers; MDAnalysis' placeholder ``SYSTEM`` becomes ''."""
    if hasattr(atoms, "chainIDs") and any(str(c).strip() for c in atoms.chainIDs):
        values = atoms.chainIDs
    else:
        values = atoms.segids
    chains = np.array([str(c).strip() for c in values], dtype=object)
    chains[chains == _PLACEHOLDER_SEGID] = ""
    return chains


def _has_reader(fmt: str) -> bool:
    from MDAnalysis.coordinates.core import get_reader_for

    try:
        get_reader_for("x", format=fmt)
    except (ValueError, TypeError):
        return False
    return True


def _open_universe(topology: Path, topology_format: str, coordinates: Path | None, coordinate_format: str | None):
    import MDAnalysis as mda

    kwargs = {"topology_format": topology_format}
    args = [str(topology)]
    if coordinates is not None:
        args.append(str(coordinates))
        kwargs["format"] = coordinate_format
    elif topology_format not in TOPOLOGY_ONLY_FORMATS and _has_reader(topology_format):
        kwargs["format"] = topology_format
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        universe = mda.Universe(*args, **kwargs)
    for item in caught:
        log.debug("MDAnalysis: %s", str(item.message).replace("\n", " "))
    return universe


#: MDAnalysis' messages for topology/coordinate atom-count mismatches: (topology, coordinates) counts.
_ATOM_COUNT_MISMATCHES = (
    (re.compile(r"Topology number of atoms (\d+).*Number of atoms (\d+)", re.S), (1, 2)),
    (
        re.compile(
            r"number of atoms \((\d+)\) in trajectory frame \d+ differs from the number of atoms \((\d+)\)", re.S
        ),
        (2, 1),
    ),
)


def _atom_count_mismatch(message: str) -> tuple[str, str] | None:
    for pattern, (topology_group, coordinate_group) in _ATOM_COUNT_MISMATCHES:
        match = pattern.search(message)
        if match:
            return match.group(topology_group), match.group(coordinate_group)
    return None


def read_structure(
    path: str | os.PathLike,
    fmt: str,
    *,
    coordinates: str | os.PathLike | None = None,
    coordinates_fmt: str | None = None,
) -> Structure:
    """Read the first frame of a structure file (and its coordinate file) with MDAnalysis.

    Parameters
    ----------
    path : path-like
        Existing structure or topology file.
    fmt : str
        Canonical format of ``path`` (see :func:`detect_format`), one of :data:`STRUCTURE_FORMATS`.
    coordinates : path-like, optional
        Coordinate file for a topology (required for PSF and PRMTOP, optional for TPR).
    coordinates_fmt : str, optional
        Canonical format of ``coordinates`` (default: from its extension).

    Returns
    -------
    Structure
        ``positions`` (n_atoms, 3) float64 Å (the reader's float32 values), ``charges``
        (n_atoms,) e, NaN when the file has no partial charges, ``radii`` Å (NaN unless the
        file has them), both through :func:`decimal_float64`; labels; ``attrs`` holds
        ``format``, ``charge_source`` (``"file"`` or ``""``),
        ``box`` ([a, b, c, α, β, γ] in Å and degrees, or [] when the file has none),
        ``n_frames``.

    Raises
    ------
    ValueError
        Format not a structure format, a topology without coordinates, a compressed binary
        file, topology/coordinate atom-count mismatch, or a reader failure (the reader's
        message, on one line, naming the file).
    """
    path = Path(path)
    if fmt not in STRUCTURE_FORMATS and (fmt in EXTENSION_FORMATS.values() or mdanalysis_format(path, fmt) is None):
        raise ValueError(
            f"{path}: format {fmt} holds coordinates only; expected one of {', '.join(STRUCTURE_FORMATS)} "
            "or an MDAnalysis topology format"
        )
    coord_path = None if coordinates is None else Path(coordinates)
    if coord_path is None and fmt in TOPOLOGY_ONLY_FORMATS:
        raise ValueError(
            f"{path}: a {fmt} topology has no coordinates; pass --coordinates FILE "
            f"({', '.join(c for c in COORDINATE_FORMATS if c not in ('TPR',))})"
        )
    if coord_path is not None:
        coordinates_fmt = coordinates_fmt or detect_format(coord_path)
        if coordinates_fmt not in COORDINATE_FORMATS:
            expected = ", ".join(COORDINATE_FORMATS)
            raise ValueError(
                f"{coord_path}: format {coordinates_fmt} is not a coordinate format; expected one of {expected}"
            )
    for file, file_fmt in ((path, fmt), (coord_path, coordinates_fmt)):
        if file is not None and file_fmt in BINARY_FORMATS and _strip_compression(file)[1]:
            raise ValueError(f"{file}: compressed {file_fmt} files cannot be read; decompress it first")
    try:
        universe = _open_universe(path, fmt, coord_path, coordinates_fmt)
    except Exception as exc:  # any reader failure becomes one line naming the file (and line)
        counts = _atom_count_mismatch(str(exc))
        if counts and coord_path is not None:
            raise ValueError(
                f"{coord_path}: coordinate file has {counts[1]} atoms but topology {path.name} has {counts[0]}"
            ) from exc
        raise explain_reader_failure(path, fmt, exc, coord_path, coordinates_fmt) from exc
    atoms = universe.atoms
    n_atoms = len(atoms)
    if n_atoms == 0:
        raise ValueError(f"{path}: no atoms found")
    try:
        trajectory = universe.trajectory
    except AttributeError as exc:
        raise ValueError(f"{path}: no coordinates; pass --coordinates FILE") from exc
    has_charges = hasattr(atoms, "charges")
    charges = decimal_float64(atoms.charges) if has_charges else np.full(n_atoms, np.nan)
    radii = decimal_float64(atoms.radii) if hasattr(atoms, "radii") else np.full(n_atoms, np.nan)
    dimensions = universe.dimensions
    box = [] if dimensions is None or not np.all(np.asarray(dimensions[:3]) > 0) else [float(v) for v in dimensions]
    structure = Structure(
        positions=np.asarray(atoms.positions, dtype=np.float64),
        charges=charges,
        radii=radii,
        elements=_elements(atoms),
        atom_names=_labels_or(atoms, ("names", "types"), n_atoms),
        residue_names=_labels_or(atoms, ("resnames",), n_atoms),
        residue_ids=np.asarray(atoms.resids, dtype=np.int64) if hasattr(atoms, "resids") else np.ones(n_atoms, np.int64),
        chain_ids=_chain_ids(atoms),
        insertion_codes=(
            np.array([str(c).strip() for c in atoms.icodes], dtype=object) if hasattr(atoms, "icodes") else None
        ),
        attrs={
            "format": fmt if coord_path is None else f"{fmt}+{coordinates_fmt}",
            "charge_source": "file" if has_charges else "",
            "box": box,
            "n_frames": int(trajectory.n_frames),
        },
    )
    log.debug("read %s (%s): %d atoms, charges %s", path.name, fmt, n_atoms, "yes" if has_charges else "no")
    return structure
