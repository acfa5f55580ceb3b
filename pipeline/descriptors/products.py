"""Tensor products of the density and potential expansions, one set of features per method.

For every atom i and radial index n the two SH signals ``A_i,n`` (degree ≤ L, parity
0e + 1o + 2e + …) and ``Φ_i`` (same) are multiplied with
:func:`pipeline.equivariant.products.tensor_product` up to output degree L:

=============================  ==========================================================
method                          output features (last axis)
=============================  ==========================================================
``cg``                          one block per admissible path (l1, l2, l3), all parities
``gaunt_fourier``               (L+1)² components, Σ_paths G x y, l1+l2+l3 even only
``gaunt_grid``                  the same values computed on the S2 grid
``gaunt_grid+vector_gaunt``     ``gaunt_grid`` blocks (0e 1o 2e …) followed by the
                                ``vector_gaunt`` blocks (0o 1e 2o …: l1+l2+l3 odd paths)
=============================  ==========================================================

Invariant features are the ``0e`` blocks: L+1 per radial index for ``cg`` (the paths
(l, l, 0), i.e. A_l·Φ_l up to √(2l+1)-factors), one for the Gaunt methods. Units: e²/Å.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from pipeline.backend import namespace_of, synchronize
from pipeline.equivariant.gaunt import gaunt_path_factor
from pipeline.equivariant.irreps import Block, ProductIrreps
from pipeline.equivariant.products import output_irreps, tensor_product
from pipeline.equivariant.spherical_harmonics import lmax_of_dim

log = logging.getLogger(__name__)

#: Descriptor product methods, in the order of the output's ``method`` dimension.
PRODUCT_METHODS = ("cg", "gaunt_fourier", "gaunt_grid", "gaunt_grid+vector_gaunt")
#: Input parities: both expansions are spherical-harmonic signals (l-block parity (−1)^l).
INPUT_PARITY = (1, 1)
#: Units of the product features (density e × potential e/Å).
PRODUCT_UNITS = "e^2/angstrom"


@dataclass(frozen=True)
class ProductResult:
    """Features of one method: ``values (..., dim)`` with irreps ``irreps`` and the timing."""

    method: str
    values: np.ndarray
    irreps: ProductIrreps
    seconds: float


def _concat_irreps(first: ProductIrreps, second: ProductIrreps) -> ProductIrreps:
    shift = first.dim
    moved = tuple(Block(b.l, b.parity, b.start + shift, b.paths) for b in second.blocks)
    return ProductIrreps(first.blocks + moved)


def descriptor_product(density: np.ndarray, potential: np.ndarray, method: str, lmax_out: int, *,
                       dtype: object = None) -> tuple[np.ndarray, ProductIrreps]:
    """Product features of one method.

    Parameters
    ----------
    density : (..., n_radial, (L+1)²) float64, e
    potential : (..., (L+1)²) float64, e/Å (broadcast over the radial axis)
    method : one of :data:`PRODUCT_METHODS`
    lmax_out : int
        Largest output degree.
    dtype : numpy dtype, optional
        Of the values (default: the inputs'). The products are computed in the inputs'
        precision chunk by chunk and cast (float32 storage needs no float64 copy).

    Returns
    -------
    values : (..., n_radial, dim) array of ``dtype``, e²/Å
    irreps : ProductIrreps
    """
    if method not in PRODUCT_METHODS:
        raise ValueError(f"unknown product method {method!r}; expected one of {', '.join(PRODUCT_METHODS)}")
    xp = namespace_of(density, potential)
    y = potential[..., None, :]
    dtype = density.dtype if dtype is None else np.dtype(dtype)
    if method != "gaunt_grid+vector_gaunt":
        out = None if dtype == density.dtype else xp.empty(_shape(density, y, method, lmax_out), dtype=dtype)
        return tensor_product(density, y, method=method, lmax_out=lmax_out, parity=INPUT_PARITY, out=out)
    irreps_even, irreps_odd = (_irreps(part, density, y, lmax_out) for part in ("gaunt_grid", "vector_gaunt"))
    out = xp.empty((*np.broadcast_shapes(density.shape[:-1], y.shape[:-1]), irreps_even.dim + irreps_odd.dim), dtype=dtype)
    tensor_product(density, y, method="gaunt_grid", lmax_out=lmax_out, parity=INPUT_PARITY, out=out[..., : irreps_even.dim])
    tensor_product(density, y, method="vector_gaunt", lmax_out=lmax_out, parity=INPUT_PARITY, out=out[..., irreps_even.dim :])
    return out, _concat_irreps(irreps_even, irreps_odd)


def _irreps(method: str, density, y, lmax_out: int) -> ProductIrreps:
    """Output irreps of one tensor-product method for these inputs."""
    lmax1 = lmax_of_dim(density.shape[-1], name="density last axis")
    lmax2 = lmax_of_dim(y.shape[-1], name="potential last axis")
    return output_irreps(method, lmax1, lmax2, lmax_out, INPUT_PARITY)


def _shape(density, y, method: str, lmax_out: int) -> tuple[int, ...]:
    return (*np.broadcast_shapes(density.shape[:-1], y.shape[:-1]), _irreps(method, density, y, lmax_out).dim)


def all_products(density: np.ndarray, potential: np.ndarray, lmax_out: int, methods: tuple[str, ...] = PRODUCT_METHODS, *,
                 dtype: object = None) -> list[ProductResult]:
    """:func:`descriptor_product` for every method (values of ``dtype``, default the inputs'), timed.

    Seconds of wall clock each, the device synchronised.
    """
    results = []
    xp = namespace_of(density, potential)
    for method in methods:
        start = time.perf_counter()
        values, irreps = descriptor_product(density, potential, method, lmax_out, dtype=dtype)
        synchronize(xp)
        seconds = time.perf_counter() - start
        log.info("product %s: irreps %s, %d values %.2fs", method, irreps, values.size, seconds)
        results.append(ProductResult(method, values, irreps, seconds))
    return results


def gaunt_from_cg(cg_values: np.ndarray, cg_irreps: ProductIrreps, lmax_out: int) -> np.ndarray:
    """Gaunt-product output predicted from the CG paths by the closed-form per-path factor.

    On an even path (l1, l2, l3) the Gaunt tensor is G = f·w3j with
    f = √((2l1+1)(2l2+1)(2l3+1)/4π)·|(l1 l2 l3; 0 0 0)|, and the CG block is √(2l3+1)·w3j, so
    the Gaunt output block l3 is Σ_(even paths) f/√(2l3+1) × (CG path output).

    Parameters
    ----------
    cg_values : (..., dim_cg)
    cg_irreps : ProductIrreps of the CG product (one path per block)
    lmax_out : int

    Returns
    -------
    (..., (lmax_out+1)²) array
    """
    out = np.zeros((*cg_values.shape[:-1], (lmax_out + 1) ** 2), dtype=cg_values.dtype)
    for block in cg_irreps.blocks:
        (l1, l2), = block.paths
        l3 = block.l
        if (l1 + l2 + l3) % 2:
            continue
        factor = gaunt_path_factor(l1, l2, l3) / np.sqrt(2 * l3 + 1)
        out[..., l3 * l3 : (l3 + 1) ** 2] += factor * cg_values[..., block.slice]
    return out
