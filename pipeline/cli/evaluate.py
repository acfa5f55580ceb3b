"""``python -m pipeline evaluate``: potential (and field) at points or on a grid from a potential file."""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

from pipeline.backend import to_host
from pipeline.electrostatics.storage import load_potential
from pipeline.storage import provenance_attrs, write_netcdf
from pipeline.units import POTENTIAL_UNIT_FACTORS, convert_potential

log = logging.getLogger(__name__)

EXAMPLE = (
    "Example: python -m pipeline evaluate results/potential/adk.nc --grid 65 -o results/maps/adk.nc "
    "--dx results/maps/adk.dx --units kT/e"
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a potential file at points or on a regular grid (netCDF, OpenDX)",
        description=(
            "Evaluate the potential stored by `potential` at points read from a .npy or .csv file\n"
            "(N x 3, Å) or on a regular grid over the Chebyshev box, optionally with the electric field,\n"
            "and write netCDF (and an OpenDX map for PyMOL/VMD/ChimeraX)."
        ),
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("potential", help="potential file written by `python -m pipeline potential`")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--points", help="points file: .npy or .csv with N rows x 3 columns, Å")
    where.add_argument("--grid", type=int, metavar="N", help="N^3 grid spanning the box")
    where.add_argument("--spacing", type=float, metavar="H", help="grid over the box with spacing H Å")
    parser.add_argument("-o", "--output", required=True, help="netCDF file to write")
    parser.add_argument("--dx", help="also write the grid as OpenDX (grid modes only)")
    parser.add_argument("--units", choices=tuple(POTENTIAL_UNIT_FACTORS), default="e/A", help="output unit (default e/A)")
    parser.add_argument("--field", action="store_true", help="also evaluate the electric field (points mode)")
    parser.add_argument("--long-range-only", action="store_true", help="evaluate only the long-range part")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu", help="array backend (default cpu)")
    parser.set_defaults(handler=run)


def read_points(path: str) -> np.ndarray:
    """Points (N, 3) in Å from a .npy or .csv file (comma or whitespace separated, '#' comments)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{path}: no such points file")
    if p.suffix == ".npy":
        pts = np.load(p)
    elif p.suffix == ".csv":
        pts = np.loadtxt(p, delimiter=",", comments="#", ndmin=2)
    else:
        raise ValueError(f"{path}: points file must end in .npy or .csv, got {p.suffix!r}")
    pts = np.asarray(pts, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"{path}: expected N x 3 coordinates in Å, got shape {pts.shape}")
    return pts


def write_dx(path: str, values: np.ndarray, origin, delta) -> None:
    """Write an OpenDX map through GridDataFormats atomically (temporary .dx file, then rename)."""
    from gridData import Grid

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".dx", dir=target.parent)
    os.close(handle)
    try:
        Grid(grid=np.asarray(values, dtype=np.float64), origin=np.asarray(origin), delta=np.asarray(delta)).export(tmp, type="double")
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run(args: argparse.Namespace) -> int:
    from pipeline.backend import xp_for_device

    if args.dx and args.points:
        raise ValueError("--dx needs --grid or --spacing (a map), not --points")
    potential = load_potential(args.potential, device=args.device)
    xp = xp_for_device(args.device)
    unit = args.units
    attrs = provenance_attrs(potential_file=str(args.potential), units=unit, long_range_only=int(args.long_range_only))
    t0 = time.perf_counter()
    if args.points:
        pts = xp.asarray(read_points(args.points))
        values = potential.long_range(pts) if args.long_range_only else potential.potential(pts)
        data = {
            "points": (("point", "xyz"), to_host(pts), {"units": "angstrom", "long_name": "evaluation point"}),
            "potential": (("point",), convert_potential(to_host(values), unit),
                          {"units": unit, "long_name": "electrostatic potential"}),
        }
        if args.field:
            fld = potential.long_range_field(pts) if args.long_range_only else potential.field(pts)
            data["field"] = (("point", "xyz"), convert_potential(to_host(fld), unit),
                             {"units": f"{unit}/angstrom", "long_name": "electric field -grad phi"})
        ds = xr.Dataset(data)
    else:
        lo, hi = np.asarray(potential.box_lo), np.asarray(potential.box_hi)
        if args.grid is not None:
            if args.grid < 2:
                raise ValueError(f"--grid must be ≥ 2, got {args.grid}")
            axes = [np.linspace(lo[k], hi[k], args.grid) for k in range(3)]
        else:
            if not args.spacing > 0:
                raise ValueError(f"--spacing must be > 0 Å, got {args.spacing}")
            axes = [lo[k] + args.spacing * np.arange(int(np.floor((hi[k] - lo[k]) / args.spacing)) + 1) for k in range(3)]
        values = to_host(potential.grid(*(xp.asarray(a) for a in axes), long_only=args.long_range_only))
        values = convert_potential(values, unit)
        coords = {
            name: (name, a, {"units": "angstrom", "long_name": f"{name} coordinate"}) for name, a in zip("xyz", axes)
        }
        ds = xr.Dataset(
            {"potential": (("x", "y", "z"), values, {"units": unit, "long_name": "electrostatic potential on the grid"})},
            coords=coords,
        )
        if args.dx:
            delta = [a[1] - a[0] if a.size > 1 else 1.0 for a in axes]
            write_dx(args.dx, values, [a[0] for a in axes], delta)
    elapsed = time.perf_counter() - t0
    attrs["time_evaluate_s"] = elapsed
    ds.attrs = attrs
    write_netcdf(ds, args.output)
    log.info("evaluate: %s values in %.2fs -> %s", ds["potential"].size, elapsed, args.output)
    return 0
