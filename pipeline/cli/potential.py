"""``python -m pipeline potential``: build the range-separated potential of a structure file.

Also holds what the scatter–gather subcommands (``potential-chunk``, ``potential-gather``)
share with it: the parameter options, the structure loading and the final step (potential at
every atom, self-check, file).
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np

from pipeline.backend import synchronize, to_host, xp_for_device
from pipeline.electrostatics.build import DEFAULT_MAX_STORAGE_BYTES, MAX_SPAN_A, build_potential, prepare_build
from pipeline.electrostatics.parameters import DEFAULT_PADDING
from pipeline.electrostatics.selfcheck import self_check
from pipeline.electrostatics.splitting import SPLITS, check_tolerance
from pipeline.electrostatics.storage import potential_to_dataset
from pipeline.resources import parse_memory_size
from pipeline.storage import write_netcdf
from pipeline.structures.record import load_structure

log = logging.getLogger(__name__)

EXAMPLE = "Example: python -m pipeline potential results/structures/adk.nc -o results/potential/adk.nc --tolerance 1e-7"


def add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that fix the build plan (every scatter–gather job must receive the same ones)."""
    parser.add_argument("--tolerance", type=float, default=1e-6, help="target relative accuracy in [1e-12, 1e-2] (default 1e-6)")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu", help="array backend (default cpu)")
    parser.add_argument("--split", choices=SPLITS, default="ewald", help="splitting of 1/r (default ewald)")
    parser.add_argument("--alpha", type=float, help="split parameter in 1/Å (default: cost model)")
    parser.add_argument("--cutoff", type=float, help="short-range cutoff in Å (default: from alpha and tolerance)")
    parser.add_argument("--degree", type=int, help="Chebyshev nodes per axis (default: degree rule)")
    parser.add_argument("--padding", type=float, default=DEFAULT_PADDING,
                        help=f"Å added around the atoms for the Chebyshev box (default {DEFAULT_PADDING})")
    parser.add_argument("--max-memory", metavar="SIZE",
                        help="refuse a build estimated to need more memory, e.g. 8G or 500M (default: what is available)")
    parser.add_argument("--allow-large-span", action="store_true",
                        help=f"accept atoms spanning more than {MAX_SPAN_A:.0f} Å along an axis")


def add_finish_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the compression and self-check (``potential`` and ``potential-gather``)."""
    parser.add_argument("--ranks", type=int, nargs=3, metavar=("R1", "R2", "R3"), help="fixed Tucker ranks")
    parser.add_argument("--hooi-sweeps", type=int, default=0, help="HOOI refinement sweeps (default 0)")
    parser.add_argument("--max-storage", type=int, default=DEFAULT_MAX_STORAGE_BYTES, metavar="BYTES",
                        help="limit on the stored long range; above it the representation is stored at a smaller "
                             f"alpha (default {DEFAULT_MAX_STORAGE_BYTES}, 1%% of a 129^3 float64 map; 0: no limit)")
    parser.add_argument("--self-check", type=int, default=200, metavar="N",
                        help="atoms and points compared with direct summation (all atoms when ≤ 3000; default 200)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the self-check sample (default 0)")


def load_inputs(args: argparse.Namespace):
    """(structure, positions, charges) on the backend of ``--device``, checking the tolerance first."""
    check_tolerance(args.tolerance, name="--tolerance")
    structure = load_structure(args.structure)
    if structure.n_atoms == 0:
        raise ValueError(f"{args.structure}: the structure is empty (0 atoms)")
    xp = xp_for_device(args.device)
    return structure, xp.asarray(structure.positions), xp.asarray(structure.charges)


def plan_options(args: argparse.Namespace) -> dict:
    """Keyword arguments of :func:`prepare_build` from the plan options."""
    return {"tolerance": args.tolerance, "split": args.split, "alpha": args.alpha, "cutoff": args.cutoff,
            "degree": args.degree, "padding": args.padding, "allow_large_span": args.allow_large_span,
            "max_memory_bytes": None if args.max_memory is None else parse_memory_size(args.max_memory)}


def setup_for(args: argparse.Namespace, positions, charges):
    """The :class:`BuildSetup` of the whole structure under the plan options."""
    return prepare_build(positions, charges, **plan_options(args))


def check_finish_arguments(args: argparse.Namespace) -> None:
    """``ValueError`` naming the option for a negative --max-storage or --hooi-sweeps."""
    if args.max_storage < 0:
        raise ValueError(f"--max-storage must be ≥ 0 bytes (0: no limit), got {args.max_storage}")
    if args.hooi_sweeps < 0:
        raise ValueError(f"--hooi-sweeps must be ≥ 0, got {args.hooi_sweeps}")


def finish(potential, structure, args: argparse.Namespace, timings: dict) -> int:
    """Potential at every atom, self-check and the potential file (shared by potential and gather)."""
    t0 = time.perf_counter()
    total, short, long = potential.at_atoms()
    synchronize(potential.xp)
    timings["atom_potentials"] = time.perf_counter() - t0
    log.info("atom potentials: %d atoms in %.2fs", structure.n_atoms, timings["atom_potentials"])
    t0 = time.perf_counter()
    check = self_check(potential, total, n_sample=args.self_check, rng=np.random.default_rng(args.seed),
                       tolerance=potential.params["tolerance"])
    timings["self_check"] = time.perf_counter() - t0
    dataset = potential_to_dataset(
        potential, total=total, short=short, long=long, timings=timings, selfcheck=check, structure_attrs=structure.attrs,
    )
    dataset.attrs["input_file"] = str(args.structure)
    dataset.attrs["self_check_seed"] = int(args.seed)
    write_netcdf(dataset, args.output)
    energy = 0.5 * float(np.dot(to_host(potential.charges), to_host(total)))
    log.info("wrote %s: energy %.6g e^2/A, ranks %s, %d bytes", args.output, energy, potential.ranks, potential.storage_bytes)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "potential",
        help="build the range-separated Chebyshev-Tucker potential of a structure",
        description=(
            "Split 1/r into an exact short range (within a cutoff) and a smooth long range stored as\n"
            "Tucker-compressed Chebyshev coefficients over a box; evaluate the potential at every atom,\n"
            "the energy, and check the error against direct summation. Every parameter chosen from\n"
            "--tolerance can be overridden. For very large structures see potential-chunk and\n"
            "potential-gather (the same result built from atom chunks in separate jobs)."
        ),
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("structure", help="structure record (netCDF from the ingest stage)")
    parser.add_argument("-o", "--output", required=True, help="potential file to write (netCDF)")
    add_plan_arguments(parser)
    add_finish_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    check_finish_arguments(args)
    structure, positions, charges = load_inputs(args)
    potential, info = build_potential(positions, charges, ranks=args.ranks, hooi_sweeps=args.hooi_sweeps,
                                      max_storage_bytes=args.max_storage, **plan_options(args))
    return finish(potential, structure, args, dict(info["timings"]))
