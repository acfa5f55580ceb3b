"""Periodic (Ewald, tin-foil) potentials in triclinic cells against known constants and independent sums.

References: Madelung constants in the nearest-neighbour convention (φ_cation = −M z / r0):
rock salt 1.747564594633 (r0 = a/2), CsCl 1.762674773070 (r0 = a√3/2), zinc blende
1.638055053388 (r0 = a√3/4). The independent Ewald sum below is written here from the
textbook formula, with its own α, explicit image shifts and explicit k-vectors, and shares no
code with the package:

    φ_i = Σ_{j,n}' q_j erfc(α r)/r + (4π/V) Σ_{k≠0} e^{−k²/4α²}/k² Re[S(k) e^{ik·r_i}]
          − 2α q_i/√π − πQ/(Vα²),   S(k) = Σ_j q_j e^{−ik·r_j}.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy.special import erfc

from pipeline.electrostatics.build import build_potential
from pipeline.electrostatics.periodic import cell_matrix
from pipeline.electrostatics.reference import ewald_reference

MADELUNG = {"rocksalt": 1.747564594633, "cscl": 1.762674773070, "zincblende": 1.638055053388}
FCC = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5]])


def crystal(kind: str):
    """One conventional cubic cell: (fractional positions, charges ±1 e, lattice constant Å, r0 Å)."""
    if kind == "rocksalt":
        frac = np.concatenate([FCC, FCC + [0.5, 0.0, 0.0]]) % 1.0
        a = 5.64
        r0 = a / 2
    elif kind == "cscl":
        frac = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]])
        a = 4.12
        r0 = a * math.sqrt(3) / 2
    else:
        frac = np.concatenate([FCC, FCC + 0.25])
        a = 5.41
        r0 = a * math.sqrt(3) / 4
    n = frac.shape[0] // 2
    charges = np.concatenate([np.ones(n), -np.ones(n)])
    return frac, charges, a, r0


def independent_ewald(targets, positions, charges, cell, *, alpha=0.55, eps=1e-15):
    """Brute-force tin-foil Ewald sum at ``targets`` (atoms at a target are left out), e/Å."""
    cell = np.asarray(cell, dtype=float)
    volume = abs(np.linalg.det(cell))
    widths = 1.0 / np.linalg.norm(np.linalg.inv(cell), axis=0)
    r_max = math.sqrt(-math.log(eps)) / alpha + np.linalg.norm(cell, axis=1).sum()  # + any in-cell distance
    reach = np.ceil(r_max / widths).astype(int)
    shifts = np.stack(np.meshgrid(*[np.arange(-r, r + 1) for r in reach], indexing="ij"), -1).reshape(-1, 3) @ cell
    targets = targets - np.floor(targets @ np.linalg.inv(cell)) @ cell  # into the cell: Φ is periodic
    out = np.zeros(len(targets))
    for i, t in enumerate(targets):
        d = (t[None, None, :] - positions[None, :, :] - shifts[:, None, :]).reshape(-1, 3)
        q = np.tile(charges, len(shifts))
        r = np.linalg.norm(d, axis=1)
        same = r < 1e-10
        out[i] = np.sum(q[~same] * erfc(alpha * r[~same]) / r[~same]) - np.sum(q[same]) * 2 * alpha / math.sqrt(math.pi)
    k_max = 2 * alpha * math.sqrt(-math.log(eps))
    recip = 2 * math.pi * np.linalg.inv(cell).T  # rows b_j with a_i·b_j = 2π δ_ij
    m_reach = np.ceil(k_max * np.linalg.norm(cell, axis=1) / (2 * math.pi)).astype(int)  # |m_i| ≤ |k||a_i|/2π
    m = np.stack(np.meshgrid(*[np.arange(-r, r + 1) for r in m_reach], indexing="ij"), -1).reshape(-1, 3)
    k = m @ recip
    k2 = np.sum(k * k, axis=1)
    k, k2 = k[(k2 > 0) & (k2 <= k_max**2)], k2[(k2 > 0) & (k2 <= k_max**2)]
    structure = np.exp(-1j * positions @ k.T).T @ charges  # S(k) = Σ q_j e^{−ik·r_j}
    weight = 4 * math.pi / volume * np.exp(-k2 / (4 * alpha**2)) / k2
    out += np.real(np.exp(1j * targets @ k.T) @ (weight * structure))
    return out - math.pi * charges.sum() / (volume * alpha**2)


@pytest.mark.parametrize("kind", ["rocksalt", "cscl", "zincblende"])
@pytest.mark.parametrize("tolerance", [1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-10])
def test_madelung_constants_from_one_cell(kind, tolerance):
    frac, charges, a, r0 = crystal(kind)
    cell = np.eye(3) * a
    potential, _ = build_potential(frac @ cell, charges, tolerance=tolerance, cell=cell)
    total, _, _ = potential.at_atoms()
    madelung = -total * charges * r0  # every ion of these lattices sits at an equivalent site
    error = np.max(np.abs(madelung - MADELUNG[kind])) / MADELUNG[kind]
    limit = 0.5 * tolerance  # measured ≤ 0.49 × tolerance (CsCl at 1e-3); 1e-10 reaches 3e-11
    assert error <= limit, f"{kind} at tolerance {tolerance:g}: Madelung {madelung}, rel error {error:.2e}"


def test_primitive_triclinic_fcc_equals_conventional_cubic():
    """Rock salt as a 2-ion primitive cell (60° angles, MDAnalysis orientation) and as 8 ions in the cube."""
    frac, charges, a, r0 = crystal("rocksalt")
    cube, _ = build_potential(frac * a, charges, tolerance=1e-9, cell=np.eye(3) * a)
    cube_phi = cube.at_atoms()[0]
    length = a / math.sqrt(2)
    prim = cell_matrix([length, length, length, 60.0, 60.0, 60.0])
    positions = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]) @ prim  # Cl at ½(a1+a2+a3), a Cl site
    tri, _ = build_potential(positions, np.array([1.0, -1.0]), tolerance=1e-9, cell=[length] * 3 + [60.0] * 3)
    tri_phi = tri.at_atoms()[0]
    assert np.max(np.abs(tri_phi - [cube_phi[0], cube_phi[-1]])) < 1e-9 / r0  # measured 3.1e-10 / r0
    assert abs(-tri_phi[0] * r0 - MADELUNG["rocksalt"]) < 5e-10  # measured 8e-11


def _random_cell_system(rng, n=24, box=(9.0, 10.0, 11.0, 70.0, 80.0, 105.0), net=0.0):
    cell = cell_matrix(box)
    positions = rng.uniform(0, 1, (n, 3)) @ cell
    charges = rng.normal(size=n)
    charges += (net - charges.sum()) / n
    return positions, charges, cell


def test_equivalent_triclinic_bases_give_the_same_potentials(rng):
    """The same lattice in two bases (a unimodular change of cell vectors), atoms unchanged."""
    positions, charges, cell = _random_cell_system(rng)
    other = np.array([[1, 0, 0], [1, 1, 0], [0, -1, 1]]) @ cell  # det 1: the same lattice
    phi, _ = build_potential(positions, charges, tolerance=1e-8, cell=cell)
    phi_other, _ = build_potential(positions, charges, tolerance=1e-8, cell=other)
    a, b = phi.at_atoms()[0], phi_other.at_atoms()[0]
    assert np.max(np.abs(a - b)) / np.max(np.abs(a)) < 2e-9  # measured 5.9e-10


def test_lattice_shifts_and_translation_do_not_change_atom_potentials(rng):
    positions, charges, cell = _random_cell_system(rng)
    base = build_potential(positions, charges, tolerance=1e-8, cell=cell)[0].at_atoms()[0]
    scale = np.max(np.abs(base))
    shifted = positions + rng.integers(-3, 4, (len(charges), 3)) @ cell  # atoms far outside the cell
    moved = build_potential(shifted, charges, tolerance=1e-8, cell=cell)[0].at_atoms()[0]
    assert np.max(np.abs(moved - base)) / scale < 1e-12  # wrapped to the same coordinates: 6e-15
    translated = positions + np.array([3.3, -7.1, 12.9])  # every atom moves relative to the grid
    moved = build_potential(translated, charges, tolerance=1e-8, cell=cell)[0].at_atoms()[0]
    assert np.max(np.abs(moved - base)) / scale < 1e-9  # measured 1.8e-10


def test_results_do_not_depend_on_alpha(rng):
    positions, charges, cell = _random_cell_system(rng)
    values = [build_potential(positions, charges, tolerance=1e-8, cell=cell, alpha=alpha)[0].at_atoms()[0]
              for alpha in (0.35, 0.5, 0.8)]
    scale = np.max(np.abs(values[0]))
    assert np.max(np.abs(values[1] - values[0])) / scale < 3e-9  # measured 8.9e-10
    assert np.max(np.abs(values[2] - values[0])) / scale < 3e-9  # measured 1.4e-9


@pytest.fixture(scope="module")
def charged_cell():
    """A net-charged (Q = +1.5 e) triclinic cell, its potential at 1e-8 and the independent Ewald sum."""
    rng = np.random.default_rng(7)
    positions, charges, cell = _random_cell_system(rng, n=16, net=1.5)
    potential, _ = build_potential(positions, charges, tolerance=1e-8, cell=cell)
    return positions, charges, cell, potential


def test_net_charged_cell_against_independent_ewald(charged_cell):
    positions, charges, cell, potential = charged_cell
    total = potential.at_atoms()[0]
    ref = independent_ewald(positions, positions, charges, cell)
    ref_other_alpha = independent_ewald(positions, positions, charges, cell, alpha=0.8)
    scale = np.max(np.abs(ref))
    assert np.max(np.abs(ref_other_alpha - ref)) / scale < 1e-13  # background term: α-free (4e-16)
    assert np.max(np.abs(total - ref)) / scale < 2e-9  # measured 4.6e-10
    package_ref = ewald_reference(positions, positions, charges, cell, potential.split, tolerance=1e-10)
    assert np.max(np.abs(package_ref - ref)) / scale < 1e-12  # measured 3e-14


def test_points_and_map_against_independent_ewald(charged_cell):
    positions, charges, cell, potential = charged_cell
    rng = np.random.default_rng(11)
    inside = rng.uniform(0, 1, (40, 3)) @ cell
    far = inside[:10] + np.array([[7, -5, 11]]) @ cell + rng.normal(scale=0.3, size=(10, 3))
    points = np.concatenate([inside, far, inside[:10] - 40.0 * cell[0]])
    ref = independent_ewald(points, positions, charges, cell)
    scale = np.max(np.abs(ref))
    assert np.max(np.abs(potential.potential(points) - ref)) / scale < 2e-9  # measured 7.4e-10
    xs, ys, zs = np.linspace(-12.0, 20.0, 5), np.linspace(-3.0, 4.0, 4), np.array([0.7, 31.0, -55.0])
    grid = potential.grid(xs, ys, zs)
    pts = np.stack(np.meshgrid(xs, ys, zs, indexing="ij"), -1).reshape(-1, 3)
    ref = independent_ewald(pts, positions, charges, cell).reshape(grid.shape)
    assert np.max(np.abs(grid - ref)) / scale < 2e-9  # measured 6.8e-10


def test_field_against_finite_differences_of_the_reference(charged_cell):
    positions, charges, cell, potential = charged_cell
    rng = np.random.default_rng(13)
    points = rng.uniform(0, 1, (12, 3)) @ cell + np.array([0.0, 0.0, 23.0])
    h = 1e-3
    grad = np.zeros((len(points), 3))
    for axis in range(3):
        step = np.zeros(3)
        step[axis] = h
        plus = independent_ewald(points + step, positions, charges, cell)
        minus = independent_ewald(points - step, positions, charges, cell)
        grad[:, axis] = (plus - minus) / (2 * h)
    field = potential.field(points)
    # measured 3.6e-7 (the free-space field test allows 1e-6 at tolerance 1e-8 too)
    assert np.max(np.abs(field + grad)) / np.max(np.abs(grad)) < 1e-6


SCRIPT_UPPER_FACE = """
import numpy as np
from pipeline.electrostatics.periodic import periodic_interpolate, periodic_long_range_grid, plan_periodic
from pipeline.electrostatics.splitting import EwaldSplit
cell, split, charges = np.eye(3) * 10.0, EwaldSplit(alpha=0.5), np.array([1.0, -0.5, -0.5])
plan = plan_periodic(cell, split.t_max, 1e-6)
values = []
for x in (10.0 - 1e-9, 0.0):  # the same atom, just below the upper face and wrapped onto u = 0
    positions = np.array([[1.0, 1.0, 1.0], [5.0, 5.0, 5.0], [x, 2.0, 3.0]])
    values.append(periodic_interpolate(periodic_long_range_grid(positions, charges, plan, split), positions, plan))
print(float(np.max(np.abs(values[0] - values[1])) / np.max(np.abs(values[1]))))
"""


def test_atoms_at_the_upper_cell_face_stay_inside_the_spreading_grid(tmp_path):
    """Spreading and interpolation windows of an atom just below u = 1 must fit the extended grid.

    Compiled loops do not check indices, so the periodic long range runs in a child process with
    Numba's bounds checking on (and its own cache, so the checked kernels are compiled).
    """
    env = {**os.environ, "NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", SCRIPT_UPPER_FACE], capture_output=True, text=True, env=env,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert float(result.stdout.strip().splitlines()[-1]) < 1e-8  # the same atom wrapped: the same long range


@pytest.mark.parametrize(("grid", "pad"), [((7, 5, 6), 2), ((4, 3, 5), 4), ((3, 9, 2), 3)])
def test_fold_and_extend_against_index_arithmetic(rng, grid, pad):
    """Folding adds extended point e onto periodic point (e − pad) mod n, extending copies it back;
    pad ≤ n (in place) and pad > n (blockwise) on the axes above."""
    from pipeline.electrostatics.periodic import _extend, _fold

    ext = rng.normal(size=tuple(n + 2 * pad for n in grid))
    index = [(np.arange(n + 2 * pad) - pad) % n for n in grid]
    expected = np.zeros(grid)
    np.add.at(expected, np.ix_(*index), ext)
    np.testing.assert_allclose(_fold(ext.copy(), pad, grid), expected, rtol=0, atol=1e-13)
    np.testing.assert_array_equal(_extend(expected, pad), expected[np.ix_(*index)])


def test_periodic_sources_are_every_image_within_the_cutoff(rng):
    """Wrapped atoms first, then exactly the images within the cutoff of the cell (brute force over shifts)."""
    from pipeline.electrostatics.periodic import fractional, periodic_sources

    cell = cell_matrix([20.0, 23.0, 26.0, 80.0, 95.0, 105.0])
    positions = rng.uniform(-5.0, 30.0, (300, 3))
    charges = rng.normal(size=300)
    sources, source_charges = periodic_sources(positions, charges, cell, 6.0)
    u = fractional(positions, np.linalg.inv(cell))
    margin = 6.0 / (np.abs(np.linalg.det(cell)) / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1))
    shifts = np.stack(np.meshgrid(*[np.arange(-1, 2)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    shifted = u[None, :, :] + shifts[:, None, :]
    keep = np.all((shifted >= -margin) & (shifted < 1.0 + margin), axis=2) & np.any(shifts != 0, axis=1)[:, None]
    np.testing.assert_allclose(sources[:300], u @ cell, atol=1e-12)
    np.testing.assert_array_equal(source_charges[:300], charges)
    expected = {tuple(np.round(p, 9)) + (q,) for p, q in zip(shifted[keep] @ cell, np.broadcast_to(charges, keep.shape)[keep])}
    got = {tuple(np.round(p, 9)) + (q,) for p, q in zip(sources[300:], source_charges[300:])}
    assert len(sources) - 300 == keep.sum() and got == expected


def test_window_transform_against_adaptive_quadrature():
    """ŵ₁(f) of the exponential-of-semicircle window against scipy's adaptive quadrature in v."""
    from scipy.integrate import quad

    from pipeline.electrostatics.periodic import plan_periodic, window_transform

    plan = plan_periodic(np.eye(3) * 30.0, 0.3, 1e-6)
    assert plan.radius == 4.0
    freqs = np.array([0.0, 0.05, 0.17, 0.25, 0.5])

    def window(v):
        return math.exp(plan.beta * (math.sqrt(max(1.0 - (v / plan.radius) ** 2, 0.0)) - 1.0))

    expected = [2.0 * quad(lambda v: window(v) * math.cos(2.0 * math.pi * f * v), 0.0, plan.radius,
                           epsabs=1e-14, epsrel=1e-12, limit=200)[0] for f in freqs]
    np.testing.assert_allclose(window_transform(freqs, plan), expected, rtol=1e-11, atol=0)
