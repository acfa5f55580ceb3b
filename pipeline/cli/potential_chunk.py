"""``python -m pipeline potential-chunk``: long-range coefficients of one atom chunk (scatter step)."""

from __future__ import annotations

import argparse
import logging
import time

from pipeline.backend import namespace_of, synchronize
from pipeline.cli.potential import add_plan_arguments, load_inputs, setup_for
from pipeline.electrostatics.scatter import chunk_coefficients, chunk_to_dataset, structure_fingerprint
from pipeline.storage import write_netcdf

log = logging.getLogger(__name__)

EXAMPLE = (
    "Example: python -m pipeline potential-chunk results/structures/big.nc --chunk 0 --chunks 4 "
    "-o results/potential/chunks/big/chunk_0.nc --tolerance 1e-6"
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "potential-chunk",
        help="scatter step: long-range Chebyshev coefficients of one chunk of the atoms, and its long range at every atom",
        description=(
            "Read the whole structure, derive the build plan (box, alpha, cutoff, Chebyshev and grid\n"
            "sizes) from all of it exactly as `potential` does, and build the long-range Chebyshev\n"
            "coefficient tensor of atoms [K*n/N, (K+1)*n/N) only, with their long range at every atom.\n"
            "Both are linear in the charges: `potential-gather` sums the N chunk files into the\n"
            "potential of the whole\n"
            "structure. Every chunk job and the gather job must receive the same plan options."
        ),
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("structure", help="structure record (netCDF from the ingest stage)")
    parser.add_argument("--chunk", type=int, required=True, metavar="K", help="chunk index, 0 … N-1")
    parser.add_argument("--chunks", type=int, required=True, metavar="N", help="number of chunks (≥ 1)")
    parser.add_argument("-o", "--output", required=True, help="chunk file to write (netCDF)")
    add_plan_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.chunks < 1:
        raise ValueError(f"--chunks must be ≥ 1, got {args.chunks}")
    if not 0 <= args.chunk < args.chunks:
        raise ValueError(f"--chunk must be in 0 … {args.chunks - 1}, got {args.chunk}")
    structure, positions, charges = load_inputs(args)
    setup = setup_for(args, positions, charges)
    t0 = time.perf_counter()
    coeffs, atom_long, atom_range = chunk_coefficients(positions, charges, setup, args.chunk, args.chunks)
    synchronize(namespace_of(coeffs))
    seconds = time.perf_counter() - t0
    log.info("chunk %d/%d: atoms %d..%d, coefficients %s in %.2fs", args.chunk, args.chunks, atom_range[0],
             atom_range[1] - 1, tuple(coeffs.shape), seconds)
    dataset = chunk_to_dataset(
        coeffs, atom_long, setup.params, chunk=args.chunk, chunks=args.chunks, atom_range=atom_range, n_atoms=structure.n_atoms,
        fingerprint=structure_fingerprint(structure.positions, structure.charges), seconds=seconds,
        structure_attrs=structure.attrs,
    )
    dataset.attrs["input_file"] = str(args.structure)
    write_netcdf(dataset, args.output, compress=False)
    log.info("wrote %s", args.output)
    return 0
