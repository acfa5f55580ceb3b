"""``python -m pipeline descriptors-frames``: per-atom descriptors of selected trajectory frames.

The potential options are those of :class:`pipeline.electrostatics.settings.PotentialSettings`;
the work is done by :func:`pipeline.descriptors.frames.run_descriptors_frames`. Only light
modules are imported at start-up.
"""

from __future__ import annotations

import argparse

from pipeline.cli import add_trajectory_arguments
from pipeline.electrostatics.settings import PotentialSettings, add_arguments

EXAMPLE = ("Example: python -m pipeline descriptors-frames results/structures/adk_dcd.nc --trajectory mdanalysistests:DCD "
           "--frames 0:98:49 --lmax 2 --density-cutoff 6 -o results/descriptors/frames/adk_dcd.nc")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "descriptors-frames",
        help="per-atom descriptors of selected trajectory frames (frame dimension)",
        description=(
            "For each selected frame: build the frame's potential as `potential-frames` does, then compute\n"
            "the per-atom descriptors as the `descriptors` stage does (density expansion, sphere potential,\n"
            "tensor products, equivariance check), and stack them along a `frame` dimension with `time`\n"
            "(ps). Free-space potentials only (--periodic off for trajectories with a box)."
        ),
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_trajectory_arguments(parser)
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="descriptors file to write (netCDF)")
    group = parser.add_argument_group("descriptors")
    group.add_argument("--lmax", type=int, default=2, help="largest degree L (default 2)")
    group.add_argument("--density-cutoff", type=float, default=6.0, metavar="A",
                       help="neighbour cutoff of the density expansion, Å (default 6)")
    group.add_argument("--n-radial", type=int, default=4, help="radial basis functions (default 4)")
    group.add_argument("--sphere-radius", type=float, default=2.0, metavar="A", help="radius of the potential spheres, Å (default 2)")
    group.add_argument("--validation-atoms", type=int, default=64, help="atoms in the equivariance check per frame (default 64)")
    add_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = PotentialSettings.from_args(args)
    from pipeline.descriptors.compute import DescriptorParameters
    from pipeline.descriptors.frames import run_descriptors_frames
    from pipeline.structures.trajectory import FrameSelection

    params = DescriptorParameters(lmax=args.lmax, cutoff_A=args.density_cutoff, n_radial=args.n_radial,
                                  sphere_radius_A=args.sphere_radius, n_validation=args.validation_atoms, seed=args.seed)
    run_descriptors_frames(args.structure, args.trajectory, args.output, settings, params, topology=args.topology,
                           trajectory_format=args.trajectory_format, frames=FrameSelection.parse(args.frames))
    return 0
