"""``python -m pipeline evaluate``: potential (and field) at points or on a grid from a potential file.

Parses the options into an :class:`~pipeline.maps.request.EvaluationRequest` and calls
:func:`pipeline.maps.evaluate.evaluate`. Only light modules are imported at the top, so that
``--help`` is quick and a map too large for the memory is refused before the numerical
libraries load.
"""

from __future__ import annotations

import argparse

from pipeline.devices import DEVICES
from pipeline.units import POTENTIAL_UNIT_FACTORS

EXAMPLE = (
    "Example: python -m pipeline evaluate results/potential/adk.nc --grid 65 -o results/maps/adk.nc "
    "--dx results/maps/adk.dx.gz --units kT/e"
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a potential file at points or on a regular grid (netCDF, OpenDX)",
        description=(
            "Evaluate the potential stored by `potential` at points read from a .npy or .csv file\n"
            "(N x 3, Å; '#' starts a comment) or on a regular grid over the Chebyshev box, optionally\n"
            "with the electric field, and write netCDF (and for grids an OpenDX map of the potential for\n"
            "PyMOL/VMD/ChimeraX/APBS, gzip-compressed when its name ends in .gz). An evaluation estimated\n"
            "to need more memory than --max-memory (default: what is available) is refused."
        ),
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("potential", help="potential file written by `python -m pipeline potential`")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--points", help="points file: .npy or .csv with N rows x 3 columns, Å")
    where.add_argument("--grid", type=int, metavar="N", help="N^3 grid spanning the box")
    where.add_argument("--spacing", type=float, metavar="H", help="grid over the box with spacing H Å")
    parser.add_argument("--padding", type=float, metavar="A",
                        help="map the atoms' bounding box widened by A Å instead of the whole box (grid modes only)")
    parser.add_argument("-o", "--output", required=True, help="netCDF file to write")
    parser.add_argument("--dx", help="also write the potential map as OpenDX, .dx or .dx.gz (grid modes only)")
    parser.add_argument("--units", choices=tuple(POTENTIAL_UNIT_FACTORS), default="e/A", help="output unit (default e/A)")
    parser.add_argument("--field", action="store_true", help="also evaluate the electric field -grad phi")
    parser.add_argument("--long-range-only", action="store_true", help="evaluate only the long-range part")
    parser.add_argument("--device", choices=DEVICES, default="cpu", help="array backend (default cpu)")
    parser.add_argument("--max-memory", metavar="SIZE",
                        help="refuse an evaluation estimated to need more memory, e.g. 8G or 500M (default: what is available)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.maps.request import EvaluationRequest
    from pipeline.resources import parse_memory_size

    request = EvaluationRequest(
        potential_path=args.potential, output=args.output, points=args.points, grid=args.grid, spacing=args.spacing,
        padding=args.padding, dx=args.dx, units=args.units, field=args.field, long_range_only=args.long_range_only, device=args.device,
        max_memory_bytes=None if args.max_memory is None else parse_memory_size(args.max_memory),
    )
    from pipeline.maps.evaluate import evaluate

    evaluate(request)
    return 0
