"""``python -m pipeline potential``: build the range-separated potential of a structure file.

The options are those of :class:`pipeline.electrostatics.settings.PotentialSettings`; the work is
done by :func:`pipeline.electrostatics.stage.run_potential`. Only light modules are imported
at start-up, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse

from pipeline.electrostatics.settings import PotentialSettings, add_arguments

EXAMPLE = (
    "Examples:\n"
    "  python -m pipeline potential results/structures/adk.nc -o results/potential/adk.nc --tolerance 1e-7\n"
    "  python -m pipeline potential adk.nc -o adk_salt.nc --dielectric 78.5 --ionic-strength 0.15 --temperature 298.15\n"
    "  python -m pipeline potential solvated.nc -o solvated_pbc.nc --periodic on"
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "potential",
        help="build the range-separated Chebyshev-Tucker potential of a structure",
        description=(
            "Split the kernel into an exact short range (within a cutoff) and a smooth long range stored\n"
            "as Tucker-compressed Chebyshev coefficients; evaluate the potential at every atom, the energy,\n"
            "and check the error against an independent reference (direct summation in free space, a\n"
            "plain Ewald sum in a periodic cell). Kernels: Coulomb 1/(eps_r r) or, with an ionic strength,\n"
            "Debye-Hückel exp(-kappa r)/(eps_r r); free space or periodic over the record's (triclinic)\n"
            "box. Every parameter chosen from --tolerance can be overridden. For very large structures\n"
            "see potential-chunk and potential-gather."
        ),
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("structure", help="structure record (netCDF from the ingest stage)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="potential file to write (netCDF)")
    add_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = PotentialSettings.from_args(args)
    from pipeline.electrostatics.stage import run_potential

    run_potential(args.structure, args.output, settings)
    return 0
