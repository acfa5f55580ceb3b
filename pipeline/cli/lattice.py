"""``python -m pipeline lattice``: generate an ionic crystal and write it as a structure record."""

from __future__ import annotations

import argparse
import logging
import time

from pipeline.structures.choices import CELLS, IMPURITY_SITES, LATTICE_TYPES, TERMINATIONS

log = logging.getLogger(__name__)

DESCRIPTION = """\
Generate an ionic crystal directly as arrays and write the normalised structure record.
rocksalt (Na+/Cl-, 8 n^3 ions), cscl (Cs+/Cl-, 2 n^3), zincblende (Zn2+/S2-, 8 n^3) are
n x n x n conventional cubic cells of lattice constant A (Å): a finite block in vacuum, or
with --periodic a periodic supercell whose box (n A, 90° angles) is stored in the record
(--cell primitive: n^3 triclinic fcc cells of rock salt, edge A/sqrt(2), angles 60°, 2 ions
each). evjen is the neutral Evjen-weighted NaCl cube of (2n+1)^3 ions at multiples of A/2 in
[-n, n]^3 around a centre cation (boundary charges halved per coordinate), used for
Madelung constants; evjen_cscl and evjen_zincblende are the CsCl and zinc-blende cubes
reaching n conventional cells from the centre cation to a face, with cations or anions on
the faces (--termination; a cube of either alone converges to the Madelung constant
shifted by its mean inner potential, 'mixed' averages both and converges to it).
Vacancies remove round(F x cations) cations and as many anions (neutral); impurities give
round(F x sites) sites of one sublattice the charge Q (the net charge changes). Draws use
numpy.random.default_rng(SEED)."""

EPILOG = """\
Example: python -m pipeline lattice --type rocksalt --cells 50 --lattice-constant 5.64 -o results/structures/nacl_50.nc
         python -m pipeline lattice --type rocksalt --cells 4 --lattice-constant 5.64 --periodic -o nacl_periodic.nc
         python -m pipeline lattice --type evjen --cells 8 --lattice-constant 5.64 -o results/structures/evjen_8.nc
         python -m pipeline lattice --type evjen_cscl --cells 8 --lattice-constant 4.12 --termination mixed -o cscl_8.nc"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``lattice`` subcommand."""
    parser = subparsers.add_parser(
        "lattice",
        help="generate an ionic crystal lattice as a structure record",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--type", dest="lattice_type", required=True, choices=LATTICE_TYPES, help="lattice type")
    parser.add_argument(
        "--cells",
        required=True,
        type=int,
        metavar="N",
        help="cells per axis (evjen: half-width n in units of A/2; evjen_cscl, evjen_zincblende: cells centre to face)",
    )
    parser.add_argument(
        "--lattice-constant", required=True, type=float, metavar="A", help="conventional cubic lattice constant, Å"
    )
    parser.add_argument(
        "--periodic",
        action="store_true",
        help="write a periodic supercell: store its box in the record (crystal types only)",
    )
    parser.add_argument(
        "--cell",
        choices=CELLS,
        default="conventional",
        help="cell of a periodic crystal (primitive: triclinic rock-salt cell, needs --periodic; default conventional)",
    )
    parser.add_argument(
        "--termination",
        choices=TERMINATIONS,
        help="ions on the faces of an evjen_cscl or evjen_zincblende cube (default mixed)",
    )
    parser.add_argument(
        "--vacancy-fraction",
        type=float,
        default=0.0,
        metavar="F",
        help="fraction of cations removed with as many anions (default 0)",
    )
    parser.add_argument(
        "--impurity-fraction",
        type=float,
        default=0.0,
        metavar="F",
        help="fraction of sublattice sites substituted (default 0)",
    )
    parser.add_argument(
        "--impurity-charge",
        type=float,
        metavar="Q",
        help="charge of an impurity ion, e (required with --impurity-fraction)",
    )
    parser.add_argument(
        "--impurity-site",
        choices=IMPURITY_SITES,
        default="cation",
        help="sublattice the impurities occupy (default cation)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, metavar="S", help="random seed for vacancies and impurities (default 0)"
    )
    parser.add_argument("-o", "--output", required=True, metavar="OUT.nc", help="netCDF structure record to write")
    parser.add_argument("--id", dest="structure_id", metavar="ID", help="structure identifier (default: <type>_n<N>)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Generate the lattice and write ``args.output``; returns the exit status."""
    import numpy as np

    from pipeline.storage import write_netcdf
    from pipeline.structures.lattices import make_lattice
    from pipeline.structures.record import structure_to_dataset

    start = time.perf_counter()
    structure = make_lattice(
        args.lattice_type,
        args.cells,
        args.lattice_constant,
        vacancy_fraction=args.vacancy_fraction,
        impurity_fraction=args.impurity_fraction,
        impurity_charge=args.impurity_charge,
        impurity_site=args.impurity_site,
        seed=args.seed,
        periodic=args.periodic,
        cell=args.cell,
        termination=args.termination,
    )
    structure.attrs["structure_id"] = args.structure_id or f"{args.lattice_type}_n{args.cells}"
    write_netcdf(structure_to_dataset(structure), args.output)
    log.info(
        "lattice %s -> %s: %d ions, %d vacancies, %d impurities, net charge %+.6g e, box %s, %.2fs",
        args.lattice_type,
        args.output,
        structure.n_atoms,
        structure.attrs["n_vacancies"],
        structure.attrs["n_impurities"],
        float(np.sum(structure.charges)),
        structure.attrs["box"] or "none",
        time.perf_counter() - start,
    )
    return 0
