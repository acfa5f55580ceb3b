"""OpenDX maps as APBS writes them, readable by VMD, PyMOL, ChimeraX, APBS and NAMD.

Layout (one space between tokens, three values per line, z fastest, then y, then x)::

    # comments
    object 1 class gridpositions counts nx ny nz
    origin x0 y0 z0
    delta hx 0 0
    delta 0 hy 0
    delta 0 0 hz
    object 2 class gridconnections counts nx ny nz
    object 3 class array type double rank 0 items N data follows
    v v v
    ...
    attribute "dep" string "positions"
    object "regular positions regular connections" class field
    component "positions" value 1
    component "connections" value 2
    component "data" value 3

``type double`` is unquoted (APBS's and NAMD's readers reject ``type "double"``). Values are
written as the shortest decimal that reads back to the same float64, so the map equals the
netCDF one. A name ending in ``.gz`` is written gzip-compressed. The file appears complete or
not at all (temporary file, then rename).
"""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline.storage import atomic_path

log = logging.getLogger(__name__)

#: Values formatted per chunk (a multiple of 3, so every chunk ends with a full line).
CHUNK_VALUES = 3 * 2**18
#: VMD reads comment lines of at most this many characters.
MAX_COMMENT = 80


def _header(shape, origin, delta, comments) -> str:
    nx, ny, nz = shape
    lines = [f"# {c}"[:MAX_COMMENT] for c in comments]
    lines += [
        f"object 1 class gridpositions counts {nx} {ny} {nz}",
        "origin {!r} {!r} {!r}".format(*(float(v) for v in origin)),
        f"delta {float(delta[0])!r} 0 0",
        f"delta 0 {float(delta[1])!r} 0",
        f"delta 0 0 {float(delta[2])!r}",
        f"object 2 class gridconnections counts {nx} {ny} {nz}",
        f"object 3 class array type double rank 0 items {nx * ny * nz} data follows",
    ]
    return "\n".join(lines) + "\n"


FOOTER = (
    'attribute "dep" string "positions"\n'
    'object "regular positions regular connections" class field\n'
    'component "positions" value 1\n'
    'component "connections" value 2\n'
    'component "data" value 3\n'
)


def write_dx(path: str, values, origin, delta, *, comments=()) -> Path:
    """Write a scalar map as OpenDX (gzip when ``path`` ends in ``.gz``), atomically.

    Parameters
    ----------
    path : str
    values : (nx, ny, nz) float array (host)
        Map values, index (i, j, k) at ``origin + (i hx, j hy, k hz)``.
    origin : 3 floats, Å
    delta : 3 floats, Å
        Grid spacing per axis.
    comments : iterable of str
        Comment lines of the header (each cut to 80 characters for VMD).

    Returns
    -------
    pathlib.Path
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 3:
        raise ValueError(f"{path}: an OpenDX map needs a 3-D array, got shape {values.shape}")
    flat = values.reshape(-1)
    target = Path(path)
    with atomic_path(target) as tmp:
        opener = gzip.open if target.name.endswith(".gz") else open
        with opener(tmp, "wt", encoding="ascii", newline="\n") as stream:
            stream.write(_header(values.shape, origin, delta, comments))
            starts = range(0, flat.size, CHUNK_VALUES)
            for start in tqdm(starts, desc=f"writing {target.name}", unit="chunk", disable=None, leave=False):
                text = list(map(repr, flat[start : start + CHUNK_VALUES].tolist()))
                stream.write("\n".join(" ".join(text[i : i + 3]) for i in range(0, len(text), 3)))
                stream.write("\n")
            stream.write(FOOTER)
    log.info("wrote %s: OpenDX map %s", target, "x".join(map(str, values.shape)))
    return target
