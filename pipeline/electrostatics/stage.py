"""The potential stage as the command line and the workflow run it: structure file in, potential file out.

:func:`run_potential` (one job), :func:`run_potential_chunk` and :func:`run_potential_gather`
(scatter–gather) own the whole lifecycle: load the structure record, turn
:class:`~pipeline.electrostatics.settings.PotentialSettings` into build arguments (solvent,
periodic cell from the record's box), build, evaluate the potential at every atom, self-check
against an independent reference, and write the netCDF file atomically.
"""

from __future__ import annotations

import json
import logging
import time

import numpy as np

from pipeline.backend import namespace_of, synchronize, to_host, xp_for_device
from pipeline.electrostatics.build import assemble_potential, build_potential, prepare_build
from pipeline.electrostatics.scatter import (
    chunk_coefficients,
    chunk_to_dataset,
    gather_coefficients,
    structure_fingerprint,
)
from pipeline.electrostatics.selfcheck import self_check
from pipeline.electrostatics.settings import MAX_REPAIRS, PotentialSettings
from pipeline.electrostatics.potential_file import potential_file_variables
from pipeline.resources import parse_memory_size
from pipeline.storage import write_netcdf, write_variables
from pipeline.structures.record import Structure, load_structure

log = logging.getLogger(__name__)


def load_inputs(structure_path, settings: PotentialSettings):
    """(structure, positions, charges, cell) on the backend of ``settings.device``.

    ``cell`` is the record's box as a periodic cell when ``settings.periodic`` asks for one
    (``auto``: when the record has a box), else None.
    """
    structure = load_structure(structure_path, annotations=False)
    if structure.n_atoms == 0:
        raise ValueError(f"{structure_path}: the structure is empty (0 atoms)")
    cell = cell_for_box(structure.attrs.get("box", []), settings, source=str(structure_path))
    xp = xp_for_device(settings.device)
    return structure, xp.asarray(structure.positions), xp.asarray(structure.charges), cell


def cell_for_box(box, settings: PotentialSettings, *, source: str, label: str = "box attribute"):
    """Periodic cell matrix of ``box`` ([a, b, c, α, β, γ], Å and degrees, or empty) when the settings ask for one, else None."""
    box = [float(v) for v in np.atleast_1d(box)]
    if not settings.wants_periodic(len(box) == 6, source=source):
        return None
    from pipeline.electrostatics.periodic import cell_matrix

    try:
        return cell_matrix(box)
    except ValueError as exc:
        raise ValueError(f"{source}: {label}: {exc}") from None


def plan_arguments(settings: PotentialSettings, cell) -> dict:
    """Keyword arguments of :func:`~pipeline.electrostatics.build.prepare_build` from the settings."""
    return {"tolerance": settings.tolerance, "split": settings.split, "alpha": settings.alpha,
            "cutoff": settings.cutoff, "degree": settings.degree, "padding": settings.padding,
            "dielectric": settings.dielectric, "kappa": settings.kappa, "cell": cell,
            "accuracy_level": settings.accuracy_level, "allow_large_span": settings.allow_large_span,
            "max_memory_bytes": None if settings.max_memory is None else parse_memory_size(settings.max_memory)}


def medium_attrs(settings: PotentialSettings) -> dict:
    """File attributes of the solvent model and the settings."""
    return {"ionic_strength_M": float(settings.ionic_strength), "periodic_setting": settings.periodic}


def check_atoms(potential, settings: PotentialSettings, timings: dict):
    """Potential at every atom and its self-check: (total, short, long, check)."""
    t0 = time.perf_counter()
    total, short, long = potential.at_atoms()
    synchronize(potential.xp)
    timings["atom_potentials"] = time.perf_counter() - t0
    log.info("atom potentials: %d atoms in %.2fs", int(potential.positions.shape[0]), timings["atom_potentials"])
    t0 = time.perf_counter()
    check = self_check(potential, total, n_sample=settings.self_check, rng=np.random.default_rng(settings.seed),
                       tolerance=settings.tolerance)
    timings["self_check"] = time.perf_counter() - t0
    return total, short, long, check


def write_potential(potential, atom_values, check: dict, structure: Structure, settings: PotentialSettings,
                    timings: dict, *, output, input_file) -> None:
    """The potential file: representation, per-atom values, self-check, settings and timings."""
    total, short, long = atom_values
    potential.temperature = float(settings.temperature)
    variables, attrs = potential_file_variables(potential, total=total, short=short, long=long, timings=timings,
                                                selfcheck=check, structure_attrs=structure.attrs)
    attrs.update(medium_attrs(settings))
    attrs["input_file"] = str(input_file)
    attrs["self_check_seed"] = int(settings.seed)
    # uncompressed: per-atom float64 values shrink by only ~15 % under zlib, which took 8x the time
    # of the plain write (seconds at 10⁷ atoms)
    write_variables(variables, attrs, output, compress=False)
    energy = 0.5 * float(np.dot(to_host(potential.charges), to_host(total)))
    log.info("wrote %s: energy %.6g e^2/A, ranks %s, %d bytes", output, energy, potential.ranks, potential.storage_bytes)


def _missed(check: dict, settings: PotentialSettings) -> bool:
    return settings.self_check > 0 and bool(check["tolerance_exceeded"])


def build_checked(positions, charges, settings: PotentialSettings, *, cell=None, source: str = "structure"):
    """Build, evaluate at every atom and self-check, repairing a build that misses the tolerance.

    When the self-check's largest error exceeds ``settings.tolerance`` the potential is rebuilt
    with tighter internal tolerances (the next accuracy levels, at most
    :data:`~.settings.MAX_REPAIRS` times); the returned check records the final
    ``accuracy_level`` and the failed attempts (``repairs``, JSON). If no level meets the
    tolerance: ``ValueError`` naming ``source`` and the errors per level.

    Returns
    -------
    potential : ChebyshevTuckerPotential
    atom_values : (total, short, long), each (n_atoms,) e/Å
    check : dict
        Self-check figures (:func:`~.selfcheck.self_check`) plus ``accuracy_level``, ``repairs``.
    timings : dict
        Seconds per step of the final build (``failed_builds``: the builds that were repaired).
    """
    level, repairs, spent = settings.accuracy_level, [], 0.0
    while True:
        potential, info = build_potential(positions, charges, ranks=settings.ranks, hooi_sweeps=settings.hooi_sweeps,
                                          max_storage_bytes=settings.max_storage_bytes,
                                          **{**plan_arguments(settings, cell), "accuracy_level": level})
        timings = dict(info["timings"])
        total, short, long, check = check_atoms(potential, settings, timings)
        if not _missed(check, settings):
            break
        repairs.append({"accuracy_level": level, "max_rel_error": check["max_rel_error"]})
        if len(repairs) > MAX_REPAIRS:
            _exceeded(source, settings, repairs)
            repairs.pop()  # the attempt that is kept is not a repair
            break
        spent += sum(timings.values())
        level += 1
        log.warning("self-check error %.2e > tolerance %.1e: rebuilding at accuracy level %d (tighter grid, cutoff, "
                    "degree and Tucker tolerances)", check["max_rel_error"], settings.tolerance, level)
    if repairs:
        timings["failed_builds"] = spent
    check = {**check, "accuracy_level": int(level), "repairs": json.dumps(repairs)}
    return potential, (total, short, long), check, timings


def _exceeded(source: str, settings: PotentialSettings, attempts: list) -> None:
    """``ValueError`` for a potential that misses the tolerance, or a WARNING with ``allow_exceeded``."""
    errors = ", ".join(f"{r['accuracy_level']}: {r['max_rel_error']:.2e}" for r in attempts)
    if not settings.allow_exceeded:
        raise ValueError(
            f"{source}: the potential misses the tolerance {settings.tolerance:g} (self-check errors by accuracy level: "
            f"{errors}); ask for a looser --tolerance, check parameters set by hand (--ranks, --alpha, --cutoff, "
            "--degree), or pass --allow-exceeded to keep it flagged")
    log.warning("writing a potential that misses the tolerance %.1e (self-check errors by accuracy level: %s), "
                "flagged as tolerance_exceeded", settings.tolerance, errors)


def run_potential(structure_path, output, settings: PotentialSettings) -> dict:
    """Build the potential of a structure file and write the potential file (``python -m pipeline potential``).

    See :func:`build_checked` for the self-check and its repairs; nothing is written when the
    tolerance cannot be met.
    """
    structure, positions, charges, cell = load_inputs(structure_path, settings)
    potential, atom_values, check, timings = build_checked(positions, charges, settings, cell=cell,
                                                           source=str(structure_path))
    write_potential(potential, atom_values, check, structure, settings, timings, output=output,
                    input_file=structure_path)
    return check


def run_potential_chunk(structure_path, output, settings: PotentialSettings, *, chunk: int, chunks: int) -> None:
    """Scatter step: long-range coefficients of atom chunk ``chunk`` of ``chunks`` and their long range at every atom."""
    if chunks < 1:
        raise ValueError(f"--chunks must be ≥ 1, got {chunks}")
    if not 0 <= chunk < chunks:
        raise ValueError(f"--chunk must be in 0 … {chunks - 1}, got {chunk}")
    structure, positions, charges, cell = load_inputs(structure_path, settings)
    setup = prepare_build(positions, charges, **plan_arguments(settings, cell))
    t0 = time.perf_counter()
    coeffs, atom_long, (start, stop) = chunk_coefficients(positions, charges, setup, chunk, chunks)
    synchronize(namespace_of(coeffs))
    seconds = time.perf_counter() - t0
    log.info("chunk %d/%d: atoms %d..%d, coefficients %s in %.2fs", chunk, chunks, start, stop - 1,
             tuple(coeffs.shape), seconds)
    dataset = chunk_to_dataset(
        coeffs, atom_long, setup.params, chunk=chunk, chunks=chunks, atom_range=(start, stop), n_atoms=structure.n_atoms,
        fingerprint=structure_fingerprint(structure.positions, structure.charges), seconds=seconds,
        structure_attrs=structure.attrs,
    )
    dataset.attrs["input_file"] = str(structure_path)
    write_netcdf(dataset, output, compress=False)
    log.info("wrote %s", output)


def run_potential_gather(structure_path, chunk_files, output, settings: PotentialSettings) -> dict:
    """Gather step: sum chunk files into the potential file of the whole structure."""
    structure, positions, charges, cell = load_inputs(structure_path, settings)
    t0 = time.perf_counter()
    setup = prepare_build(positions, charges, **plan_arguments(settings, cell))
    timings = {"parameters": time.perf_counter() - t0}
    t0 = time.perf_counter()
    coeffs, atom_long, chunk_seconds = gather_coefficients(
        chunk_files, setup.params, n_atoms=structure.n_atoms,
        fingerprint=structure_fingerprint(structure.positions, structure.charges), xp=namespace_of(positions),
    )
    timings["gather"] = time.perf_counter() - t0
    timings["long_range_coefficients"] = chunk_seconds  # summed over the chunk jobs
    potential, timings["tucker"] = assemble_potential(setup, coeffs, positions, charges, ranks=settings.ranks,
                                                      hooi_sweeps=settings.hooi_sweeps, atom_long=atom_long,
                                                      max_storage_bytes=settings.max_storage_bytes)
    potential.params["chunks"] = len(chunk_files)
    total, short, long, check = check_atoms(potential, settings, timings)
    if _missed(check, settings):
        if not settings.allow_exceeded:
            raise ValueError(
                f"{structure_path}: the gathered potential misses the tolerance {settings.tolerance:g} (self-check "
                f"error {check['max_rel_error']:.2e}); rerun the chunks and the gather with --accuracy-level "
                f"{settings.accuracy_level + 1}, or pass --allow-exceeded to keep it flagged")
        _exceeded(str(structure_path), settings,
                  [{"accuracy_level": settings.accuracy_level, "max_rel_error": check["max_rel_error"]}])
    check = {**check, "accuracy_level": int(settings.accuracy_level), "repairs": "[]"}
    write_potential(potential, (total, short, long), check, structure, settings, timings, output=output,
                    input_file=structure_path)
    return check
