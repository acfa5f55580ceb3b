"""Lattices: counts, neutrality, neighbour shells (periodic k-d tree), Evjen weights and Madelung sums.

References: nearest cation–anion distances a/2 (rock salt), a√3/2 (CsCl), a√3/4 (zinc blende)
with coordination numbers 6, 8, 4; the NaCl Madelung constant 1.747564594633182 (nearest-
neighbour convention; e.g. Borwein, Glasser, McPhedran, Wan & Zucker, Lattice Sums Then and
Now, CUP 2013, Table 1.1); Evjen's n = 1 cube in closed form 3 − 3/√2 + 1/√3.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from pipeline.structures.lattices import LATTICE_TYPES, crystal, evjen_cube, make_lattice

NACL_MADELUNG = 1.747564594633182
A = 5.64  # Å


def madelung_of_centre(structure, nearest_A):
    """−Σ_{j≠0} q_j · d / r_j seen from the centre ion at the origin (charge +1)."""
    r = np.linalg.norm(structure.positions, axis=1)
    centre = np.flatnonzero(r == 0)
    assert centre.size == 1 and structure.charges[centre[0]] == 1.0
    others = r > 0
    return -np.sum(structure.charges[others] * nearest_A / r[others])


@pytest.mark.parametrize(
    ("lattice_type", "ions_per_cell", "nearest", "coordination", "charge"),
    [("rocksalt", 8, 0.5, 6, 1.0), ("cscl", 2, np.sqrt(3) / 2, 8, 1.0), ("zincblende", 8, np.sqrt(3) / 4, 4, 2.0)],
)
def test_periodic_lattice_counts_neutrality_neighbours(lattice_type, ions_per_cell, nearest, coordination, charge):
    n = 3
    structure = crystal(lattice_type, n, A)
    assert structure.n_atoms == ions_per_cell * n**3
    assert structure.charges.sum() == 0.0
    assert set(np.abs(structure.charges)) == {charge}
    assert structure.attrs["box"] == [n * A, n * A, n * A, 90.0, 90.0, 90.0]
    box = n * A
    assert structure.positions.min() >= 0 and structure.positions.max() < box
    tree = cKDTree(structure.positions, boxsize=box)
    d = nearest * A
    distances, neighbours = tree.query(structure.positions, k=coordination + 1)
    # every ion: itself, then `coordination` ions of opposite sign at exactly d, nothing else before the 2nd shell
    np.testing.assert_allclose(distances[:, 1:], d, rtol=0, atol=1e-12)
    assert np.all(structure.charges[neighbours[:, 1:]] * structure.charges[:, None] < 0)
    counts = tree.query_ball_point(structure.positions, r=d * 1.01, return_length=True)
    assert np.all(counts == coordination + 1)
    assert np.isin(
        structure.elements, {"rocksalt": ["Na", "Cl"], "cscl": ["Cs", "Cl"], "zincblende": ["Zn", "S"]}[lattice_type]
    ).all()
    assert np.all(np.isfinite(structure.radii)) and np.all(structure.radii > 0.5)


def test_evjen_count_neutrality_weights():
    n = 4
    structure = evjen_cube(n, A)
    assert structure.n_atoms == (2 * n + 1) ** 3
    assert abs(structure.charges.sum()) < 1e-15
    grid = np.rint(structure.positions / (A / 2)).astype(int)
    np.testing.assert_allclose(grid * (A / 2), structure.positions, atol=1e-12)
    on_boundary = (np.abs(grid) == n).sum(axis=1)  # 0 inside, 1 face, 2 edge, 3 corner
    expected_weight = 0.5**on_boundary
    expected_sign = np.where(grid.sum(axis=1) % 2 == 0, 1.0, -1.0)
    np.testing.assert_array_equal(structure.charges, expected_sign * expected_weight)
    assert np.count_nonzero(on_boundary == 3) == 8 and np.all(np.abs(structure.charges[on_boundary == 3]) == 0.125)
    assert np.count_nonzero(on_boundary == 2) == 12 * (2 * n - 1)
    assert structure.attrs["box"] == []


def test_evjen_madelung_constant():
    closed_form_n1 = 3 - 3 / np.sqrt(2) + 1 / np.sqrt(3)
    assert abs(madelung_of_centre(evjen_cube(1, A), A / 2) - closed_form_n1) < 1e-14
    # Evjen sums converge to the NaCl constant: |M(8) − M| ≈ 1e-5, |M(16) − M| ≈ 6e-7
    assert abs(madelung_of_centre(evjen_cube(8, A), A / 2) - NACL_MADELUNG) < 2e-5
    assert abs(madelung_of_centre(evjen_cube(16, A), A / 2) - NACL_MADELUNG) < 1e-6


def test_vacancies_are_neutral_pairs_on_lattice_sites_and_reproducible():
    n, fraction = 4, 0.1
    perfect = crystal("rocksalt", n, A)
    n_cations = int(np.count_nonzero(perfect.charges > 0))
    k = round(fraction * n_cations)
    first = make_lattice("rocksalt", n, A, vacancy_fraction=fraction, seed=7)
    again = make_lattice("rocksalt", n, A, vacancy_fraction=fraction, seed=7)
    other = make_lattice("rocksalt", n, A, vacancy_fraction=fraction, seed=8)
    assert first.n_atoms == perfect.n_atoms - 2 * k and first.attrs["n_vacancies"] == 2 * k
    assert np.count_nonzero(first.charges > 0) == n_cations - k
    assert first.charges.sum() == 0.0
    np.testing.assert_array_equal(first.positions, again.positions)
    assert not np.array_equal(first.positions, other.positions)
    # the survivors are sites of the perfect crystal with their own charges
    distance, index = cKDTree(perfect.positions).query(first.positions)
    assert distance.max() < 1e-12
    np.testing.assert_array_equal(perfect.charges[index], first.charges)
    np.testing.assert_array_equal(first.residue_ids, np.arange(1, first.n_atoms + 1))


@pytest.mark.parametrize("site", ["cation", "anion", "any"])
def test_impurities_change_charge_by_the_stated_amount(site):
    n, fraction, q = 3, 0.2, 2.0
    perfect = crystal("cscl", n, A)
    structure = make_lattice("cscl", n, A, impurity_fraction=fraction, impurity_charge=q, impurity_site=site, seed=3)
    n_sites = {"cation": perfect.n_atoms // 2, "anion": perfect.n_atoms // 2, "any": perfect.n_atoms}[site]
    m = round(fraction * n_sites)
    changed = np.flatnonzero(structure.elements == "X")
    assert changed.size == m == structure.attrs["n_impurities"]
    np.testing.assert_array_equal(structure.charges[changed], q)
    if site != "any":
        assert np.all(perfect.charges[changed] == (1.0 if site == "cation" else -1.0))
    expected_net = np.sum(q - perfect.charges[changed])
    assert abs(structure.charges.sum() - expected_net) < 1e-12
    assert np.all(np.isnan(structure.radii[changed]))
    again = make_lattice("cscl", n, A, impurity_fraction=fraction, impurity_charge=q, impurity_site=site, seed=3)
    np.testing.assert_array_equal(again.charges, structure.charges)


def test_vacancies_then_impurities_zincblende():
    structure = make_lattice(
        "zincblende", 3, 5.41, vacancy_fraction=0.05, impurity_fraction=0.1, impurity_charge=1.0, seed=11
    )
    n_cations = 4 * 27
    k = round(0.05 * n_cations)
    m = round(0.1 * (n_cations - k))
    assert structure.n_atoms == 8 * 27 - 2 * k
    assert structure.attrs["n_impurities"] == m
    assert abs(structure.charges.sum() - m * (1.0 - 2.0)) < 1e-12


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lattice_type": "fcc"}, "lattice type must be one of"),
        ({"n_cells": 0}, "n_cells must be an integer >= 1"),
        ({"lattice_constant_A": -1.0}, "lattice_constant_A must be a positive"),
        ({"vacancy_fraction": 1.5}, r"vacancy_fraction must be in \[0, 1\)"),
        ({"impurity_fraction": 0.1}, "impurity_charge is required"),
        ({"lattice_type": "evjen", "vacancy_fraction": 0.1}, "Evjen cube"),
    ],
)
def test_lattice_argument_errors(kwargs, message):
    arguments = {"lattice_type": "rocksalt", "n_cells": 2, "lattice_constant_A": A, **kwargs}
    with pytest.raises(ValueError, match=message):
        make_lattice(
            arguments.pop("lattice_type"), arguments.pop("n_cells"), arguments.pop("lattice_constant_A"), **arguments
        )


def test_every_type_has_lattice_provenance():
    for lattice_type in LATTICE_TYPES:
        structure = make_lattice(lattice_type, 2, A)
        assert structure.attrs["charge_source"] == "lattice" and structure.attrs["source"] == "lattice"
        assert structure.attrs["lattice_type"] == lattice_type and structure.attrs["dropped"] == []
