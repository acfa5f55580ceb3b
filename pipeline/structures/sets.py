"""Sets of structures: expand ``structure_sets`` entries of a study config into one structure per file.

``structure_sets: {NAME: {glob: "data/*.pdb", forcefield: AMBER, format: ..., prefix: ...}}``
becomes one ``structures`` entry per file matched by ``glob`` (relative to the study's working
directory, sorted), with the id taken from the file name without its extensions
(``data/1abc.pdb.gz`` → ``1abc``; characters other than letters, digits, ``_`` and ``-`` become
``_``), preceded by ``prefix``. The other keys are copied into every entry. Two files with one
id, or an id that is already a structure of the study, and a glob that matches nothing are
errors naming the key and the files.
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path

#: Keys of a set entry copied into each structure it expands to.
COPIED_KEYS = ("forcefield", "format", "ph", "ffout")


def structure_id_of(path: str | os.PathLike, prefix: str = "") -> str:
    """Structure id of a file: ``prefix`` + the name without extensions, other characters as ``_``."""
    stem = Path(path).name.split(".")[0] or "structure"
    return prefix + re.sub(r"[^A-Za-z0-9_-]", "_", stem)


def expand_structure_sets(sets: dict, structures: dict, *, root: str | os.PathLike = ".") -> dict[str, dict]:
    """Structure entries of every set, keyed by id (the ``structures`` ids are checked against them).

    Parameters
    ----------
    sets : dict
        ``structure_sets`` of the config: name → {``glob``, optional ``prefix`` and :data:`COPIED_KEYS`}.
    structures : dict
        The config's explicit ``structures`` (their ids may not be reused).
    root : path-like
        Folder the globs are relative to.

    Returns
    -------
    dict
        id → {``source``: the file (as matched, relative to ``root``), ``structure_set``: NAME, copied keys}.

    Raises
    ------
    ValueError
        ``structure_sets.NAME.glob`` matches no file; two files (or a file and a ``structures``
        entry) map to one id.
    """
    members: dict[str, dict] = {}
    for name, spec in sets.items():
        pattern = spec["glob"]
        files = sorted(glob.glob(pattern, root_dir=os.fspath(root)))
        files = [f for f in files if (Path(root) / f).is_file()]
        if not files:
            raise ValueError(f"config: structure_sets.{name}.glob {pattern!r} matches no file "
                             f"(relative to {Path(root).resolve()})")
        for file in files:
            sid = structure_id_of(file, spec.get("prefix", ""))
            if sid in structures:
                raise ValueError(f"config: structure_sets.{name}: {file} maps to id {sid!r}, which is already a "
                                 f"structure of the study; set structure_sets.{name}.prefix or rename the file")
            if sid in members:
                other = members[sid]
                raise ValueError(f"config: structure_sets.{name}: {file} and {other['source']} (structure_sets."
                                 f"{other['structure_set']}) both map to id {sid!r}; rename one or set a prefix")
            entry = {"source": file, "structure_set": name}
            entry.update({key: spec[key] for key in COPIED_KEYS if spec.get(key) is not None})
            members[sid] = entry
    return members


def failed_members(members: dict[str, dict], *, record_path, log_path, root: str | os.PathLike = ".") -> dict[str, str]:
    """Set members whose ingest ran and failed: no record, and an ingest log newer than the source file.

    ``record_path(id)`` and ``log_path(id)`` give the record and the ingest log of a structure.
    Returns id → the log's last non-empty line (the one-line error of ``pipeline ingest``). A
    member whose source changed after the failure is retried (not listed).
    """
    failed = {}
    for sid, spec in members.items():
        record, log = Path(root) / record_path(sid), Path(root) / log_path(sid)
        source = Path(root) / spec["source"]
        if record.exists() or not log.exists():
            continue
        if source.exists() and source.stat().st_mtime > log.stat().st_mtime:
            continue
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        failed[sid] = lines[-1].strip() if lines else "ingest failed (empty log)"
    return failed
