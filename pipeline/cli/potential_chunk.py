"""``python -m pipeline potential-chunk``: long-range coefficients of one atom chunk (scatter step)."""

from __future__ import annotations

import argparse

from pipeline.electrostatics.settings import PotentialSettings, add_arguments

EXAMPLE = (
    "Example: python -m pipeline potential-chunk results/structures/big.nc --chunk 0 --chunks 4 "
    "-o results/potential/chunks/big/chunk_0.nc --tolerance 1e-6"
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "potential-chunk",
        help="scatter step: long-range Chebyshev coefficients of one chunk of the atoms, and its long range at every atom",
        description=(
            "Read the whole structure, derive the build plan (box or cell, alpha, cutoff, Chebyshev and\n"
            "grid sizes) from all of it exactly as `potential` does, and build the long-range Chebyshev\n"
            "coefficient tensor of atoms [K*n/N, (K+1)*n/N) only, with their long range at every atom.\n"
            "Both are linear in the charges: `potential-gather` sums the N chunk files into the\n"
            "potential of the whole structure. Every chunk job and the gather job must receive the\n"
            "same plan options."
        ),
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("structure", help="structure record (netCDF from the ingest stage)")
    parser.add_argument("--chunk", type=int, required=True, metavar="K", help="chunk index, 0 … N-1")
    parser.add_argument("--chunks", type=int, required=True, metavar="N", help="number of chunks (≥ 1)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="chunk file to write (netCDF)")
    add_arguments(parser, finish=False)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = PotentialSettings.from_args(args)
    from pipeline.electrostatics.stage import run_potential_chunk

    run_potential_chunk(args.structure, args.output, settings, chunk=args.chunk, chunks=args.chunks)
    return 0
