"""Automatic choice of the split parameter α and the cutoff r_c from one tolerance ε.

Trade-off: the short range costs ∝ n_atoms · r_c³ and the long range ∝ m³ with
m ≈ 2α·(half width)·√ln(1/ε) (Chebyshev degree rule), while r_c ≈ √ln(1/ε)/α. We aim at
:data:`TARGET_DEGREE` Chebyshev nodes along the longest axis and keep r_c within
[:data:`MIN_CUTOFF`, :data:`MAX_CUTOFF`] Å. Every value can be overridden by the caller.
"""

from __future__ import annotations

import math

import numpy as np

#: Chebyshev nodes aimed at along the longest box axis when α is chosen automatically.
TARGET_DEGREE = 96
#: Bounds on the automatically chosen short-range cutoff, Å.
MIN_CUTOFF = 6.0
MAX_CUTOFF = 14.0
#: Default padding of the Chebyshev box around the atoms, Å.
DEFAULT_PADDING = 3.0


def choose_alpha(box_lo, box_hi, tolerance: float) -> float:
    """α (1/Å) for a box and tolerance following the rule of the module docstring."""
    half = 0.5 * float(np.max(np.asarray(box_hi) - np.asarray(box_lo)))
    root = math.sqrt(math.log(1.0 / tolerance))
    alpha = TARGET_DEGREE / (2.0 * half * root)
    return float(min(max(alpha, root / MAX_CUTOFF), root / MIN_CUTOFF))


def default_box(positions, padding: float = DEFAULT_PADDING):
    """Bounding box of ``positions`` (n, 3) Å widened by ``padding`` Å on every side: (lo, hi)."""
    pos = np.asarray(positions)
    return pos.min(axis=0) - padding, pos.max(axis=0) + padding
