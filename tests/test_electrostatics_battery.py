"""Stress battery: the tolerance holds for charge distributions unlike proteins, at atoms and off atoms.

Each case is built the way the potential stage builds (self-check with automatic repair,
:func:`pipeline.electrostatics.stage.build_checked`) at tolerances 1e-3, 1e-6 and 1e-8, then
checked here, independently of the self-check, against direct summation at sampled atoms and at
points at least 1 Å from every atom (uniform in the Chebyshev box, which extends beyond the
atoms). The promise is |Φ − Φ_ref| ≤ ε · max |Φ_ref| over the atoms (the tolerance's scale); the
scale used here is the max over the sampled atoms, which is never larger.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from pipeline.electrostatics.direct import direct_potential
from pipeline.electrostatics.settings import PotentialSettings
from pipeline.electrostatics.stage import build_checked
from pipeline.structures.lattices import evjen_cube

TOLERANCES = (1e-3, 1e-6, 1e-8)
#: Sampled atoms and off-atom points per case.
N_CHECK = 300


def _neutral(q):
    return q - q.mean()


def _cloud(rng, n, radius, centre=(0.0, 0.0, 0.0)):
    """Protein-like cloud: uniform in a ball, partial charges of either sign."""
    v = rng.normal(size=(n, 3))
    v *= (radius * rng.random(n) ** (1 / 3) / np.linalg.norm(v, axis=1))[:, None]
    return v + np.asarray(centre), _neutral(rng.normal(scale=0.4, size=n))


def _lattice(kind, termination=None, n=6):
    s = evjen_cube(n, {"rocksalt": 5.64, "cscl": 4.12, "zincblende": 5.41}[kind], lattice=kind, termination=termination)
    return s.positions, s.charges


def _cases():
    rng = np.random.default_rng(2024)
    cases = {
        "rocksalt cube": _lattice("rocksalt"),
        "CsCl cube, mixed faces": _lattice("cscl", "mixed"),
        "CsCl cube, Cs faces": _lattice("cscl", "cation"),
        "zinc-blende cube, Zn faces": _lattice("zincblende", "cation", n=4),
        "zinc-blende cube, S faces": _lattice("zincblende", "anion", n=4),
    }
    pos, q = _cloud(rng, 2000, 15.0)
    cases["protein in a box 10x its size"] = (pos, q, {"padding": 135.0})
    a, qa = _cloud(rng, 1500, 12.0)
    b, qb = _cloud(rng, 1500, 12.0, centre=(200.0, 0.0, 0.0))
    cases["two proteins 200 A apart"] = (np.vstack([a, b]), np.concatenate([qa, qb]))
    slab = rng.random((3000, 3)) * [60.0, 60.0, 4.0]
    cases["planar slab"] = (slab, _neutral(rng.normal(size=3000)))
    line = np.zeros((1000, 3))
    line[:, 0] = 1.5 * np.arange(1000)
    cases["line of alternating charges"] = (line, np.where(np.arange(1000) % 2 == 0, 1.0, -1.0))
    g = 4.0 * np.stack(np.meshgrid(*[np.arange(8.0)] * 3, indexing="ij"), -1).reshape(-1, 3)
    dipoles = np.vstack([g, g + [0.5, 0.5, 0.5]])
    cases["dipole lattice"] = (dipoles, np.concatenate([np.full(len(g), 0.5), np.full(len(g), -0.5)]))
    pos, q = _cloud(rng, 1000, 12.0)
    cases["single far-away ion"] = (np.vstack([pos, [[150.0, 40.0, -30.0]]]), np.concatenate([q, [1.0]]))
    pos, q = _cloud(rng, 2000, 15.0)
    cases["net charge +50 e"] = (pos, q + 50.0 / 2000)
    dense = rng.random((2000, 3)) * 2000 ** (1 / 3)  # 1 atom per Å³
    cases["dense cluster"] = (dense, _neutral(rng.normal(scale=0.3, size=2000)))
    v = rng.normal(size=(100_000, 3))
    shell = v / np.linalg.norm(v, axis=1)[:, None] * (100.0 + rng.random(100_000))[:, None]
    cases["1e5 atoms in a thin shell"] = (shell, _neutral(rng.normal(scale=0.3, size=100_000)))
    return {name: case if len(case) == 3 else (*case, {}) for name, case in cases.items()}


CASES = _cases()


def test_battery_has_at_least_twelve_kinds():
    assert len(CASES) >= 12


@pytest.mark.slow
@pytest.mark.parametrize("tolerance", TOLERANCES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_tolerance_holds_at_atoms_and_off_atoms(name, tolerance):
    positions, charges, options = CASES[name]
    rng = np.random.default_rng(7)
    settings = PotentialSettings(tolerance=tolerance, self_check=500, **options)
    potential, (total, _, _), check, _ = build_checked(positions, charges, settings, source=name)
    atoms = np.sort(rng.choice(len(charges), size=min(N_CHECK, len(charges)), replace=False))
    ref_atoms = direct_potential(positions[atoms], positions, charges)
    scale = np.abs(ref_atoms).max()
    lo, hi = np.asarray(potential.box_lo), np.asarray(potential.box_hi)
    candidates = lo + (hi - lo) * rng.random((20 * N_CHECK, 3))
    far, _ = cKDTree(positions).query(candidates, distance_upper_bound=1.0)
    points = candidates[np.isinf(far)][:N_CHECK]
    assert len(points) >= N_CHECK // 2, "too few off-atom points sampled"
    err_atoms = np.abs(total[atoms] - ref_atoms).max() / scale
    err_points = np.abs(potential.potential(points) - direct_potential(points, positions, charges)).max() / scale
    assert err_atoms <= tolerance, f"{name}: atoms {err_atoms:.2e} > {tolerance:g} (level {check['accuracy_level']})"
    assert err_points <= tolerance, f"{name}: points {err_points:.2e} > {tolerance:g} (level {check['accuracy_level']})"
