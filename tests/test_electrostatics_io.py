"""netCDF round trip, input validation and the `potential` / `evaluate` command lines."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from pipeline.electrostatics import build_potential, direct_potential, load_potential, potential_to_dataset
from pipeline.storage import write_netcdf
from pipeline.structures.record import Structure, structure_to_dataset
from pipeline.units import COULOMB_KCAL_PER_MOL_A_PER_E2
from tests.cli_run import run_pipeline


def _cloud(rng, n=250, width=14.0):
    return rng.uniform(0, width, (n, 3)), rng.normal(size=n)


def test_netcdf_round_trip(rng, tmp_path):
    pos, q = _cloud(rng)
    pot, info = build_potential(pos, q, tolerance=1e-7, split="gaussian-sum")
    total, short, long = pot.at_atoms()
    ds = potential_to_dataset(pot, total=total, short=short, long=long, timings=info["timings"],
                              selfcheck={"tolerance_exceeded": 0}, structure_attrs={"structure_id": "cloud"})
    path = write_netcdf(ds, tmp_path / "p.nc")
    back = load_potential(path)
    pts = rng.uniform(1, 13, (64, 3))
    np.testing.assert_array_equal(back.potential(pts), pot.potential(pts))
    np.testing.assert_array_equal(back.field(pts), pot.field(pts))
    axes = [np.linspace(2, 12, 5)] * 3
    np.testing.assert_array_equal(back.grid(*axes), pot.grid(*axes))
    with xr.open_dataset(path) as f:
        assert f.attrs["structure_id"] == "cloud"
        assert f["potential"].attrs["units"] == "e/angstrom"
        energy = 0.5 * float(np.dot(q, total))
        assert float(f["energy"]) == pytest.approx(energy, rel=1e-14)
        assert float(f["energy_kcal_per_mol"]) == pytest.approx(energy * COULOMB_KCAL_PER_MOL_A_PER_E2, rel=1e-14)
        assert list(f.attrs["ranks"]) == list(pot.ranks)


@pytest.mark.parametrize(
    "positions, charges, kwargs, message",
    [
        (np.zeros((0, 3)), np.zeros(0), {}, "empty"),
        (np.array([[0.0, np.nan, 1.0], [1.0, 1.0, 1.0]]), np.ones(2), {}, "NaN"),
        (np.ones((3, 3)), np.ones(2), {}, "shape"),
        (np.ones((2, 3)), np.ones(2), {"tolerance": 0.05}, r"\[1e-12, 1e-2\]"),
        (np.ones((2, 3)), np.ones(2), {"tolerance": 0.0}, r"\[1e-12, 1e-2\]"),
        (np.ones((2, 3)), np.ones(2), {"box": ([0, 0, 0], [0.5, 2, 2])}, "outside the Chebyshev box"),
        (np.ones((2, 3)), np.ones(2), {"alpha": -1.0}, "alpha"),
    ],
)
def test_bad_input_raises(positions, charges, kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_potential(positions, charges, **kwargs)


def test_targets_outside_box_raise(rng):
    pos, q = _cloud(rng, 50)
    pot, _ = build_potential(pos, q, tolerance=1e-5, padding=1.0)
    outside = np.array([[pot.box_hi[0] + 0.5, 5.0, 5.0]])
    with pytest.raises(ValueError, match="outside the Chebyshev box"):
        pot.potential(outside)
    with pytest.raises(ValueError, match="NaN"):
        pot.potential(np.array([[np.nan, 1.0, 1.0]]))


def test_cli_end_to_end(rng, tmp_path):
    from gridData import Grid

    pos, q = _cloud(rng, 200, width=12.0)
    structure = Structure(positions=pos, charges=q, attrs={"structure_id": "toy", "source": "test"})
    write_netcdf(structure_to_dataset(structure), tmp_path / "s.nc")
    res = run_pipeline("potential", "s.nc", "-o", "p.nc", "--tolerance", "1e-7", "--self-check", "50", "--seed", "3", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    with xr.open_dataset(tmp_path / "p.nc") as p:
        assert p.attrs["structure_id"] == "toy" and p.attrs["source"] == "test"
        assert p.attrs["tolerance_exceeded"] == 0
        assert p.attrs["max_rel_error_atoms"] < 1e-6
        np.testing.assert_allclose(p["potential"].values, direct_potential(pos, pos, q), rtol=0,
                                   atol=3e-7 * np.abs(p["potential"].values).max())
        assert p.attrs["storage_bytes"] > 0 and "time_tucker_s" in p.attrs

    pts = rng.uniform(2, 10, (7, 3))
    np.savetxt(tmp_path / "pts.csv", pts, delimiter=",")
    res = run_pipeline("evaluate", "p.nc", "--points", "pts.csv", "--field", "--units", "kcal/mol/e", "-o", "pts.nc", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    with xr.open_dataset(tmp_path / "pts.nc") as out:
        ref = direct_potential(pts, pos, q) * COULOMB_KCAL_PER_MOL_A_PER_E2
        np.testing.assert_allclose(out["potential"].values, ref, rtol=0, atol=1e-6 * np.abs(ref).max())
        assert out["potential"].attrs["units"] == "kcal/mol/e" and out["field"].shape == (7, 3)

    res = run_pipeline("evaluate", "p.nc", "--grid", "9", "-o", "g.nc", "--dx", "g.dx", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    grid = Grid(str(tmp_path / "g.dx"))
    with xr.open_dataset(tmp_path / "g.nc") as g:
        np.testing.assert_allclose(grid.grid, g["potential"].values, rtol=1e-12)
        np.testing.assert_allclose(grid.origin, [g.x.values[0], g.y.values[0], g.z.values[0]], atol=1e-5)  # DX writes ~7 digits
        corner = np.array([[g.x.values[1], g.y.values[2], g.z.values[3]]])
        assert g["potential"].values[1, 2, 3] == pytest.approx(direct_potential(corner, pos, q)[0], rel=1e-6)


def test_cli_errors_leave_no_output(rng, tmp_path):
    pos, q = _cloud(rng, 20)
    write_netcdf(structure_to_dataset(Structure(positions=pos, charges=q)), tmp_path / "s.nc")
    res = run_pipeline("potential", "s.nc", "-o", "p.nc", "--tolerance", "0.5", cwd=tmp_path)
    assert res.returncode == 1 and "tolerance" in res.stderr and not (tmp_path / "p.nc").exists()
    res = run_pipeline("potential", "missing.nc", "-o", "p.nc", cwd=tmp_path)
    assert res.returncode == 1 and "missing.nc" in res.stderr
    empty = Structure(positions=np.zeros((0, 3)), charges=np.zeros(0))
    write_netcdf(structure_to_dataset(empty), tmp_path / "e.nc")
    res = run_pipeline("potential", "e.nc", "-o", "p.nc", cwd=tmp_path)
    assert res.returncode == 1 and "empty" in res.stderr and not (tmp_path / "p.nc").exists()
