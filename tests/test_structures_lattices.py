"""Lattices: counts, neutrality, neighbour shells (periodic k-d tree), Evjen weights and Madelung sums.

References: nearest cation–anion distances a/2 (rock salt), a√3/2 (CsCl), a√3/4 (zinc blende)
with coordination numbers 6, 8, 4; the NaCl Madelung constant 1.747564594633182 (nearest-
neighbour convention; e.g. Borwein, Glasser, McPhedran, Wan & Zucker, Lattice Sums Then and
Now, CUP 2013, Table 1.1); Evjen's n = 1 cube in closed form 3 − 3/√2 + 1/√3. CsCl
1.762674773070 (r0 = a√3/2) and zinc blende 1.638055053388 (r0 = a√3/4), same table and
convention. The mean inner potential −(2π/3V) Σ q r² of a cube's repeat unit (Bethe; e.g.
Harris, in Theoretical Chemistry: Advances and Perspectives 1 (1975)) shifts a single-termination
cube's limit by ±π√3/4 (CsCl) and ±π√3/8 (zinc blende), worked out by hand from the unit's
second moment. Cell vectors of a triclinic box: MDAnalysis.lib.mdamath.triclinic_vectors.
"""

from __future__ import annotations

import numpy as np
import pytest
from MDAnalysis.lib.distances import distance_array
from MDAnalysis.lib.mdamath import triclinic_vectors
from scipy.spatial import cKDTree

from pipeline.structures.lattices import LATTICE_TYPES, cell_vectors, crystal, evjen_cube, make_lattice

NACL_MADELUNG = 1.747564594633182
A = 5.64  # Å
#: lattice → (Madelung constant referred to r0, r0 / a, Bethe shift of a cation-terminated cube)
MADELUNG = {
    "cscl": (1.762674773070, np.sqrt(3) / 2, np.pi * np.sqrt(3) / 4),
    "zincblende": (1.638055053388, np.sqrt(3) / 4, np.pi * np.sqrt(3) / 8),
}


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


def centre_madelung(structure, nearest_A):
    """−Σ_{j≠c} q_j r0 / (z r_j) at the centre cation c of an Evjen cube (charge z)."""
    centre = structure.attrs["centre_index"]
    assert np.all(structure.positions[centre] == 0.0)
    z = structure.charges[centre]
    r = np.linalg.norm(structure.positions, axis=1)
    others = np.arange(structure.n_atoms) != centre
    return -np.sum(structure.charges[others] * nearest_A / (z * r[others]))


@pytest.mark.parametrize("lattice", ["cscl", "zincblende"])
@pytest.mark.parametrize("termination", ["cation", "anion", "mixed"])
def test_evjen_cubes_are_neutral_weighted_lattice_sites(lattice, termination):
    n = 3
    structure = evjen_cube(n, A, lattice=lattice, termination=termination)
    z = {"cscl": 1.0, "zincblende": 2.0}[lattice]
    assert abs(structure.charges.sum()) < 1e-12  # exactly neutral (dyadic weights)
    centre = structure.attrs["centre_index"]
    assert structure.charges[centre] == z and structure.elements[centre] == {"cscl": "Cs", "zincblende": "Zn"}[lattice]
    # every ion sits on a site of the periodic crystal, with that site's sign
    periodic = crystal(lattice, 1, A)
    fractional = np.mod(structure.positions / A, 1.0)
    distance, index = cKDTree(periodic.positions / A, boxsize=1.0).query(np.mod(fractional, 1.0))
    assert distance.max() < 1e-12
    np.testing.assert_array_equal(np.sign(structure.charges), periodic.charges[index] / z)
    half_width = structure.attrs["half_width_A"]
    assert np.abs(structure.positions).max() == pytest.approx(half_width, abs=1e-12)
    if (lattice, termination) in {("cscl", "cation"), ("cscl", "anion"), ("zincblende", "cation")}:
        # a single Evjen cube: weight ½ per coordinate on a face plane, and faces hold one species
        on_face = np.isclose(np.abs(structure.positions), half_width, atol=1e-9).sum(axis=1)
        np.testing.assert_array_equal(np.abs(structure.charges), z * 0.5**on_face)
        face_sign = np.sign(structure.charges[on_face > 0])
        assert np.all(face_sign == (1.0 if termination == "cation" else -1.0))


@pytest.mark.parametrize("lattice", ["cscl", "zincblende"])
def test_evjen_mixed_termination_converges_to_the_madelung_constant(lattice):
    madelung, r0, _ = MADELUNG[lattice]
    errors = {n: abs(centre_madelung(evjen_cube(n, A, lattice=lattice), r0 * A) - madelung) for n in (4, 8, 16)}
    if lattice == "cscl":
        # measured |ΔM| 1.2e-4, 7.7e-6, 4.8e-7: about n⁻⁴
        assert errors[8] < 1e-5 and errors[16] < 6e-7
        assert errors[4] / errors[8] > 12 and errors[8] / errors[16] > 12
    else:
        # measured |ΔM| 9.9e-4, 2.4e-4, 6.1e-5: n⁻²
        assert errors[8] < 3e-4 and errors[16] < 7e-5
        assert 3.5 < errors[4] / errors[8] < 4.5 and 3.5 < errors[8] / errors[16] < 4.5


@pytest.mark.parametrize("lattice", ["cscl", "zincblende"])
@pytest.mark.parametrize("termination", ["cation", "anion"])
def test_evjen_single_termination_tends_to_the_bethe_shifted_constant(lattice, termination):
    madelung, r0, shift = MADELUNG[lattice]
    limit = madelung + (shift if termination == "cation" else -shift)
    errors = [
        abs(centre_madelung(evjen_cube(n, A, lattice=lattice, termination=termination), r0 * A) - limit)
        for n in (8, 16)
    ]
    # measured at n = 16: CsCl 3.3e-4 (cation), 3.1e-4 (anion); zinc blende 4.1e-5, 1.6e-4; all n⁻²
    assert errors[1] < {"cscl": 4e-4, "zincblende": 2e-4}[lattice]
    assert 3.5 < errors[0] / errors[1] < 4.5


def test_evjen_cube_argument_errors():
    with pytest.raises(ValueError, match="termination does not apply to the rock-salt"):
        evjen_cube(2, A, termination="cation")
    with pytest.raises(ValueError, match="termination must be one of cation, anion, mixed"):
        evjen_cube(2, A, lattice="cscl", termination="corner")
    with pytest.raises(ValueError, match="finite neutral cube"):
        make_lattice("evjen_cscl", 2, A, periodic=True)
    with pytest.raises(ValueError, match="termination applies to the Evjen cubes"):
        make_lattice("cscl", 2, A, termination="anion")
    with pytest.raises(ValueError, match="primitive cell is a periodic cell"):
        make_lattice("rocksalt", 2, A, cell="primitive")
    with pytest.raises(ValueError, match="primitive cell is offered for rocksalt only"):
        make_lattice("cscl", 2, A, cell="primitive", periodic=True)


@pytest.mark.parametrize(
    ("lattice_type", "ions_per_cell", "charge"), [("rocksalt", 8, 1.0), ("cscl", 2, 1.0), ("zincblende", 8, 2.0)]
)
def test_periodic_supercell_stores_its_box(lattice_type, ions_per_cell, charge):
    n = 3
    periodic = make_lattice(lattice_type, n, A, periodic=True)
    assert periodic.attrs["box"] == [n * A, n * A, n * A, 90.0, 90.0, 90.0] and periodic.attrs["periodic"] == 1
    assert periodic.n_atoms == ions_per_cell * n**3
    assert periodic.charges.sum() == 0.0 and set(np.abs(periodic.charges)) == {charge}
    assert periodic.positions.min() >= 0.0 and periodic.positions.max() < n * A
    finite = make_lattice(lattice_type, n, A)
    assert finite.attrs["box"] == [] and finite.attrs["periodic"] == 0
    np.testing.assert_array_equal(finite.positions, periodic.positions)


def test_cell_vectors_match_mdanalysis():
    for box in ([10.0, 11.0, 12.0, 90.0, 90.0, 90.0], [80.0, 80.0, 80.0, 60.0, 60.0, 90.0], [5.0, 6.0, 7.0, 70.0, 80.0, 100.0]):
        np.testing.assert_allclose(cell_vectors(box), triclinic_vectors(np.array(box, dtype=np.float64)), atol=1e-5)


def test_primitive_rocksalt_cell_is_triclinic_fcc():
    n = 3
    structure = make_lattice("rocksalt", n, A, periodic=True, cell="primitive")
    length = n * A / np.sqrt(2)
    np.testing.assert_allclose(structure.attrs["box"], [length, length, length, 60.0, 60.0, 60.0], rtol=1e-15)
    assert structure.attrs["cell"] == "primitive"
    assert structure.n_atoms == 2 * n**3 and structure.charges.sum() == 0.0
    vectors = triclinic_vectors(np.array(structure.attrs["box"]))
    fractional = np.linalg.solve(vectors.T.astype(np.float64), structure.positions.T).T
    assert fractional.min() > -1e-6 and fractional.max() < 1 - 1e-6
    # minimum-image shells of rock salt: 6 opposite ions at a/2, then 12 like ions at a/√2
    box = np.array(structure.attrs["box"], dtype=np.float64)
    distances = distance_array(structure.positions, structure.positions, box=box)
    order = np.argsort(distances, axis=1)
    shells = np.take_along_axis(distances, order, axis=1)
    np.testing.assert_allclose(shells[:, 1:7], A / 2, atol=1e-4)
    np.testing.assert_allclose(shells[:, 7:19], A / np.sqrt(2), atol=1e-4)
    assert shells[:, 19].min() > A / np.sqrt(2) + 0.1
    signs = structure.charges[order] * structure.charges[:, None]
    assert np.all(signs[:, 1:7] < 0) and np.all(signs[:, 7:19] > 0)


def ewald_potentials(positions, charges, box, *, alpha_times_width=6.0, accuracy_factor=6.0):
    """Per-ion Ewald potential (tin-foil, neutral cell, e/Å) by a plain real + reciprocal sum.

    φ_i = Σ_{j,n}' q_j erfc(α r)/r + (4π/V) Σ_{k≠0} e^{−k²/4α²}/k² Re[S(k) e^{−ik·r_i}] − 2α q_i/√π,
    with images and k vectors out to erfc and e^{−k²/4α²} below ~e^{−36}: written for this test
    from the textbook formula, independent of the lattice module.
    """
    from scipy.special import erfc

    cell = cell_vectors(box)  # float64 (MDAnalysis' triclinic_vectors is float32; equal to 1e-5 above)
    volume = abs(np.linalg.det(cell))
    width = volume / max(np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3])) for k in range(3))
    alpha = alpha_times_width / width
    r_cut, k_cut = accuracy_factor / alpha, 2 * alpha * accuracy_factor
    reach = [int(np.ceil(r_cut / (volume / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3]))))) + 1 for k in range(3)]
    shifts = np.stack(np.meshgrid(*[np.arange(-m, m + 1) for m in reach], indexing="ij"), -1).reshape(-1, 3) @ cell
    phi = np.zeros(len(charges))
    for i, r_i in enumerate(positions):
        d = np.linalg.norm((positions[None, :, :] - r_i[None, None, :]) + shifts[:, None, :], axis=2)
        mask = (d > 1e-12) & (d < r_cut)
        phi[i] = np.sum(np.broadcast_to(charges, d.shape)[mask] * erfc(alpha * d[mask]) / d[mask])
    reciprocal = 2 * np.pi * np.linalg.inv(cell).T
    reach_k = [int(np.ceil(k_cut / np.linalg.norm(reciprocal[k]))) + 1 for k in range(3)]
    ks = np.stack(np.meshgrid(*[np.arange(-m, m + 1) for m in reach_k], indexing="ij"), -1).reshape(-1, 3) @ reciprocal
    k2 = np.sum(ks * ks, axis=1)
    ks, k2 = ks[(k2 > 0) & (k2 < k_cut**2)], k2[(k2 > 0) & (k2 < k_cut**2)]
    structure_factor = np.exp(1j * ks @ positions.T) @ charges  # S(k) = Σ q_j e^{ik·r_j}
    phases = np.exp(-1j * positions @ ks.T)  # (n, K)
    phi += (4 * np.pi / volume) * np.real(phases @ (np.exp(-k2 / (4 * alpha**2)) / k2 * structure_factor))
    return phi - 2 * alpha * charges / np.sqrt(np.pi)


@pytest.mark.parametrize(
    ("lattice_type", "cell", "madelung", "r0_over_a"),
    [
        ("rocksalt", "conventional", NACL_MADELUNG, 0.5),
        ("rocksalt", "primitive", NACL_MADELUNG, 0.5),
        ("cscl", "conventional", MADELUNG["cscl"][0], MADELUNG["cscl"][1]),
        ("zincblende", "conventional", MADELUNG["zincblende"][0], MADELUNG["zincblende"][1]),
    ],
)
def test_periodic_cells_give_the_madelung_constants_by_ewald(lattice_type, cell, madelung, r0_over_a):
    structure = make_lattice(lattice_type, 1, A, periodic=True, cell=cell)
    phi = ewald_potentials(structure.positions, structure.charges, structure.attrs["box"])
    # every ion: φ_i = −M z_i / r0 for charges ±z (a unit charge scale z = |q|)
    expected = -madelung * structure.charges / (r0_over_a * A)
    np.testing.assert_allclose(phi, expected, rtol=1e-10, atol=0)
