"""Settings of the ``evaluate`` stage, validated once, and the memory its arrays will take.

Plain arithmetic only (no NumPy): the command line builds the request, and a fixed-size map
that cannot fit (``--grid 5000``) is refused before the numerical libraries are loaded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from pipeline.resources import check_memory
from pipeline.units import POTENTIAL_UNIT_FACTORS

#: Bytes per map point of the potential: long-range map, short-range map, their sum, the unit
#: conversion and the copy written to netCDF (float64 each; 49 B measured with 2 threads, 161³).
MAP_BYTES_PER_POINT = 40
#: Bytes per map point of the field: the (…, 3) field and its unit conversion (float64).
FIELD_MAP_BYTES_PER_POINT = 48
#: Bytes per scattered point of the potential: the points (24), long, mid, short, coincident,
#: total and converted values and the cell-list order (8 each; 84 B measured).
POINT_BYTES = 88
#: Bytes per scattered point of the field: long, short, total and converted (n, 3) arrays and
#: the cell-list temporaries (221 B measured for potential and field together).
FIELD_POINT_BYTES = 136
#: Suffixes of OpenDX files (``.gz``: gzip-compressed).
DX_SUFFIXES = (".dx", ".dx.gz")


def map_bytes(shape, *, field: bool) -> int:
    """Memory of a map of ``shape`` (3 ints) point values, bytes (dominant arrays)."""
    n = math.prod(int(v) for v in shape)
    return n * (MAP_BYTES_PER_POINT + (FIELD_MAP_BYTES_PER_POINT if field else 0))


def points_bytes(n_points: int, *, field: bool) -> int:
    """Memory of evaluating ``n_points`` scattered points, bytes (dominant arrays)."""
    return int(n_points) * (POINT_BYTES + (FIELD_POINT_BYTES if field else 0))


@dataclass(frozen=True)
class EvaluationRequest:
    """What to evaluate from a potential file and where to write it.

    Exactly one of ``points``, ``grid`` and ``spacing`` is given.

    Attributes
    ----------
    potential_path : str
        Potential file written by the ``potential`` stage.
    output : str
        netCDF file to write.
    points : str, optional
        Points file (.npy or .csv, N x 3, Å).
    grid : int, optional
        Points per axis of a regular map spanning the potential's box (≥ 2).
    spacing : float, optional
        Spacing of a regular map over the box, Å (> 0).
    padding : float, optional
        A map spans the atoms' bounding box widened by this many Å (≥ 0) instead of the whole
        box; in free space it must stay inside the potential's Chebyshev box.
    dx : str, optional
        OpenDX file of the potential map (maps only); gzip-compressed when it ends in ``.gz``.
    units : str
        Output unit of the potential, one of :data:`pipeline.units.POTENTIAL_UNIT_FACTORS`.
    field : bool
        Also evaluate the electric field −∇Φ.
    long_range_only : bool
        Evaluate the long-range part only.
    device : {"cpu", "cuda", "auto"}
    max_memory_bytes : int, optional
        Refuse an evaluation estimated to need more memory (default: the memory available).
    """

    potential_path: str
    output: str
    points: str | None = None
    grid: int | None = None
    spacing: float | None = None
    padding: float | None = None
    dx: str | None = None
    units: str = "e/A"
    field: bool = False
    long_range_only: bool = False
    device: str = "cpu"
    max_memory_bytes: int | None = None

    def __post_init__(self) -> None:
        given = [name for name in ("points", "grid", "spacing") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of --points, --grid, --spacing; got {', '.join(given) or 'none'}")
        if self.grid is not None and not (isinstance(self.grid, int) and self.grid >= 2):
            raise ValueError(f"--grid must be an integer ≥ 2, got {self.grid!r}")
        if self.spacing is not None and not (math.isfinite(self.spacing) and self.spacing > 0):
            raise ValueError(f"--spacing must be > 0 Å, got {self.spacing!r}")
        if self.padding is not None:
            if self.points is not None:
                raise ValueError("--padding needs --grid or --spacing (a map), not --points")
            if not (math.isfinite(self.padding) and self.padding >= 0):
                raise ValueError(f"--padding must be ≥ 0 Å, got {self.padding!r}")
        if self.dx is not None:
            if self.points is not None:
                raise ValueError("--dx needs --grid or --spacing (a map), not --points")
            if not str(self.dx).endswith(DX_SUFFIXES):
                raise ValueError(f"--dx: an OpenDX file name ends in .dx or .dx.gz, got {self.dx!r}")
        for option, target in (("-o/--output", self.output), ("--dx", self.dx)):
            if target is not None and Path(target).is_dir():
                raise ValueError(f"{option} {target}: is a folder; give a file name")
        if self.units not in POTENTIAL_UNIT_FACTORS:
            raise ValueError(f"--units must be one of {', '.join(POTENTIAL_UNIT_FACTORS)}, got {self.units!r}")
        if self.grid is not None:
            self.check_map_memory((self.grid,) * 3)  # the same for any region

    def check_map_memory(self, shape, extra_bytes: int = 0, *, xp=None) -> None:
        """Refuse a map of ``shape`` whose estimate (plus ``extra_bytes``) exceeds the limit."""
        nx, ny, nz = (int(v) for v in shape)
        how = f"--grid {self.grid}" if self.grid is not None else f"--spacing {self.spacing:g}"
        check_memory(map_bytes(shape, field=self.field) + extra_bytes, xp=xp, limit_bytes=self.max_memory_bytes,
                     what=f"evaluate {how}: a {nx}x{ny}x{nz} map{' with its field' if self.field else ''}",
                     setting=f"use a smaller --grid or a larger --spacing{', leave out --field' if self.field else ''}, "
                             "or set --max-memory")

    def check_points_memory(self, n_points: int, extra_bytes: int = 0, *, xp=None) -> None:
        """Refuse ``n_points`` points whose estimate (plus ``extra_bytes``) exceeds the limit."""
        check_memory(points_bytes(n_points, field=self.field) + extra_bytes, xp=xp, limit_bytes=self.max_memory_bytes,
                     what=f"evaluate --points {self.points}: {n_points} points{' with the field' if self.field else ''}",
                     setting="split the points file, or set --max-memory")
