"""Short-range part of a potential map on a uniform tensor grid, with a map-specific split.

A map has far more targets than the structure has atoms, so its short-range sum (∝ targets ·
r_c³) is cheaper with a larger splitting parameter α₂ than the α of the stored potential:

    Φ = Φ_L(α) [Tucker form] + Σ_j q_j (φ_L,α₂ − φ_L,α)(|y − x_j|) [mid range] + Σ_{r<r₂} q_j erfc(α₂ r)/r.

The mid range is smooth on the scale 1/α₂; it is computed like the long range of the build
(Gaussian spreading, zero-padded FFT convolution with the difference of the two deconvolved
kernels, :class:`RangeDifference`) and gathered onto the map axes by three mode products
(:func:`~pipeline.electrostatics.long_range.gather_on_axes`); the short range with α₂ and its
cutoff r₂ = erfc⁻¹(ε·:data:`~.parameters.CUTOFF_MARGIN`)/α₂ visits each atom's ball of map
points (:func:`~pipeline.electrostatics.short_range_grid.short_range_grid`). α₂ minimises a cost
model like :mod:`.parameters` (map pairs vs FFT and gathering); when no α₂ > α pays off the
stored split is used for the short range and there is no mid range. Units: Å, e, e/Å.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from pipeline.electrostatics.gridding import window_points
from pipeline.electrostatics.long_range import fft_shape, gather_on_axes, long_range_grid, plan_long_range
from pipeline.electrostatics.parameters import COST_FFT, CUTOFF_MARGIN, FFT_BYTES_PER_POINT, FFT_MEMORY_BYTES
from pipeline.electrostatics.short_range_grid import short_range_grid
from pipeline.electrostatics.splitting import EwaldSplit

log = logging.getLogger(__name__)

#: CPU seconds per (map point, atom) pair of the grid short-range kernel.
COST_MAP_PAIR = 6.5e-9
#: CPU seconds per window entry of spreading, and per multiply–add of the gathering GEMMs.
COST_SPREAD = 1.5e-9
COST_GEMM = 0.3e-9
#: Smallest map cutoff considered, Å.
MIN_MAP_CUTOFF = 3.0


@dataclass(frozen=True)
class RangeDifference:
    """φ_L of ``outer`` minus φ_L of ``inner`` (both long-range splits, outer the wider band)."""

    outer: object
    inner: object
    name: str = "difference"

    @property
    def t_max(self) -> float:
        return float(max(self.outer.t_max, self.inner.t_max))

    def deconvolved_long(self, r, s: float):
        """ψ_outer − ψ_inner with φ = W_s * W_s * ψ for both (see the splits)."""
        return self.outer.deconvolved_long(r, s) - self.inner.deconvolved_long(r, s)


def _map_cost(alpha2, potential, n_map, n_out, density, tolerance):
    """(CPU seconds, FFT bytes) of mid range + short range with α₂ (model)."""
    r2 = special.erfcinv(tolerance * CUTOFF_MARGIN) / alpha2
    short = COST_MAP_PAIR * n_map * density * (4.0 * math.pi / 3.0) * r2**3
    plan = plan_long_range(potential.box_lo, potential.box_hi, alpha2, tolerance, degree=2)
    n_fft = float(np.prod(fft_shape(plan.shape)))
    n1, n2, n3 = plan.shape
    o1, o2, o3 = n_out
    gemm = o1 * n1 * n2 * n3 + o1 * o2 * n2 * n3 + o1 * o2 * o3 * n3
    mid = (COST_FFT * n_fft * math.log2(n_fft) + COST_GEMM * gemm
           + COST_SPREAD * potential.positions.shape[0] * window_points(plan) ** 3)
    return short + mid, FFT_BYTES_PER_POINT * n_fft


def choose_map_alpha(potential, axes) -> float | None:
    """α₂ (1/Å) of least modelled cost for a map on ``axes``, or None to keep the stored split."""
    tolerance = float(potential.params["tolerance"])
    n_out = tuple(int(np.asarray(a).size) for a in axes)
    n_map = float(np.prod(n_out))
    lo, hi = np.asarray(potential.box_lo), np.asarray(potential.box_hi)
    density = potential.positions.shape[0] / float(np.prod(np.maximum(hi - lo, 1.0)))
    alpha = float(potential.split.t_max)
    base = COST_MAP_PAIR * n_map * density * (4.0 * math.pi / 3.0) * float(potential.cutoff) ** 3
    root = special.erfcinv(tolerance * CUTOFF_MARGIN)
    best, best_cost = None, base
    for alpha2 in np.geomspace(1.25 * alpha, max(root / MIN_MAP_CUTOFF, 1.3 * alpha), 16):
        cost, memory = _map_cost(alpha2, potential, n_map, n_out, density, tolerance)
        if memory > FFT_MEMORY_BYTES:
            break
        if cost < best_cost:
            best, best_cost = float(alpha2), cost
    return best


def map_short_range(potential, axes):
    """Φ − Φ_L(Tucker) on the uniform grid ``axes`` (three increasing 1-D arrays, Å), NumPy.

    Mid range with the α₂ of :func:`choose_map_alpha` plus the short range of α₂ (or the
    stored split's short range when no α₂ is chosen); a grid point on an atom leaves it out.

    Returns
    -------
    (nx, ny, nz) float64, e/Å
    """
    axes = [np.ascontiguousarray(a, dtype=np.float64).reshape(-1) for a in axes]
    alpha2 = choose_map_alpha(potential, axes)
    if alpha2 is None:
        return short_range_grid(axes, potential.positions, potential.charges, potential.split, potential.cutoff)
    tolerance = float(potential.params["tolerance"])
    outer = EwaldSplit(alpha=alpha2)
    cutoff2 = float(special.erfcinv(tolerance * CUTOFF_MARGIN) / alpha2)
    plan = plan_long_range(potential.box_lo, potential.box_hi, alpha2, tolerance, degree=2)
    mid_grid = long_range_grid(potential.positions, potential.charges, plan, RangeDifference(outer, potential.split))
    values = gather_on_axes(mid_grid, plan, axes)
    del mid_grid
    log.debug("map: alpha2=%.3g 1/A cutoff %.3g A (stored %.3g A), mid-range grid %s", alpha2, cutoff2,
              potential.cutoff, plan.shape)
    values += short_range_grid(axes, potential.positions, potential.charges, outer, cutoff2)
    return values
