"""Self-check of a built potential against an independent reference.

The reference is exact direct summation in free space (Coulomb or screened kernel, divided by
ε_r) and a plain Ewald sum with its own splitting parameter in a periodic cell
(:mod:`.reference`).

The tolerance's scale (one for atoms, points and maps): Φ_scale = max_i |Φ^ref(x_i)| over the
checked atoms, the largest potential magnitude at an atom. Every error is reported relative to
it, max_rel = max |Φ − Φ^ref| / Φ_scale and rms_rel = √mean((Φ − Φ^ref)²) / Φ_scale, so a
requested tolerance ε promises |Φ(y) − Φ^ref(y)| ≤ ε Φ_scale wherever a user evaluates Φ
(per-point relative errors are meaningless where Φ crosses zero, and a scale taken from the
sampled points themselves would be set by whichever point falls closest to an atom).

Samples, drawn the way users place targets: atoms (all when n_atoms ≤ :data:`EXACT_LIMIT`, else
a random sample); random points uniform in the Chebyshev box, which includes the padding beyond
the atoms' bounding box (periodic: uniform over three cells around the home cell, so wrapping
is checked too); and the points of a coarse map of :data:`MAP_POINTS` per axis over the box
(evaluated through the map path, :meth:`~.potential.ChebyshevTuckerPotential.grid`). When the
atom values took their long range from the build grid (``potential.atom_long``), the stored
representation is also evaluated at the sampled atoms as at any points (the path of a
reloaded potential and of ``evaluate``). ``tolerance_exceeded`` is 1 when any of these errors
is above ε.
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
#: Points per axis of the coarse map of the self-check.
MAP_POINTS = 6


def _errors(value, reference, scale: float) -> tuple[float, float]:
    value = to_host(value)
    reference = to_host(reference)
    if reference.size == 0:  # nothing sampled (self-check turned off)
        return math.nan, math.nan
    diff = value - reference
    return float(np.max(np.abs(diff)) / scale), float(np.sqrt(np.mean(diff**2)) / scale)


def _map_axes(potential, n: int, xp):
    """Axes of a coarse n³ map (Å): the Chebyshev box, or the periodic cell's bounding box."""
    lo, hi = potential.extent()
    # cell-centred points stay off the box faces, where a free-space map is not defined beyond
    return [xp.asarray(lo[k] + (hi[k] - lo[k]) * (np.arange(n) + 0.5) / n) for k in range(3)]


def self_check(potential, atom_values, *, n_sample: int, rng: np.random.Generator, tolerance: float) -> dict:
    """Compare with an independent reference at sampled atoms, random points and a coarse map.

    Parameters
    ----------
    potential : ChebyshevTuckerPotential
    atom_values : (n_atoms,) array, e/Å
        The total potential at every atom (self excluded), as computed by the potential.
    n_sample : int
        Atoms (and random points) to check; all atoms when n_atoms ≤ :data:`EXACT_LIMIT`;
        0 turns the check off (NaN errors).
    rng : numpy.random.Generator
    tolerance : float
        Requested ε; an error above ε logs a WARNING and sets ``tolerance_exceeded``.

    Returns
    -------
    dict
        ``selfcheck_atoms``, ``selfcheck_points``, ``selfcheck_map_points``,
        ``tolerance_scale_e_per_A`` (Φ_scale), ``max_rel_error_atoms``, ``rms_rel_error_atoms``,
        ``max_rel_error_points``, ``rms_rel_error_points``, ``max_rel_error_map``,
        ``max_rel_error`` (the largest of them), ``tolerance_exceeded`` (0/1), and
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
    n_map = MAP_POINTS if n_sample > 0 else 0
    axes = _map_axes(potential, n_map, xp)
    map_pts = xp.stack([g.reshape(-1) for g in xp.meshgrid(*axes, indexing="ij")], axis=1)
    # one reference evaluation for the sampled atoms, the points and the map (none when nothing is sampled)
    targets = xp.concatenate([potential.positions[idx_x], pts, map_pts])
    reference = reference_potential(potential, targets, tolerance=tolerance) if targets.shape[0] else xp.zeros(0)
    ref, ref_points, ref_map = reference[: idx.size], reference[idx.size : idx.size + n_points], reference[idx.size + n_points :]
    scale = float(np.max(np.abs(to_host(ref)))) if idx.size else math.nan
    if not scale > 0:
        scale = 1.0
    max_a, rms_a = _errors(atom_values[idx_x], ref, scale)
    # one evaluation of the representation for the atoms (when their values came from the build
    # grid) and the points, so a mid range is computed once
    with_atoms = potential.atom_long is not None
    targets = xp.concatenate([potential.positions[idx_x], pts]) if with_atoms else pts
    values = potential.potential(targets) if targets.shape[0] else xp.zeros(0)
    max_r = _errors(values[: idx.size], ref, scale)[0] if with_atoms else None
    max_p = rms_p = max_m = math.nan
    if n_points:
        point_values = values[idx.size :] if with_atoms else values
        max_p, rms_p = _errors(point_values, ref_points, scale)
    if n_map:
        max_m = _errors(potential.grid(*axes).reshape(-1), ref_map, scale)[0]
    worst = float(np.nanmax([max_a, max_p, max_m, np.nan if max_r is None else max_r, 0.0]))
    exceeded = int(worst > tolerance)
    log.info(
        "self-check (errors relative to max |phi| at the atoms = %.4g e/A): %d atoms max=%.2e rms=%.2e; "
        "%d points max=%.2e rms=%.2e; %d map points max=%.2e",
        scale, idx.size, max_a, rms_a, n_points, max_p, rms_p, n_map**3, max_m,
    )
    if max_r is not None:
        log.info("self-check: stored representation at the %d atoms: max=%.2e", idx.size, max_r)
    if exceeded:
        log.warning("self-check error %.2e exceeds the requested tolerance %.1e", worst, tolerance)
    return {
        "selfcheck_atoms": int(idx.size),
        "selfcheck_points": int(n_points),
        "selfcheck_map_points": int(n_map**3),
        "tolerance_scale_e_per_A": scale,
        "max_rel_error_atoms": max_a,
        "rms_rel_error_atoms": rms_a,
        "max_rel_error_points": max_p,
        "rms_rel_error_points": rms_p,
        "max_rel_error_map": max_m,
        "max_rel_error": worst if n_sample > 0 else math.nan,
        "tolerance_exceeded": exceeded,
        **({} if max_r is None else {"max_rel_error_atoms_representation": max_r}),
    }
