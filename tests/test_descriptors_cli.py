"""``python -m pipeline descriptors`` end to end on a small lattice, and its failures on bad input.

Inputs are made by the lattice and potential stages (in-process through ``pipeline.cli.main``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.storage import read_netcdf


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A rock-salt block with vacancies (symmetry broken) and its potential; a second, smaller one."""
    d = tmp_path_factory.mktemp("descriptors")
    s, p = d / "nacl.nc", d / "nacl_pot.nc"
    assert main(["lattice", "--type", "rocksalt", "--cells", "2", "--lattice-constant", "5.64",
                 "--vacancy-fraction", "0.15", "--seed", "3", "--id", "nacl", "-o", str(s)]) == 0
    assert main(["potential", str(s), "-o", str(p), "--tolerance", "1e-6", "--self-check", "20"]) == 0
    small, small_pot = d / "small.nc", d / "small_pot.nc"
    assert main(["lattice", "--type", "cscl", "--cells", "2", "--lattice-constant", "4.1", "--id", "small", "-o", str(small)]) == 0
    assert main(["potential", str(small), "-o", str(small_pot), "--tolerance", "1e-5", "--self-check", "10"]) == 0
    renamed = d / "renamed.nc"  # same atoms as nacl.nc, other structure_id
    assert main(["lattice", "--type", "rocksalt", "--cells", "2", "--lattice-constant", "5.64",
                 "--vacancy-fraction", "0.15", "--seed", "3", "--id", "other", "-o", str(renamed)]) == 0
    return {"dir": d, "structure": s, "potential": p, "small": small, "small_potential": small_pot, "renamed": renamed}


def run_descriptors(structure, potential, output, *extra):
    return main(["descriptors", str(structure), "--potential", str(potential), "-o", str(output),
                 "--lmax", "2", "--cutoff", "6", "--n-radial", "3", "--sphere-radius", "2", *extra])


def test_cli_end_to_end(inputs):
    out = inputs["dir"] / "desc.nc"
    assert run_descriptors(inputs["structure"], inputs["potential"], out, "--band-limit", "20", "--validation-atoms", "16") == 0
    ds = read_netcdf(out)
    n_atoms = int(read_netcdf(inputs["structure"]).sizes["atom"])
    assert ds.sizes["atom"] == n_atoms and ds.sizes["n"] == 3 and ds.sizes["sh"] == 9
    assert list(ds["method"].values) == ["cg", "gaunt_fourier", "gaunt_grid", "gaunt_grid+vector_gaunt"]
    keys = {"cg": "cg", "gaunt_fourier": "gaunt_fourier", "gaunt_grid": "gaunt_grid",
            "gaunt_grid+vector_gaunt": "gaunt_grid_vector_gaunt"}
    for method, key in keys.items():
        assert ds[f"product_{key}"].dims == ("atom", "n", f"{key}_feature")
        assert ds[f"product_{key}"].attrs["method"] == method and ds[f"product_{key}"].attrs["units"] == "e^2/angstrom"
        assert ds[f"product_{key}"].dtype == np.float32 and np.isfinite(ds[f"product_{key}"].values).all()  # no padding
    assert ds["density"].attrs["units"] == "e"
    assert ds["potential_expansion"].attrs["units"] == "e/angstrom"
    for name, variable in ds.variables.items():
        assert "units" in variable.attrs and "long_name" in variable.attrs, f"{name} lacks units/long_name"
    # irreps labels: CG reaches 1e (odd path 1x1->1), plain Gaunt does not, Gaunt + vector Gaunt does.
    irrep = {method: [str(x) for x in ds[f"{key}_irrep"].values] for method, key in keys.items()}
    assert {"sh_l", "sh_irrep", "cg_irrep", "cg_paths", "radial_centre"} <= set(ds.coords)
    assert list(ds["sh_irrep"].values) == ["0e", "1o", "1o", "1o", "2e", "2e", "2e", "2e", "2e"]
    assert irrep["gaunt_grid"] == ["0e"] + ["1o"] * 3 + ["2e"] * 5
    assert "1e" in irrep["cg"] and "1e" in irrep["gaunt_grid+vector_gaunt"] and "1e" not in irrep["gaunt_fourier"]
    assert irrep["cg"].count("0e") == 3  # paths (0,0,0), (1,1,0), (2,2,0)
    assert ds.sizes["gaunt_grid_feature"] == 9 and ds.sizes["cg_feature"] == 51
    assert ds["cg_paths"].values.tolist()[:2] == ["0x0", "0x1"]
    # built-in validation (band limit 20: quadrature exact to round-off for this potential)
    assert ds["equivariance_error"].dims == ("method",)
    assert float(ds["equivariance_error"].max()) < 1e-10
    assert float(ds["fourier_grid_difference"]) < 1e-12
    assert float(ds["gaunt_cg_difference"]) < 1e-12
    # float32 storage, computed straight into it: each value rounded once, ≤ 2⁻²⁴ of the largest
    assert 0 < float(ds["stored_product_error"].min()) and float(ds["stored_product_error"].max()) <= 2.0**-24
    assert float(ds["time_total_s"]) > 0
    for step in ("neighbours", "density", "potential", "product_cg", "validation"):
        assert ds.attrs[f"time_{step}_s"] >= 0
    assert ds.attrs["structure_id"] == "nacl"
    assert ds.attrs["potential_file"] == str(inputs["potential"])
    with read_netcdf(inputs["potential"]) as pot:
        assert ds.attrs["long_range_alpha_per_A"] == pytest.approx(pot.attrs["stored_alpha"], rel=1e-12)
    assert json.loads(ds.attrs["parameters"])["lmax"] == 2
    assert ds.sizes["validation_atom"] == 16


def test_cli_matches_density_of_structure(inputs):
    # the stored density is the one of the structure file's atoms (spot check of one atom by hand)
    out = inputs["dir"] / "desc_small.nc"
    assert run_descriptors(inputs["small"], inputs["small_potential"], out, "--validation-atoms", "4") == 0
    ds = read_netcdf(out)
    s = read_netcdf(inputs["small"])
    pos, q = s["positions"].values, s["charge"].values
    d = np.linalg.norm(pos - pos[0], axis=1)
    near = (d > 0) & (d < 6.0)
    sigma = 6.0 / 3
    fc = 0.5 * (1 + np.cos(np.pi * d[near] / 6.0))
    a00 = np.sum(q[near] * np.exp(-((d[near] - 0.0) ** 2) / (2 * sigma**2)) * fc) / np.sqrt(4 * np.pi)
    assert abs(float(ds["density"].values[0, 0, 0]) - a00) < 1e-12
    assert int(ds["n_neighbours"].values[0]) == int(near.sum())


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing_potential", "potential file not found"),
        ("atom_count", "atoms but structure"),
        ("structure_id", "structure_id"),
        ("lmax_high", "lmax must be an integer in [0, 8]"),
        ("lmax_negative", "lmax must be an integer in [0, 8]"),
        ("sphere_outside_box", "outside the potential's Chebyshev box"),
    ],
)
def test_cli_bad_input(inputs, tmp_path, capsys, case, message):
    out = tmp_path / "bad.nc"
    structure, potential, extra = inputs["structure"], inputs["potential"], []
    if case == "missing_potential":
        potential = tmp_path / "does_not_exist.nc"
    elif case == "atom_count":
        potential = inputs["small_potential"]
    elif case == "structure_id":
        structure = inputs["renamed"]
    elif case == "lmax_high":
        extra = ["--lmax", "9"]
    elif case == "lmax_negative":
        extra = ["--lmax", "-1"]
    elif case == "sphere_outside_box":
        extra = ["--sphere-radius", "5"]
    assert run_descriptors(structure, potential, out, *extra) == 1
    err = capsys.readouterr().err
    assert "error:" in err and message in err, err
    assert not out.exists()
    assert not list(tmp_path.glob(".bad.nc.*"))
