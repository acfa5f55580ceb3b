"""Range-separated electrostatic potential in the two-level Chebyshev–Tucker format.

Kernels: Coulomb 1/(ε_r r) or Debye–Hückel e^{−κr}/(ε_r r), split as φ_L + φ_S
(:mod:`.splitting`). The short range is summed exactly within a cutoff (:mod:`.short_range`,
on map grids :mod:`.short_range_grid`, for device arrays :mod:`.short_range_cells`); the long
range is gridded (:mod:`.gridding`), convolved and stored as Tucker-compressed Chebyshev
coefficients (:mod:`.long_range`, :mod:`.chebyshev`, :mod:`.tucker`) over a box in free space
or over one triclinic cell of a periodic system (:mod:`.periodic`: smooth PME in fractional
coordinates, images for the short range), and evaluated at points, grids and as a field
(:mod:`.potential`; maps away from the atoms add a mid range, :mod:`.mid_range`).
:mod:`.parameters` chooses α and r_c by a cost model, :func:`build_potential` ties the steps
together, :mod:`.scatter` builds the long range from atom chunks in separate jobs,
:func:`self_check` compares with an independent reference (:mod:`.reference`: direct
summation, or a plain Ewald sum), :mod:`.potential_file` reads and writes the netCDF form,
:mod:`.settings` holds the stage's typed settings and :mod:`.stage` runs the stage (with the
repairs of a build that misses its tolerance). Units: Å, e, potential e/Å.
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
    "load_potential": "potential_file",
    "potential_from_dataset": "potential_file",
    "potential_to_dataset": "potential_file",
    "PotentialSettings": "settings",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
