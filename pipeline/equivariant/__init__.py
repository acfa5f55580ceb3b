"""Spherical harmonics, Clebsch–Gordan/Gaunt tables and equivariant tensor products.

Conventions (e3nn): real SH with polar axis +y (cos β = y, α = atan2(x, z)), no
Condon–Shortley phase, m = −l..l, flat index l² + l + m; the l = 1 block is (x, y, z) and
D¹(R) = R. One module per concept:

- :mod:`.spherical_harmonics` — Y_lm for any l by stable recurrences;
- :mod:`.wigner` — Wigner D matrices (exact quadrature) and random rotations;
- :mod:`.clebsch_gordan` — real Frobenius-normalised w3j from complex CG;
- :mod:`.gaunt` — real Gaunt tables ∫YYY;
- :mod:`.ring_transform` — separable per-m GEMM transforms on ring grids (batch last,
  folded azimuth), shared by the Gaunt-type products;
- :mod:`.s2grid` — Gauss–Legendre × equispaced grids and their Legendre tables;
- :mod:`.fourier` — exact SH ↔ Fourier-series tables on the half torus;
- :mod:`.cg_product`, :mod:`.gaunt_products` — product kernels and their adjoints;
- :mod:`.products` — the one API ``tensor_product`` / ``tensor_product_vjp``;
- :mod:`.chunk_threads` — the batch chunks on a thread pool, one BLAS thread each;
- :mod:`.irreps` — output description; :mod:`.expressivity` — expressivity and paths.
"""

from pipeline.equivariant.clebsch_gordan import cg_block, wigner_3j
from pipeline.equivariant.expressivity import ExpressivityResult, cg_path_count, even_path_count, expressivity
from pipeline.equivariant.gaunt import gaunt_dense, gaunt_table
from pipeline.equivariant.irreps import Block, ProductIrreps
from pipeline.equivariant.products import METHODS, output_irreps, tensor_product, tensor_product_vjp
from pipeline.equivariant.spherical_harmonics import sh_index, spherical_harmonics
from pipeline.equivariant.wigner import random_rotations, wigner_D

__all__ = [
    "METHODS",
    "Block",
    "ExpressivityResult",
    "ProductIrreps",
    "cg_block",
    "cg_path_count",
    "even_path_count",
    "expressivity",
    "gaunt_dense",
    "gaunt_table",
    "output_irreps",
    "random_rotations",
    "sh_index",
    "spherical_harmonics",
    "tensor_product",
    "tensor_product_vjp",
    "wigner_3j",
    "wigner_D",
]
