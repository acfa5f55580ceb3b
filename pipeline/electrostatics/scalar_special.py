"""Scalar special functions from the standard library, for parameter choices on the start-up path.

The split, cutoff and grid choices need ``erfc⁻¹`` of one number at a time; SciPy's
``scipy.special`` costs ~0.13 s to import (it pulls in its array-API layer), a tenth of a
10⁵-atom potential run, so the scalar inverse is computed here from :func:`math.erfc`.
Array special functions (erf, erfc on atoms and grids) still come from SciPy or CuPy through
:func:`pipeline.backend.special_functions`.
"""

from __future__ import annotations

import math

#: Bracket of erfc⁻¹: erfc(−6) = 2 − 2e−17 and erfc(27) = 5e−319 cover every double in (0, 2).
_LOWER, _UPPER = -6.0, 27.0


def erfcinv(y: float) -> float:
    """The x with erfc(x) = y, for 0 < y < 2 (float, to a few ulp of x).

    Bisection on the decreasing :func:`math.erfc` brackets the root, then Newton steps on
    log erfc (well scaled for the tiny y of tight tolerances) polish it.

    Raises
    ------
    ValueError
        When y is not in (0, 2).
    """
    y = float(y)
    if not 0.0 < y < 2.0:
        raise ValueError(f"erfcinv needs 0 < y < 2, got {y!r}")
    lo, hi = _LOWER, _UPPER
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if math.erfc(mid) > y:
            lo = mid
        else:
            hi = mid
    x = 0.5 * (lo + hi)
    log_y = math.log(y)
    for _ in range(3):
        value = math.erfc(x)
        if value <= 0.0:
            break
        slope = -2.0 / math.sqrt(math.pi) * math.exp(-x * x) / value  # d/dx log erfc(x)
        x -= (math.log(value) - log_y) / slope
    return x
