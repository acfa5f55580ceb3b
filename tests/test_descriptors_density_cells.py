"""The compiled cell-list density kernel against a direct double loop and against the pair-list route.

References: :func:`tests.test_descriptors_density.density_reference` (a double loop over
atom pairs with SciPy's complex spherical harmonics turned into e3nn real ones, written from
the formulas) and :func:`tests.test_descriptors_density.real_sh_reference` for the kernel's
own spherical harmonics. The pair-list route (KD-tree + sparse accumulation) is a second,
independent implementation of the same sums, so the whole stage must agree with it too.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest

from pipeline.descriptors.compute import DescriptorParameters, compute_descriptors
from pipeline.descriptors.density_cells import (
    atom_density_from_cells,
    build_cells,
    density_from_cells,
    sh_recurrence_tables,
    sh_rows,
)
from pipeline.descriptors.sphere_potential import sphere_evaluator
from pipeline.electrostatics import build_potential
from tests.test_descriptors_density import density_reference, random_molecule, real_sh_reference


def sources_reference(centres, sources, charges, lmax, cutoff, n_radial):
    """Σ over sources at distance in (0, cutoff) of every centre, by a double loop (formulas as density_reference)."""
    sigma = cutoff / n_radial
    mu = np.arange(n_radial) * sigma
    out = np.zeros((len(centres), n_radial, (lmax + 1) ** 2))
    for i, c in enumerate(centres):
        for x, q in zip(sources, charges):
            r = np.linalg.norm(x - c)
            if r == 0.0 or r >= cutoff:
                continue
            radial = np.exp(-((r - mu) ** 2) / (2 * sigma**2)) * 0.5 * (1.0 + math.cos(math.pi * r / cutoff))
            out[i] += q * radial[:, None] * real_sh_reference(lmax, x - c)[None, :]
    return out


@pytest.mark.parametrize("lmax", [0, 1, 2, 5, 8])
def test_kernel_spherical_harmonics_match_scipy(rng, lmax):
    v = rng.normal(size=(50, 3))
    v[0] = [0.0, 1.0, 0.0]  # the pole
    v[1] = [0.0, -1.0, 0.0]
    v /= np.linalg.norm(v, axis=1)[:, None]
    got = sh_rows(v, lmax, *sh_recurrence_tables(lmax))
    want = np.array([real_sh_reference(lmax, x) for x in v])
    np.testing.assert_allclose(got, want, atol=1e-13, rtol=0)


@pytest.mark.parametrize("lmax, n_radial", [(0, 1), (2, 3), (3, 4)])
def test_density_matches_direct_double_loop(rng, lmax, n_radial):
    positions, charges = random_molecule(rng, n=60, box=10.0)
    cutoff = 4.0
    got, counts, zeros = density_from_cells(positions, positions, charges, lmax=lmax, cutoff_A=cutoff, n_radial=n_radial)
    want = density_reference(positions, charges, lmax, cutoff, n_radial)
    assert got.shape == (60, n_radial, (lmax + 1) ** 2)
    assert np.abs(want).max() > 0.1  # the neighbourhoods are not empty
    np.testing.assert_allclose(got, want, atol=1e-13, rtol=0)
    d = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    np.testing.assert_array_equal(counts, ((d > 0) & (d < cutoff)).sum(axis=1))
    np.testing.assert_array_equal(zeros, np.ones(60))  # each centre sees itself only


def test_centres_apart_from_sources_and_outside_their_box(rng):
    sources, charges = random_molecule(rng, n=50, box=8.0)
    centres = np.vstack([rng.uniform(0.0, 8.0, size=(6, 3)), [[-2.5, 4.0, 4.0], [10.0, 9.5, -1.0], [30.0, 30.0, 30.0]]])
    got, counts, zeros = density_from_cells(centres, sources, charges, lmax=2, cutoff_A=3.5, n_radial=2)
    want = sources_reference(centres, sources, charges, 2, 3.5, 2)
    np.testing.assert_allclose(got, want, atol=1e-13, rtol=0)
    assert counts[-1] == 0 and np.all(got[-1] == 0.0) and zeros.sum() == 0
    assert counts[6] > 0  # a centre outside the sources' box still finds its neighbours


def test_sparse_structure_gets_coarser_cells(rng):
    # Two clusters 400 Å apart: cells of side cutoff/2 would outnumber the atoms by far.
    a, qa = random_molecule(rng, n=30, box=6.0)
    b, qb = random_molecule(rng, n=30, box=6.0)
    positions, charges = np.vstack([a, b + 400.0]), np.r_[qa, qb]
    cells = build_cells(positions, 3.0)
    assert cells.side > 1.5 and int(np.prod(cells.shape)) <= 8 * 60 + 1000
    got = density_from_cells(positions, positions, charges, lmax=2, cutoff_A=3.0, n_radial=3, cells=cells)[0]
    np.testing.assert_allclose(got, density_reference(positions, charges, 2, 3.0, 3), atol=1e-13, rtol=0)


def test_coincident_atoms_are_counted_not_used(rng):
    positions, charges = random_molecule(rng, n=20, box=6.0)
    positions[5] = positions[2]
    got, counts, zeros = density_from_cells(positions, positions, charges, lmax=1, cutoff_A=3.0, n_radial=2)
    assert zeros[2] == 2 and zeros[5] == 2 and zeros.sum() == 22
    keep = np.r_[0:5, 6:20]  # atom 5 dropped: what atom 2 sees besides its twin
    want = density_reference(positions[keep], charges[keep], 1, 3.0, 2)
    np.testing.assert_allclose(got[2], want[2], atol=1e-13, rtol=0)


def test_result_does_not_depend_on_threads(rng):
    positions, charges = random_molecule(rng, n=400, box=16.0)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = density_from_cells(positions, positions, charges, lmax=2, cutoff_A=4.0, n_radial=3)[0]
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(one, density_from_cells(positions, positions, charges, lmax=2, cutoff_A=4.0, n_radial=3)[0])


@pytest.mark.parametrize("periodic", [False, True])
def test_stage_matches_the_pair_list_route(rng, periodic):
    """compute_descriptors with the cell kernel equals the KD-tree + sparse route (free space and periodic)."""
    n, box = 120, 14.0
    positions = rng.uniform(0.0, box, size=(n, 3))
    charges = rng.normal(scale=0.5, size=n)
    charges -= charges.mean()
    cell = np.eye(3) * box if periodic else None
    potential, _ = build_potential(positions, charges, tolerance=1e-6, cell=cell)
    evaluator = sphere_evaluator(potential)
    results = {}
    for method in ("cells", "query_pairs"):
        params = DescriptorParameters(lmax=2, cutoff_A=5.0, n_radial=4, sphere_radius_A=1.5, n_validation=8, neighbour_method=method)
        results[method] = compute_descriptors(positions, charges, evaluator, params, cell=cell)
    new, old = results["cells"], results["query_pairs"]
    np.testing.assert_array_equal(new.n_neighbours, old.n_neighbours)
    assert new.n_pairs == old.n_pairs
    scale = np.abs(old.density).max()
    assert np.abs(new.density - old.density).max() <= 1e-13 * scale
    for a, b in zip(new.products, old.products):
        assert np.abs(a.values - b.values).max() <= 1e-13 * np.abs(b.values).max(), a.method
    assert max(new.validation.equivariance_error.values()) < 1e-8
    assert new.validation.equivariance_error_density < 1e-12


@pytest.mark.parametrize("lmax, n_radial", [(0, 1), (2, 4), (3, 16)])
def test_pairs_once_matches_direct_double_loop(rng, lmax, n_radial):
    positions, charges = random_molecule(rng, n=70, box=11.0)
    got, counts, zeros = atom_density_from_cells(positions, charges, n_centres=70, lmax=lmax, cutoff_A=4.0, n_radial=n_radial)
    want = density_reference(positions, charges, lmax, 4.0, n_radial)
    np.testing.assert_allclose(got, want, atol=1e-13, rtol=0)
    d = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    np.testing.assert_array_equal(counts, ((d > 0) & (d < 4.0)).sum(axis=1))
    assert zeros.sum() == 0


def test_pairs_once_with_neighbour_only_sources_and_many_slabs(rng):
    # A long bar along x (many slabs, both parities busy); the last 40 sources are neighbours only.
    positions = rng.uniform(0.0, 1.0, size=(200, 3)) * [60.0, 6.0, 6.0]
    charges = rng.normal(scale=0.5, size=200)
    positions[7] = positions[3]  # a coincident pair among the centres
    cells = build_cells(positions, 3.0)
    assert cells.shape[0] >= 30
    got, counts, zeros = atom_density_from_cells(positions, charges, n_centres=160, lmax=2, cutoff_A=3.0, n_radial=3, cells=cells)
    want = sources_reference(positions[:160], positions, charges, 2, 3.0, 3)  # the twins skip each other
    np.testing.assert_allclose(got, want, atol=1e-13, rtol=0)
    assert zeros[3] == 1 and zeros[7] == 1 and zeros.sum() == 2
    direct, direct_counts, _ = density_from_cells(positions[:160], positions, charges, lmax=2, cutoff_A=3.0, n_radial=3)
    np.testing.assert_allclose(got, direct, atol=1e-13, rtol=0)
    np.testing.assert_array_equal(counts, direct_counts)
