"""Debye–Hückel screening and the uniform dielectric against closed forms and brute-force sums.

Kernel: Φ_i = Σ_j q_j e^{−κ r_ij}/(ε_r r_ij) (e/Å). Closed forms: a single ion, an ion pair.
Periodic + screened: the image sum Σ_n Σ_j q_j e^{−κ|r − r_j − n|}/(ε_r |r − r_j − n|) converges
absolutely, so a brute-force sum over explicit images (no Ewald split) is an independent reference.
Bad input goes through the command line: exit 1, a one-line error naming the setting, no file.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from pipeline.electrostatics.build import build_potential
from pipeline.electrostatics.periodic import cell_matrix
from pipeline.electrostatics.settings import PotentialSettings
from pipeline.storage import write_netcdf
from pipeline.structures.record import Structure, structure_to_dataset

#: κ at I = 0.15 M, ε_r = 78.5, T = 298.15 K: 1/Debye length (7.8546 Å, CODATA 2018).
KAPPA_150MM = 1.0 / 7.8546
EPS_WATER = 78.5


def debye_huckel(points, positions, charges, kappa, dielectric):
    """Σ_j q_j e^{−κr}/(ε_r r) at ``points``, leaving out a source at a point, e/Å."""
    r = np.linalg.norm(points[:, None, :] - positions[None, :, :], axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(r > 0, charges[None, :] * np.exp(-kappa * r) / (dielectric * r), 0.0)
    return terms.sum(axis=1)


def test_debye_length_at_150_mM():
    kappa = PotentialSettings(dielectric=EPS_WATER, ionic_strength=0.15, temperature=298.15).kappa
    assert abs(1.0 / kappa - 7.8546) < 5e-5  # Å, CODATA 2018 constants
    assert PotentialSettings(dielectric=EPS_WATER, ionic_strength=0.0).kappa == 0.0
    # κ² ∝ I / (ε_r T)
    kappa_2 = PotentialSettings(dielectric=2 * EPS_WATER, ionic_strength=0.6, temperature=298.15).kappa
    assert abs(kappa_2 / kappa - math.sqrt(2.0)) < 1e-12


def test_single_ion_in_salt_matches_closed_form(rng):
    position, charge = np.array([[1.3, -0.4, 2.2]]), np.array([1.7])
    potential, _ = build_potential(position, charge, tolerance=1e-8, kappa=KAPPA_150MM, dielectric=EPS_WATER)
    direction = rng.normal(size=(30, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    radius = np.geomspace(0.5, 2.9, 30)[:, None]  # inside the padded Chebyshev box
    points = position + radius * direction
    exact = debye_huckel(points, position, charge, KAPPA_150MM, EPS_WATER)
    assert np.max(np.abs(potential.potential(points) - exact)) / np.max(np.abs(exact)) < 5e-10  # measured 5.4e-11
    assert abs(potential.at_atoms()[0][0]) < 1e-9 * np.max(np.abs(exact))  # its own potential is left out


def test_ion_pair_in_salt_at_atoms_and_points(rng):
    positions = np.array([[0.0, 0.0, 0.0], [2.8, 0.9, -1.1]])
    charges = np.array([1.0, -2.0])
    potential, _ = build_potential(positions, charges, tolerance=1e-8, kappa=KAPPA_150MM, dielectric=EPS_WATER)
    total = potential.at_atoms()[0]
    d = np.linalg.norm(positions[1] - positions[0])
    exact_atoms = np.array([-2.0, 1.0]) * math.exp(-KAPPA_150MM * d) / (EPS_WATER * d)
    assert np.max(np.abs(total - exact_atoms)) / np.max(np.abs(exact_atoms)) < 2e-9  # measured 6.4e-10
    points = rng.uniform(np.asarray(potential.box_lo) + 0.1, np.asarray(potential.box_hi) - 0.1, (50, 3))
    exact = debye_huckel(points, positions, charges, KAPPA_150MM, EPS_WATER)
    assert np.max(np.abs(potential.potential(points) - exact)) / np.max(np.abs(exact)) < 1e-9  # measured 3.1e-10


def _cloud(rng, n=60, width=12.0):
    positions = rng.uniform(0.0, width, (n, 3))
    charges = rng.normal(size=n)
    return positions, charges


@pytest.mark.parametrize("ionic_strength", [1e-20, 1e-24])
def test_vanishing_ionic_strength_gives_the_coulomb_potential(rng, ionic_strength):
    positions, charges = _cloud(rng)
    kappa = PotentialSettings(ionic_strength=ionic_strength).kappa
    assert 0.0 < kappa < 1e-9  # 1/Å: e^{−κr}/r − 1/r ≈ −κ, below 1e-9 of max |Φ| here
    screened, _ = build_potential(positions, charges, tolerance=1e-8, kappa=kappa)
    coulomb, _ = build_potential(positions, charges, tolerance=1e-8)
    a, b = screened.at_atoms()[0], coulomb.at_atoms()[0]
    exact = debye_huckel(positions, positions, charges, 0.0, 1.0)
    scale = np.max(np.abs(exact))
    assert np.max(np.abs(b - exact)) / scale < 2e-9  # measured 6.2e-10
    assert np.max(np.abs(a - exact)) / scale < 2e-9  # measured 8.3e-10 at I = 1e-20 M
    points = rng.uniform(1.0, 11.0, (20, 3))
    assert np.max(np.abs(screened.potential(points) - coulomb.potential(points))) / scale < 1e-9  # 6.7e-11


@pytest.mark.parametrize("kappa", [0.0, KAPPA_150MM])
def test_dielectric_divides_potentials_fields_and_energy(rng, kappa):
    positions, charges = _cloud(rng)
    vacuum, _ = build_potential(positions, charges, tolerance=1e-8, kappa=kappa)
    water, _ = build_potential(positions, charges, tolerance=1e-8, kappa=kappa, dielectric=EPS_WATER)
    phi_v, phi_w = vacuum.at_atoms()[0], water.at_atoms()[0]
    scale = np.max(np.abs(phi_v))
    assert np.max(np.abs(EPS_WATER * phi_w - phi_v)) / scale < 1e-12
    energy_v, energy_w = 0.5 * charges @ phi_v, 0.5 * charges @ phi_w
    assert abs(EPS_WATER * energy_w / energy_v - 1.0) < 1e-12
    points = rng.uniform(1.0, 11.0, (20, 3))
    assert np.max(np.abs(EPS_WATER * water.potential(points) - vacuum.potential(points))) / scale < 1e-12
    field_v = vacuum.field(points)
    assert np.max(np.abs(EPS_WATER * water.field(points) - field_v)) / np.max(np.abs(field_v)) < 1e-12
    exact = debye_huckel(positions, positions, charges, kappa, EPS_WATER)
    assert np.max(np.abs(phi_w - exact)) / np.max(np.abs(exact)) < 2e-9  # measured 6.2e-10


def brute_force_images(points, positions, charges, cell, kappa, dielectric, *, eps=1e-13):
    """Screened image sum over every lattice shift with e^{−κR}/R ≥ eps at the farthest image."""
    cell = np.asarray(cell)
    widths = 1.0 / np.linalg.norm(np.linalg.inv(cell), axis=0)
    points = points - np.floor(points @ np.linalg.inv(cell)) @ cell  # into the cell: the sum is periodic
    positions = positions - np.floor(positions @ np.linalg.inv(cell)) @ cell
    r_max = -math.log(eps) / kappa + np.linalg.norm(cell, axis=1).sum()  # + any in-cell distance
    reach = np.ceil(r_max / widths).astype(int)
    shifts = np.stack(np.meshgrid(*[np.arange(-r, r + 1) for r in reach], indexing="ij"), -1).reshape(-1, 3) @ cell
    out = np.zeros(len(points))
    for x, q in zip(positions, charges):
        images = x[None, :] + shifts
        out += debye_huckel(points, images, np.full(len(images), q), kappa, dielectric)
    return out


def test_periodic_screened_against_brute_force_image_sum(rng):
    """A net-charged triclinic cell: the screened sum needs no background and converges absolutely."""
    kappa = 0.45  # 1/Å: a short Debye length keeps the brute-force image sum small
    cell = cell_matrix([9.0, 10.0, 8.5, 75.0, 95.0, 110.0])
    positions = rng.uniform(0, 1, (10, 3)) @ cell
    charges = rng.normal(size=10) + 0.3
    potential, _ = build_potential(positions, charges, tolerance=1e-8, cell=cell, kappa=kappa, dielectric=EPS_WATER)
    exact = brute_force_images(positions, positions, charges, cell, kappa, EPS_WATER)
    scale = np.max(np.abs(exact))
    assert np.max(np.abs(potential.at_atoms()[0] - exact)) / scale < 5e-9  # measured 2.6e-9
    points = rng.uniform(-1, 2, (15, 3)) @ cell  # inside and outside the cell
    exact = brute_force_images(points, positions, charges, cell, kappa, EPS_WATER)
    assert np.max(np.abs(potential.potential(points) - exact)) / scale < 5e-9  # measured 1.9e-9


# -- bad input through the command line ----------------------------------------------------------
def _structure_file(path, box):
    positions = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 3.0, 1.0]])
    structure = Structure(positions=positions, charges=np.array([0.5, -0.25, -0.25]), attrs={"box": box})
    write_netcdf(structure_to_dataset(structure), path)
    return path


@pytest.mark.parametrize(
    "box, options, setting",
    [
        ([], ["--periodic", "on"], "--periodic"),
        ([], ["--ionic-strength", "-0.1"], "--ionic-strength"),
        ([], ["--dielectric", "0"], "--dielectric"),
        ([], ["--dielectric", "-2"], "--dielectric"),
        ([], ["--temperature", "0"], "--temperature"),
        ([], ["--temperature", "-10"], "--temperature"),
        ([], ["--split", "gaussian-sum", "--ionic-strength", "0.15"], "--ionic-strength"),
        ([10.0, 10.0, 10.0, 30.0, 30.0, 60.0], ["--periodic", "on"], "box"),  # c in the a–b plane
        ([10.0, 0.0, 10.0, 90.0, 90.0, 90.0], ["--periodic", "auto"], "box"),
    ],
)
def test_bad_settings_exit_1_with_one_line_and_no_output(tmp_path, box, options, setting):
    structure = _structure_file(tmp_path / "s.nc", box)
    output = tmp_path / "p.nc"
    result = subprocess.run([sys.executable, "-m", "pipeline", "potential", str(structure), "-o", str(output),
                             *options], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and setting in errors[0], result.stderr
    assert not output.exists()
    assert list(tmp_path.iterdir()) == [structure]


def test_record_without_box_runs_in_free_space(tmp_path):
    """A record without a box (``periodic: auto``) builds the free-space potential through the CLI."""
    structure = _structure_file(tmp_path / "s.nc", [])
    output = tmp_path / "p.nc"
    result = subprocess.run([sys.executable, "-m", "pipeline", "potential", str(structure), "-o", str(output),
                             "--tolerance", "1e-4", "--self-check", "0", "--ionic-strength", "0.15",
                             "--dielectric", "78.5"], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert output.exists()
