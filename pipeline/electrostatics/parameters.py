"""Automatic choice of the split parameter α and the cutoff r_c from one tolerance ε.

Trade-off (Ewald split, erfc(α r_c) = ε·:data:`CUTOFF_MARGIN`, so r_c ∝ 1/α): with n atoms at
density ρ in a box of edges L_k,

* short range at the atoms, each pair once: ≈ c_pair · n · ρ · (2π/3) r_c³ (∝ α⁻³);
* long-range FFT convolution on the zero-padded grid of spacing h ∝ 1/α:
  ≈ c_fft · N_f log₂ N_f with N_f = Π 2(L_k + 2R_w)/h (∝ α³);
* Chebyshev side (node gather, DCT, HOSVD): ≈ c_cheb · m⁴ with m ∝ α·L (degree rule);
* spreading and interpolation at the atoms: n·P³, independent of α.

:func:`estimate_cost` evaluates this model (CPU seconds with constants measured on a 2-core
x86-64 machine; only their ratios matter) and :func:`choose_alpha` takes the α of least
estimated cost on a geometric scan, subject to r_c in [:data:`MIN_CUTOFF`, :data:`MAX_CUTOFF`] Å
and the FFT working set below :data:`FFT_MEMORY_BYTES`. Every value can be overridden by the
caller (``alpha=``, ``cutoff=`` of the build).
"""

from __future__ import annotations

import math

import numpy as np

from pipeline.electrostatics.scalar_special import erfcinv
from pipeline.electrostatics.long_range import fft_shape, plan_long_range
from pipeline.electrostatics.settings import DEFAULT_PADDING

#: Bounds on the automatically chosen short-range cutoff, Å.
MIN_CUTOFF = 5.0
MAX_CUTOFF = 24.0
#: Short-range truncation target relative to the tolerance.
CUTOFF_MARGIN = 0.1
#: Relative Frobenius tolerance of the Tucker compression, as a fraction of the tolerance (the
#: pointwise error of the Tucker form measured 0.7–0.9 ε at ε in Frobenius norm).
TUCKER_MARGIN = 0.5
#: Cost-model constants, CPU seconds per unit (see module Notes).
COST_PAIR = 18e-9
COST_FFT = 2.2e-9
COST_CHEB = 2.0e-9
#: Bytes of the FFT working set per zero-padded grid point (spectrum, inverse, kernel octant).
FFT_BYTES_PER_POINT = 16
#: Upper bound on the FFT working set when α is chosen automatically, bytes: the larger of
#: this and :data:`FFT_MEMORY_SHARE` of the memory limit (:func:`fft_memory_budget`).
FFT_MEMORY_BYTES = 2.5e9
#: Share of the memory limit that the FFT working set may take when α is chosen automatically.
FFT_MEMORY_SHARE = 0.3
#: Number density assumed when the number of atoms is unknown, 1/Å³ (proteins ≈ 0.1).
DEFAULT_DENSITY = 0.1


#: Each accuracy level (a build repaired after a failed self-check) divides the internal
#: tolerances (cutoff, Chebyshev degree, Tucker) by this factor and the grid tolerance by its square.
ACCURACY_LEVEL_FACTOR = 10.0


def internal_tolerances(tolerance: float, accuracy_level: int = 0) -> tuple[float, float]:
    """(internal tolerance, grid tolerance) of a build at ``accuracy_level`` (0: the default plan).

    Level 0 uses ε for cutoff, degree and Tucker truncation and ε·GRID_MARGIN for the grid;
    each level tightens them by :data:`ACCURACY_LEVEL_FACTOR` and its square. Regular lattices
    make the small per-charge errors of the grid add up coherently, which is what the grid's
    faster tightening repairs.
    """
    from pipeline.electrostatics.long_range import GRID_MARGIN

    factor = ACCURACY_LEVEL_FACTOR ** (-int(accuracy_level))
    return tolerance * factor, tolerance * GRID_MARGIN * factor * factor


def internal_tolerance(params: dict) -> float:
    """The internal tolerance a stored build used (its ``tolerance`` for files without one)."""
    return float(params.get("internal_tolerance", params["tolerance"]))


def default_box(positions, padding: float = DEFAULT_PADDING):
    """Bounding box of ``positions`` (n, 3) Å widened by ``padding`` Å on every side: (lo, hi)."""
    pos = np.asarray(positions)
    return pos.min(axis=0) - padding, pos.max(axis=0) + padding


def ewald_cutoff(alpha: float, tolerance: float) -> float:
    """r_c (Å) with erfc(α r_c) = ``tolerance`` · :data:`CUTOFF_MARGIN`."""
    return float(erfcinv(tolerance * CUTOFF_MARGIN) / alpha)


def choose_cutoff(split, tolerance: float, length_scale: float) -> float:
    """r_c (Å) at which the dropped short-range tail is below ``tolerance`` · :data:`CUTOFF_MARGIN`."""
    return float(split.cutoff_for(tolerance * CUTOFF_MARGIN, length_scale))


def estimate_cost(alpha: float, box_lo, box_hi, tolerance: float, n_atoms: int) -> dict:
    """Model cost of a build plus the potential at every atom for one α (see module Notes).

    Returns
    -------
    dict
        ``short_s``, ``fft_s``, ``chebyshev_s``, ``total_s`` (CPU seconds, model),
        ``fft_bytes`` (FFT working set), ``cutoff`` (Å), ``degree`` (m along the longest axis).
    """
    lo = np.asarray(box_lo, dtype=float)
    hi = np.asarray(box_hi, dtype=float)
    volume = float(np.prod(np.maximum(hi - lo, 1.0)))
    density = n_atoms / volume
    r_c = ewald_cutoff(alpha, tolerance)
    plan = plan_long_range(lo, hi, alpha, tolerance)
    n_fft = float(np.prod(fft_shape(plan.shape)))
    m = max(plan.degree)
    short = COST_PAIR * n_atoms * density * (2.0 * math.pi / 3.0) * r_c**3
    fft = COST_FFT * n_fft * math.log2(n_fft)
    cheb = COST_CHEB * float(m) ** 4
    return {
        "short_s": short,
        "fft_s": fft,
        "chebyshev_s": cheb,
        "total_s": short + fft + cheb,
        "fft_bytes": FFT_BYTES_PER_POINT * n_fft,
        "cutoff": r_c,
        "degree": m,
    }


def fft_memory_budget(limit_bytes: int | None) -> float:
    """Bytes the FFT working set may take when α is chosen automatically.

    :data:`FFT_MEMORY_SHARE` of ``limit_bytes`` (the user's memory limit or the memory
    available), at least :data:`FFT_MEMORY_BYTES`. Finer grids let large structures use a
    larger α and so a shorter cutoff: for 10⁷ ions of rock salt with 20 GB available, α = 0.221
    (r_c = 17.1 Å) instead of the α = 0.168 (r_c = 22.4 Å) that a 2.5 GB FFT allows, 2.3× fewer
    short-range pairs.
    """
    return max(FFT_MEMORY_BYTES, FFT_MEMORY_SHARE * float(limit_bytes or 0))


def choose_alpha(box_lo, box_hi, tolerance: float, *, n_atoms: int | None = None,
                 fft_memory_bytes: float = FFT_MEMORY_BYTES) -> float:
    """α (1/Å) of least modelled cost for a box, tolerance and number of atoms.

    Parameters
    ----------
    box_lo, box_hi : (3,) Å
    tolerance : float
    n_atoms : int, optional
        Number of atoms (default: :data:`DEFAULT_DENSITY` times the box volume).
    fft_memory_bytes : float
        Largest FFT working set considered (:func:`fft_memory_budget`).
    """
    lo = np.asarray(box_lo, dtype=float)
    hi = np.asarray(box_hi, dtype=float)
    if n_atoms is None:
        n_atoms = int(DEFAULT_DENSITY * float(np.prod(hi - lo)))
    root = erfcinv(tolerance * CUTOFF_MARGIN)
    candidates = np.geomspace(root / MAX_CUTOFF, root / MIN_CUTOFF, 24)
    best, best_cost = candidates[0], math.inf
    for alpha in candidates:
        cost = estimate_cost(alpha, lo, hi, tolerance, max(int(n_atoms), 1))
        if cost["fft_bytes"] > fft_memory_bytes and alpha > candidates[0]:
            break  # finer grids only grow
        if cost["total_s"] < best_cost:
            best, best_cost = alpha, cost["total_s"]
    return float(best)


def choose_alpha_periodic(cell, tolerance: float, *, n_atoms: int, fft_memory_bytes: float = FFT_MEMORY_BYTES) -> float:
    """α (1/Å) of least modelled cost for a periodic build of ``n_atoms`` atoms in ``cell`` (rows, Å).

    Same model as :func:`estimate_cost` with the periodic grid of :func:`~.periodic.plan_periodic`
    (no zero padding) and the short range summed per target (every pair twice).
    """
    from pipeline.electrostatics.periodic import plan_periodic

    cell = np.asarray(cell, dtype=float)
    volume = float(abs(np.linalg.det(cell)))
    density = max(int(n_atoms), 1) / volume
    root = erfcinv(tolerance * CUTOFF_MARGIN)
    best, best_cost = root / MAX_CUTOFF, math.inf
    for alpha in np.geomspace(root / MAX_CUTOFF, root / MIN_CUTOFF, 24):
        plan = plan_periodic(cell, alpha, tolerance)
        n_fft = float(np.prod(plan.grid))
        if FFT_BYTES_PER_POINT * n_fft > fft_memory_bytes and alpha > root / MAX_CUTOFF:
            break
        r_c = root / alpha
        cost = (COST_PAIR * 2 * n_atoms * density * (2.0 * math.pi / 3.0) * r_c**3
                + COST_FFT * n_fft * math.log2(max(n_fft, 2.0)) + COST_CHEB * float(max(plan.degree)) ** 4)
        if cost < best_cost:
            best, best_cost = alpha, cost
    return float(best)
