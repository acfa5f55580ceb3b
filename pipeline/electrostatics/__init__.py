"""Range-separated electrostatic potential in the two-level Chebyshev–Tucker format.

1/r = φ_L + φ_S (:mod:`.splitting`); the short range is summed exactly within a cutoff
(:mod:`.short_range`, on map grids :mod:`.short_range_grid`, for device arrays
:mod:`.short_range_cells`); the long range is gridded
(:mod:`.gridding`), convolved and stored as Tucker-compressed Chebyshev coefficients over a box
(:mod:`.long_range`, :mod:`.chebyshev`, :mod:`.tucker`) and evaluated at points, grids and as a
field (:mod:`.potential`). :mod:`.parameters` chooses α and r_c by a cost model,
:func:`build_potential` ties the steps together, :mod:`.scatter` builds the long range from atom
chunks in separate jobs, :func:`self_check` compares with direct summation (:mod:`.direct`), and
:mod:`.storage` reads and writes the netCDF form. Units: Å, e, potential e/Å.
"""

from importlib import import_module

#: Public names and the submodule that defines each (imported on first use, so that importing
#: a light submodule such as :mod:`.settings` does not load the numerical code).
_EXPORTS = {
    "ChebyshevTuckerPotential": "potential",
    "assemble_potential": "build",
    "build_potential": "build",
    "prepare_build": "build",
    "EwaldSplit": "splitting",
    "GaussianSumSplit": "splitting",
    "ScreenedEwaldSplit": "splitting",
    "make_split": "splitting",
    "compress_coefficients": "long_range",
    "long_range_coefficients": "long_range",
    "plan_long_range": "long_range",
    "direct_field": "direct",
    "direct_potential": "direct",
    "self_check": "selfcheck",
    "load_potential": "storage",
    "potential_from_dataset": "storage",
    "potential_to_dataset": "storage",
    "PotentialSettings": "settings",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
