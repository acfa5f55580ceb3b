"""Range-separated electrostatics and equivariant descriptors for large molecular studies.

Subpackages, one per stage of the workflow:

- :mod:`pipeline.structures` — ingest biomolecules and generate crystal lattices;
- :mod:`pipeline.electrostatics` — the range-separated Chebyshev–Tucker potential;
- :mod:`pipeline.equivariant` — spherical harmonics and tensor products;
- :mod:`pipeline.descriptors` — per-atom equivariant electrostatic descriptors;
- :mod:`pipeline.reports` — aggregated xarray datasets and figures.

:mod:`pipeline.backend` decides between NumPy and CuPy; :mod:`pipeline.units` holds constants.
"""

__version__ = "0.1.0"
