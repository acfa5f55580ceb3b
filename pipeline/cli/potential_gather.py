"""``python -m pipeline potential-gather``: sum chunk coefficients into the potential file (gather step)."""

from __future__ import annotations

import argparse

from pipeline.electrostatics.settings import PotentialSettings, add_arguments

EXAMPLE = (
    "Example: python -m pipeline potential-gather results/structures/big.nc "
    "results/potential/chunks/big/chunk_*.nc -o results/potential/big.nc --tolerance 1e-6"
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "potential-gather",
        help="gather step: sum chunk coefficients, compress, short range and self-check",
        description=(
            "Check that the chunk files of `potential-chunk` were built from this structure with the\n"
            "plan these options give and that they cover every atom exactly once; sum their\n"
            "coefficient tensors and their long ranges at the atoms, Tucker-compress the sum (at a\n"
            "smaller alpha when it exceeds --max-storage), add the short range at every atom, run the\n"
            "self-check and write the same potential file as `potential`."
        ),
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("structure", help="structure record (netCDF from the ingest stage)")
    parser.add_argument("chunk_files", nargs="+", metavar="CHUNK", help="chunk files of potential-chunk")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="potential file to write (netCDF)")
    add_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = PotentialSettings.from_args(args)
    from pipeline.electrostatics.stage import run_potential_gather

    run_potential_gather(args.structure, args.chunk_files, args.output, settings)
    return 0
