"""``python -m pipeline potential-frames``: the potential of every selected frame of a trajectory.

The options are those of :class:`pipeline.electrostatics.settings.PotentialSettings` plus the
trajectory and frame selection; the work is done by
:func:`pipeline.electrostatics.frames.run_potential_frames`. Only light modules are imported at
start-up, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse

from pipeline.cli import add_trajectory_arguments
from pipeline.electrostatics.settings import PotentialSettings, add_arguments

EXAMPLE = (
    "Examples:\n"
    "  python -m pipeline potential-frames results/structures/adk_dcd.nc --trajectory mdanalysistests:DCD "
    "--frames 0:98:1 -o results/frames/adk_dcd.nc\n"
    "  python -m pipeline potential-frames adk_dcd.nc --trajectory mdanalysistests:DCD --frames ::1 "
    "--block 0 --blocks 4 -o block_0.nc\n"
    "  python -m pipeline potential-frames solvated.nc --trajectory mdanalysistests:XTC --topology mdanalysistests:TPR "
    "--frames 0:10:2 --periodic auto -o solvated_frames.nc"
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "potential-frames",
        help="potential, energy and self-check of every selected frame of a trajectory",
        description=(
            "Run the potential build of `potential` on each selected frame of a trajectory (any format\n"
            "MDAnalysis reads: DCD, XTC, TRR, NCDF, ...) with the charges of a structure record, and write\n"
            "one netCDF file with a `frame` dimension and `time` coordinate (ps): per-atom potential,\n"
            "energy, self-check errors, box, runtime per frame, and the mean and standard deviation over\n"
            "frames per atom and per residue. Each frame equals a `potential` run on the same coordinates\n"
            "bitwise; with --periodic auto each frame uses its own box. --block K --blocks N runs only the\n"
            "K-th of N contiguous blocks of the selection (join them with potential-frames-gather)."
        ),
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_trajectory_arguments(parser)
    parser.add_argument("--block", type=int, default=0, metavar="K", help="block to run, 0 … N-1 (default 0)")
    parser.add_argument("--blocks", type=int, default=1, metavar="N", help="contiguous blocks of the selection (default 1)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="frames file to write (netCDF)")
    add_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = PotentialSettings.from_args(args)
    from pipeline.electrostatics.frames import run_potential_frames
    from pipeline.structures.trajectory import FrameSelection

    run_potential_frames(args.structure, args.trajectory, args.output, settings, topology=args.topology,
                         trajectory_format=args.trajectory_format, frames=FrameSelection.parse(args.frames),
                         block=args.block, blocks=args.blocks)
    return 0
