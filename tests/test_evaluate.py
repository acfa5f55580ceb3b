"""The `evaluate` stage (pipeline.maps): maps with field, OpenDX files, points files, memory guards."""

from __future__ import annotations

import gzip
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from pipeline.electrostatics import build_potential, direct_field, direct_potential, potential_to_dataset
from pipeline.maps.dx import write_dx
from pipeline.maps.points import read_points
from pipeline.maps.request import EvaluationRequest, map_bytes
from pipeline.storage import write_netcdf
from pipeline.units import convert_potential
from tests.cli_run import assert_refused, run_pipeline

TOLERANCE = 1e-7


@pytest.fixture(scope="module")
def potential_file(tmp_path_factory):
    """A potential of 150 random charges (tolerance 1e-7) written as the potential stage does."""
    folder = tmp_path_factory.mktemp("evaluate")
    rng = np.random.default_rng(11)
    pos, q = rng.uniform(0, 12, (150, 3)), rng.normal(size=150)
    pot, info = build_potential(pos, q, tolerance=TOLERANCE)
    total, short, long = pot.at_atoms()
    ds = potential_to_dataset(pot, total=total, short=short, long=long, timings=info["timings"],
                              selfcheck={"tolerance_exceeded": 0}, structure_attrs={"structure_id": "cloud"})
    write_netcdf(ds, folder / "p.nc")
    return folder, pos, q


def test_grid_field_and_gzipped_dx(potential_file):
    from gridData import Grid

    folder, pos, q = potential_file
    res = run_pipeline("evaluate", "p.nc", "--grid", "17", "--field", "--units", "kT/e", "-o", "g.nc", "--dx", "g.dx.gz",
               cwd=folder)
    assert res.returncode == 0, res.stderr
    with xr.open_dataset(folder / "g.nc") as g:
        assert g["field"].dims == ("x", "y", "z", "xyz") and g["field"].shape == (17, 17, 17, 3)
        assert g["field"].attrs["units"] == "kT/e/angstrom" and list(g["xyz"].values) == ["x", "y", "z"]
        axes = [g[c].values for c in "xyz"]
        idx = np.random.default_rng(0).integers(0, 17, (60, 3))
        pts = np.stack([axes[k][idx[:, k]] for k in range(3)], axis=1)
        ref_field = convert_potential(direct_field(pts, pos, q), "kT/e")
        got = g["field"].values[idx[:, 0], idx[:, 1], idx[:, 2]]
        # tolerance 1e-7 of the potential; the field measured ~1e-8 of its max here
        np.testing.assert_allclose(got, ref_field, rtol=0, atol=1e-6 * np.abs(ref_field).max())
        ref_pot = convert_potential(direct_potential(pts, pos, q), "kT/e")
        np.testing.assert_allclose(g["potential"].values[idx[:, 0], idx[:, 1], idx[:, 2]], ref_pot, rtol=0,
                                   atol=1e-6 * np.abs(ref_pot).max())
        potential = g["potential"].values
    raw = (folder / "g.dx.gz").read_bytes()
    assert raw[:2] == b"\x1f\x8b"  # gzip magic
    text = gzip.decompress(raw).decode()
    assert "object 3 class array type double rank 0 items 4913 data follows" in text and '"double"' not in text
    grid = Grid(str(folder / "g.dx.gz"))
    np.testing.assert_array_equal(grid.grid, potential)  # shortest round-trip decimals: exact
    np.testing.assert_allclose(grid.origin, [a[0] for a in axes], rtol=0, atol=1e-12)
    np.testing.assert_allclose(grid.delta, [a[1] - a[0] for a in axes], rtol=1e-12)


def test_plain_dx_reads_back(tmp_path):
    from gridData import Grid

    values = np.random.default_rng(3).normal(size=(4, 5, 7)) * 1e-3
    write_dx(str(tmp_path / "m.dx"), values, (1.5, -2.25, 3.0), (0.5, 0.25, 1.0), comments=["x" * 200])
    text = (tmp_path / "m.dx").read_text()
    lines = text.splitlines()
    assert len(lines[0]) == 80  # VMD reads comment lines of at most 80 characters
    data = lines[lines.index("object 3 class array type double rank 0 items 140 data follows") + 1 :]
    assert all(len(line.split()) == 3 for line in data[:46]) and len(data[46].split()) == 2  # 140 = 46*3 + 2
    grid = Grid(str(tmp_path / "m.dx"))
    np.testing.assert_array_equal(grid.grid, values)
    np.testing.assert_array_equal(grid.origin, [1.5, -2.25, 3.0])
    np.testing.assert_array_equal(grid.delta, [0.5, 0.25, 1.0])
    assert [p.name for p in tmp_path.iterdir()] == ["m.dx"]  # no temporary file left


def test_points_field_units(potential_file):
    folder, pos, q = potential_file
    pts = np.random.default_rng(5).uniform(2, 10, (9, 3))
    np.save(folder / "pts.npy", pts)
    res = run_pipeline("evaluate", "p.nc", "--points", "pts.npy", "--field", "-o", "pts.nc", cwd=folder)
    assert res.returncode == 0, res.stderr
    with xr.open_dataset(folder / "pts.nc") as out:
        assert out["field"].attrs["units"] == "e/angstrom^2" and out["potential"].attrs["units"] == "e/A"
        ref = direct_field(pts, pos, q)
        np.testing.assert_allclose(out["field"].values, ref, rtol=0, atol=1e-6 * np.abs(ref).max())


def test_points_file_errors_name_file_and_line(potential_file, tmp_path):
    folder, _, _ = potential_file
    (folder / "header.csv").write_text("x,y,z\n1,2,3\n")
    res = run_pipeline("evaluate", "p.nc", "--points", "header.csv", "-o", "h.nc", cwd=folder)
    assert_refused(res, "header.csv, line 1: expected 3 comma-separated numbers", "'x,y,z'", "start a header line with #")
    assert not (folder / "h.nc").exists()
    (tmp_path / "ragged.csv").write_text("# x,y,z\n1,2,3\n\n4,5\n")
    with pytest.raises(ValueError, match=r"ragged.csv, line 4: .* got '4,5'"):
        read_points(str(tmp_path / "ragged.csv"))
    (tmp_path / "ok.csv").write_text("# x,y,z\n1,2,3\n\n4,5,6  # second\n")
    np.testing.assert_array_equal(read_points(str(tmp_path / "ok.csv")), [[1, 2, 3], [4, 5, 6]])
    np.save(tmp_path / "nan.npy", np.array([[1.0, 2.0, 3.0], [np.nan, 0.0, 0.0]]))
    with pytest.raises(ValueError, match=r"nan.npy: point index 1 \(0-based\) is not finite"):
        read_points(str(tmp_path / "nan.npy"))


def test_grid_refused_before_numerical_libraries_load(tmp_path):
    code = (
        "import sys\n"
        "from pipeline.maps.request import EvaluationRequest\n"
        "try:\n"
        "    EvaluationRequest('p.nc', 'g.nc', grid=5000)\n"
        "except ValueError as exc:\n"
        "    print(exc)\n"
        "print(sorted(m for m in ('numpy', 'xarray', 'scipy', 'numba') if m in sys.modules))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    message, loaded = res.stdout.strip().splitlines()
    assert message.startswith("evaluate --grid 5000: a 5000x5000x5000 map needs an estimated 4.55 TiB of memory")
    assert message.endswith("use a smaller --grid or a larger --spacing, or set --max-memory")
    assert loaded == "[]"
    assert map_bytes((5000,) * 3, field=False) == 40 * 5000**3


def test_evaluate_cli_memory_guards(potential_file):
    folder, _, _ = potential_file
    res = run_pipeline("evaluate", "p.nc", "--grid", "5000", "-o", "big.nc", "--dx", "big.dx", cwd=folder)
    assert_refused(res, "evaluate --grid 5000: a 5000x5000x5000 map needs an estimated 4.55 TiB", "available memory")
    res = run_pipeline("evaluate", "p.nc", "--spacing", "0.01", "-o", "big.nc", cwd=folder)
    assert_refused(res, "evaluate --spacing 0.01: a ", "map needs an estimated", "a larger --spacing")
    res = run_pipeline("evaluate", "p.nc", "--grid", "64", "--field", "-o", "big.nc", "--max-memory", "10M", cwd=folder)
    assert_refused(res, "with its field", "the memory limit of 10 MiB (--max-memory)", "leave out --field")
    np.save(folder / "many.npy", np.full((20000, 3), 5.0))
    res = run_pipeline("evaluate", "p.nc", "--points", "many.npy", "-o", "big.nc", "--max-memory", "1M", cwd=folder)
    assert_refused(res, "evaluate --points many.npy: 20000 points needs an estimated", "split the points file")
    assert not list(folder.glob("big*"))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"points": "a.csv", "dx": "m.dx"}, "--dx needs --grid or --spacing"),
        ({"grid": 9, "dx": "m.dxx"}, "ends in .dx or .dx.gz"),
        ({"grid": 1}, "--grid must be an integer ≥ 2"),
        ({"spacing": -1.0}, "--spacing must be > 0"),
        ({"grid": 9, "spacing": 1.0}, "exactly one of"),
        ({"grid": 9, "units": "mV"}, "--units must be one of"),
    ],
)
def test_request_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EvaluationRequest("p.nc", "o.nc", **kwargs)


def test_output_folder_named(tmp_path):
    with pytest.raises(ValueError, match=f"-o/--output {tmp_path}: is a folder"):
        EvaluationRequest("p.nc", str(tmp_path), grid=9)


def test_cli_module_imports_stay_light(tmp_path):
    code = (
        "import sys\n"
        "import pipeline.cli.evaluate\n"
        "print(sorted(m for m in ('numpy', 'xarray', 'scipy', 'numba') if m in sys.modules))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert res.stdout.strip() == "[]", res.stdout + res.stderr


def test_padding_maps_the_atoms_box_and_refuses_to_leave_a_free_space_box(tmp_path):
    """--padding P spans the atoms' bounding box ± P Å; beyond the Chebyshev box it is refused by name."""
    from pipeline.storage import write_netcdf

    rng = np.random.default_rng(3)
    pos = rng.uniform(0.0, 10.0, (60, 3))
    q = rng.normal(size=60)
    potential, _ = build_potential(pos, q, tolerance=1e-5, padding=3.0)
    total, short, long = potential.at_atoms()
    write_netcdf(potential_to_dataset(potential, total=total, short=short, long=long, timings={}, selfcheck={}),
                 tmp_path / "p.nc")
    done = run_pipeline("evaluate", "p.nc", "--grid", "5", "--padding", "2", "-o", "m.nc", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with xr.open_dataset(tmp_path / "m.nc") as m:
        for axis, k in zip("xyz", range(3)):
            assert float(m[axis].min()) == pytest.approx(pos[:, k].min() - 2.0, abs=1e-9)
            assert float(m[axis].max()) == pytest.approx(pos[:, k].max() + 2.0, abs=1e-9)
    refused = run_pipeline("evaluate", "p.nc", "--grid", "5", "--padding", "5", "-o", "far.nc", cwd=tmp_path)
    assert_refused(refused, "error: --padding 5: the map would reach 2 Å beyond")
    assert not (tmp_path / "far.nc").exists()
