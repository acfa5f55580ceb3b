"""Self-check of a built potential against an independent reference.

The reference is exact direct summation in free space (Coulomb or screened kernel, divided by
ε_r) and a plain Ewald sum with its own splitting parameter in a periodic cell
(:mod:`.reference`).

Errors are normalised by the largest reference magnitude of the sample:
max_rel = max_i |Φ_i − Φ_i^ref| / max_i |Φ_i^ref| and rms_rel = √mean((Φ_i − Φ_i^ref)²) / max_i |Φ_i^ref|
(per-point relative errors are meaningless where Φ crosses zero). Atoms are all atoms when
n_atoms ≤ :data:`EXACT_LIMIT`, else a random sample; points are uniform in the box (periodic:
uniform over three cells around the home cell, so wrapping is checked too). When the
atom values took their long range from the build grid (``potential.atom_long``), the stored
representation is also evaluated at the sampled atoms as at any points (Tucker form plus the
rest, the path of a reloaded potential and of ``evaluate``) and its error is reported with the
same normalisation.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from pipeline.backend import to_host
from pipeline.electrostatics.reference import reference_potential

log = logging.getLogger(__name__)

#: Up to this many atoms, every atom is checked.
EXACT_LIMIT = 3000


def _errors(value, reference) -> tuple[float, float]:
    value = to_host(value)
    reference = to_host(reference)
    if reference.size == 0:  # nothing sampled (self-check turned off)
        return math.nan, math.nan
    scale = float(np.max(np.abs(reference)))
    if scale == 0.0:
        scale = 1.0
    diff = value - reference
    return float(np.max(np.abs(diff)) / scale), float(np.sqrt(np.mean(diff**2)) / scale)


def self_check(potential, atom_values, *, n_sample: int, rng: np.random.Generator, tolerance: float) -> dict:
    """Compare with direct summation at sampled atoms and random points in the box.

    Parameters
    ----------
    potential : ChebyshevTuckerPotential
    atom_values : (n_atoms,) array, e/Å
        The total potential at every atom (self excluded), as computed by the potential.
    n_sample : int
        Atoms (and points) to check; all atoms when n_atoms ≤ :data:`EXACT_LIMIT`.
    rng : numpy.random.Generator
    tolerance : float
        Requested ε; an error above 10 ε logs a WARNING and sets ``tolerance_exceeded``.

    Returns
    -------
    dict
        ``selfcheck_atoms``, ``selfcheck_points``, ``max_rel_error_atoms``, ``rms_rel_error_atoms``,
        ``max_rel_error_points``, ``rms_rel_error_points``, ``tolerance_exceeded`` (0/1), and
        ``max_rel_error_atoms_representation`` when ``potential.atom_long`` is set.
    """
    xp = potential.xp
    n_atoms = int(potential.positions.shape[0])
    if n_atoms <= EXACT_LIMIT:
        idx = np.arange(n_atoms)
    else:
        idx = np.sort(rng.choice(n_atoms, size=min(int(n_sample), n_atoms), replace=False))
    idx_x = xp.asarray(idx)
    n_points = max(int(n_sample), 1) if n_sample > 0 else 0
    if potential.periodic:
        pts = xp.asarray((3.0 * rng.random((n_points, 3)) - 1.0) @ np.asarray(potential.cell))
    else:
        lo, hi = np.asarray(potential.box_lo), np.asarray(potential.box_hi)
        pts = xp.asarray(lo + (hi - lo) * rng.random((n_points, 3)))
    # one reference evaluation for the sampled atoms and the points
    reference = reference_potential(potential, xp.concatenate([potential.positions[idx_x], pts]), tolerance=tolerance)
    ref, ref_points = reference[: idx.size], reference[idx.size :]
    max_a, rms_a = _errors(atom_values[idx_x], ref)
    # one evaluation of the representation for the atoms (when their values came from the build
    # grid) and the points, so a mid range is computed once
    with_atoms = potential.atom_long is not None
    targets = xp.concatenate([potential.positions[idx_x], pts]) if with_atoms else pts
    values = potential.potential(targets) if targets.shape[0] else xp.zeros(0)
    max_r = _errors(values[: idx.size], ref)[0] if with_atoms else None
    max_p = rms_p = math.nan
    if n_points:
        point_values = values[idx.size :] if with_atoms else values
        max_p, rms_p = _errors(point_values, ref_points)
    worst = float(np.nanmax([max_a, max_p, np.nan if max_r is None else max_r, 0.0]))
    exceeded = int(worst > 10 * tolerance)
    log.info(
        "self-check: %d atoms max_rel=%.2e rms_rel=%.2e; %d points max_rel=%.2e rms_rel=%.2e",
        idx.size, max_a, rms_a, n_points, max_p, rms_p,
    )
    if max_r is not None:
        log.info("self-check: stored representation at the %d atoms: max_rel=%.2e", idx.size, max_r)
    if exceeded:
        log.warning("self-check error %.2e exceeds 10x the requested tolerance %.1e", worst, tolerance)
    return {
        "selfcheck_atoms": int(idx.size),
        "selfcheck_points": int(n_points),
        "max_rel_error_atoms": max_a,
        "rms_rel_error_atoms": rms_a,
        "max_rel_error_points": max_p,
        "rms_rel_error_points": rms_p,
        "tolerance_exceeded": exceeded,
        **({} if max_r is None else {"max_rel_error_atoms_representation": max_r}),
    }
