"""``python -m pipeline summary``: print a report's tables in the terminal."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    """Read the report and print its tables on stdout."""
    # imported here: every subcommand imports this module, so it loads no numerical library itself
    from pipeline.reports.tables import format_summary
    from pipeline.storage import read_netcdf

    report = read_netcdf(args.report)
    try:
        text = format_summary(report)
    except ValueError as exc:
        raise ValueError(f"{args.report}: {exc}") from None
    print(text, end="")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``summary`` subcommand."""
    parser = subparsers.add_parser(
        "summary",
        help="print a report as terminal tables",
        description=(
            "Print the tables of a report written by `pipeline report`: structures (atoms, charge\n"
            "source, net charge, periodic box), potentials (errors, ranks, storage, times), their\n"
            "parameters, solvent and boundary conditions (eps_r, ionic strength, kappa, Debye length,\n"
            "temperature, periodic, background term), potential build steps, stage runtimes, tensor\n"
            "products and descriptor equivariance errors."
        ),
        epilog="Example: python -m pipeline summary results/report.nc",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("report", metavar="REPORT.nc", help="report file")
    parser.set_defaults(handler=run)
