"""Built-in checks of the descriptors: equivariance under an improper rotation, method agreement.

Equivariance. A random rotation R (seeded) followed by inversion gives Q = −R (det Q = −1),
and the structure is mapped x ↦ Q x. For a sample of atoms the features are recomputed and
compared with the Wigner-transformed originals: an output block of degree l and parity p
must transform as p·D^l(R) (inputs are 0e + 1o + 2e + …, so their block l goes with
(−1)^l D^l(R)).

* Neighbour density: a true recomputation from the rotated coordinates (fresh neighbour search,
  by the route the features were computed with: the cell-list kernel or a KD-tree search).
* Potential expansion: the Chebyshev–Tucker potential is tied to the frame and box of the
  original structure, so the rotated-frame potential is Φ'(y) = Φ(Qᵀ y). The rotated-frame
  sphere points y = Q x_i + ρ n̂_g are mapped back to x_i + ρ Qᵀ n̂_g and evaluated there. The
  quadrature nodes n̂_g are the same in both frames, so the mapped points are *not* the
  original nodes: the comparison measures the exactness of the sphere quadrature (aliasing of
  the potential's content above the band limit), not just round-off.

Errors are relative maxima: max |f' − D f| / max |D f| over the sampled atoms (absolute when
the reference is identically zero). Agreement between methods is measured the same way over
all atoms: ``fourier_grid_difference`` between ``gaunt_fourier`` and ``gaunt_grid``, and
``gaunt_cg_difference`` between each Gaunt product and the CG even paths scaled by the closed
form per-path factor (:func:`pipeline.descriptors.products.gaunt_from_cg`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pipeline.descriptors.density import degree_parity_signs, neighbour_density_at
from pipeline.descriptors.density_cells import density_from_cells
from pipeline.descriptors.products import ProductResult, descriptor_product, gaunt_from_cg
from pipeline.descriptors.projection import potential_expansion
from pipeline.equivariant.irreps import ProductIrreps
from pipeline.equivariant.wigner import random_rotations, wigner_D

log = logging.getLogger(__name__)


def relative_max_error(value: np.ndarray, reference: np.ndarray) -> float:
    """max |value − reference| / max |reference| (absolute error when the reference is all zero)."""
    diff = float(np.max(np.abs(value - reference))) if value.size else 0.0
    scale = float(np.max(np.abs(reference))) if reference.size else 0.0
    return diff / scale if scale > 0.0 else diff


def transform_blocks(values: np.ndarray, irreps: ProductIrreps, rotation: np.ndarray, det: float) -> np.ndarray:
    """Apply p^{[det<0]}·D^l(R) to every output block of ``values (..., dim)``."""
    lmax = max(b.l for b in irreps.blocks)
    d = wigner_D(lmax, rotation)
    out = np.empty_like(values)
    for b in irreps.blocks:
        sign = b.parity if det < 0 else 1.0
        block = d[b.l * b.l : (b.l + 1) ** 2, b.l * b.l : (b.l + 1) ** 2]
        out[..., b.slice] = sign * (values[..., b.slice] @ block.T)
    return out


def transform_sh(values: np.ndarray, lmax: int, rotation: np.ndarray, det: float) -> np.ndarray:
    """Apply ((−1)^l)^{[det<0]}·D^l(R) to a flat SH signal ``values (..., (L+1)²)`` of parity 0e+1o+…."""
    d = wigner_D(lmax, rotation)
    signs = degree_parity_signs(lmax) if det < 0 else np.ones((lmax + 1) ** 2)
    return (values @ d.T) * signs


@dataclass
class ValidationResult:
    """Outcome of :func:`validate`; errors are dimensionless relative maxima.

    ``rotation`` is the proper rotation R (det +1) drawn from the seed and ``transform`` the
    improper Q = −R (det −1) the structure was mapped by, so every parity label is tested.
    ``product_error`` compares the products as computed for all atoms (in their storage dtype)
    with their float64 recomputation at the sampled atoms (float32 rounding: ≲ 6e-8).
    """

    sample: np.ndarray
    rotation: np.ndarray
    transform: np.ndarray
    equivariance_error: dict[str, float]
    equivariance_error_density: float
    equivariance_error_potential: float
    projection_error: float
    fourier_grid_difference: float
    gaunt_cg_difference: dict[str, float]
    product_error: dict[str, float]
    seconds: float


def validate(
    positions_A: np.ndarray,
    charges_e: np.ndarray,
    potential: Callable[[np.ndarray], np.ndarray],
    density: np.ndarray,
    potential_sh: np.ndarray,
    products: list[ProductResult],
    *,
    lmax: int,
    cutoff_A: float,
    n_radial: int,
    sphere_radius_A: float,
    band_limit: int,
    n_sample: int,
    rng: np.random.Generator,
    n_centres: int | None = None,
    neighbour_method: str = "cells",
) -> ValidationResult:
    """Equivariance of every feature set on a random atom sample, and agreement between methods there.

    Parameters
    ----------
    positions_A, charges_e : (n_atoms, 3) Å, (n_atoms,) e
    potential : callable, points (M, 3) Å → (M,) e/Å, in the original frame
    density : (n_atoms, n_radial, (L+1)²) e
    potential_sh : (n_atoms, (L+1)²) e/Å
    products : results of :func:`pipeline.descriptors.products.all_products`
    lmax, cutoff_A, n_radial, sphere_radius_A, band_limit
        The parameters the features were computed with.
    n_sample : int
        Atoms checked (all when fewer atoms exist).
    rng : numpy.random.Generator
        Draws the sample and the rotation.
    n_centres : int, optional
        The atoms with features are the first ``n_centres`` of ``positions_A`` (the rest are
        periodic images that only serve as neighbours); default all.
    neighbour_method : {"cells", "query_pairs", "ball_point"}
        Route of the density recomputation: the cell-list kernel
        (:func:`pipeline.descriptors.density_cells.density_from_cells`), or for the pair-list
        routes a directed KD-tree search (:func:`pipeline.descriptors.density.neighbour_density_at`).

    Returns
    -------
    ValidationResult
    """
    start = time.perf_counter()
    n_atoms = positions_A.shape[0] if n_centres is None else int(n_centres)
    sample = np.sort(rng.choice(n_atoms, size=min(int(n_sample), n_atoms), replace=False))
    rotation = np.asarray(random_rotations(1, rng=rng)[0])
    improper = -rotation  # rotation followed by inversion, det = −1
    det = float(np.round(np.linalg.det(improper)))  # the parity signs follow the transform applied
    rotated = positions_A @ improper.T

    if neighbour_method == "cells":
        dens_rot = density_from_cells(rotated[sample], rotated, charges_e, lmax=lmax, cutoff_A=cutoff_A, n_radial=n_radial)[0]
    else:
        dens_rot = neighbour_density_at(rotated, charges_e, sample, lmax=lmax, cutoff_A=cutoff_A, n_radial=n_radial)
    # Φ'(y) = Φ(Qᵀ y): the rotated-frame points are mapped back into the potential's frame (rows: y @ Q).
    phi_rot = potential_expansion(
        lambda y: potential(y @ improper), rotated[sample], lmax=lmax, sphere_radius_A=sphere_radius_A, band_limit=band_limit
    )
    err_density = relative_max_error(dens_rot, transform_sh(density[sample], lmax, rotation, det))
    err_potential = relative_max_error(phi_rot, transform_sh(potential_sh[sample], lmax, rotation, det))
    errors, product_error, by_method = {}, {}, {}
    for result in products:  # every comparison in float64, at the sampled atoms
        values, irreps = descriptor_product(density[sample], potential_sh[sample], result.method, lmax)
        product_error[result.method] = relative_max_error(np.asarray(result.values[sample], dtype=np.float64), values)
        values_rot, _ = descriptor_product(dens_rot, phi_rot, result.method, lmax)
        errors[result.method] = relative_max_error(values_rot, transform_blocks(values, irreps, rotation, det))
        by_method[result.method] = values

    # Aliasing estimate of the sphere projection: the same atoms with twice the band limit.
    phi_fine = potential_expansion(
        potential, positions_A[sample], lmax=lmax, sphere_radius_A=sphere_radius_A, band_limit=2 * band_limit + 2
    )
    projection_error = relative_max_error(potential_sh[sample], phi_fine)

    # the agreements between methods on the same sample (over all atoms they took 0.2 s at 10^5)
    fourier_grid = np.nan
    if "gaunt_fourier" in by_method and "gaunt_grid" in by_method:
        fourier_grid = relative_max_error(by_method["gaunt_fourier"], by_method["gaunt_grid"])
    gaunt_cg = {}
    if "cg" in by_method:
        cg_irreps = next(r.irreps for r in products if r.method == "cg")
        predicted = gaunt_from_cg(by_method["cg"], cg_irreps, lmax)
        for method in ("gaunt_fourier", "gaunt_grid", "gaunt_grid+vector_gaunt"):
            if method in by_method:
                gaunt_cg[method] = relative_max_error(by_method[method][..., : (lmax + 1) ** 2], predicted)
    seconds = time.perf_counter() - start
    log.info(
        "validation: %d atoms, equivariance %s, density %.1e, potential %.1e, projection %.1e, "
        "fourier-grid %.1e, gaunt-cg %s, stored products %s %.2fs",
        sample.size, {k: f"{v:.1e}" for k, v in errors.items()}, err_density, err_potential, projection_error,
        fourier_grid, {k: f"{v:.1e}" for k, v in gaunt_cg.items()}, {k: f"{v:.1e}" for k, v in product_error.items()},
        seconds,
    )
    return ValidationResult(
        sample=sample, rotation=rotation, transform=improper, equivariance_error=errors,
        equivariance_error_density=err_density, equivariance_error_potential=err_potential,
        projection_error=projection_error,
        fourier_grid_difference=float(fourier_grid), gaunt_cg_difference=gaunt_cg, product_error=product_error,
        seconds=seconds,
    )
