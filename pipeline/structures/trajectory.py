"""Read the frames of a trajectory with MDAnalysis: positions (Å), box and time (ps) per frame.

A trajectory is read through an MDAnalysis ``Universe`` made of a topology (the structure
record's ``source`` by default) and a coordinate file in any format MDAnalysis reads (DCD, XTC,
TRR, AMBER NetCDF, ...; see :data:`~pipeline.structures.readers.COORDINATE_FORMATS`). Sources
may be paths or ``mdanalysistests:NAME``. Frames are chosen as ``START:STOP:STEP`` (Python
slice semantics, STOP exclusive, every number ≥ 0 and STEP > 0) and may be split into
contiguous blocks of that selection, one per job. Only one frame is held in memory at a time.

Every failure (atom counts that differ, a frame selection outside the trajectory, a file that
ends early) is a one-line ``ValueError`` naming the file and, where it applies, the frame.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Self

import numpy as np

from pipeline.structures.readers import (
    COORDINATE_FORMATS,
    STRUCTURE_FORMATS,
    detect_format,
    resolve_source,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameSelection:
    """Frames ``start:stop:step`` of a trajectory (``stop`` None: to the end), as Python slices.

    Attributes
    ----------
    start : int
        First frame index (≥ 0).
    stop : int or None
        Frame index after the last one (exclusive); None for the end of the trajectory.
    step : int
        Stride (> 0).
    """

    start: int = 0
    stop: int | None = None
    step: int = 1

    def __post_init__(self) -> None:
        if self.step is None or int(self.step) <= 0:
            raise ValueError(f"frames: step must be > 0, got {self.step!r}")
        if int(self.start) < 0:
            raise ValueError(f"frames: start must be ≥ 0, got {self.start!r}")
        if self.stop is not None and int(self.stop) <= int(self.start):
            raise ValueError(f"frames: stop must be > start ({self.start}), got {self.stop!r}")

    @classmethod
    def parse(cls, text: str) -> FrameSelection:
        """Selection from ``"START:STOP:STEP"`` (each part may be empty: ``"::10"``, ``"5:"``)."""
        parts = str(text).split(":")
        if len(parts) > 3:
            raise ValueError(f"frames: expected START:STOP:STEP, got {text!r}")
        try:
            values = [int(p) if p.strip() else None for p in parts] + [None] * (3 - len(parts))
        except ValueError:
            raise ValueError(f"frames: expected integers in START:STOP:STEP, got {text!r}") from None
        start, stop, step = values
        return cls(0 if start is None else start, stop, 1 if step is None else step)

    def __str__(self) -> str:
        return f"{self.start}:{'' if self.stop is None else self.stop}:{self.step}"

    def indices(self, n_frames: int, *, source: str = "trajectory") -> np.ndarray:
        """Frame indices of the selection in a trajectory of ``n_frames`` frames.

        Raises
        ------
        ValueError
            When ``start`` or ``stop`` lies beyond the trajectory (naming ``source`` and its frame count).
        """
        if self.start >= n_frames:
            raise ValueError(f"{source}: frames start {self.start} is out of range: the trajectory has "
                             f"{n_frames} frames (0 … {n_frames - 1})")
        if self.stop is not None and self.stop > n_frames:
            raise ValueError(f"{source}: frames stop {self.stop} is out of range: the trajectory has "
                             f"{n_frames} frames (stop ≤ {n_frames})")
        return np.arange(self.start, n_frames if self.stop is None else self.stop, self.step, dtype=np.int64)


def block_indices(indices: np.ndarray, block: int, blocks: int) -> np.ndarray:
    """Block ``block`` of ``blocks`` contiguous, near-equal parts of ``indices`` (the first ones one longer)."""
    if blocks < 1:
        raise ValueError(f"--blocks must be ≥ 1, got {blocks}")
    if not 0 <= block < blocks:
        raise ValueError(f"--block must be in 0 … {blocks - 1}, got {block}")
    if blocks > len(indices):
        raise ValueError(f"--blocks {blocks} is more than the {len(indices)} selected frames")
    return np.array_split(indices, blocks)[block]


@dataclass(frozen=True)
class Frame:
    """One frame: positions (n_atoms, 3) float64 Å, box [a, b, c, α, β, γ] (Å, degrees; empty without one), time ps."""

    index: int
    positions: np.ndarray
    box: list
    time_ps: float


class Trajectory:
    """A topology and a trajectory opened with MDAnalysis (use as a context manager).

    Parameters
    ----------
    topology, trajectory : str or path-like
        Paths or ``mdanalysistests:NAME``.
    topology_format, trajectory_format : str, optional
        Canonical formats (default: from the extensions).

    Attributes
    ----------
    n_frames, n_atoms : int
    trajectory_path : pathlib.Path
    """

    def __init__(self, topology, trajectory, *, topology_format: str | None = None,
                 trajectory_format: str | None = None) -> None:
        import MDAnalysis as mda

        self.topology_source, self.trajectory_source = os.fspath(topology), os.fspath(trajectory)
        self.topology_path, self.trajectory_path = resolve_source(topology), resolve_source(trajectory)
        for path in (self.topology_path, self.trajectory_path):
            if not path.is_file():
                raise FileNotFoundError(f"{path}: no such file")
        top_fmt = detect_format(self.topology_path, topology_format)
        traj_fmt = detect_format(self.trajectory_path, trajectory_format)
        if top_fmt not in STRUCTURE_FORMATS:
            raise ValueError(f"{self.topology_path}: format {top_fmt} is not a topology; expected one of "
                             f"{', '.join(STRUCTURE_FORMATS)}")
        if traj_fmt not in COORDINATE_FORMATS:
            raise ValueError(f"{self.trajectory_path}: format {traj_fmt} is not a coordinate format; expected one of "
                             f"{', '.join(COORDINATE_FORMATS)}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.universe = mda.Universe(str(self.topology_path), str(self.trajectory_path),
                                             topology_format=top_fmt, format=traj_fmt)
                self.n_frames = int(self.universe.trajectory.n_frames)
        except Exception as exc:  # any reader failure becomes one line naming both files
            message = " ".join(str(exc).split())
            raise ValueError(f"{self.trajectory_path}: cannot be read as {traj_fmt} with topology "
                             f"{self.topology_path.name}: {message}") from exc
        self.n_atoms = len(self.universe.atoms)
        self.format = traj_fmt
        self._check_complete()

    def _check_complete(self) -> None:
        """Raise when the file ends inside a frame (readers count only whole frames, or fail late)."""
        reader = self.universe.trajectory
        dcd = getattr(reader, "_file", None)
        sizes = [getattr(dcd, name, None) for name in ("_header_size", "_firstframesize", "_framesize")]
        if self.format == "DCD" and all(isinstance(v, int) for v in sizes) and self.n_frames > 0:
            expected = sizes[0] + sizes[1] + (self.n_frames - 1) * sizes[2]
            actual = self.trajectory_path.stat().st_size
            if actual != expected:
                raise ValueError(f"{self.trajectory_path}: frame {self.n_frames}: the file ends inside this frame "
                                 f"({actual - expected} of {sizes[2]} bytes); the file may be truncated or damaged")
        if self.n_frames > 0:
            next(self.frames(np.array([self.n_frames - 1])))  # a truncated last frame fails here, naming it

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the trajectory file."""
        self.universe.trajectory.close()

    def frames(self, indices: np.ndarray) -> Iterator[Frame]:
        """Yield the frames ``indices`` (increasing, evenly spaced) one at a time.

        Raises
        ------
        ValueError
            When a frame cannot be read (a truncated or damaged file), naming the file and frame.
        """
        if len(indices) == 0:
            return
        step = int(indices[1] - indices[0]) if len(indices) > 1 else 1
        if len(indices) > 1 and not np.array_equal(indices, np.arange(indices[0], indices[-1] + 1, step)):
            raise ValueError(f"{self.trajectory_path}: frame indices must be evenly spaced, got {indices.tolist()}")
        reader = self.universe.trajectory
        expected = iter(indices.tolist())
        index = int(indices[0])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for ts in reader[int(indices[0]):int(indices[-1]) + 1:step]:
                    index = next(expected)
                    if ts.frame != index:
                        raise ValueError(f"reader returned frame {ts.frame}")
                    dims = ts.dimensions
                    box = [] if dims is None or not np.all(np.asarray(dims[:3]) > 0) else [float(v) for v in dims]
                    positions = np.asarray(self.universe.atoms.positions, dtype=np.float64)
                    if not np.all(np.isfinite(positions)):
                        raise ValueError("non-finite coordinates")
                    yield Frame(index, positions, box, float(ts.time))
        except (ValueError, OSError, EOFError, RuntimeError, IndexError) as exc:
            message = " ".join(str(exc).split()) or type(exc).__name__
            raise ValueError(f"{self.trajectory_path}: frame {index}: cannot be read ({message}); "
                             "the file may be truncated or damaged") from exc
        remaining = list(expected)
        if remaining:
            raise ValueError(f"{self.trajectory_path}: frame {remaining[0]}: cannot be read (the file ended early); "
                             "the file may be truncated or damaged")


def count_frames(topology, trajectory, *, trajectory_format: str | None = None) -> int:
    """Number of frames of ``trajectory`` (read with ``topology``)."""
    with Trajectory(topology, trajectory, trajectory_format=trajectory_format) as traj:
        return traj.n_frames


def topology_of(structure_attrs: dict, path: str | os.PathLike) -> str:
    """The topology source of a structure record (its ``source`` attribute); ``ValueError`` naming ``path`` if absent."""
    source = structure_attrs.get("source", "")
    if not source or source == "lattice":
        raise ValueError(f"{path}: the structure record names no topology source; pass --topology FILE")
    return str(source)


__all__ = ["Frame", "FrameSelection", "Trajectory", "block_indices", "count_frames", "topology_of"]
