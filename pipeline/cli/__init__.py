"""Command line: one subcommand per workflow stage, ``python -m pipeline <stage> --help``.

Each stage lives in its own module of this package exposing ``register(subparsers)``, which
adds the stage's parser and sets ``handler`` (a function taking the parsed arguments and
returning an exit status). This module parses, configures logging, calls the handler and
turns expected failures into a one-line message on stderr with a non-zero exit status.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from pipeline import __version__

#: Stage modules of :mod:`pipeline.cli`, in the order their subcommands are listed.
STAGE_MODULES = ("ingest", "lattice", "potential", "potential_chunk", "potential_gather", "potential_frames", "potential_frames_gather", "evaluate", "tensor_products", "descriptors", "descriptors_frames", "report", "summary")

log = logging.getLogger("pipeline")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every stage's subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="Range-separated electrostatics and equivariant descriptors for molecular studies.",
        epilog="Example: python -m pipeline ingest mdanalysistests:PQR -o results/structures/adk.nc",
    )
    parser.add_argument("--version", action="version", version=f"pipeline {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log DEBUG messages as well")
    subparsers = parser.add_subparsers(dest="stage", metavar="STAGE", required=True)
    for name in STAGE_MODULES:
        importlib.import_module(f"pipeline.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m pipeline`` and the ``pipeline`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.handler(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError, OSError) as exc:
        log.debug("failure", exc_info=True)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
