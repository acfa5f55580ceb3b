"""Build a :class:`ChebyshevTuckerPotential` from positions and charges with one tolerance.

Steps (one INFO line each): parameters (α, r_c, box, Chebyshev sizes), long-range
coefficients in chunks of atoms (:func:`long_range_coefficients`, summed), Tucker
compression (:func:`compress_coefficients`). Every automatic choice can be overridden.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from pipeline.backend import namespace_of, synchronize, to_host
from pipeline.electrostatics.long_range import compress_coefficients, long_range_coefficients, plan_long_range
from pipeline.electrostatics.parameters import DEFAULT_PADDING, choose_alpha, default_box
from pipeline.electrostatics.potential import ChebyshevTuckerPotential, _check_inside
from pipeline.electrostatics.splitting import check_tolerance, make_split

log = logging.getLogger(__name__)

#: Atoms per long-range chunk (the sum over chunks is exact up to rounding).
BUILD_CHUNK_ATOMS = 1_000_000


def validate_structure(positions, charges) -> None:
    """Raise ``ValueError`` for empty input, wrong shapes or non-finite values."""
    pos = to_host(positions)
    q = to_host(charges)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ValueError(f"positions must have shape (n_atoms, 3), got {pos.shape}")
    if q.shape != (pos.shape[0],):
        raise ValueError(f"charges must have shape ({pos.shape[0]},) to match positions, got {q.shape}")
    if pos.shape[0] == 0:
        raise ValueError("the structure is empty (0 atoms): nothing to build a potential for")
    if not np.all(np.isfinite(pos)):
        bad = int(np.nonzero(~np.isfinite(pos).all(axis=1))[0][0])
        raise ValueError(f"positions contain NaN or infinite values (first at atom {bad})")
    if not np.all(np.isfinite(q)):
        bad = int(np.nonzero(~np.isfinite(q))[0][0])
        raise ValueError(f"charges contain NaN or infinite values (first at atom {bad})")


def build_potential(
    positions,
    charges,
    *,
    tolerance: float = 1e-6,
    split: str = "ewald",
    alpha: float | None = None,
    cutoff: float | None = None,
    degree=None,
    ranks=None,
    hooi_sweeps: int = 0,
    box=None,
    padding: float = DEFAULT_PADDING,
    spacing: float | None = None,
):
    """Range-separated potential of point charges in the Chebyshev–Tucker format.

    Parameters
    ----------
    positions : (n_atoms, 3) float64 array (NumPy or CuPy), Å
    charges : (n_atoms,) float64 array, e
    tolerance : float
        Target relative accuracy ε in (0, 1e-2] (errors measured against max |Φ|).
    split : {"ewald", "gaussian-sum"}
    alpha : float, optional
        Split parameter, 1/Å (default: :func:`choose_alpha`).
    cutoff : float, optional
        Short-range cutoff r_c, Å (default: erfc(α r_c) = ε/10, or the numerical search of
        the Gaussian-sum split).
    degree : int or 3 ints, optional
        Chebyshev nodes per axis (default: degree rule).
    ranks : 3 ints, optional
        Fixed Tucker ranks (default: tail rule with ε).
    hooi_sweeps : int
        HOOI refinement sweeps after the HOSVD.
    box : pair of (3,) arrays, optional
        (lo, hi) of the Chebyshev box in Å (default: bounding box + ``padding``).
    padding : float
        Å added around the atoms for the default box.
    spacing : float, optional
        Override of the spreading-grid spacing, Å.

    Returns
    -------
    potential : ChebyshevTuckerPotential
    info : dict
        Parameters and per-step timings (seconds).
    """
    tolerance = check_tolerance(tolerance)
    validate_structure(positions, charges)
    xp = namespace_of(positions, charges)
    timings = {}
    t0 = time.perf_counter()
    if box is None:
        lo, hi = default_box(to_host(positions), padding)
    else:
        lo, hi = (np.asarray(b, dtype=float).reshape(3) for b in box)
        if np.any(hi <= lo):
            raise ValueError(f"box must have hi > lo on every axis, got lo={lo.tolist()} hi={hi.tolist()}")
    lo, hi = tuple(float(v) for v in lo), tuple(float(v) for v in hi)
    _check_inside(positions, lo, hi, "charges")
    if alpha is None:
        alpha = choose_alpha(lo, hi, tolerance)
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0 1/Å, got {alpha!r}")
    length = float(np.linalg.norm(np.subtract(hi, lo)))
    kernel = make_split(split, alpha, tolerance=tolerance / 10, length_scale=length)
    if cutoff is None:
        cutoff = kernel.cutoff_for(tolerance / 10, length)
    if not cutoff > 0:
        raise ValueError(f"cutoff must be > 0 Å, got {cutoff!r}")
    plan = plan_long_range(lo, hi, kernel.t_max, tolerance, degree=degree, spacing=spacing)
    timings["parameters"] = time.perf_counter() - t0
    log.info(
        "parameters: n_atoms=%d split=%s alpha=%.4g 1/A cutoff=%.3g A degree=%s grid=%s h=%.3g A",
        positions.shape[0], kernel.name, alpha, cutoff, plan.degree, plan.shape, plan.spacing,
    )

    t0 = time.perf_counter()
    coeffs = None
    for s in range(0, positions.shape[0], BUILD_CHUNK_ATOMS):
        part = long_range_coefficients(positions[s : s + BUILD_CHUNK_ATOMS], charges[s : s + BUILD_CHUNK_ATOMS], plan, kernel)
        coeffs = part if coeffs is None else coeffs + part
    synchronize(xp)
    timings["long_range_coefficients"] = time.perf_counter() - t0
    log.info("long range: coefficients %s in %.2fs", tuple(coeffs.shape), timings["long_range_coefficients"])

    t0 = time.perf_counter()
    core, factors, rel_err = compress_coefficients(coeffs, tolerance, ranks=ranks, hooi_sweeps=hooi_sweeps)
    synchronize(xp)
    timings["tucker"] = time.perf_counter() - t0
    log.info("tucker: m=%s ranks=%s rel_err=%.1e %.2fs", plan.degree, tuple(core.shape), rel_err, timings["tucker"])

    params = {
        "tolerance": tolerance,
        "alpha": float(alpha),
        "cutoff": float(cutoff),
        "degree": list(plan.degree),
        "ranks": [int(r) for r in core.shape],
        "tucker_rel_error": float(rel_err),
        "hooi_sweeps": int(hooi_sweeps),
        "padding": float(padding),
        "grid": plan.to_dict(),
        **kernel.params(),
    }
    potential = ChebyshevTuckerPotential(
        box_lo=lo, box_hi=hi, core=core, factors=factors, split=kernel, cutoff=float(cutoff),
        positions=positions, charges=charges, params=params,
    )
    return potential, {"params": params, "timings": timings}
