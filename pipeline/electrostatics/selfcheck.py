"""Self-check of a built potential against exact direct summation.

Errors are normalised by the largest reference magnitude of the sample:
max_rel = max_i |Φ_i − Φ_i^ref| / max_i |Φ_i^ref| and rms_rel = √mean((Φ_i − Φ_i^ref)²) / max_i |Φ_i^ref|
(per-point relative errors are meaningless where Φ crosses zero). Atoms are all atoms when
n_atoms ≤ :data:`EXACT_LIMIT`, else a random sample; points are uniform in the box. When the
atom values took their long range from the build grid (``potential.atom_long``), the Tucker
form is evaluated at the sampled atoms too and the largest difference between the two long
ranges is reported with the same normalisation (it is the Tucker error that points and maps see).
"""

from __future__ import annotations

import logging

import numpy as np

from pipeline.backend import to_host
from pipeline.electrostatics.direct import direct_potential

log = logging.getLogger(__name__)

#: Up to this many atoms, every atom is checked.
EXACT_LIMIT = 3000


def _errors(value, reference) -> tuple[float, float]:
    value = to_host(value)
    reference = to_host(reference)
    scale = float(np.max(np.abs(reference))) if reference.size else 0.0
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
        ``max_rel_diff_long_tucker_vs_grid`` when ``potential.atom_long`` is set.
    """
    xp = potential.xp
    n_atoms = int(potential.positions.shape[0])
    if n_atoms <= EXACT_LIMIT:
        idx = np.arange(n_atoms)
    else:
        idx = np.sort(rng.choice(n_atoms, size=min(int(n_sample), n_atoms), replace=False))
    idx_x = xp.asarray(idx)
    ref = direct_potential(potential.positions[idx_x], potential.positions, potential.charges)
    max_a, rms_a = _errors(atom_values[idx_x], ref)
    long_diff = None
    if potential.atom_long is not None:
        scale = float(np.max(np.abs(to_host(ref)))) or 1.0
        tucker = to_host(potential.long_range(potential.positions[idx_x]))
        long_diff = float(np.max(np.abs(tucker - to_host(potential.atom_long[idx_x])))) / scale
    n_points = max(int(n_sample), 1) if n_sample > 0 else 0
    max_p = rms_p = 0.0
    if n_points:
        lo, hi = np.asarray(potential.box_lo), np.asarray(potential.box_hi)
        pts = xp.asarray(lo + (hi - lo) * rng.random((n_points, 3)))
        max_p, rms_p = _errors(potential.potential(pts), direct_potential(pts, potential.positions, potential.charges))
    worst = max(max_a, max_p)
    exceeded = int(worst > 10 * tolerance)
    log.info(
        "self-check: %d atoms max_rel=%.2e rms_rel=%.2e; %d points max_rel=%.2e rms_rel=%.2e",
        idx.size, max_a, rms_a, n_points, max_p, rms_p,
    )
    if long_diff is not None:
        log.info("self-check: long range at the atoms, Tucker form vs build grid: max_rel=%.2e", long_diff)
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
        **({} if long_diff is None else {"max_rel_diff_long_tucker_vs_grid": long_diff}),
    }
