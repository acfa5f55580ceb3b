"""The self-check tells the truth about a damaged potential, and the flag reaches file, log and report.

A built potential is damaged on purpose (Tucker core scaled by 1 + 1e-3; ranks cut). The errors
``self_check`` records must equal errors computed here, independently, from a plain NumPy
Coulomb sum at the very atoms and points it sampled (recorded by a spy on the evaluation) and at
the coarse map it evaluates, all relative to one scale (max |Φ_ref| over the checked atoms), and
``tolerance_exceeded`` must be 1. Through the ``potential`` command line (``--ranks`` too small)
the stage fails with a one-line error and writes nothing; with ``--allow-exceeded`` the flag is
followed into the potential file's attributes, the log WARNING and the report Dataset and table.
"""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from pipeline.electrostatics import ChebyshevTuckerPotential, build_potential, load_potential, self_check
from pipeline.electrostatics.selfcheck import EXACT_LIMIT, MAP_POINTS

TOL = 1e-6


def coulomb(targets: np.ndarray, sources: np.ndarray, charges: np.ndarray) -> np.ndarray:
    """Σ_j q_j / |t − x_j| over sources not at the target, one target at a time (e/Å)."""
    out = np.empty(targets.shape[0])
    for i, t in enumerate(targets):
        r = np.sqrt(np.sum((sources - t) ** 2, axis=1))
        keep = r > 0
        out[i] = np.sum(charges[keep] / r[keep])
    return out


def rel_errors(value: np.ndarray, reference: np.ndarray, scale: float | None = None) -> tuple[float, float]:
    """(max, rms) of value − reference over ``scale`` (default max |reference|; the self-check
    divides by max |Φ_ref| over the checked atoms everywhere)."""
    scale = np.max(np.abs(reference)) if scale is None else scale
    diff = value - reference
    return float(np.max(np.abs(diff)) / scale), float(np.sqrt(np.mean(diff**2)) / scale)


class Spy(ChebyshevTuckerPotential):
    """A potential that records every batch of points it is evaluated at."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def potential(self, points, *, parts: bool = False):
        self.calls.append(np.array(points, copy=True))
        return super().potential(points, parts=parts)

    def evaluated(self) -> np.ndarray:
        """Every point evaluated so far, in order, (n, 3) Å."""
        return np.concatenate(self.calls) if self.calls else np.zeros((0, 3))


def spy_of(potential: ChebyshevTuckerPotential, **changes) -> Spy:
    fields = {f.name: getattr(potential, f.name) for f in dataclasses.fields(potential) if f.init}
    fields.update(changes)
    return Spy(**fields)


def map_points(potential, n: int = MAP_POINTS) -> np.ndarray:
    """The self-check's coarse map: n cell-centred points per axis over the Chebyshev box, (n³, 3) Å."""
    lo, hi = np.asarray(potential.box_lo), np.asarray(potential.box_hi)
    axes = [lo[k] + (hi[k] - lo[k]) * (np.arange(n) + 0.5) / n for k in range(3)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


@pytest.fixture(scope="module")
def cloud():
    rng = np.random.default_rng(161)
    pos = rng.uniform(0.0, 16.0, (500, 3))
    q = rng.choice([-0.5, 0.5], 500) + rng.normal(0.0, 0.1, 500)
    pot, _ = build_potential(pos, q, tolerance=TOL)
    return pos, q, pot, coulomb(pos, pos, q)


def test_undamaged_potential_passes_with_the_same_errors(cloud, caplog):
    pos, q, pot, ref = cloud
    spy = spy_of(pot)
    total = pot.at_atoms()[0]
    with caplog.at_level(logging.INFO, logger="pipeline.electrostatics.selfcheck"):
        check = self_check(spy, total, n_sample=40, rng=np.random.default_rng(1), tolerance=TOL)
    assert check["selfcheck_atoms"] == 500 and check["selfcheck_points"] == 40
    targets = spy.evaluated()
    np.testing.assert_array_equal(targets[:500], pos)  # the atoms, then the points
    pts = targets[500:]
    assert pts.shape == (40, 3)
    scale = np.max(np.abs(ref))
    assert check["tolerance_scale_e_per_A"] == pytest.approx(scale, rel=1e-12)
    assert check["max_rel_error_atoms"] == pytest.approx(rel_errors(total, ref)[0], rel=1e-9)
    assert check["max_rel_error_points"] == pytest.approx(
        rel_errors(pot.potential(pts), coulomb(pts, pos, q), scale)[0], rel=1e-9)
    grid = map_points(pot)
    assert check["max_rel_error_map"] == pytest.approx(
        rel_errors(pot.potential(grid), coulomb(grid, pos, q), scale)[0], rel=1e-6)
    assert max(check["max_rel_error_atoms"], check["max_rel_error_points"], check["max_rel_error_map"]) < TOL
    assert check["tolerance_exceeded"] == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_scaled_core_is_reported_at_atoms_and_points(cloud, caplog):
    # representation evaluated at the atoms too (no build-grid values): both errors are the damage
    pos, q, pot, ref = cloud
    damaged = spy_of(pot, core=pot.core * (1 + 1e-3), atom_long=None)
    atom_values = damaged.at_atoms()[0]
    damaged.calls.clear()
    with caplog.at_level(logging.INFO, logger="pipeline.electrostatics.selfcheck"):
        check = self_check(damaged, atom_values, n_sample=32, rng=np.random.default_rng(2), tolerance=TOL)
    pts = damaged.evaluated()
    assert pts.shape == (32, 3) and check["selfcheck_points"] == 32 and check["selfcheck_atoms"] == 500
    assert np.all(pts >= np.asarray(pot.box_lo)) and np.all(pts <= np.asarray(pot.box_hi))
    scale = np.max(np.abs(ref))
    max_a, rms_a = rel_errors(atom_values, ref)
    max_p, rms_p = rel_errors(pot.potential(pts) + 1e-3 * pot.long_range(pts), coulomb(pts, pos, q), scale)
    grid = map_points(pot)
    max_m = rel_errors(pot.potential(grid) + 1e-3 * pot.long_range(grid), coulomb(grid, pos, q), scale)[0]
    assert max_a > 10 * TOL and max_p > 10 * TOL and max_m > 10 * TOL  # the damage is visible
    assert check["max_rel_error_atoms"] == pytest.approx(max_a, rel=1e-9)
    assert check["rms_rel_error_atoms"] == pytest.approx(rms_a, rel=1e-9)
    assert check["max_rel_error_points"] == pytest.approx(max_p, rel=1e-9)
    assert check["rms_rel_error_points"] == pytest.approx(rms_p, rel=1e-9)
    assert check["max_rel_error_map"] == pytest.approx(max_m, rel=1e-6)
    assert "max_rel_error_atoms_representation" not in check
    assert check["tolerance_exceeded"] == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "exceeds the requested tolerance" in warnings[0].getMessage()
    assert f"{max(max_a, max_p, max_m):.2e}" in warnings[0].getMessage()


def test_damaged_representation_is_flagged_although_atom_values_are_good(cloud):
    # atom values from the build grid are right; the stored form (cut to half its ranks) is not
    pos, q, pot, ref = cloud
    r = [max(1, k // 2) for k in pot.ranks]
    cut = spy_of(pot, core=pot.core[: r[0], : r[1], : r[2]].copy(),
                 factors=[f[:, :k].copy() for f, k in zip(pot.factors, r)])
    total = pot.at_atoms()[0]
    check = self_check(cut, total, n_sample=16, rng=np.random.default_rng(3), tolerance=TOL)
    targets = cut.evaluated()
    pts = targets[500:]
    assert check["max_rel_error_atoms"] == pytest.approx(rel_errors(total, ref)[0], rel=1e-9)
    assert check["max_rel_error_atoms"] < TOL
    representation = rel_errors(cut.potential(pos), ref)[0]
    points = rel_errors(cut.potential(pts), coulomb(pts, pos, q), np.max(np.abs(ref)))[0]
    assert representation > 10 * TOL and points > 10 * TOL
    assert check["max_rel_error_atoms_representation"] == pytest.approx(representation, rel=1e-9)
    assert check["max_rel_error_points"] == pytest.approx(points, rel=1e-9)
    assert check["tolerance_exceeded"] == 1


def test_sampled_atoms_are_the_ones_compared():
    # above EXACT_LIMIT atoms are sampled: the recorded error is that of the sampled atoms
    rng = np.random.default_rng(162)
    n = EXACT_LIMIT + 200
    pos = rng.uniform(0.0, 30.0, (n, 3))
    q = rng.normal(size=n)
    pot, _ = build_potential(pos, q, tolerance=1e-5)
    total = pot.at_atoms()[0]
    damaged_total = total.copy()
    damaged_total[::2] *= 1 + 1e-3  # every other atom value off by 1e-3
    spy = spy_of(pot, core=pot.core * (1 + 1e-3))
    check = self_check(spy, damaged_total, n_sample=30, rng=np.random.default_rng(4), tolerance=1e-5)
    targets = spy.evaluated()
    assert check["selfcheck_atoms"] == 30 and targets.shape == (60, 3)
    idx = np.array([int(np.nonzero(np.all(pos == t, axis=1))[0][0]) for t in targets[:30]])
    assert len(set(idx.tolist())) == 30
    ref = coulomb(pos[idx], pos, q)
    assert check["max_rel_error_atoms"] == pytest.approx(rel_errors(damaged_total[idx], ref)[0], rel=1e-9)
    assert check["rms_rel_error_atoms"] == pytest.approx(rel_errors(damaged_total[idx], ref)[1], rel=1e-9)
    assert check["max_rel_error_atoms_representation"] == pytest.approx(
        rel_errors(spy.potential(pos[idx]), ref)[0], rel=1e-9)
    pts = targets[30:]
    assert check["max_rel_error_points"] == pytest.approx(
        rel_errors(spy.potential(pts), coulomb(pts, pos, q), np.max(np.abs(ref)))[0], rel=1e-9)
    assert check["tolerance_exceeded"] == 1


def _toy_structure(tmp_path):
    from pipeline.storage import write_netcdf
    from pipeline.structures.record import Structure, structure_to_dataset

    rng = np.random.default_rng(163)
    pos = rng.uniform(0.0, 14.0, (300, 3))
    q = rng.normal(size=300)
    attrs = {"structure_id": "toy", "source": "test", "charge_source": "test"}
    write_netcdf(structure_to_dataset(Structure(positions=pos, charges=q, attrs=attrs)), tmp_path / "s.nc")
    return pos, q


def test_missed_tolerance_fails_after_the_repairs_and_writes_nothing(tmp_path):
    # ranks far below the tail rule: no accuracy level can meet the tolerance
    _toy_structure(tmp_path)
    res = subprocess.run(
        [sys.executable, "-m", "pipeline", "potential", "s.nc", "-o", "p.nc", "--tolerance", "1e-6",
         "--ranks", "3", "3", "3", "--self-check", "20", "--seed", "5"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 1
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "misses the tolerance 1e-06" in errors[0], res.stderr
    assert "by accuracy level: 0: " in errors[0] and ", 2: " in errors[0]  # two repairs were tried
    rebuilds = [line for line in res.stderr.splitlines() if "rebuilding at accuracy level" in line]
    assert len(rebuilds) == 2
    assert not (tmp_path / "p.nc").exists() and list(tmp_path.iterdir()) == [tmp_path / "s.nc"]


def test_flag_reaches_the_file_the_log_and_the_report(tmp_path):
    # ranks far below the tail rule, kept with --allow-exceeded: the file, the log and the report
    # must all say the tolerance was exceeded, with the errors of the stored potential
    from pipeline.reports.datasets import build_report
    from pipeline.reports.tables import potentials_table

    pos, q = _toy_structure(tmp_path)
    res = subprocess.run(
        [sys.executable, "-m", "pipeline", "potential", "s.nc", "-o", "p.nc", "--tolerance", "1e-6",
         "--ranks", "3", "3", "3", "--self-check", "20", "--seed", "5", "--allow-exceeded"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 0, res.stderr  # flagged, not failed: the file is still written
    warnings = [line for line in res.stderr.splitlines() if " WARNING " in line]
    assert sum("exceeds the requested tolerance 1.0e-06" in line for line in warnings) == 3, res.stderr  # levels 0-2
    assert "flagged as tolerance_exceeded" in warnings[-1], res.stderr

    ref = coulomb(pos, pos, q)
    stored = load_potential(tmp_path / "p.nc")
    with xr.open_dataset(tmp_path / "p.nc") as p:
        attrs = dict(p.attrs)
        atom_values = p["potential"].values
    assert attrs["tolerance_exceeded"] == 1 and list(attrs["ranks"]) == [3, 3, 3] and attrs["accuracy_level"] == 2
    assert attrs["max_rel_error_atoms"] == pytest.approx(rel_errors(atom_values, ref)[0], rel=1e-9)
    representation = rel_errors(stored.potential(pos), ref)[0]
    assert representation > 10 * 1e-6
    assert attrs["max_rel_error_atoms_representation"] == pytest.approx(representation, rel=1e-9)

    report = build_report(structures=[tmp_path / "s.nc"], potentials=[tmp_path / "p.nc"])
    cell = {"structure": "toy", "potential_tolerance": 1e-6}
    assert int(report["potential_tolerance_exceeded"].sel(cell)) == 1
    assert float(report["potential_max_rel_error"].sel(cell)) == attrs["max_rel_error_atoms"]
    lines = potentials_table(report).splitlines()
    header = next(i for i, line in enumerate(lines) if "flagged" in line)
    start = lines[header].index("flagged")
    rule = lines[header + 1]  # dashes under every column
    stop = rule.index(" ", start) if " " in rule[start:] else len(rule)
    row = next(line for line in lines[header + 2 :] if line.startswith("toy"))
    assert row[start:stop].strip() == "yes", lines
