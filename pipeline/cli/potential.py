"""``python -m pipeline potential``: build the range-separated potential of a structure file."""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np

from pipeline.backend import to_host, xp_for_device
from pipeline.electrostatics.build import build_potential
from pipeline.electrostatics.parameters import DEFAULT_PADDING
from pipeline.electrostatics.selfcheck import self_check
from pipeline.electrostatics.splitting import SPLITS, check_tolerance
from pipeline.electrostatics.storage import potential_to_dataset
from pipeline.storage import write_netcdf
from pipeline.structures.record import load_structure

log = logging.getLogger(__name__)

EXAMPLE = "Example: python -m pipeline potential results/structures/adk.nc -o results/potential/adk.nc --tolerance 1e-7"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "potential",
        help="build the range-separated Chebyshev-Tucker potential of a structure",
        description=(
            "Split 1/r into an exact short range (within a cutoff) and a smooth long range stored as\n"
            "Tucker-compressed Chebyshev coefficients over a box; evaluate the potential at every atom,\n"
            "the energy, and check the error against direct summation. Every parameter chosen from\n"
            "--tolerance can be overridden."
        ),
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("structure", help="structure record (netCDF from the ingest stage)")
    parser.add_argument("-o", "--output", required=True, help="potential file to write (netCDF)")
    parser.add_argument("--tolerance", type=float, default=1e-6, help="target relative accuracy in (0, 1e-2] (default 1e-6)")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu", help="array backend (default cpu)")
    parser.add_argument("--split", choices=SPLITS, default="ewald", help="splitting of 1/r (default ewald)")
    parser.add_argument("--alpha", type=float, help="split parameter in 1/Å (default: automatic)")
    parser.add_argument("--cutoff", type=float, help="short-range cutoff in Å (default: from alpha and tolerance)")
    parser.add_argument("--degree", type=int, help="Chebyshev nodes per axis (default: degree rule)")
    parser.add_argument("--ranks", type=int, nargs=3, metavar=("R1", "R2", "R3"), help="fixed Tucker ranks")
    parser.add_argument("--hooi-sweeps", type=int, default=0, help="HOOI refinement sweeps (default 0)")
    parser.add_argument("--padding", type=float, default=DEFAULT_PADDING,
                        help=f"Å added around the atoms for the Chebyshev box (default {DEFAULT_PADDING})")
    parser.add_argument("--self-check", type=int, default=200, metavar="N",
                        help="atoms and points compared with direct summation (all atoms when ≤ 3000; default 200)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the self-check sample (default 0)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    tolerance = check_tolerance(args.tolerance, name="--tolerance")
    structure = load_structure(args.structure)
    if structure.n_atoms == 0:
        raise ValueError(f"{args.structure}: the structure is empty (0 atoms)")
    xp = xp_for_device(args.device)
    positions = xp.asarray(structure.positions)
    charges = xp.asarray(structure.charges)
    potential, info = build_potential(
        positions, charges, tolerance=tolerance, split=args.split, alpha=args.alpha, cutoff=args.cutoff,
        degree=args.degree, ranks=args.ranks, hooi_sweeps=args.hooi_sweeps, padding=args.padding,
    )
    timings = dict(info["timings"])
    t0 = time.perf_counter()
    total, short, long = potential.at_atoms()
    timings["atom_potentials"] = time.perf_counter() - t0
    log.info("atom potentials: %d atoms in %.2fs", structure.n_atoms, timings["atom_potentials"])
    t0 = time.perf_counter()
    check = self_check(potential, total, n_sample=args.self_check, rng=np.random.default_rng(args.seed), tolerance=tolerance)
    timings["self_check"] = time.perf_counter() - t0
    dataset = potential_to_dataset(
        potential, total=total, short=short, long=long, timings=timings, selfcheck=check, structure_attrs=structure.attrs,
    )
    dataset.attrs["input_file"] = str(args.structure)
    dataset.attrs["self_check_seed"] = int(args.seed)
    write_netcdf(dataset, args.output)
    energy = 0.5 * float(np.dot(to_host(charges), to_host(total)))
    log.info("wrote %s: energy %.6g e^2/A, ranks %s, %d bytes", args.output, energy, potential.ranks, potential.storage_bytes)
    return 0
