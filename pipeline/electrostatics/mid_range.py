"""Φ − Φ_L(Tucker) at evaluation targets (points or a uniform map), with a target-specific split.

The Tucker form holds the long range of the stored split (α, cutoff r_c). What it leaves out
is a short-range sum over r_c; when there are many targets, or the stored α is small (a
representation shrunk to fit a storage limit, see :func:`~.build.fit_storage`), that sum is
cheaper with a larger splitting parameter α₂ for the targets:

    Φ = Φ_L(α) [Tucker form] + Σ_j q_j (φ_L,α₂ − φ_L,α)(|y − x_j|) [mid range] + Σ_{r<r₂} q_j φ_S,α₂(r).

The mid range is smooth on the scale 1/α₂; it is computed like the long range of the build
(Gaussian spreading, zero-padded FFT convolution with the difference of the two deconvolved
kernels, :class:`RangeDifference`) and then either gathered onto the axes of a map by three mode
products (:func:`~pipeline.electrostatics.long_range.gather_on_axes`) or interpolated at points
(:func:`~pipeline.electrostatics.gridding.interpolate_grid`). The short range with α₂ and its
cutoff r₂ = erfc⁻¹(ε·:data:`~.parameters.CUTOFF_MARGIN`)/α₂ visits each atom's ball of map
points (:func:`~pipeline.electrostatics.short_range_grid.short_range_grid`) or each point's
cell neighbours (:func:`~pipeline.electrostatics.short_range.short_range_sum`). α₂ minimises a
cost model like :mod:`.parameters` (target pairs vs spreading, FFT and gathering); when no
α₂ > α pays off the stored split is used and there is no mid range. A target on an atom leaves
that atom out. Units: Å, e, e/Å.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from pipeline.electrostatics.scalar_special import erfcinv
from pipeline.backend import namespace_of
from pipeline.electrostatics.gridding import interpolate_grid, window_points
from pipeline.electrostatics.long_range import fft_shape, gather_on_axes, long_range_grid, plan_long_range
from pipeline.electrostatics.parameters import (
    COST_FFT,
    CUTOFF_MARGIN,
    FFT_BYTES_PER_POINT,
    FFT_MEMORY_BYTES,
    internal_tolerance,
)
from pipeline.electrostatics.short_range import short_range_sum
from pipeline.electrostatics.short_range_grid import short_range_grid
from pipeline.electrostatics.splitting import EwaldSplit, ScreenedEwaldSplit, Split

log = logging.getLogger(__name__)

#: CPU seconds per (target, atom) pair of the short-range kernels (map and point targets).
COST_TARGET_PAIR = 6.5e-9
#: CPU seconds per window entry of spreading, per window entry of interpolation, and per
#: multiply–add of the gathering GEMMs.
COST_SPREAD = 1.5e-9
COST_INTERPOLATE = 0.8e-9
COST_GEMM = 0.3e-9
#: Smallest target cutoff considered, Å.
MIN_TARGET_CUTOFF = 3.0


@dataclass(frozen=True)
class RangeDifference:
    """φ_L of ``outer`` minus φ_L of ``inner`` (both long-range splits, outer the wider band)."""

    outer: Split
    inner: Split
    name: str = "difference"

    @property
    def t_max(self) -> float:
        return float(max(self.outer.t_max, self.inner.t_max))

    def deconvolved_long(self, r, s: float):
        """ψ_outer − ψ_inner with φ = W_s * W_s * ψ for both (see the splits)."""
        return self.outer.deconvolved_long(r, s) - self.inner.deconvolved_long(r, s)


def _density(potential) -> float:
    lo, hi = np.asarray(potential.box_lo), np.asarray(potential.box_hi)
    return potential.positions.shape[0] / float(np.prod(np.maximum(hi - lo, 1.0)))


def _choose_alpha(potential, n_targets: float, gather_cost) -> float | None:
    """α₂ (1/Å) of least modelled cost for ``n_targets`` targets, or None to keep the stored split.

    ``gather_cost(plan)`` is the modelled CPU seconds of taking the mid-range grid to the targets.
    """
    tolerance = internal_tolerance(potential.params)
    density = _density(potential)
    ball = COST_TARGET_PAIR * n_targets * density * (4.0 * math.pi / 3.0)
    alpha = float(potential.split.t_max)
    root = erfcinv(tolerance * CUTOFF_MARGIN)
    best, best_cost = None, ball * float(potential.cutoff) ** 3
    for alpha2 in np.geomspace(1.25 * alpha, max(root / MIN_TARGET_CUTOFF, 1.3 * alpha), 16):
        plan = plan_long_range(potential.box_lo, potential.box_hi, alpha2, tolerance, degree=2,
                               grid_tolerance=potential.params.get("grid_tolerance"))
        n_fft = float(np.prod(fft_shape(plan.shape)))
        if FFT_BYTES_PER_POINT * n_fft > FFT_MEMORY_BYTES:
            break
        spread = COST_SPREAD * potential.positions.shape[0] * window_points(plan) ** 3
        cost = ball * (root / alpha2) ** 3 + COST_FFT * n_fft * math.log2(n_fft) + spread + gather_cost(plan)
        if cost < best_cost:
            best, best_cost = float(alpha2), cost
    return best


def choose_map_alpha(potential, axes) -> float | None:
    """α₂ (1/Å) of least modelled cost for a map on ``axes``, or None to keep the stored split."""
    o1, o2, o3 = (int(np.asarray(a).size) for a in axes)

    def gemm(plan):
        n1, n2, n3 = plan.shape
        return COST_GEMM * (o1 * n1 * n2 * n3 + o1 * o2 * n2 * n3 + o1 * o2 * o3 * n3)

    return _choose_alpha(potential, float(o1) * o2 * o3, gemm)


def choose_points_alpha(potential, n_points: int) -> float | None:
    """α₂ (1/Å) of least modelled cost for ``n_points`` scattered points, or None for the stored split."""
    return _choose_alpha(potential, float(n_points), lambda plan: COST_INTERPOLATE * n_points * window_points(plan) ** 3)


def _mid_range_grid(potential, alpha2: float):
    """(outer split, its cutoff r₂, plan, mid-range values on the plan's uniform grid)."""
    tolerance = internal_tolerance(potential.params)
    outer = potential.split.with_alpha(alpha2) if isinstance(potential.split, ScreenedEwaldSplit) else EwaldSplit(alpha=alpha2)
    cutoff2 = float(erfcinv(tolerance * CUTOFF_MARGIN) / alpha2)
    plan = plan_long_range(potential.box_lo, potential.box_hi, alpha2, tolerance, degree=2,
                               grid_tolerance=potential.params.get("grid_tolerance"))
    grid = long_range_grid(potential.positions, potential.sources, plan, RangeDifference(outer, potential.split))
    log.debug("targets: alpha2=%.3g 1/A cutoff %.3g A (stored %.3g A), mid-range grid %s", alpha2, cutoff2,
              potential.cutoff, plan.shape)
    return outer, cutoff2, plan, grid


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
        return short_range_grid(axes, potential.positions, potential.sources, potential.split, potential.cutoff)
    outer, cutoff2, plan, mid_grid = _mid_range_grid(potential, alpha2)
    values = gather_on_axes(mid_grid, plan, axes)
    del mid_grid
    values += short_range_grid(axes, potential.positions, potential.sources, outer, cutoff2)
    return values


def points_short_range(potential, points):
    """Φ − Φ_L(Tucker) at scattered ``points`` (n, 3) Å, in parts: ``(mid, short, self_term)``.

    ``mid`` is the mid range of the α₂ of :func:`choose_points_alpha` (zeros when the stored
    split is kept), ``short`` the short range of the split used, and ``self_term`` the long-range
    self term q_j φ_L(0) of that split for every atom located exactly at a point (to be
    subtracted: the Tucker form and the mid range include it). Each (n,) e/Å, on the array
    module of ``points``.
    """
    xp = namespace_of(points)
    alpha2 = choose_points_alpha(potential, int(points.shape[0]))
    if alpha2 is None:
        short, same = short_range_sum(points, potential.positions, potential.sources, potential.split,
                                      potential.cutoff, coincident=True)
        return xp.zeros(points.shape[0]), short, same * potential.split.long_at_zero()
    outer, cutoff2, plan, mid_grid = _mid_range_grid(potential, alpha2)
    mid = interpolate_grid(mid_grid, points, plan)
    del mid_grid
    short, same = short_range_sum(points, potential.positions, potential.sources, outer, cutoff2, coincident=True)
    return mid, short, same * outer.long_at_zero()
