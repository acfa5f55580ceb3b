"""``python -m pipeline report``: aggregate a study's outputs into a netCDF report and figures."""

from __future__ import annotations

import argparse
import json
import logging
import shlex
from pathlib import Path

log = logging.getLogger(__name__)

DESCRIPTION = """\
Aggregate the stage outputs of a study into one self-describing netCDF report (structures,
potential accuracy, Tucker ranks, storage, runtimes per stage, tensor-product tables,
descriptor equivariance errors) and, with --figures-dir, write its figures:
runtime_vs_lmax.png, error_vs_tolerance.png, ranks_vs_atoms.png and runtime_vs_atoms.png, and for
trajectories (--frames) energy_vs_time.png, frame_runtime.png and residue_potential.png.
With --expected-structures, ids without a structure file are listed as missing (with the
reason from --failures) instead of stopping the report.
Every figure is written even when its data is absent (it then shows a "no data" note).
A listed input that does not exist, or a file lacking an essential variable, is an error
and no report is written.
"""


def load_config(path: str | Path) -> dict:
    """The study configuration from a JSON or YAML file (``.json`` is read as JSON, anything else as YAML).

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        When the file does not parse or does not hold a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such config file")
    import yaml

    text = path.read_text()
    try:
        config = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: not a valid {'JSON' if path.suffix == '.json' else 'YAML'} file ({exc})") from exc
    if not isinstance(config, dict):
        raise ValueError(f"{path}: config must be a mapping, got {type(config).__name__}")
    return config


def _command(args: argparse.Namespace) -> str:
    words = ["python", "-m", "pipeline", "report", "--structures", *args.structures]
    if args.potentials:
        words += ["--potentials", *args.potentials]
    if args.tensor_products:
        words += ["--tensor-products", args.tensor_products]
    if args.descriptors:
        words += ["--descriptors", *args.descriptors]
    if args.frames:
        words += ["--frames", *args.frames]
    if args.descriptors_frames:
        words += ["--descriptors-frames", *args.descriptors_frames]
    if args.expected_structures:
        words += ["--expected-structures", *args.expected_structures]
    for flag, value in (("--benchmarks", args.benchmarks), ("--config", args.config)):
        if value:
            words += [flag, value]
    words += ["-o", args.output]
    if args.figures_dir:
        words += ["--figures-dir", args.figures_dir]
    return shlex.join(words)


def run(args: argparse.Namespace) -> int:
    """Build the report, write the figures, then write the report file."""
    from pipeline.reports.datasets import build_report
    from pipeline.storage import write_netcdf

    config = load_config(args.config) if args.config else None
    report = build_report(
        structures=args.structures,
        potentials=args.potentials,
        tensor_products=args.tensor_products,
        descriptors=args.descriptors,
        benchmarks_dir=args.benchmarks,
        config=config,
        history=_command(args),
    )
    report = _with_frames_and_missing(report, args)
    if args.figures_dir:
        from pipeline.reports.figures import write_figures
        from pipeline.reports.frames_figures import write_frames_figures

        write_figures(report, args.figures_dir)
        write_frames_figures(report, args.figures_dir)
    write_netcdf(report, args.output)
    log.info("report: wrote %s (%d variables)", args.output, len(report.data_vars))
    return 0


def _with_frames_and_missing(report, args: argparse.Namespace):
    """The report with the trajectory time series (``--frames``) and the expected structures without results."""
    import xarray as xr

    from pipeline.reports.frames import frames_report, missing_report

    parts = [report, frames_report(args.frames, args.descriptors_frames)]
    if args.expected_structures:
        reasons = {}
        for path in args.failures or []:
            text = Path(path).read_text().strip().splitlines()
            reasons[Path(path).name.split(".")[0]] = text[-1] if text else "failed (no message)"
        missing = missing_report(args.expected_structures, args.structures, reasons)
        for sid, why in zip(missing["missing_structure"].values, missing["missing_reason"].values):
            log.warning("report: structure %s has no result: %s", sid, why)
        parts.append(missing)
    merged = xr.merge(parts, compat="override", combine_attrs="override")
    merged.attrs = report.attrs
    return merged


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand."""
    parser = subparsers.add_parser(
        "report",
        help="aggregate the study into a netCDF report and figures",
        description=DESCRIPTION,
        epilog=(
            "Example: python -m pipeline report --structures results/structures/*.nc "
            "--potentials results/potential/*.nc --tensor-products results/tensor_products.nc "
            "--descriptors results/descriptors/*.nc --benchmarks results/benchmarks "
            "--config results/config.json -o results/report.nc --figures-dir results/figures"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--structures", nargs="+", required=True, metavar="S.nc", help="structure records (at least one)")
    parser.add_argument("--potentials", nargs="*", default=[], metavar="P.nc", help="potential files")
    parser.add_argument("--tensor-products", metavar="TP.nc", help="tensor-product study file")
    parser.add_argument("--descriptors", nargs="*", default=[], metavar="D.nc", help="descriptor files")
    parser.add_argument("--frames", nargs="*", default=[], metavar="F.nc", help="frames files of potential-frames")
    parser.add_argument("--descriptors-frames", nargs="*", default=[], metavar="DF.nc",
                        help="descriptor files of trajectory frames (descriptors-frames)")
    parser.add_argument("--expected-structures", nargs="*", default=[], metavar="ID",
                        help="ids the study expects; those without a --structures file are listed as missing")
    parser.add_argument("--failures", nargs="*", default=[], metavar="ID.txt",
                        help="files whose last line says why structure ID failed (for the missing list)")
    parser.add_argument("--benchmarks", metavar="DIR", help="folder of Snakemake benchmark files <rule>/<target>.tsv")
    parser.add_argument("--config", metavar="FILE", help="study configuration (JSON or YAML), stored with its hash")
    parser.add_argument("-o", "--output", required=True, help="report file to write (netCDF)")
    parser.add_argument("--figures-dir", metavar="DIR", help="folder that receives the PNG figures")
    parser.set_defaults(handler=run)
