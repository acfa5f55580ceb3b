"""Axes of a regular map over the Chebyshev box of a potential (Å)."""

from __future__ import annotations

import math

import numpy as np


def map_shape(box_lo, box_hi, *, n: int | None = None, spacing: float | None = None) -> tuple[int, int, int]:
    """Points per axis of the map of :func:`map_axes` (computed without building the axes)."""
    if n is not None:
        return (int(n),) * 3
    return tuple(int(math.floor((float(h) - float(lo)) / spacing)) + 1 for lo, h in zip(box_lo, box_hi))


def map_axes(box_lo, box_hi, *, n: int | None = None, spacing: float | None = None) -> list[np.ndarray]:
    """Three increasing 1-D axes (Å) of a regular map inside the box [``box_lo``, ``box_hi``].

    Parameters
    ----------
    box_lo, box_hi : (3,) Å
    n : int, optional
        Points per axis, spanning the box edge to edge.
    spacing : float, optional
        Spacing in Å, starting at ``box_lo`` (the last point at or below ``box_hi``).
    """
    lo, hi = np.asarray(box_lo, dtype=float), np.asarray(box_hi, dtype=float)
    if n is not None:
        return [np.linspace(lo[k], hi[k], int(n)) for k in range(3)]
    shape = map_shape(lo, hi, spacing=spacing)
    return [lo[k] + spacing * np.arange(shape[k]) for k in range(3)]
