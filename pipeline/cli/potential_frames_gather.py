"""``python -m pipeline potential-frames-gather``: join frame-block files into one file in frame order."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "potential-frames-gather",
        help="join the frame blocks of potential-frames into one file",
        description=(
            "Concatenate block files written by `potential-frames --block K --blocks N` in frame order,\n"
            "check that every selected frame is present exactly once (a missing or duplicate frame is an\n"
            "error naming the frame and the file) and that the blocks share trajectory, settings and\n"
            "charges, recompute the mean and standard deviation over frames, and write one file."
        ),
        epilog="Example: python -m pipeline potential-frames-gather blocks/block_*.nc -o results/frames/adk_dcd.nc",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("blocks", nargs="+", metavar="BLOCK.nc", help="block files (any order)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="frames file to write (netCDF)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.electrostatics.frames import run_potential_frames_gather

    run_potential_frames_gather(args.blocks, args.output)
    return 0
