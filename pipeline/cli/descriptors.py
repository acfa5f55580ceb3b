"""``python -m pipeline descriptors``: per-atom equivariant descriptors of a structure and its potential.

Parses the options; :func:`pipeline.descriptors.stage.run_descriptors` does the work.
"""

from __future__ import annotations

import argparse

from pipeline.devices import DEVICES

EXAMPLE = (
    "Example: python -m pipeline descriptors results/structures/adk.nc --potential results/potential/adk.nc "
    "-o results/descriptors/adk.nc --lmax 2 --cutoff 6 --n-radial 4 --sphere-radius 2"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``descriptors`` subcommand."""
    parser = subparsers.add_parser(
        "descriptors",
        help="per-atom equivariant descriptors from the structure and its long-range potential",
        description=(
            "For every atom: the charge-weighted neighbour density expansion A_nlm (smooth cutoff,\n"
            "Gaussian radial basis), the long-range potential expanded on a sphere of radius rho\n"
            "(Chebyshev-Tucker evaluation, exact quadrature), and their tensor products by cg,\n"
            "gaunt_fourier, gaunt_grid and gaunt_grid+vector_gaunt. A seeded sample of atoms is\n"
            "recomputed after a random rotation + inversion to record the equivariance error per method.\n"
            "With --device cuda the density, sphere potential and products run on the GPU (CuPy) and the\n"
            "validation sample is recomputed on the CPU."
        ),
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("structure", help="structure record (netCDF from the ingest or lattice stage)")
    parser.add_argument("--potential", required=True, help="potential file of the same structure (netCDF from the potential stage)")
    parser.add_argument("-o", "--output", required=True, help="descriptors file to write (netCDF)")
    parser.add_argument("--lmax", type=int, default=2, help="largest degree L, 0..8 (default 2)")
    parser.add_argument("--cutoff", type=float, default=6.0, help="neighbour cutoff of the density expansion, Å (default 6)")
    parser.add_argument("--n-radial", type=int, default=4, help="radial basis functions, 1..16 (default 4)")
    parser.add_argument("--sphere-radius", type=float, default=2.0, help="radius of the potential spheres, Å (default 2)")
    parser.add_argument("--band-limit", type=int, help="degree of the sphere potential integrated exactly, up to 64 "
                        "(default: the smallest converging the expansion to 1e-13 for this potential)")
    parser.add_argument("--validation-atoms", type=int, default=64, help="atoms in the equivariance check, 0 = off (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the validation sample and rotation (default 0)")
    parser.add_argument("--device", choices=DEVICES, default="cpu",
                        help="array backend: NumPy and the compiled kernel on cpu, CuPy on cuda, cuda when a GPU is "
                             "usable on auto (default cpu)")
    parser.add_argument("--max-memory", metavar="SIZE",
                        help="refuse a run estimated to need more memory, e.g. 8G or 500M (default: what is available)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Compute the descriptors and write ``args.output``; returns the exit status."""
    from pipeline.descriptors.compute import DescriptorParameters
    from pipeline.descriptors.stage import run_descriptors
    from pipeline.resources import parse_memory_size

    params = DescriptorParameters(
        lmax=args.lmax, cutoff_A=args.cutoff, n_radial=args.n_radial, sphere_radius_A=args.sphere_radius,
        band_limit=args.band_limit, n_validation=args.validation_atoms, seed=args.seed, device=args.device,
    )
    run_descriptors(args.structure, args.potential, args.output, params,
                    max_memory_bytes=None if args.max_memory is None else parse_memory_size(args.max_memory))
    return 0
