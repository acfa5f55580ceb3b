"""The ``evaluate`` stage: a stored potential (and its field) at points or on a regular map, to files.

:func:`evaluate` reads the potential file, checks the memory the evaluation will take
(:mod:`.request`), evaluates through the potential's public methods (``potential``, ``field``,
``grid``, and their long-range parts), converts units, and writes netCDF
(:func:`pipeline.storage.write_netcdf`) and, for maps, optionally OpenDX (:func:`.dx.write_dx`).
A map's field is computed in slabs of x planes, with a progress bar on a terminal.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline.backend import to_host
from pipeline.electrostatics.short_range_grid import BUFFER_ENTRIES
from pipeline.electrostatics.potential_file import load_potential
from pipeline.maps.datasets import map_dataset, points_dataset
from pipeline.maps.dx import write_dx
from pipeline.maps.grid import map_axes, map_shape
from pipeline.maps.points import read_points
from pipeline.maps.request import EvaluationRequest
from pipeline.storage import provenance_attrs, write_netcdf
from pipeline.units import convert_potential

log = logging.getLogger(__name__)

#: Map points per slab of the field (bounds the slab's points and field temporaries).
FIELD_SLAB_POINTS = 2**20


def evaluate_points(potential, points, *, field: bool = False, long_range_only: bool = False):
    """Potential (n,) e/Å and, with ``field``, field (n, 3) e/Å² (else None) at ``points`` (n, 3) Å."""
    values = potential.long_range(points) if long_range_only else potential.potential(points)
    if not field:
        return values, None
    return values, potential.long_range_field(points) if long_range_only else potential.field(points)


def evaluate_map(potential, axes, *, field: bool = False, long_range_only: bool = False):
    """Potential (nx, ny, nz) e/Å and optionally field (nx, ny, nz, 3) e/Å² on the grid ``axes`` (Å).

    Host arrays. The potential is one call of ``potential.grid``; the field is evaluated at
    the points of slabs of x planes (at most :data:`FIELD_SLAB_POINTS` each).
    """
    xp = potential.xp
    ax = [xp.asarray(a, dtype=xp.float64) for a in axes]
    nx, ny, nz = (int(a.shape[0]) for a in ax)
    rows = max(1, FIELD_SLAB_POINTS // (ny * nz))
    slabs = range(0, nx, rows) if field else range(0)
    with tqdm(total=1 + len(slabs), desc="map", unit="step", disable=None, leave=False) as bar:
        values = to_host(potential.grid(*ax, long_only=long_range_only))
        bar.update()
        if not field:
            return values, None
        out = np.empty((nx, ny, nz, 3))
        plane_y, plane_z = (g.reshape(-1) for g in xp.meshgrid(ax[1], ax[2], indexing="ij"))
        fn = potential.long_range_field if long_range_only else potential.field
        for i0 in slabs:
            xs = ax[0][i0 : i0 + rows]
            pts = xp.stack([xp.repeat(xs, ny * nz), xp.tile(plane_y, xs.shape[0]), xp.tile(plane_z, xs.shape[0])], axis=1)
            out[i0 : i0 + rows] = to_host(fn(pts)).reshape(xs.shape[0], ny, nz, 3)
            bar.update()
    return values, out


def _thread_buffer_bytes(n_points: int) -> int:
    """Per-thread copies of a map in the short-range map kernel, bytes (capped there)."""
    return 8 * min((os.cpu_count() or 1) * n_points, BUFFER_ENTRIES)


def map_region(potential, padding: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) of a map, Å: the potential's box (or cell), or the atoms' bounding box ± ``padding``.

    In free space the region must lie inside the Chebyshev box (``ValueError`` naming the
    padding the potential would need); a periodic potential takes any region.
    """
    if padding is None:
        return potential.extent()
    atoms = to_host(potential.positions)
    lo, hi = atoms.min(axis=0) - padding, atoms.max(axis=0) + padding
    if not potential.periodic:
        beyond = max(float(np.max(np.asarray(potential.box_lo) - lo)), float(np.max(hi - np.asarray(potential.box_hi))))
        if beyond > 1e-9:
            raise ValueError(
                f"--padding {padding:g}: the map would reach {beyond:.3g} Å beyond the potential's Chebyshev box; "
                f"rebuild the potential with `potential --padding {padding:g}` (or more), or use a smaller --padding"
            )
    return lo, hi


def evaluate(request: EvaluationRequest) -> Path:
    """Run the ``evaluate`` stage described by ``request``; returns the netCDF file written.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing or malformed potential or points file (named), points outside the potential's
        box, or an evaluation estimated to exceed the memory limit (one line naming the setting).
    """
    potential = load_potential(request.potential_path, device=request.device)
    xp = potential.xp
    unit = request.units
    attrs = provenance_attrs(potential_file=str(request.potential_path), units=unit, temperature_K=potential.temperature,
                             long_range_only=int(request.long_range_only), field=int(request.field))
    start = time.perf_counter()
    if request.points is not None:
        points = read_points(request.points)
        request.check_points_memory(points.shape[0], xp=xp)
        values, field = evaluate_points(potential, xp.asarray(points), field=request.field,
                                        long_range_only=request.long_range_only)
        dataset = points_dataset(points, convert_potential(to_host(values), unit, temperature_K=potential.temperature),
                                 None if field is None else convert_potential(to_host(field), unit, temperature_K=potential.temperature), unit=unit, attrs=attrs)
    else:
        lo, hi = map_region(potential, request.padding)
        shape = map_shape(lo, hi, n=request.grid, spacing=request.spacing)
        request.check_map_memory(shape, _thread_buffer_bytes(int(np.prod(shape))), xp=xp)
        axes = map_axes(lo, hi, n=request.grid, spacing=request.spacing)
        values, field = evaluate_map(potential, axes, field=request.field, long_range_only=request.long_range_only)
        values = convert_potential(values, unit, temperature_K=potential.temperature)
        if field is not None:
            field = convert_potential(field, unit, temperature_K=potential.temperature)
        dataset = map_dataset(axes, values, field, unit=unit, attrs=attrs)
    dataset.attrs["time_evaluate_s"] = time.perf_counter() - start
    path = write_netcdf(dataset, request.output)
    log.info("evaluate: %d values in %.2fs -> %s", dataset["potential"].size, dataset.attrs["time_evaluate_s"], path)
    if request.dx is not None:
        delta = [float(a[1] - a[0]) if a.size > 1 else 1.0 for a in axes]
        write_dx(request.dx, dataset["potential"].values, [float(a[0]) for a in axes], delta,
                 comments=[f"electrostatic potential in {unit} from {Path(request.potential_path).name}",
                           "written by python -m pipeline evaluate"])
    return path
