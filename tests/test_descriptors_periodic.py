"""Descriptors of a periodic potential: every ion of a perfect crystal sees the same environment.

In a periodic rock-salt supercell all cations are equivalent (and all anions), so their charge
densities and sphere-potential expansions must agree, also for ions at the cell faces whose
neighbours lie across the boundary. Within 6 Å (a = 5.64 Å) each ion has 6 + 12 + 8 + 6 = 32
neighbours (shells at a/2, a/√2, a√3/2, a). A free-space evaluation of the same atoms (no
images) breaks both, which shows the test can fail.
"""

from __future__ import annotations

import numpy as np

from pipeline.descriptors.compute import DescriptorParameters, compute_descriptors
from pipeline.descriptors.sphere_potential import PeriodicSphereEvaluator, sphere_evaluator
from pipeline.electrostatics import build_potential

A = 5.64
CELLS = 3


def rock_salt(n: int = CELLS):
    base = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    grid = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1).reshape(-1, 3)
    cations = (base[None] + grid[:, None]).reshape(-1, 3)
    positions = np.vstack([cations, cations + [0.5, 0.0, 0.0]]) * A
    charges = np.r_[np.ones(len(cations)), -np.ones(len(cations))]
    return positions, charges


def test_equivalent_ions_have_equal_descriptors_across_the_cell_faces():
    positions, charges = rock_salt()
    cell = np.eye(3) * A * CELLS
    potential, _ = build_potential(positions, charges, tolerance=1e-8, cell=cell)
    evaluator = sphere_evaluator(potential)
    assert isinstance(evaluator, PeriodicSphereEvaluator)
    params = DescriptorParameters(lmax=2, cutoff_A=6.0, n_radial=4, sphere_radius_A=2.0, n_validation=16)
    result = compute_descriptors(positions, charges, evaluator, params, cell=cell)
    assert np.all(result.n_neighbours == 32)
    for sign in (1.0, -1.0):
        ions = charges == sign
        density, expansion = result.density[ions], result.potential_sh[ions]
        assert np.abs(density - density[0]).max() <= 1e-12 * np.abs(density).max()
        assert np.abs(expansion - expansion[0]).max() <= 1e-8 * np.abs(expansion).max()
    assert max(result.validation.equivariance_error.values()) < 1e-8

    free = compute_descriptors(positions, charges, evaluator, params)  # no images: faces see fewer neighbours
    assert free.n_neighbours.min() < 32
