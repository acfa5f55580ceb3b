"""Command line: one subcommand per workflow stage, ``python -m pipeline <stage> --help``.

Each stage lives in its own module of this package exposing ``register(subparsers)``, which
adds the stage's parser and sets ``handler`` (a function taking the parsed arguments and
returning an exit status). This module parses, configures logging, calls the handler and
turns expected failures into a one-line message on stderr with a non-zero exit status.

Start-up is lazy: the stage name is read first and only that stage's module is imported
(every stage module imports its numerical libraries inside its handler), so
``python -m pipeline STAGE --help`` stays fast. All stage modules are imported only when no
known stage is named (``python -m pipeline --help``, a typo), to list them.

Options common to every stage (``-v``/``--verbose``, ``-q``/``--quiet``, ``--log-file``) are
accepted before and after the stage name; every stage's ``-o/--output`` is shown as ``OUT.nc``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys
from collections.abc import Iterator, Sequence

from pipeline import __version__

#: Stage modules of :mod:`pipeline.cli`, in the order their subcommands are listed. The
#: subcommand of module ``potential_chunk`` is ``potential-chunk``.
STAGE_MODULES = ("ingest", "lattice", "compile", "potential", "potential_chunk", "potential_gather", "potential_frames",
                 "potential_frames_gather", "evaluate", "tensor_products", "descriptors", "descriptors_frames", "report",
                 "summary")

#: Metavar of every stage's ``-o/--output`` option.
OUTPUT_METAVAR = "OUT.nc"
#: What to change when a stage runs out of memory.
MEMORY_SETTINGS = {
    "potential": "build the long range in atom chunks (potential-chunk --chunks N, then potential-gather) "
                 "or use --device cpu",
    "potential-chunk": "use more chunks (--chunks) or --device cpu",
    "potential-gather": "use --device cpu",
    "evaluate": "evaluate fewer points per call (split --points or use a coarser --grid) or use --device cpu",
    "tensor-products": "use a smaller --batch or --device cpu",
    "descriptors": "lower --lmax or --n-radial (every atom's features stay on the device until the end) "
                   "or use --device cpu",
}
DEFAULT_MEMORY_SETTING = "use a machine with more memory or smaller inputs"

log = logging.getLogger("pipeline")


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """Logging options accepted both before and after the stage name.

    Their defaults are suppressed so that a value given before the stage name is not reset by
    the subcommand's parser; :func:`main` reads them with ``getattr(args, name, default)``.
    """
    group = parser.add_argument_group("logging")
    verbosity = group.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log DEBUG messages as well")
    verbosity.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="log only warnings and errors")
    group.add_argument("--log-file", metavar="PATH", default=argparse.SUPPRESS, help="also append the log messages to PATH")


def add_trajectory_arguments(parser: argparse.ArgumentParser) -> None:
    """The trajectory options shared by the stages that read frames (potential-frames, descriptors-frames)."""
    parser.add_argument("structure", help="structure record (netCDF from the ingest stage): charges and labels")
    parser.add_argument("--trajectory", required=True, metavar="TRAJ", help="trajectory file or mdanalysistests:NAME")
    parser.add_argument("--topology", metavar="TOP", help="topology read with the trajectory (default: the record's source)")
    parser.add_argument("--trajectory-format", metavar="FMT", help="trajectory format (default: from the extension)")
    parser.add_argument("--frames", default="::1", metavar="START:STOP:STEP",
                        help="frames as a Python slice, STOP exclusive (default ::1, every frame)")


def stage_name(module: str) -> str:
    """Subcommand name of a stage module (``potential_chunk`` → ``potential-chunk``)."""
    return module.replace("_", "-")


def selected_stage(argv: Sequence[str]) -> str | None:
    """The stage module named on the command line, or None when no known stage is named.

    The first word that is neither a top-level option nor the value of ``--log-file`` is the
    stage name.
    """
    words = iter(argv)
    for word in words:
        if word == "--log-file":
            next(words, None)
        elif not word.startswith("-"):
            module = word.replace("-", "_")
            return module if module in STAGE_MODULES and stage_name(module) == word else None
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The top-level parser with the stage named in ``argv`` registered, or every stage.

    Parameters
    ----------
    argv : sequence of str, optional
        Command-line words after the program name. When they name a known stage, only that
        stage's module is imported and registered; otherwise (None, top-level ``--help``, an
        unknown name) every stage is, so that help and errors list them all.
    """
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="Range-separated electrostatics and equivariant descriptors for molecular studies.",
        epilog="Example: python -m pipeline ingest mdanalysistests:PQR -o results/structures/adk.nc -v",
    )
    parser.add_argument("--version", action="version", version=f"pipeline {__version__}")
    add_common_options(parser)
    subparsers = parser.add_subparsers(dest="stage", metavar="STAGE", required=True)
    selected = selected_stage(argv) if argv is not None else None
    for module in (selected,) if selected else STAGE_MODULES:
        importlib.import_module(f"pipeline.cli.{module}").register(subparsers)
        stage_parser = subparsers.choices[stage_name(module)]
        add_common_options(stage_parser)
        for action in stage_parser._actions:
            if "--output" in action.option_strings:
                action.metavar = OUTPUT_METAVAR
    return parser


def log_handlers(args: argparse.Namespace) -> list[logging.Handler]:
    """Handlers of a stage run: stderr, and ``--log-file`` (appended to) when given.

    Raises
    ------
    OSError
        When the log file cannot be opened.
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if getattr(args, "log_file", None):
        handlers.append(logging.FileHandler(args.log_file, mode="a", encoding="utf-8"))
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in handlers:
        handler.setFormatter(formatter)
    return handlers


def log_level(args: argparse.Namespace) -> int:
    """DEBUG with ``-v``, WARNING with ``-q``, INFO otherwise."""
    if getattr(args, "verbose", False):
        return logging.DEBUG
    return logging.WARNING if getattr(args, "quiet", False) else logging.INFO


@contextlib.contextmanager
def logging_to(handlers: list[logging.Handler], level: int) -> Iterator[None]:
    """Route log messages to ``handlers`` at ``level`` while the stage runs.

    The handlers are added to the root logger and removed (and closed) afterwards, so that
    calling :func:`main` several times in one process (tests, notebooks) neither duplicates
    messages nor keeps writing to a closed stream.
    """
    root = logging.getLogger()
    previous_level = root.level
    root.setLevel(level)
    for handler in handlers:
        root.addHandler(handler)
    try:
        yield
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(previous_level)


def report_error(message: str, handlers: list[logging.Handler]) -> None:
    """Print ``error: message`` on stderr and append it to the log files among ``handlers``."""
    print(f"error: {message}", file=sys.stderr)
    record = logging.LogRecord("pipeline", logging.ERROR, __file__, 0, "%s", (message,), None)
    for handler in handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m pipeline`` and the ``pipeline`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    try:
        handlers = log_handlers(args)
    except OSError as exc:
        print(f"error: --log-file {args.log_file}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    with logging_to(handlers, log_level(args)):
        try:
            return int(args.handler(args) or 0)
        except MemoryError as exc:  # also CuPy's OutOfMemoryError; the stages write their files only at the end
            from pipeline.backend import out_of_memory_message

            log.debug("failure", exc_info=True)
            report_error(out_of_memory_message(exc, MEMORY_SETTINGS.get(args.stage, DEFAULT_MEMORY_SETTING)), handlers)
            return 1
        except (ValueError, TypeError, FileNotFoundError, RuntimeError, OSError) as exc:
            log.debug("failure", exc_info=True)
            report_error(str(exc), handlers)
            return 1
        except KeyboardInterrupt:
            report_error("interrupted", handlers)
            return 130
