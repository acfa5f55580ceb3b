"""Expansion of a potential on a sphere around each atom: ``Φ_i,lm = ∫ Φ(x_i + ρ n̂) Y_lm(n̂) dΩ``.

``Y_lm`` are the integral-normalised real spherical harmonics of
:mod:`pipeline.equivariant.spherical_harmonics` (e3nn basis), so ``Φ_i,00 = √4π ×`` the
average of Φ over the sphere; units e/Å.

The integral is computed by Gauss–Legendre (in cos β) × equispaced (in α) quadrature, with
the nodes of :func:`pipeline.equivariant.s2grid.gauss_legendre_grid`, as one dense product
with the (n_points, (L+1)²) matrix w_g Y_lm(n̂_g) (small: the cost is in evaluating the
potential). The grid is the minimal one that is exact for ``Y_lm`` (l ≤ L) times any signal of
degree ≤ ``band_limit`` (total degree D = L + band_limit: ⌊D/2⌋ + 1 rings × D + 1 azimuths).
The potential restricted to a sphere is not band-limited in general; its higher-degree
content aliases into the coefficients with a size set by how fast its expansion decays (for a
charge at distance d from the centre, like (ρ/d)^l; for the smooth long-range part much
faster). :mod:`pipeline.descriptors.validation` measures it.

The potential is any callable mapping points ``(M, 3)`` Å to values ``(M,)`` e/Å; it is called
in batches of at most ``max_points`` points. :func:`pointwise_expansion` does this on the
array backend of the centres (NumPy or CuPy: points, values and the product with the
quadrature matrix stay on the device). When it also has a method
``sphere_values(centres, radius, cos_beta, alpha)`` returning the values on the grid directly,
shape ``(B, n_rings, n_azimuth)`` (as :class:`pipeline.descriptors.sphere_potential.TuckerSphereEvaluator`
does, ring by ring), that method is used instead; when it has
``sphere_projection(centres, radius, cos_beta, alpha, projector)`` returning the projected
coefficients ``(n_centres, n_out)`` directly (batched and threaded by the potential), that
method is called once for all centres.

Grid layout: point (j, k) of centre b is ``x_b + ρ n̂(β_j, α_k)`` with
``n̂ = (sin β sin α, cos β, sin β cos α)`` (polar axis +y), values shaped ``(B, n_rings, n_azimuth)``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

import numpy as np

from pipeline.backend import Array, namespace_of
from pipeline.equivariant.s2grid import gauss_legendre_grid, minimal_grid
from pipeline.equivariant.spherical_harmonics import spherical_harmonics

log = logging.getLogger(__name__)

#: Units of the potential expansion coefficients.
POTENTIAL_UNITS = "e/angstrom"

PotentialFunction = Callable[[np.ndarray], np.ndarray]


#: Largest change of the sphere expansion, relative to its largest coefficient, that the band
#: limit chosen by :func:`choose_band_limit` may leave against a much finer quadrature.
BAND_TOLERANCE = 1e-13
#: Largest band limit (the descriptors' ``band_limit`` setting goes up to it too).
BAND_LIMIT_MAX = 64
#: Centres on which :func:`choose_band_limit` measures the convergence.
BAND_SAMPLE = 64


def default_band_limit(lmax: int) -> int:
    """A fixed band limit, L + 16, for direct callers of the expansion functions.

    Enough (neglected degrees below 1e-13 of the potential) while α ρ ≲ 0.7, with α the
    potential's largest Gaussian exponent; the descriptors stage instead chooses the band limit
    per potential with :func:`choose_band_limit`.
    """
    return int(lmax) + 16


def choose_band_limit(potential: PotentialFunction, centres_A: np.ndarray, *, lmax: int, sphere_radius_A: float,
                      rng: np.random.Generator) -> int:
    """Smallest band limit B = L + 4, L + 6, … whose expansion is converged to :data:`BAND_TOLERANCE`.

    How fast the sphere expansion of a smooth long-range potential decays with the degree
    depends on α ρ and on the representation near the box faces (measured at ρ = 2 Å: L + 10
    suffices for α ρ = 0.2, L + 20 is needed at α ρ = 0.9, where a fixed L + 16 leaves 5e-13).
    So the expansion is computed on a sample of centres (the six with the smallest and largest
    coordinate along each axis, nearest the box faces, plus random ones, :data:`BAND_SAMPLE`
    in all) at :data:`BAND_LIMIT_MAX` and at increasing B until the largest difference is at
    most :data:`BAND_TOLERANCE` × the largest coefficient. Costs a few milliseconds; the
    validation measures the result again on its own sample (against 2B + 2).

    Parameters
    ----------
    potential : callable
        As in :func:`potential_expansion` (host arrays).
    centres_A : (n_centres, 3) float64, Å
    lmax : int
    sphere_radius_A : float, Å
    rng : numpy.random.Generator
        Draws the random part of the sample.

    Returns
    -------
    int
        The band limit, at most :data:`BAND_LIMIT_MAX`.
    """
    centres_A = np.asarray(centres_A, dtype=np.float64).reshape(-1, 3)
    extremes = np.concatenate([centres_A.argmin(axis=0), centres_A.argmax(axis=0)])
    others = rng.choice(centres_A.shape[0], size=min(BAND_SAMPLE - extremes.size, centres_A.shape[0]), replace=False)
    sample = centres_A[np.unique(np.concatenate([extremes, others]))]
    expand = lambda band: potential_expansion(potential, sample, lmax=lmax, sphere_radius_A=sphere_radius_A,  # noqa: E731
                                              band_limit=band)
    reference = expand(BAND_LIMIT_MAX)
    scale = float(np.abs(reference).max()) or 1.0
    for band in range(int(lmax) + 4, BAND_LIMIT_MAX, 2):
        change = float(np.abs(expand(band) - reference).max()) / scale
        if change <= BAND_TOLERANCE:
            log.debug("band limit %d: change %.1e against %d on %d centres", band, change, BAND_LIMIT_MAX, sample.shape[0])
            return band
    return BAND_LIMIT_MAX


def sphere_grid_size(lmax: int, band_limit: int) -> tuple[int, int]:
    """(n_rings, n_azimuth) of the projection grid for degree ``lmax`` and ``band_limit``."""
    return minimal_grid(int(lmax) + int(band_limit))


def sphere_quadrature(lmax: int, band_limit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Nodes and projection matrix of the sphere quadrature.

    Returns
    -------
    cos_beta : (n_rings,) ring polar cosines
    alpha : (n_azimuth,) azimuths, radians
    directions : (n_rings, n_azimuth, 3) unit vectors n̂(β_j, α_k)
    projector : (n_rings·n_azimuth, (L+1)²) float64, w_j (2π/n_azimuth) Y_lm(n̂_jk)
    """
    n_rings, n_azimuth = sphere_grid_size(lmax, band_limit)
    cos_beta, weights, alpha = gauss_legendre_grid(n_rings, n_azimuth)
    sin_beta = np.sqrt(np.maximum(1.0 - cos_beta**2, 0.0))
    directions = np.stack(
        [
            sin_beta[:, None] * np.sin(alpha)[None, :],
            np.broadcast_to(cos_beta[:, None], (n_rings, n_azimuth)),
            sin_beta[:, None] * np.cos(alpha)[None, :],
        ],
        axis=-1,
    )
    w = np.broadcast_to((weights * (2.0 * np.pi / n_azimuth))[:, None], (n_rings, n_azimuth)).reshape(-1)
    projector = w[:, None] * spherical_harmonics(lmax, directions.reshape(-1, 3), normalize=False)
    return cos_beta, alpha, directions, projector


def potential_expansion(
    potential: PotentialFunction,
    centres_A: np.ndarray,
    *,
    lmax: int,
    sphere_radius_A: float,
    band_limit: int | None = None,
    max_points: int = 2**18,
) -> np.ndarray:
    """Spherical-harmonic coefficients of ``potential`` on spheres of radius ρ around ``centres_A``.

    Parameters
    ----------
    potential : callable
        ``potential(points)`` with points ``(M, 3)`` float64 Å, returning ``(M,)`` e/Å.
    centres_A : (n_centres, 3) float64, Å
        Sphere centres.
    lmax : int
        Largest degree L of the result.
    sphere_radius_A : float
        ρ in Å (positive).
    band_limit : int, optional
        Degree of the potential's sphere expansion integrated exactly; default
        :func:`default_band_limit`.
    max_points : int
        Largest number of points per call of ``potential``.

    Returns
    -------
    (n_centres, (L+1)²) float64, e/Å

    Notes
    -----
    Grid points are ``x_i + ρ n̂_g`` (see the module docstring); weights Gauss–Legendre in
    cos β times 2π/n_azimuth in α.
    """
    band_limit = _check_arguments(lmax, sphere_radius_A, band_limit)
    centres_A = np.asarray(centres_A, dtype=np.float64).reshape(-1, 3)
    start = time.perf_counter()
    projected = getattr(potential, "sphere_projection", None)
    on_grid = getattr(potential, "sphere_values", None)
    from tqdm import tqdm  # here, not at the top: pointwise_expansion also runs where tqdm is absent

    if projected is None and on_grid is None:
        return pointwise_expansion(
            potential, centres_A, lmax=lmax, sphere_radius_A=sphere_radius_A, band_limit=band_limit,
            max_points=max_points, progress=lambda starts: tqdm(starts, desc="sphere potential", unit="batch",
                                                                disable=None if len(starts) > 1 else True),
        )

    cos_beta, alpha, directions, projector = sphere_quadrature(lmax, band_limit)
    n_rings, n_azimuth = cos_beta.size, alpha.size
    if projected is not None:
        out = np.asarray(projected(centres_A, sphere_radius_A, cos_beta, alpha, projector), dtype=np.float64)
        if out.shape != (centres_A.shape[0], (lmax + 1) ** 2):
            raise ValueError(f"sphere_projection returned {out.shape}; expected {(centres_A.shape[0], (lmax + 1) ** 2)}")
        log.debug(
            "sphere potential: %d centres, rho=%.2f Å, L=%d, grid %dx%d, projected %.2fs",
            centres_A.shape[0], sphere_radius_A, lmax, n_rings, n_azimuth, time.perf_counter() - start,
        )
        return out
    out = np.empty((centres_A.shape[0], (lmax + 1) ** 2))
    calls = _project_in_batches(
        lambda lo, hi: np.asarray(on_grid(centres_A[lo:hi], sphere_radius_A, cos_beta, alpha), dtype=np.float64),
        projector, out, n_rings, n_azimuth, max_points,
        lambda starts: tqdm(starts, desc="sphere potential", unit="batch", disable=None if len(starts) > 1 else True),
    )
    log.debug(
        "sphere potential: %d centres, rho=%.2f Å, L=%d, grid %dx%d, %d calls %.2fs",
        out.shape[0], sphere_radius_A, lmax, n_rings, n_azimuth, calls, time.perf_counter() - start,
    )
    return out


def pointwise_expansion(
    potential: Callable[[Array], Array],
    centres_A: Array,
    *,
    lmax: int,
    sphere_radius_A: float,
    band_limit: int | None = None,
    max_points: int = 2**18,
    progress: Callable[[range], Iterable[int]] | None = None,
) -> Array:
    """:func:`potential_expansion` from the potential's values at the grid points, on the centres' backend.

    Parameters
    ----------
    potential : callable
        ``potential(points)`` with points ``(M, 3)`` float64 Å on the backend of ``centres_A``,
        returning ``(M,)`` e/Å on the same backend (for example a potential object's
        ``long_range`` with its arrays on the device).
    centres_A : (n_centres, 3) float64 array, Å
        Sphere centres (NumPy or CuPy).
    lmax, sphere_radius_A, band_limit
        As in :func:`potential_expansion`.
    max_points : int
        Largest number of points per call of ``potential``: the batch holds 32 bytes per
        point (coordinates and value) plus what ``potential`` allocates for them.
    progress : callable, optional
        Wraps the range of batch starts (a progress bar); none by default.

    Returns
    -------
    (n_centres, (L+1)²) float64 array on the backend of ``centres_A``, e/Å

    Notes
    -----
    The quadrature matrix and the grid offsets go to the device once; each batch of centres
    is expanded to its points, evaluated and multiplied by the matrix there, so nothing comes
    back to the host inside the loop (unless ``potential`` itself transfers).
    """
    band_limit = _check_arguments(lmax, sphere_radius_A, band_limit)
    xp = namespace_of(centres_A)
    centres_A = xp.asarray(centres_A, dtype=xp.float64).reshape(-1, 3)
    start = time.perf_counter()
    cos_beta, alpha, directions, projector = sphere_quadrature(lmax, band_limit)
    n_rings, n_azimuth = cos_beta.size, alpha.size
    offsets = xp.asarray(sphere_radius_A * directions.reshape(-1, 3))  # (n_points, 3)

    def values_of(lo: int, hi: int) -> Array:
        points = (centres_A[lo:hi, None, :] + offsets[None]).reshape(-1, 3)  # (B·n_points, 3)
        return xp.asarray(potential(points), dtype=xp.float64)

    out = xp.empty((centres_A.shape[0], (lmax + 1) ** 2), dtype=xp.float64)
    calls = _project_in_batches(values_of, xp.asarray(projector), out, n_rings, n_azimuth, max_points, progress)
    log.debug(
        "sphere potential (pointwise): %d centres, rho=%.2f Å, L=%d, grid %dx%d, %d calls %.2fs",
        out.shape[0], sphere_radius_A, lmax, n_rings, n_azimuth, calls, time.perf_counter() - start,
    )
    return out


def _project_in_batches(
    values_of: Callable[[int, int], Array],
    projector: Array,
    out: Array,
    n_rings: int,
    n_azimuth: int,
    max_points: int,
    progress: Callable[[range], Iterable[int]] | None,
) -> int:
    """Fill out[lo:hi] with (values on the sphere grids of centres lo..hi) @ projector, batch by batch.

    A batch holds at most ``max_points`` grid points; ``values_of(lo, hi)`` gives their values
    (any shape with one value per point, centre-major). Returns the number of batches.
    """
    per_centre = n_rings * n_azimuth
    batch = max(1, int(max_points) // per_centre)
    n_centres = out.shape[0]
    starts = range(0, n_centres, batch)
    for lo in starts if progress is None else progress(starts):
        hi = min(lo + batch, n_centres)
        values = values_of(lo, hi)
        _check_values(values, hi - lo, n_rings, n_azimuth)
        out[lo:hi] = values.reshape(hi - lo, per_centre) @ projector
    return len(starts)


def _check_arguments(lmax: int, sphere_radius_A: float, band_limit: int | None) -> int:
    """The band limit to use (default :func:`default_band_limit`), after checking the arguments."""
    if not sphere_radius_A > 0:
        raise ValueError(f"sphere radius must be positive (Å), got {sphere_radius_A!r}")
    if int(lmax) < 0:
        raise ValueError(f"lmax must be >= 0, got {lmax}")
    band_limit = default_band_limit(lmax) if band_limit is None else int(band_limit)
    if band_limit < 0:
        raise ValueError(f"band_limit must be >= 0, got {band_limit}")
    return band_limit


def _check_values(values, n_centres: int, n_rings: int, n_azimuth: int) -> None:
    if values.size != n_centres * n_rings * n_azimuth:
        raise ValueError(
            f"potential returned {values.shape} for {n_centres}x{n_rings}x{n_azimuth} sphere points; expected one value per point"
        )
