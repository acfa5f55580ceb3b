"""``python -m pipeline compile``: compile the Numba kernels once (the workflow runs it before the potentials)."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLE = "Example: python -m pipeline compile --stamp results/.kernels_compiled"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "compile",
        help="compile the Numba kernels once, so that later jobs load them from the cache",
        description=(
            "Run every compiled code path of the potential on a few hundred atoms. The kernels are\n"
            "cached next to the package, so every later job of this install loads them instead of\n"
            "compiling (about a minute on 2 cores), and no recorded runtime includes compiling."
        ),
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--stamp", metavar="FILE", help="file written (with the seconds taken) when done")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.electrostatics.warmup import compile_kernels

    done = compile_kernels()
    if args.stamp:
        stamp = Path(args.stamp)
        stamp.parent.mkdir(parents=True, exist_ok=True)
        temporary = stamp.with_name(f".{stamp.name}.tmp")
        temporary.write_text(f"kernels {done['kernels']}\nseconds {done['seconds']:.2f}\n")
        temporary.replace(stamp)
    return 0
