"""``python -m pipeline ingest``: read a structure file into the normalised netCDF record."""

from __future__ import annotations

import argparse
import logging
import time

from pipeline.structures.choices import FFOUT_NAMES, FORCEFIELDS

log = logging.getLogger(__name__)

DESCRIPTION = """\
Read one structure (PQR, PDB, GRO, mmCIF, a PSF/TPR/PRMTOP topology with a coordinate
file, or any other topology format MDAnalysis reads, e.g. a LAMMPS data file with
--format DATA) and write the normalised structure record: positions (Å), partial charges
(e), radii, elements, residue and chain labels, provenance. SOURCE is a path or
mdanalysistests:NAME for a data file of the MDAnalysisTests package (e.g.
mdanalysistests:PQR, mdanalysistests:TPR). Files without partial charges (PDB, mmCIF) need
--forcefield: pdb2pqr adds hydrogens and assigns charges and radii (--ph: protonation
states from PROPKA at that pH; --ffout: residue and atom names of another force field).
Residues it cannot parameterise (ligands, modified residues such as CSO, unknown waters and
ions) are left out, named in a warning and listed in the record's 'dropped' attribute; to
keep a ligand, ingest a topology with its charges (PQR, PSF, TPR, PRMTOP). --pqr also
writes the charged structure as PQR. Nothing is written when a check fails."""

EPILOG = """\
Example: python -m pipeline ingest mdanalysistests:TPR --coordinates mdanalysistests:GRO -o results/structures/adk.nc
         python -m pipeline ingest protein.pdb --forcefield AMBER --ph 7.4 --pqr protein.pqr -o results/structures/protein.nc
         python -m pipeline ingest mdanalysistests:LAMMPSdata -o results/structures/lammps.nc"""


def quiet_mdanalysis(verbose: bool) -> None:
    """Keep MDAnalysis' own INFO messages out of the stage log unless ``-v`` is given."""
    if not verbose:
        logging.getLogger("MDAnalysis").setLevel(logging.WARNING)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ingest`` subcommand."""
    parser = subparsers.add_parser(
        "ingest",
        help="read a structure file into the normalised netCDF record",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source", metavar="SOURCE", help="structure or topology file, or mdanalysistests:NAME")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.nc", help="netCDF structure record to write")
    parser.add_argument(
        "--coordinates",
        metavar="FILE",
        help="coordinate file for a topology (PSF, PRMTOP: required; TPR: optional); first frame used",
    )
    parser.add_argument(
        "--forcefield",
        choices=FORCEFIELDS,
        type=str.upper,
        help="assign charges with pdb2pqr for files without partial charges (PDB, mmCIF)",
    )
    parser.add_argument(
        "--format",
        dest="fmt",
        metavar="FMT",
        help="format of SOURCE (pqr, pdb, gro, cif, psf, tpr, prmtop, or an MDAnalysis topology format such as "
        "DATA, MOL2, XYZ); default from the extension",
    )
    parser.add_argument(
        "--ph",
        type=float,
        metavar="PH",
        help="with --forcefield: protonation states from PROPKA at this pH (pdb2pqr --titration-state-method propka)",
    )
    parser.add_argument(
        "--ffout",
        choices=FFOUT_NAMES,
        type=str.upper,
        help="with --forcefield: residue and atom names of this force field in the output (pdb2pqr --ffout)",
    )
    parser.add_argument(
        "--pqr",
        metavar="OUT.pqr",
        help="also write the charged structure as a PQR file (positions, charges, radii), after the record",
    )
    parser.add_argument(
        "--id",
        dest="structure_id",
        metavar="ID",
        help="structure identifier stored in the record (default: file name without extensions)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Ingest ``args.source`` and write ``args.output`` (and ``args.pqr``); returns the exit status."""
    import numpy as np

    from pipeline.storage import write_netcdf
    from pipeline.structures.ingest import ingest
    from pipeline.structures.pqr import write_pqr
    from pipeline.structures.record import structure_to_dataset

    quiet_mdanalysis(getattr(args, "verbose", False))
    start = time.perf_counter()
    structure = ingest(
        args.source,
        coordinates=args.coordinates,
        forcefield=args.forcefield,
        fmt=args.fmt,
        structure_id=args.structure_id,
        ph=args.ph,
        ffout=args.ffout,
    )
    write_netcdf(structure_to_dataset(structure), args.output)
    if args.pqr:
        write_pqr(structure, args.pqr)
    log.info(
        "ingest %s -> %s: %d atoms, net charge %+.4f e, charges from %s, %d dropped, %.2fs",
        args.source,
        args.output,
        structure.n_atoms,
        float(np.sum(structure.charges)),
        structure.attrs["charge_source"],
        len(structure.attrs["dropped"]),
        time.perf_counter() - start,
    )
    return 0
