"""Compile every Numba kernel of the package once, so that jobs load them from the cache.

The compiled kernels (:mod:`.short_range`, :mod:`.short_range_grid`, :mod:`.gridding`,
:mod:`.direct`, :mod:`pipeline.descriptors.density_cells`, :mod:`pipeline.descriptors.sphere_kernels`,
:mod:`pipeline.equivariant.chunk_kernels`) are cached next to their modules (``cache=True``).
Compiling them all takes about a minute on 2 cores; :func:`compile_kernels` does it on tiny
inputs that take every code path the stages take (free-space and periodic builds, atom values
with each pair once, points, a map, a field, direct sums, every length of the short-range
kernel polynomial, the descriptors' density around atoms and around other centres and their
sphere projection of a free-space potential, the tensor products' chunk kernels and the ring
transforms' stages in float32 and float64), so that the workflow's ``compile_kernels`` rule
pays that time once per install, before parallel jobs start and outside every recorded runtime.
"""

from __future__ import annotations

import logging
import time

import numpy as np

log = logging.getLogger(__name__)


def compile_kernels() -> dict:
    """Run every compiled code path once on a few hundred atoms.

    Returns
    -------
    dict
        ``seconds`` (wall time) and ``kernels`` (number of compiled functions now in the
        dispatchers of those modules, each with at least one signature).
    """
    from numba.core.registry import CPUDispatcher

    from pipeline.descriptors import density_cells, sphere_kernels
    from pipeline.descriptors.projection import potential_expansion
    from pipeline.descriptors.sphere_potential import TuckerSphereEvaluator
    from pipeline.electrostatics import direct, gridding, short_range, short_range_grid
    from pipeline.equivariant import chunk_kernels
    from pipeline.equivariant.products import get_plan, tensor_product, tensor_product_vjp
    from pipeline.electrostatics.build import build_potential
    from pipeline.electrostatics.parameters import ewald_cutoff
    from pipeline.electrostatics.splitting import EwaldSplit, ScreenedEwaldSplit

    start = time.perf_counter()
    rng = np.random.default_rng(0)
    positions = rng.uniform(0.0, 12.0, (300, 3))
    charges = rng.normal(size=300)
    for cell in (None, np.eye(3) * 12.0):
        potential, _ = build_potential(positions, charges, tolerance=1e-4, cell=cell)
        if cell is None:
            potential_expansion(TuckerSphereEvaluator(potential), positions[:40].clip(2.0, 10.0), lmax=2, sphere_radius_A=1.5)
        potential.at_atoms()
        points = rng.uniform(0.0, 12.0, (50, 3))
        potential.potential(points)
        potential.field(points)
        axis = np.linspace(1.0, 11.0, 9)
        potential.grid(axis, axis, axis)
    short_range.short_range_sum(points, positions, charges, potential.split, potential.cutoff, field=True)
    # every compiled length of the kernel polynomial (chosen by α r_c and the tolerance), and the
    # tabulated kernel of the screened split
    split = EwaldSplit(alpha=0.4)
    for exponent in range(1, 13):
        tolerance = 10.0**-exponent
        cutoff = ewald_cutoff(split.alpha, tolerance)
        short_range.short_range_at_atoms(positions, charges, split, cutoff, tolerance=tolerance)
        short_range.short_range_sum(points, positions, charges, split, cutoff, tolerance=tolerance)
    screened = ScreenedEwaldSplit(alpha=0.4, kappa=0.1)
    short_range.short_range_at_atoms(positions, charges, screened, 8.0)
    short_range.short_range_sum(points, positions, charges, screened, 8.0)
    direct.direct_potential(points, positions, charges)
    density_cells.atom_density_from_cells(positions, charges, n_centres=200, lmax=2, cutoff_A=4.0, n_radial=2)
    density_cells.density_from_cells(points, positions, charges, lmax=2, cutoff_A=4.0, n_radial=2)
    for dtype in (np.float32, np.float64):
        for method in ("gaunt_grid", "gaunt_fourier", "vector_gaunt"):
            x, y = rng.normal(size=(2, 40, 4)).astype(dtype)
            tensor_product(x, y, method=method, threads=1)
            tensor_product_vjp(x, y, tensor_product(x, y, method=method, threads=1)[0], method=method, threads=1)
        # the ring transforms' own compiled stages, which they use on NumPy arrays outside a product
        t = get_plan("gaunt_grid", 1, 1, 2, xp=np, dtype=dtype).transform
        values = t.synthesize(t.to_slots(x, 1), 1)
        t.from_slots(t.analyze(t.multiply(values, values), 2), 2)
    modules = (direct, gridding, short_range, short_range_grid, density_cells, sphere_kernels, chunk_kernels)
    kernels = sum(1 for module in modules for value in vars(module).values()
                  if isinstance(value, CPUDispatcher) and value.signatures)
    seconds = time.perf_counter() - start
    log.info("compiled or loaded %d Numba kernels in %.1fs", kernels, seconds)
    return {"seconds": seconds, "kernels": kernels}
