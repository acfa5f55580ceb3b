"""``python -m pipeline descriptors``: per-atom equivariant descriptors of a structure and its potential."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the numerical modules are imported in the functions that use them (fast --help)
    import numpy as np

    from pipeline.structures.record import Structure

log = logging.getLogger(__name__)

EXAMPLE = (
    "Example: python -m pipeline descriptors results/structures/adk.nc --potential results/potential/adk.nc "
    "-o results/descriptors/adk.nc --lmax 2 --cutoff 6 --n-radial 4 --sphere-radius 2"
)
#: Largest distance (Å) between an atom of the structure and the same atom in the potential file.
POSITION_TOLERANCE_A = 1e-6


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``descriptors`` subcommand."""
    parser = subparsers.add_parser(
        "descriptors",
        help="per-atom equivariant descriptors from the structure and its long-range potential",
        description=(
            "For every atom: the charge-weighted neighbour density expansion A_nlm (smooth cutoff,\n"
            "Gaussian radial basis), the long-range potential expanded on a sphere of radius rho\n"
            "(Chebyshev-Tucker evaluation, exact quadrature), and their tensor products by cg,\n"
            "gaunt_fourier, gaunt_grid and gaunt_grid+vector_gaunt. A seeded sample of atoms is\n"
            "recomputed after a random rotation + inversion to record the equivariance error per method."
        ),
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("structure", help="structure record (netCDF from the ingest or lattice stage)")
    parser.add_argument("--potential", required=True, help="potential file of the same structure (netCDF from the potential stage)")
    parser.add_argument("-o", "--output", required=True, help="descriptors file to write (netCDF)")
    parser.add_argument("--lmax", type=int, default=2, help="largest degree L, 0..8 (default 2)")
    parser.add_argument("--cutoff", type=float, default=6.0, help="neighbour cutoff of the density expansion, Å (default 6)")
    parser.add_argument("--n-radial", type=int, default=4, help="radial basis functions, 1..16 (default 4)")
    parser.add_argument("--sphere-radius", type=float, default=2.0, help="radius of the potential spheres, Å (default 2)")
    parser.add_argument("--band-limit", type=int, help="degree of the sphere potential integrated exactly (default L+16)")
    parser.add_argument("--validation-atoms", type=int, default=64, help="atoms in the equivariance check, 0 = off (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the validation sample and rotation (default 0)")
    parser.add_argument("--max-memory", metavar="SIZE",
                        help="refuse a run estimated to need more memory, e.g. 8G or 500M (default: what is available)")
    parser.set_defaults(handler=run)


def check_consistency(structure: Structure, structure_path: str, potential_ds, potential_path: str) -> None:
    """The potential file must belong to the structure: same structure_id, atom count and positions."""
    import numpy as np

    n_pot = int(potential_ds["positions"].shape[0]) if "positions" in potential_ds else -1
    if n_pot != structure.n_atoms:
        raise ValueError(
            f"{potential_path}: potential has {n_pot} atoms but structure {structure_path} has {structure.n_atoms}; "
            "rebuild the potential from this structure"
        )
    sid, pid = structure.attrs.get("structure_id"), potential_ds.attrs.get("structure_id")
    if sid is not None and pid is not None and str(sid) != str(pid):
        raise ValueError(
            f"{potential_path}: potential belongs to structure_id {pid!r}, but {structure_path} has structure_id {sid!r}"
        )
    shift = float(np.max(np.abs(np.asarray(potential_ds["positions"].values) - structure.positions))) if n_pot else 0.0
    if shift > POSITION_TOLERANCE_A:
        raise ValueError(
            f"{potential_path}: atom positions differ from {structure_path} by up to {shift:.3g} Å "
            f"(tolerance {POSITION_TOLERANCE_A:g} Å); rebuild the potential from this structure"
        )


def check_box(positions: np.ndarray, box_lo, box_hi, radius: float, potential_path: str) -> None:
    """Every sphere of radius ``radius`` around an atom must lie in the potential's Chebyshev box."""
    import numpy as np

    lo = positions.min(axis=0) - radius
    hi = positions.max(axis=0) + radius
    outside = max(float(np.max(np.asarray(box_lo) - lo)), float(np.max(hi - np.asarray(box_hi))))
    if outside > 1e-9:
        raise ValueError(
            f"{potential_path}: spheres of radius {radius:g} Å around the atoms reach {outside:.3g} Å outside the "
            f"potential's Chebyshev box lo={list(box_lo)} hi={list(box_hi)} Å; use a smaller --sphere-radius or "
            "rebuild the potential with a larger --padding"
        )


def run(args: argparse.Namespace) -> int:
    """Compute the descriptors and write ``args.output``; returns the exit status."""
    import numpy as np

    from pipeline.descriptors.compute import DescriptorParameters, compute_descriptors, estimate_descriptor_bytes
    from pipeline.descriptors.dataset import descriptors_to_dataset
    from pipeline.descriptors.sphere_potential import sphere_evaluator
    from pipeline.electrostatics.storage import potential_from_dataset
    from pipeline.resources import check_memory, parse_memory_size
    from pipeline.storage import read_netcdf, write_netcdf
    from pipeline.structures.record import load_structure

    max_memory = None if args.max_memory is None else parse_memory_size(args.max_memory)
    start = time.perf_counter()
    params = DescriptorParameters(
        lmax=args.lmax, cutoff_A=args.cutoff, n_radial=args.n_radial, sphere_radius_A=args.sphere_radius,
        band_limit=args.band_limit, n_validation=args.validation_atoms, seed=args.seed,
    )
    if not Path(args.potential).is_file():
        raise FileNotFoundError(f"{args.potential}: potential file not found (run `python -m pipeline potential` first)")
    structure = load_structure(args.structure)
    if structure.n_atoms == 0:
        raise ValueError(f"{args.structure}: the structure is empty (0 atoms)")
    check_memory(estimate_descriptor_bytes(structure.positions, params), limit_bytes=max_memory,
                 what=f"descriptors of {structure.n_atoms} atoms (--lmax {params.lmax}, --n-radial {params.n_radial}, "
                      f"--cutoff {params.cutoff_A:g} Å)",
                 setting="lower --lmax, --n-radial or --cutoff, or set --max-memory")
    potential_ds = read_netcdf(args.potential)
    potential = potential_from_dataset(potential_ds, source=str(args.potential))
    check_consistency(structure, args.structure, potential_ds, args.potential)
    if not potential.periodic:  # a periodic potential wraps every point into its cell
        check_box(structure.positions, potential.box_lo, potential.box_hi, params.sphere_radius_A, args.potential)

    load_s = time.perf_counter() - start
    cell = np.asarray(potential.cell) if potential.periodic else None
    result = compute_descriptors(structure.positions, structure.charges, sphere_evaluator(potential), params, cell=cell)
    result.timings_s = {"load": load_s, **result.timings_s}
    result.total_s = time.perf_counter() - start  # the stage: reading the inputs and computing
    dataset = descriptors_to_dataset(
        result,
        attrs={
            "structure_id": str(structure.attrs.get("structure_id", Path(args.structure).stem)),
            "structure_file": str(args.structure),
            "potential_file": str(args.potential),
            "structure_source": str(structure.attrs.get("source", "")),
            "potential_tolerance": float(potential_ds.attrs.get("tolerance", np.nan)),
            # the sphere potential is the stored long range, of the split with this largest exponent
            "long_range_alpha_per_A": float(potential.split.t_max),
        },
    )
    # uncompressed: the product features are float64 values zlib hardly shrinks (it saved only the
    # NaN padding, at ~25 MB/s: 15-30 s of a 10^5-atom run)
    write_netcdf(dataset, args.output, compress=False)
    errors = ", ".join(f"{m} {e:.1e}" for m, e in zip(dataset["method"].values, dataset["equivariance_error"].values))
    log.info("wrote %s: %d atoms, equivariance error %s, %.2fs", args.output, structure.n_atoms, errors, result.total_s)
    return 0
