"""``python -m pipeline potential-gather``: sum chunk coefficients into the potential file (gather step)."""

from __future__ import annotations

import argparse
import logging
import time

from pipeline.backend import namespace_of
from pipeline.cli.potential import (
    add_finish_arguments,
    add_plan_arguments,
    check_finish_arguments,
    finish,
    load_inputs,
    setup_for,
)
from pipeline.electrostatics.build import assemble_potential
from pipeline.electrostatics.scatter import gather_coefficients, structure_fingerprint

log = logging.getLogger(__name__)

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
            "self-check against direct summation and write the same potential file as `potential`."
        ),
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("structure", help="structure record (netCDF from the ingest stage)")
    parser.add_argument("chunk_files", nargs="+", metavar="CHUNK", help="chunk files of potential-chunk")
    parser.add_argument("-o", "--output", required=True, help="potential file to write (netCDF)")
    add_plan_arguments(parser)
    add_finish_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    check_finish_arguments(args)
    structure, positions, charges = load_inputs(args)
    t0 = time.perf_counter()
    setup = setup_for(args, positions, charges)
    timings = {"parameters": time.perf_counter() - t0}
    t0 = time.perf_counter()
    coeffs, atom_long, chunk_seconds = gather_coefficients(
        args.chunk_files, setup.params, n_atoms=structure.n_atoms,
        fingerprint=structure_fingerprint(structure.positions, structure.charges), xp=namespace_of(positions),
    )
    timings["gather"] = time.perf_counter() - t0
    timings["long_range_coefficients"] = chunk_seconds  # summed over the chunk jobs
    potential, timings["tucker"] = assemble_potential(setup, coeffs, positions, charges, ranks=args.ranks,
                                                      hooi_sweeps=args.hooi_sweeps, atom_long=atom_long,
                                                      max_storage_bytes=args.max_storage)
    potential.params["chunks"] = len(args.chunk_files)
    return finish(potential, structure, args, timings)
