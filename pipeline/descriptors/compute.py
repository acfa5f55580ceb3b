"""The descriptors stage as one call: neighbours, density, sphere potential, products, validation.

:func:`compute_descriptors` takes arrays and a potential callable (points Å → e/Å) and returns
every feature set with per-step wall-clock times; :mod:`pipeline.descriptors.dataset` turns the
result into the netCDF layout.

On the CPU (``device="cpu"``) the density comes from the compiled cell-list kernel of
:mod:`pipeline.descriptors.density_cells` (or, on request, from a KD-tree pair list), the rest
from NumPy. On a device (``"cuda"``, CuPy) the atoms go to the device once; the density comes
from the array cell list of :mod:`pipeline.descriptors.density_array`, the sphere potential
from the potential's values at the grid points (:func:`~pipeline.descriptors.projection.pointwise_expansion`
with a potential whose arrays are on the device), the products from the same array code; the
features come back to the host once, at the end. The validation sample is then recomputed on the
host with the host potential, so it compares the device results with an independent computation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from pipeline.backend import Array, backend_name, synchronize, to_host, xp_for_device
from pipeline.descriptors.density_array import array_atom_density
from pipeline.descriptors.density_cells import atom_density_from_cells, build_cells
from pipeline.descriptors.products import PRODUCT_METHODS, ProductResult, all_products
from pipeline.descriptors.projection import (
    BAND_LIMIT_MAX,
    choose_band_limit,
    pointwise_expansion,
    potential_expansion,
    sphere_grid_size,
)
from pipeline.descriptors.validation import ValidationResult, validate
from pipeline.devices import DEVICES
from pipeline.electrostatics.short_range_cells import build_cell_list
from pipeline.equivariant.products import output_irreps

log = logging.getLogger(__name__)

#: Density routes: the compiled cell-list kernel (no pair list), or a KD-tree pair list
#: (:data:`pipeline.descriptors.neighbours.SEARCH_METHODS`) with sparse accumulation.
NEIGHBOUR_METHODS = ("cells", "query_pairs", "ball_point")
#: Largest supported degree L (the workflow schema allows 0..8).
LMAX_MAX = 8
#: Largest number of radial functions (the workflow schema allows 1..16).
N_RADIAL_MAX = 16
#: Bytes per neighbour pair of the pair-list density routes (two int64 indices, the vector and
#: distance in float64, and the search's own copy of the pairs); the cell route keeps no pairs.
PAIR_BYTES = 96
#: Smallest number density assumed when counting neighbours, 1/Å³ (condensed matter with
#: hydrogens ≈ 0.1; the bounding box underestimates the local density of a protein).
MIN_PAIR_DENSITY = 0.1
#: Sphere-grid points per call of the device potential (32 bytes each in the batch, plus the
#: potential's own temporaries, which it bounds by its evaluation blocks).
DEVICE_SPHERE_POINTS = 2**21


@dataclass(frozen=True)
class DescriptorParameters:
    """Parameters of the descriptors stage (defaults match the workflow config schema).

    Attributes
    ----------
    lmax : int
        Largest degree L of inputs and products, 0..:data:`LMAX_MAX`.
    cutoff_A : float
        Neighbour cutoff of the density expansion, Å.
    n_radial : int
        Radial basis size N, 1..:data:`N_RADIAL_MAX`.
    sphere_radius_A : float
        Radius ρ of the potential spheres, Å.
    band_limit : int or None
        Degree of the potential's sphere expansion integrated exactly (None: the smallest that
        converges it to 1e-13, chosen per potential by
        :func:`~pipeline.descriptors.projection.choose_band_limit`).
    n_validation : int
        Atoms in the validation sample (0 disables the validation).
    seed : int
        Seed of the validation sample and rotation.
    neighbour_method : {"cells", "query_pairs", "ball_point"}
        Route of the density step on the CPU (:data:`NEIGHBOUR_METHODS`); all give the same values
        to round-off. On a device the density has one route, the array cell list.
    device : {"cpu", "cuda", "auto"}
        Where the features are computed (:func:`pipeline.backend.xp_for_device`): NumPy and the
        compiled kernel, or CuPy on a GPU (``auto``: CuPy when a GPU is usable). The validation
        always runs on the CPU.
    """

    lmax: int = 2
    cutoff_A: float = 6.0
    n_radial: int = 4
    sphere_radius_A: float = 2.0
    band_limit: int | None = None
    n_validation: int = 64
    seed: int = 0
    neighbour_method: str = "cells"
    device: str = "cpu"

    def __post_init__(self) -> None:
        if isinstance(self.lmax, bool) or int(self.lmax) != self.lmax or not 0 <= self.lmax <= LMAX_MAX:
            raise ValueError(f"lmax must be an integer in [0, {LMAX_MAX}], got {self.lmax!r}")
        if int(self.n_radial) != self.n_radial or not 1 <= self.n_radial <= N_RADIAL_MAX:
            raise ValueError(f"n_radial must be an integer in [1, {N_RADIAL_MAX}], got {self.n_radial!r}")
        for name in ("cutoff_A", "sphere_radius_A"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite length in Å, got {value!r}")
        if self.band_limit is not None and not 0 <= int(self.band_limit) <= BAND_LIMIT_MAX:
            raise ValueError(f"band_limit must be in [0, {BAND_LIMIT_MAX}], got {self.band_limit!r}")
        if int(self.n_validation) < 0:
            raise ValueError(f"n_validation must be >= 0, got {self.n_validation!r}")
        if self.neighbour_method not in NEIGHBOUR_METHODS:
            raise ValueError(f"neighbour_method must be one of {NEIGHBOUR_METHODS}, got {self.neighbour_method!r}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {self.device!r}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Descriptors:
    """Result of :func:`compute_descriptors`.

    Attributes
    ----------
    params : DescriptorParameters
    density : (n_atoms, n_radial, (L+1)²) float64, e
    potential_sh : (n_atoms, (L+1)²) float64, e/Å
    products : list of ProductResult, values (n_atoms, n_radial, dim_method), e²/Å
    n_neighbours : (n_atoms,) int64, neighbours within the cutoff
    n_pairs : int
    validation : ValidationResult or None
    timings_s : dict step → seconds (band_limit, neighbours, density, potential, product_<method>, validation);
        with the cell routes "neighbours" is the sorting into cells (on a device, with the copy of
        the atoms there) and the search runs inside "density"; device steps are synchronised
    total_s : float
    band_limit : int
        Band limit of the sphere expansion (``params.band_limit``, or the one chosen for the potential).
    backend : str
        Array backend of the features, ``"numpy"`` or ``"cupy"`` (the validation runs on NumPy).
    """

    params: DescriptorParameters
    density: np.ndarray
    potential_sh: np.ndarray
    products: list[ProductResult]
    n_neighbours: np.ndarray
    n_pairs: int
    validation: ValidationResult | None
    timings_s: dict[str, float]
    total_s: float
    band_limit: int
    backend: str = "numpy"


def compute_descriptors(
    positions_A: np.ndarray,
    charges_e: np.ndarray,
    potential: Callable[[np.ndarray], np.ndarray],
    params: DescriptorParameters,
    *,
    methods: tuple[str, ...] = PRODUCT_METHODS,
    cell: np.ndarray | None = None,
    device_potential: Callable[[Array], Array] | None = None,
    product_dtype: object = np.float64,
) -> Descriptors:
    """Every descriptor of every atom, plus the built-in validation.

    Parameters
    ----------
    positions_A : (n_atoms, 3) float64, Å
    charges_e : (n_atoms,) float64, e
    potential : callable
        Long-range potential: points (M, 3) Å → values (M,) e/Å.
    params : DescriptorParameters
    methods : tuple of str
        Product methods (subset of :data:`PRODUCT_METHODS`, in that order).
    cell : (3, 3) float64, Å, optional
        Periodic cell (rows are cell vectors). The atoms are wrapped into it and their periodic
        images within the cutoff join the neighbours of the charge densities (the sphere
        potential is periodic through ``potential`` itself).
    device_potential : callable, optional
        The same long-range potential on the device of ``params.device``: points (M, 3) Å as a
        device array → (M,) e/Å on the device (e.g. the ``long_range`` of a potential read with
        ``xp=``). Required when ``params.device`` selects a device; ``potential`` then serves
        the validation only.
    product_dtype : numpy dtype
        Of the product features (float64 by default; the stage stores float32 and computes
        them straight into it, chunk by chunk, with no float64 copy of all of them). The
        validation compares them with their float64 recomputation at its sample.

    Returns
    -------
    Descriptors
    """
    start = time.perf_counter()
    positions_A = np.ascontiguousarray(positions_A, dtype=np.float64)
    charges_e = np.asarray(charges_e, dtype=np.float64)
    n_atoms = positions_A.shape[0]
    if n_atoms == 0:
        raise ValueError("structure has no atoms")
    if charges_e.shape != (n_atoms,):
        raise ValueError(f"charges must have shape ({n_atoms},), got {charges_e.shape}")
    unknown = [m for m in methods if m not in PRODUCT_METHODS]
    if unknown:
        raise ValueError(f"unknown product method(s) {unknown}; expected a subset of {PRODUCT_METHODS}")
    timings: dict[str, float] = {}
    p = params

    t = time.perf_counter()  # a periodic potential wraps the sphere points itself: the atoms as given serve
    band_limit = int(p.band_limit) if p.band_limit is not None else choose_band_limit(
        potential, positions_A, lmax=p.lmax, sphere_radius_A=p.sphere_radius_A, rng=np.random.default_rng(p.seed))
    timings["band_limit"] = time.perf_counter() - t

    t = time.perf_counter()
    if cell is None:
        sources, source_charges = positions_A, charges_e
    else:  # the wrapped atoms first, then their images within the cutoff
        from pipeline.electrostatics.periodic import periodic_sources

        sources, source_charges = periodic_sources(positions_A, charges_e, np.asarray(cell, dtype=np.float64), p.cutoff_A)
        positions_A = np.ascontiguousarray(sources[:n_atoms])
    xp = xp_for_device(p.device)
    backend = backend_name(xp)
    if backend != "numpy":
        if device_potential is None:
            raise ValueError(f"device {p.device!r} needs the potential on the device (device_potential)")
        density, n_neighbours, n_zero, potential_sh, products = _device_features(
            xp, sources, source_charges, n_atoms, device_potential, p, band_limit, methods, product_dtype, timings,
            started=t)
    else:
        if p.neighbour_method == "cells":
            cells = build_cells(sources, p.cutoff_A)
            timings["neighbours"] = time.perf_counter() - t
            t = time.perf_counter()
            density, n_neighbours, n_zero = atom_density_from_cells(
                sources, source_charges, n_centres=n_atoms, lmax=p.lmax, cutoff_A=p.cutoff_A, n_radial=p.n_radial,
                cells=cells)
            timings["density"] = time.perf_counter() - t
            del cells
        else:
            density, n_neighbours = _pair_list_density(sources, source_charges, n_atoms, p, timings, started=t)
            n_zero = np.zeros(0, dtype=np.int64)  # the pair search reports its own coincident pairs

        t = time.perf_counter()
        potential_sh = potential_expansion(
            potential, positions_A, lmax=p.lmax, sphere_radius_A=p.sphere_radius_A, band_limit=band_limit
        )
        timings["potential"] = time.perf_counter() - t
        products = all_products(density, potential_sh, p.lmax, methods, dtype=product_dtype)
    log.info("sphere potential: %d centres, rho=%.2f Å, L=%d, band limit %d (%s), grid %dx%d %.2fs", n_atoms,
             p.sphere_radius_A, p.lmax, band_limit, "set" if p.band_limit is not None else "converged to 1e-13",
             *sphere_grid_size(p.lmax, band_limit), timings["potential"])
    n_coincident = int(n_zero.sum())
    if n_coincident:
        log.warning("neighbours: dropped %d neighbour(s) at zero distance (coincident atoms, no direction)", n_coincident)
    for result in products:
        timings[f"product_{result.method.replace('+', '_')}"] = result.seconds

    validation = None
    if p.n_validation > 0:
        validation = validate(
            sources, source_charges, potential, density, potential_sh, products, n_centres=n_atoms,
            lmax=p.lmax, cutoff_A=p.cutoff_A, n_radial=p.n_radial, sphere_radius_A=p.sphere_radius_A,
            band_limit=band_limit, n_sample=p.n_validation, rng=np.random.default_rng(p.seed),
            neighbour_method=p.neighbour_method,
        )
        timings["validation"] = validation.seconds
    total = time.perf_counter() - start
    log.info("descriptors: %d atoms, L=%d, N=%d, %d methods %.2fs", n_atoms, p.lmax, p.n_radial, len(products), total)
    return Descriptors(
        params=p, density=density, potential_sh=potential_sh, products=products, n_neighbours=n_neighbours.astype(np.int64),
        n_pairs=int(n_neighbours.sum() // 2), validation=validation, timings_s=timings, total_s=total, backend=backend,
        band_limit=band_limit,
    )


def _device_features(xp, sources, charges, n_atoms, device_potential, p, band_limit, methods, product_dtype, timings, *,
                     started):
    """Density, neighbour and coincident counts, sphere potential and products on the device of ``xp``.

    The sources go to the device once and every feature comes back once, at the end (host
    NumPy arrays, the products as :class:`ProductResult` with host values). Records
    ``timings`` "neighbours" (from ``started``, perf_counter seconds: the copy and the cell
    list), "density" and "potential", each after synchronising the device.
    """
    sources_d = xp.asarray(sources, dtype=xp.float64)
    charges_d = xp.asarray(charges, dtype=xp.float64)
    cells = build_cell_list(sources_d, charges_d, p.cutoff_A)
    synchronize(xp)
    timings["neighbours"] = time.perf_counter() - started
    t = time.perf_counter()
    density, n_neighbours, n_zero = array_atom_density(sources_d, charges_d, n_centres=n_atoms, lmax=p.lmax,
                                                       cutoff_A=p.cutoff_A, n_radial=p.n_radial, cells=cells)
    del cells
    synchronize(xp)
    timings["density"] = time.perf_counter() - t
    t = time.perf_counter()
    potential_sh = pointwise_expansion(device_potential, sources_d[:n_atoms], lmax=p.lmax,
                                       sphere_radius_A=p.sphere_radius_A, band_limit=band_limit,
                                       max_points=DEVICE_SPHERE_POINTS)
    synchronize(xp)
    timings["potential"] = time.perf_counter() - t
    products = all_products(density, potential_sh, p.lmax, methods, dtype=product_dtype)
    products = [ProductResult(r.method, to_host(r.values), r.irreps, r.seconds) for r in products]
    return to_host(density), to_host(n_neighbours), to_host(n_zero), to_host(potential_sh), products


def _pair_list_density(sources, charges, n_atoms, p, timings, *, started):
    """Density and neighbour counts of the first ``n_atoms`` sources from a KD-tree half pair list.

    Records ``timings["neighbours"]`` (from ``started``, perf_counter seconds) and ``timings["density"]``.
    """
    from pipeline.descriptors.density import neighbour_density
    from pipeline.descriptors.neighbours import neighbour_pairs

    n_sources = sources.shape[0]
    pairs = neighbour_pairs(sources, p.cutoff_A, method=p.neighbour_method)
    timings["neighbours"] = time.perf_counter() - started
    n_neighbours = (np.bincount(pairs.first, minlength=n_sources) + np.bincount(pairs.second, minlength=n_sources))[:n_atoms]
    t = time.perf_counter()
    density = neighbour_density(charges, pairs, n_sources, lmax=p.lmax, cutoff_A=p.cutoff_A, n_radial=p.n_radial)[:n_atoms]
    timings["density"] = time.perf_counter() - t
    return density, n_neighbours


def estimate_descriptor_bytes(positions_A: np.ndarray, params: DescriptorParameters) -> int:
    """Memory of :func:`compute_descriptors` for these atoms, bytes (dominant arrays).

    Neighbour pairs of the pair-list routes (:data:`PAIR_BYTES` each; neighbours per atom from
    the larger of the bounding-box density and :data:`MIN_PAIR_DENSITY`, at most n_atoms − 1;
    none for the cell route) plus the density and sphere-potential expansions and every
    method's product features (float64).
    """
    positions_A = np.asarray(positions_A, dtype=np.float64).reshape(-1, 3)
    n_atoms = positions_A.shape[0]
    if n_atoms == 0:
        return 0
    volume = float(np.prod(np.ptp(positions_A, axis=0) + params.cutoff_A))
    density = max(n_atoms / volume, MIN_PAIR_DENSITY)
    neighbours = min(n_atoms - 1, density * 4.0 / 3.0 * np.pi * params.cutoff_A**3)
    lmax, sh = params.lmax, (params.lmax + 1) ** 2
    product_dims = (output_irreps("cg", lmax, lmax, lmax).dim + 3 * sh
                    + output_irreps("vector_gaunt", lmax, lmax, lmax).dim)  # cg, gaunt_fourier, gaunt_grid, +vector_gaunt
    features = 8 * n_atoms * (params.n_radial * sh + sh + params.n_radial * product_dims)
    pairs = 0.0 if params.neighbour_method == "cells" else PAIR_BYTES * n_atoms * neighbours / 2
    return int(pairs + features)
