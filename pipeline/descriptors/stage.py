"""The descriptors stage as the command line and the workflow run it: structure and potential files in, descriptors file out.

:func:`run_descriptors` loads the structure record and its potential file, checks that they
belong together (:func:`check_consistency`) and that the sphere grids fit the potential's box
(:func:`check_box`; a periodic potential wraps every point), estimates the memory, computes the
descriptors (:func:`~pipeline.descriptors.compute.compute_descriptors`, with the periodic cell
when the potential has one, on the device of ``params.device`` with a second copy of the
potential there) and writes the file atomically.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from pathlib import Path

import numpy as np

from pipeline.backend import backend_name, xp_for_device
from pipeline.descriptors.compute import DescriptorParameters, compute_descriptors, estimate_descriptor_bytes
from pipeline.descriptors.dataset import PRODUCT_STORAGE_DTYPE, descriptors_file_variables
from pipeline.descriptors.sphere_potential import sphere_evaluator
from pipeline.electrostatics.potential_file import POTENTIAL_VARIABLES, potential_from_variables
from pipeline.resources import check_memory
from pipeline.storage import read_variables, write_variables
from pipeline.structures.record import Structure, load_structure

log = logging.getLogger(__name__)

#: Largest distance (Å) between an atom of the structure and the same atom in the potential file.
POSITION_TOLERANCE_A = 1e-6


def check_consistency(structure: Structure, structure_path: str, potential_positions, potential_attrs: dict,
                      potential_path: str) -> None:
    """The potential file must belong to the structure: same structure_id, atom count and positions.

    ``potential_positions`` is the file's (n_atoms, 3) Å array (None when it has none) and
    ``potential_attrs`` its global attributes.
    """
    n_pot = int(potential_positions.shape[0]) if potential_positions is not None else -1
    if n_pot != structure.n_atoms:
        raise ValueError(
            f"{potential_path}: potential has {n_pot} atoms but structure {structure_path} has {structure.n_atoms}; "
            "rebuild the potential from this structure"
        )
    sid, pid = structure.attrs.get("structure_id"), potential_attrs.get("structure_id")
    if sid is not None and pid is not None and str(sid) != str(pid):
        raise ValueError(
            f"{potential_path}: potential belongs to structure_id {pid!r}, but {structure_path} has structure_id {sid!r}"
        )
    shift = float(np.max(np.abs(np.asarray(potential_positions) - structure.positions))) if n_pot else 0.0
    if shift > POSITION_TOLERANCE_A:
        raise ValueError(
            f"{potential_path}: atom positions differ from {structure_path} by up to {shift:.3g} Å "
            f"(tolerance {POSITION_TOLERANCE_A:g} Å); rebuild the potential from this structure"
        )


def check_box(positions: np.ndarray, box_lo, box_hi, radius: float, potential_path: str) -> None:
    """Every sphere of radius ``radius`` around an atom must lie in the potential's Chebyshev box."""
    lo = positions.min(axis=0) - radius
    hi = positions.max(axis=0) + radius
    outside = max(float(np.max(np.asarray(box_lo) - lo)), float(np.max(hi - np.asarray(box_hi))))
    if outside > 1e-9:
        raise ValueError(
            f"{potential_path}: spheres of radius {radius:g} Å around the atoms reach {outside:.3g} Å outside the "
            f"potential's Chebyshev box lo={list(box_lo)} hi={list(box_hi)} Å; use a smaller --sphere-radius or "
            "rebuild the potential with a larger --padding"
        )


def run_descriptors(structure_path, potential_path, output, params: DescriptorParameters, *,
                    max_memory_bytes: int | None = None) -> None:
    """Compute the descriptors of a structure file with its potential file and write ``output`` (netCDF).

    Raises
    ------
    FileNotFoundError, ValueError
        A missing input, a potential of another structure, spheres outside a free-space
        potential's box, or a memory estimate over the limit (one line naming the setting).
    RuntimeError
        ``params.device`` is ``"cuda"`` without CuPy or a usable GPU (before any input is read).
    """
    start = time.perf_counter()
    xp = xp_for_device(params.device)
    if not Path(potential_path).is_file():
        raise FileNotFoundError(f"{potential_path}: potential file not found (run `python -m pipeline potential` first)")
    structure = load_structure(structure_path, annotations=False)
    if structure.n_atoms == 0:
        raise ValueError(f"{structure_path}: the structure is empty (0 atoms)")
    check_memory(estimate_descriptor_bytes(structure.positions, params), limit_bytes=max_memory_bytes,
                 what=f"descriptors of {structure.n_atoms} atoms (--lmax {params.lmax}, --n-radial {params.n_radial}, "
                      f"--cutoff {params.cutoff_A:g} Å)",
                 setting="lower --lmax, --n-radial or --cutoff, or set --max-memory")
    values, potential_attrs = read_variables(potential_path, POTENTIAL_VARIABLES)
    potential = potential_from_variables(values, potential_attrs, source=str(potential_path))
    check_consistency(structure, structure_path, values.get("positions"), potential_attrs, potential_path)
    if not potential.periodic:  # a periodic potential wraps every point into its cell
        check_box(structure.positions, potential.box_lo, potential.box_hi, params.sphere_radius_A, potential_path)

    load_s = time.perf_counter() - start
    cell = np.asarray(potential.cell) if potential.periodic else None
    on_device = potential if backend_name(xp) == "numpy" else potential_from_variables(values, potential_attrs, xp=xp,
                                                                                        source=str(potential_path))
    # every sphere lies in the box (check_box above) or is wrapped into the cell: no check per batch
    result = compute_descriptors(structure.positions, structure.charges, sphere_evaluator(potential), params, cell=cell,
                                 device_potential=partial(on_device.long_range, check=False),
                                 product_dtype=PRODUCT_STORAGE_DTYPE)
    result.timings_s = {"load": load_s, **result.timings_s}
    result.total_s = time.perf_counter() - start  # the stage: reading the inputs and computing
    variables, coordinates, attrs = descriptors_file_variables(
        result,
        attrs={
            "structure_id": str(structure.attrs.get("structure_id", Path(structure_path).stem)),
            "structure_file": str(structure_path),
            "potential_file": str(potential_path),
            "structure_source": str(structure.attrs.get("source", "")),
            "potential_tolerance": float(potential_attrs.get("tolerance", np.nan)),
            # the sphere potential is the stored long range, of the split with this largest exponent
            "long_range_alpha_per_A": float(potential.split.t_max),
        },
    )
    # uncompressed: zlib hardly shrinks the product features, at ~25 MB/s (15-30 s of a 10^5-atom run);
    # netCDF4 alone, without xarray (0.25 s of imports)
    write_variables(variables, attrs, output, coordinates=coordinates, compress=False)
    errors = ", ".join(f"{m} {e:.1e}" for m, e in zip(variables["method"][1], variables["equivariance_error"][1]))
    log.info("wrote %s: %d atoms, equivariance error %s, %.2fs", output, structure.n_atoms, errors, result.total_s)
