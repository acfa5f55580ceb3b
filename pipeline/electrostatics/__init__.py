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

from pipeline.electrostatics.build import assemble_potential, build_potential, prepare_build
from pipeline.electrostatics.direct import direct_field, direct_potential
from pipeline.electrostatics.long_range import (
    compress_coefficients,
    long_range_coefficients,
    plan_long_range,
)
from pipeline.electrostatics.potential import ChebyshevTuckerPotential
from pipeline.electrostatics.selfcheck import self_check
from pipeline.electrostatics.splitting import EwaldSplit, GaussianSumSplit, make_split
from pipeline.electrostatics.storage import load_potential, potential_from_dataset, potential_to_dataset

__all__ = [
    "ChebyshevTuckerPotential",
    "assemble_potential",
    "EwaldSplit",
    "GaussianSumSplit",
    "build_potential",
    "compress_coefficients",
    "direct_field",
    "direct_potential",
    "load_potential",
    "long_range_coefficients",
    "make_split",
    "plan_long_range",
    "potential_from_dataset",
    "potential_to_dataset",
    "prepare_build",
    "self_check",
]
