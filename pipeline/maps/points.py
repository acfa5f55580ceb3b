"""Points files of the ``evaluate`` stage: N x 3 coordinates in Å, as .npy or .csv."""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Suffixes of the accepted points files.
POINTS_SUFFIXES = (".npy", ".csv")


def _bad_csv_line(path: Path) -> str:
    """'line K: ...' for the first line of ``path`` that is not three comma-separated numbers."""
    with open(path, encoding="utf-8", errors="replace") as stream:
        for number, line in enumerate(stream, start=1):
            fields = [f.strip() for f in line.split("#", 1)[0].split(",")]
            if fields == [""]:
                continue
            try:
                if len(fields) == 3:
                    list(map(float, fields))
                    continue
            except ValueError:
                pass
            return f"line {number}: expected 3 comma-separated numbers x,y,z in Å, got {line.strip()[:80]!r}"
    return "unreadable"


def _csv_points(path: Path) -> np.ndarray:
    """Rows of a comma-separated file ('#' starts a comment); a bad line is named with its number."""
    try:
        return np.loadtxt(path, delimiter=",", comments="#", ndmin=2, dtype=np.float64)
    except ValueError:
        raise ValueError(f"{path}, {_bad_csv_line(path)} (start a header line with #)") from None


def read_points(path: str) -> np.ndarray:
    """Points (N, 3) float64 in Å from a .npy file or a .csv file (x,y,z per line, '#' comments).

    Raises
    ------
    FileNotFoundError
        Naming the file.
    ValueError
        Naming the file and the line (.csv) or shape (.npy) for anything but N x 3 finite numbers.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{path}: no such points file")
    if p.suffix == ".npy":
        try:
            pts = np.load(p, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise ValueError(f"{path}: not a readable .npy array ({exc})") from None
        if pts.dtype.kind not in "iuf":
            raise ValueError(f"{path}: expected numbers (x, y, z in Å), got an array of dtype {pts.dtype}")
        pts = np.asarray(pts, dtype=np.float64)
    elif p.suffix == ".csv":
        pts = _csv_points(p)
    else:
        raise ValueError(f"{path}: points file must end in {' or '.join(POINTS_SUFFIXES)}, got {p.suffix!r}")
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"{path}: expected N x 3 coordinates in Å, got shape {pts.shape}")
    if pts.shape[0] == 0:
        raise ValueError(f"{path}: no points")
    bad = ~np.isfinite(pts).all(axis=1)
    if bad.any():
        raise ValueError(f"{path}: point index {int(np.argmax(bad))} (0-based) is not finite: {pts[bad][0].tolist()}")
    return pts
